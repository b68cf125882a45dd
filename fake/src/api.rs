//! What each endpoint answers: the API (submit, status, result, cancel, the catalog), the
//! output files, and the server's own `/_fake/...` endpoints.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_RANGE, CONTENT_TYPE};
use serde_json::{json, Value};

use crate::fault::{RecordedRequest, Route};
use crate::http::{answer, json_answer, Answer};
use crate::lifecycle::{Ending, Now};
use crate::server::{Job, Shared};

fn api_error(status: u16, code: i64, message: &str) -> Answer {
    json_answer(
        status,
        json!({"error_code": code, "error_message": message}).to_string(),
    )
}

/// The server's own endpoints (`GET /_fake/stats`, `/_fake/inputs`, `/_fake/jobs`,
/// `POST /_fake/inject`), for a test driving the server as a separate process.
pub(crate) fn control(
    shared: &Shared,
    method: &hyper::Method,
    path: &str,
    request: &[u8],
) -> Option<Answer> {
    let get = method == hyper::Method::GET;
    let body = match path {
        "/_fake/stats" if get => serde_json::to_string(&shared.lock().stats()),
        "/_fake/inputs" if get => serde_json::to_string(&shared.lock().inputs()),
        "/_fake/jobs" if get => serde_json::to_string(&shared.lock().job_records()),
        "/_fake/inject" if method == hyper::Method::POST => {
            return Some(match inject(shared, request) {
                Ok(()) => json_answer(200, json!({"injected": true}).to_string()),
                Err(message) => json_answer(400, json!({"message": message}).to_string()),
            })
        }
        _ => return None,
    };
    Some(match body {
        Ok(body) => json_answer(200, body),
        Err(e) => json_answer(500, json!({"message": e.to_string()}).to_string()),
    })
}

/// `{"route": "submit", "times": 1, "fault": ...}`.
fn inject(shared: &Shared, request: &[u8]) -> Result<(), String> {
    let v: Value =
        serde_json::from_slice(request).map_err(|e| format!("the body is not JSON: {e}"))?;
    let name = v.get("route").and_then(Value::as_str).unwrap_or("any");
    let route = crate::standalone::route_from_name(name)
        .ok_or_else(|| format!("unknown route {name:?}"))?;
    let times = v.get("times").and_then(Value::as_u64).unwrap_or(1);
    let fault = crate::standalone::fault_from_json(v.get("fault").unwrap_or(&Value::Null))?;
    shared
        .lock()
        .add_fault(route, fault, usize::try_from(times).unwrap_or(usize::MAX));
    Ok(())
}

/// The normal answer to a request.
pub(crate) fn serve(shared: &Shared, req: &RecordedRequest) -> Answer {
    if req.route == Route::File {
        // Output files live on a CDN host that takes no token.
        return file(shared, req);
    }
    if let Some(token) = &shared.settings.token {
        let expected = format!("Bearer {token}");
        if req.header("authorization") != Some(expected.as_str()) {
            // The fake says which token it wants (a test token, never a real one).
            let wants = if token == crate::FAKE_TOKEN {
                format!("the fake server wants RUNCOMFY_TOKEN={token}")
            } else {
                "the fake server wants the token it was started with (--token)".to_owned()
            };
            return api_error(
                400,
                400004,
                &format!("missing, expired or revoked token ({wants})"),
            );
        }
    }
    let query = parse_query(req.query.as_deref().unwrap_or(""));
    match req.route {
        Route::Submit => submit(shared, req),
        Route::GetModel => {
            let id = req.path.trim_start_matches("/v1/models/");
            match shared.lock().models.get(id) {
                Some(m) => json_answer(200, m.catalog_entry(true).to_string()),
                None => api_error(400, 400001, &format!("unknown model_id {id}")),
            }
        }
        Route::ListModels => list_models(shared, &query),
        Route::Status | Route::Result | Route::Cancel => {
            let rest = req.path.trim_start_matches("/v1/requests/");
            let id = rest.split('/').next().unwrap_or_default();
            let mut st = shared.lock();
            let now = st.now();
            let Some(model_id) = st.jobs.get(id).map(|j| j.model_id.clone()) else {
                return api_error(404, 404001, &format!("request {id} not found"));
            };
            let media = shared.settings.outputs == crate::server::Outputs::Media;
            let input = st.jobs.get(id).map(|j| j.input.clone()).unwrap_or_default();
            let output = st.models.get(&model_id).map(|m| {
                let sample = m.sample_output(&shared.output_base(id), media);
                let cost = m.cost_of(&input, &sample);
                (sample, cost)
            });
            let Some(job) = st.jobs.get_mut(id) else {
                return api_error(404, 404001, &format!("request {id} not found"));
            };
            match req.route {
                Route::Status => status_answer(shared, id, job, now),
                Route::Result => {
                    let cost = query.get("include_cost").map(String::as_str) == Some("true");
                    let (sample, price) = output.unwrap_or_else(|| {
                        let base = shared.output_base(id);
                        (
                            crate::models::sample_output(&model_id, &Value::Null, &base, media),
                            0.1,
                        )
                    });
                    result_answer(id, job, now, sample, cost.then_some(price))
                }
                _ => cancel_answer(id, job, now),
            }
        }
        Route::File | Route::Other | Route::Any => not_found(req),
    }
}

fn not_found(req: &RecordedRequest) -> Answer {
    json_answer(
        404,
        json!({"message": format!("no route for {} {}", req.method, req.path)}).to_string(),
    )
}

fn submit(shared: &Shared, req: &RecordedRequest) -> Answer {
    let model_id = req.path.trim_start_matches("/v1/models/");
    if runcomfy_codegen::load::check_model_id(model_id).is_err() {
        return api_error(400, 400001, &format!("malformed model_id {model_id}"));
    }
    let input: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return json_answer(
                400,
                json!({"message": "the body is not JSON", "detail": e.to_string()}).to_string(),
            )
        }
    };
    let model = shared.lock().models.get(model_id).cloned();
    match model {
        Some(model) => {
            // Checked outside the lock: other requests go on meanwhile.
            let errors = model.check(&input);
            if !errors.is_empty() {
                return json_answer(
                    422,
                    json!({"message": "input does not match the model's schema", "detail": errors})
                        .to_string(),
                );
            }
        }
        None if shared.settings.accept_unknown_models => {}
        None => return api_error(400, 400001, &format!("unknown model_id {model_id}")),
    }
    let id = shared.lock().new_job(model_id, input, None);
    let base = &shared.base_url;
    json_answer(
        200,
        json!({
            "request_id": id,
            "status_url": format!("{base}/v1/requests/{id}/status"),
            "result_url": format!("{base}/v1/requests/{id}/result"),
            "cancel_url": format!("{base}/v1/requests/{id}/cancel"),
        })
        .to_string(),
    )
}

fn status_answer(shared: &Shared, id: &str, job: &mut Job, now: Duration) -> Answer {
    let current = job.progression.current(now);
    job.progression.polled();
    job.polls += 1;
    let base = &shared.base_url;
    let mut body = json!({
        "request_id": id,
        "status_url": format!("{base}/v1/requests/{id}/status"),
        "result_url": format!("{base}/v1/requests/{id}/result"),
    });
    match current {
        Now::Stage(stage) => {
            body["status"] = Value::from(stage.state.clone());
            if stage.state == "in_queue" {
                if let Some(p) = stage.queue_position {
                    body["queue_position"] = Value::from(p);
                }
            }
        }
        Now::Ended(Ending::Cancel) => body["status"] = Value::from("cancelled"),
        Now::Ended(_) => body["status"] = Value::from("completed"),
    }
    json_answer(200, body.to_string())
}

fn result_answer(
    id: &str,
    job: &mut Job,
    now: Duration,
    sample: Value,
    cost: Option<f64>,
) -> Answer {
    let current = job.progression.current(now);
    job.progression.polled();
    job.polls += 1;
    let mut body = json!({"request_id": id});
    match current {
        Now::Stage(stage) => {
            body["status"] = Value::from(stage.state);
            return json_answer(200, body.to_string());
        }
        Now::Ended(Ending::Cancel) => {
            body["status"] = Value::from("cancelled");
            return json_answer(200, body.to_string());
        }
        Now::Ended(Ending::Fail(error)) => {
            body["status"] = Value::from("failed");
            body["error"] = error;
        }
        Now::Ended(Ending::Succeed(output)) => {
            body["status"] = Value::from("succeeded");
            body["output"] = output.unwrap_or(sample);
            if let Some(cost) = cost {
                body["cost"] = Value::from(cost);
            }
        }
    }
    let finished = *job.finished_at.get_or_insert_with(SystemTime::now);
    body["model_id"] = Value::from(job.model_id.clone());
    body["created_at"] = Value::from(rfc3339(job.created_at));
    body["finished_at"] = Value::from(rfc3339(finished));
    json_answer(200, body.to_string())
}

fn cancel_answer(id: &str, job: &mut Job, now: Duration) -> Answer {
    job.cancels += 1;
    let (status, outcome) = match job.progression.current(now) {
        Now::Stage(stage) if stage.state == "in_queue" => {
            job.progression.cancel();
            ("cancelled".to_owned(), "cancelled")
        }
        Now::Stage(stage) => (stage.state, "not_cancellable"),
        Now::Ended(Ending::Cancel) => ("cancelled".to_owned(), "cancelled"),
        Now::Ended(_) => ("completed".to_owned(), "not_cancellable"),
    };
    json_answer(
        202,
        json!({"request_id": id, "status": status, "outcome": outcome}).to_string(),
    )
}

/// `GET /v1/models`: `limit` (1..=100, default 20), `offset`, `include_schema`, `search`
/// (in ids), `category`, `kind`; answers `{"models": [...], "total": N}`.
fn list_models(shared: &Shared, query: &HashMap<String, String>) -> Answer {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            return json_answer(
                422,
                json!({"message": "limit must be between 1 and 100"}).to_string(),
            )
        }
    };
    let offset = match query.get("offset").map(|o| o.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return json_answer(
                422,
                json!({"message": "offset must be a non-negative integer"}).to_string(),
            )
        }
    };
    let include_schema = query.get("include_schema").map(String::as_str) == Some("true");
    let search = query.get("search").map(|s| s.to_lowercase());
    let st = shared.lock();
    let matching: Vec<_> = st
        .models
        .values()
        .filter(|m| {
            search
                .as_ref()
                .is_none_or(|s| m.id.to_lowercase().contains(s))
        })
        .filter(|m| {
            query
                .get("category")
                .is_none_or(|c| crate::models::categories_of(&m.id).iter().any(|x| x == c))
        })
        .filter(|_| query.get("kind").is_none_or(|k| k == "model"))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|m| m.catalog_entry(include_schema))
        .collect();
    json_answer(
        200,
        json!({"models": page, "total": matching.len()}).to_string(),
    )
}

/// `GET /_fake/files/{request_id}/{name}`, with `Range: bytes=a-` or `bytes=a-b`.
fn file(shared: &Shared, req: &RecordedRequest) -> Answer {
    let rest = req.path.trim_start_matches("/_fake/files/");
    let (id, name) = rest.split_once('/').unwrap_or((rest, ""));
    if name.is_empty() || !shared.lock().jobs.contains_key(id) {
        return not_found(req);
    }
    let Some((bytes, content_type)) = shared.output_file(id, name) else {
        return not_found(req);
    };
    let range = req
        .header("range")
        .and_then(|r| parse_range(r, bytes.len()));
    let mut out = match range {
        Some((start, end)) => {
            let mut out = answer(206, Bytes::from(bytes[start..end].to_vec()));
            let header = format!("bytes {start}-{}/{}", end.saturating_sub(1), bytes.len());
            if let Ok(v) = HeaderValue::from_str(&header) {
                out.headers_mut().insert(CONTENT_RANGE, v);
            }
            out
        }
        None => answer(200, Bytes::from(bytes)),
    };
    out.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    out
}

/// `bytes=a-` or `bytes=a-b` within `len`, as a half-open range; `None` for anything else.
fn parse_range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: usize = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => len,
        b => b.parse::<usize>().ok()?.saturating_add(1).min(len),
    };
    (start < end).then_some((start, end))
}

/// The bytes of an output file: `size` bytes from a generator seeded by the name.
pub(crate) fn file_bytes(request_id: &str, name: &str, size: usize) -> Vec<u8> {
    // FNV-1a of the path seeds an xorshift generator: cheap, deterministic, not constant.
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in request_id.bytes().chain([b'/']).chain(name.bytes()) {
        seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(size);
    while out.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let take = (size - out.len()).min(8);
        out.extend_from_slice(&x.to_le_bytes()[..take]);
    }
    out
}

fn parse_query(q: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-", 10), Some((0, 10)));
        assert_eq!(parse_range("bytes=4-", 10), Some((4, 10)));
        assert_eq!(parse_range("bytes=2-5", 10), Some((2, 6)));
        assert_eq!(parse_range("bytes=2-50", 10), Some((2, 10)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("bytes=-5", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }

    #[test]
    fn file_bytes_are_deterministic_per_name() {
        let a = file_bytes("r1", "output.mp4", 1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(a, file_bytes("r1", "output.mp4", 1000));
        assert_ne!(a, file_bytes("r2", "output.mp4", 1000));
        assert_eq!(&file_bytes("r1", "output.mp4", 13)[..], &a[..13]);
        assert!(a.iter().any(|b| *b != a[0]));
    }
}

//! The HTTP side: the accept loop (hyper, HTTP/1.1), routing, recording and fault playing.
//! What each endpoint answers is in [`crate::api`].

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::fault::{Fault, RecordedRequest, Route};
use crate::server::Shared;

pub(crate) type Answer = Response<Full<Bytes>>;

/// The error that makes hyper drop the connection without answering.
#[derive(Debug)]
pub(crate) struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fake server hangs up")
    }
}

impl std::error::Error for Hangup {}

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Dropping the JoinSet (when this task is aborted) aborts every connection task.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait a little for connections to close.
                tracing::warn!(error = %e, "fake server accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { handle(shared, req).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

pub(crate) fn route_of(method: &Method, path: &str) -> Route {
    let get = method == Method::GET;
    let post = method == Method::POST;
    if path == "/v1/models" {
        return if get { Route::ListModels } else { Route::Other };
    }
    if path.strip_prefix("/v1/models/").is_some() {
        return match (get, post) {
            (true, _) => Route::GetModel,
            (_, true) => Route::Submit,
            _ => Route::Other,
        };
    }
    if let Some(rest) = path.strip_prefix("/v1/requests/") {
        let mut parts = rest.splitn(2, '/');
        let _id = parts.next();
        return match (parts.next(), get, post) {
            (Some("status"), true, _) => Route::Status,
            (Some("result"), true, _) => Route::Result,
            (Some("cancel"), _, true) => Route::Cancel,
            _ => Route::Other,
        };
    }
    if get && path.starts_with("/_fake/files/") {
        return Route::File;
    }
    Route::Other
}

/// What the server sends: a whole body, or one cut short ([`Fault::CutBody`]).
pub(crate) enum FakeBody {
    Whole(Full<Bytes>),
    Cut {
        /// The bytes still to send (taken by the first poll).
        head: Option<Bytes>,
        /// The length announced in `Content-Length`.
        announced: u64,
        /// After the head: one `Pending` (so hyper flushes what it has), then the error.
        flushed: bool,
    },
}

impl Body for FakeBody {
    type Data = Bytes;
    type Error = Hangup;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Hangup>>> {
        match self.get_mut() {
            FakeBody::Whole(full) => Pin::new(full)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|never| match never {}))),
            FakeBody::Cut { head, flushed, .. } => {
                if let Some(head) = head.take().filter(|h| !h.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                if !*flushed {
                    *flushed = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                // Hyper closes the connection when a body fails.
                Poll::Ready(Some(Err(Hangup)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            FakeBody::Whole(full) => full.is_end_stream(),
            FakeBody::Cut { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            FakeBody::Whole(full) => full.size_hint(),
            FakeBody::Cut { announced, .. } => SizeHint::with_exact(*announced),
        }
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<FakeBody>, Hangup> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return Err(Hangup),
    };
    let path = parts.uri.path().to_owned();
    // The control endpoints (`/_fake/stats`, ...): never recorded, counted or faulted.
    if let Some(answer) = crate::api::control(&shared, &parts.method, &path, &body) {
        return Ok(answer.map(FakeBody::Whole));
    }
    let route = route_of(&parts.method, &path);
    let recorded = RecordedRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        route,
    };
    let limit = shared.settings.record_limit;
    let fault = shared.lock().arrive(recorded.clone(), limit);
    let answer = match fault {
        Some(Fault::Status {
            status,
            retry_after,
            body,
        }) => {
            let mut answer = json_answer(status, body);
            if let Some(ra) = retry_after {
                if let Ok(v) = HeaderValue::from_str(&ra) {
                    answer.headers_mut().insert(RETRY_AFTER, v);
                }
            }
            Ok(answer)
        }
        Some(Fault::Page {
            status,
            content_type,
            body,
        }) => {
            let mut answer = answer(status, Bytes::from(body));
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                answer.headers_mut().insert(CONTENT_TYPE, v);
            }
            Ok(answer)
        }
        Some(Fault::Redirect { status, location }) => {
            let mut answer = json_answer(status, String::new());
            if let Ok(v) = HeaderValue::from_str(&location) {
                answer.headers_mut().insert(LOCATION, v);
            }
            Ok(answer)
        }
        Some(Fault::Delay(d)) => {
            // The work is done at once (a submit creates its job even if the client gives up).
            let answer = crate::api::serve(&shared, &recorded);
            tokio::time::sleep(d).await;
            Ok(answer)
        }
        Some(Fault::CloseAfterRead) => {
            let _ = crate::api::serve(&shared, &recorded);
            Err(Hangup)
        }
        Some(Fault::CutBody { after }) => {
            let answer = crate::api::serve(&shared, &recorded);
            let (parts, body) = answer.into_parts();
            let whole = match body.collect().await {
                Ok(b) => b.to_bytes(),
                Err(never) => match never {},
            };
            let head = whole.slice(..after.min(whole.len()));
            return Ok(Response::from_parts(
                parts,
                FakeBody::Cut {
                    head: Some(head),
                    announced: whole.len() as u64,
                    flushed: false,
                },
            ));
        }
        Some(Fault::MalformedJson) => {
            let _ = crate::api::serve(&shared, &recorded);
            Ok(json_answer(
                200,
                "{\"request_id\": \"oops\", \"status\": ".to_owned(),
            ))
        }
        None => Ok(crate::api::serve(&shared, &recorded)),
    };
    answer.map(|a| a.map(FakeBody::Whole))
}

pub(crate) fn answer(status: u16, body: Bytes) -> Answer {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer
}

pub(crate) fn json_answer(status: u16, body: String) -> Answer {
    let mut answer = answer(status, Bytes::from(body));
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let cases = [
            (Method::POST, "/v1/models/a/b", Route::Submit),
            (Method::GET, "/v1/models/a/b", Route::GetModel),
            (Method::GET, "/v1/models", Route::ListModels),
            (Method::POST, "/v1/models", Route::Other),
            (Method::GET, "/v1/requests/x/status", Route::Status),
            (Method::GET, "/v1/requests/x/result", Route::Result),
            (Method::POST, "/v1/requests/x/cancel", Route::Cancel),
            (Method::GET, "/v1/requests/x/cancel", Route::Other),
            (Method::GET, "/_fake/files/x/output.mp4", Route::File),
            (Method::GET, "/elsewhere", Route::Other),
        ];
        for (method, path, want) in cases {
            assert_eq!(route_of(&method, path), want, "{method} {path}");
        }
    }
}

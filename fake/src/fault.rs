//! Routes, faults to play on them, and the record of requests received.

use std::time::Duration;

use serde_json::{json, Value};

/// An endpoint of the API, to aim faults and count requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Route {
    /// `POST /v1/models/{model_id}`
    Submit,
    /// `GET /v1/requests/{id}/status`
    Status,
    /// `GET /v1/requests/{id}/result`
    Result,
    /// `POST /v1/requests/{id}/cancel`
    Cancel,
    /// `GET /v1/models`
    ListModels,
    /// `GET /v1/models/{model_id}`
    GetModel,
    /// `GET /_fake/files/{request_id}/{name}`: output files, when the server serves them
    /// (see [`FakeServerBuilder::serve_outputs`](crate::FakeServerBuilder::serve_outputs)).
    File,
    /// Anything else.
    Other,
    /// Matches every route (for [`FakeServer::inject`](crate::FakeServer::inject) and
    /// [`FakeServer::count`](crate::FakeServer::count) only).
    Any,
}

impl Route {
    pub(crate) fn matches(self, other: Route) -> bool {
        self == Route::Any || self == other
    }

    /// The route's name in `GET /_fake/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Route::Submit => "submit",
            Route::Status => "status",
            Route::Result => "result",
            Route::Cancel => "cancel",
            Route::ListModels => "list_models",
            Route::GetModel => "get_model",
            Route::File => "file",
            Route::Other => "other",
            Route::Any => "any",
        }
    }
}

/// A fault the fake server plays instead of (or before) its normal answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer this status, JSON body and optional `Retry-After`, without doing anything.
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` header, as sent (seconds or an HTTP date).
        retry_after: Option<String>,
        /// The body.
        body: String,
    },
    /// Answer this status with a body of another content type (an HTML error page from a
    /// proxy, say), without doing anything.
    Page {
        /// The HTTP status.
        status: u16,
        /// The `Content-Type` header.
        content_type: String,
        /// The body.
        body: String,
    },
    /// Answer a redirect (301, 302, 307, 308) to `location`, without doing anything.
    Redirect {
        /// The HTTP status.
        status: u16,
        /// The `Location` header.
        location: String,
    },
    /// Do the work at once (a submit creates its job), but answer only after this long.
    Delay(Duration),
    /// Read the request, do the work (a submit creates its paid job), then close the
    /// connection without answering.
    CloseAfterRead,
    /// Do the work (a submit creates its job), then answer 200 with a broken JSON body.
    MalformedJson,
    /// Answer normally, announcing the whole body's length, but send only its first `after`
    /// bytes, then close the connection: a transfer cut halfway (aim it at [`Route::File`]
    /// to test resuming downloads).
    CutBody {
        /// Body bytes sent before the connection is closed.
        after: usize,
    },
}

impl Fault {
    /// 429 with an optional `Retry-After`.
    pub fn rate_limited(retry_after: Option<&str>) -> Fault {
        Fault::Status {
            status: 429,
            retry_after: retry_after.map(str::to_owned),
            body: json!({"message": "too many requests"}).to_string(),
        }
    }

    /// A bare HTTP status (500, 503, ...) with a small JSON body.
    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            retry_after: None,
            body: json!({"message": format!("fake http {status}")}).to_string(),
        }
    }

    /// 401 with a JSON body, as an expired or revoked token may be answered.
    pub fn unauthorized() -> Fault {
        Fault::api_error(401, 400004, "missing, expired or revoked token")
    }

    /// An API error body with `error_code`, sent with `http_status` (200 for the
    /// error-body-with-success case).
    pub fn api_error(http_status: u16, error_code: i64, message: &str) -> Fault {
        Fault::Status {
            status: http_status,
            retry_after: None,
            body: json!({"error_code": error_code, "error_message": message}).to_string(),
        }
    }

    /// 200 with an HTML page instead of JSON (a captive portal or a proxy's page).
    pub fn not_json() -> Fault {
        Fault::Page {
            status: 200,
            content_type: "text/html; charset=utf-8".to_owned(),
            body:
                "<!doctype html><html><body><h1>Service temporarily unavailable</h1></body></html>"
                    .to_owned(),
        }
    }
}

/// One request the fake server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, undecoded.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The headers, names in lowercase, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The endpoint it was routed to.
    pub route: Route,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, when it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

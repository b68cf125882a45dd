//! Layer 1, the only code that touches HTTP: [`Transport::send`] sends every request.
//!
//! It holds the token (nothing else reads it), checks the base URL once ([`check_base_url`]),
//! builds each URL from it and an already checked path, refuses any other host, never
//! follows redirects, scrubs the token from every body it returns, and reads `Retry-After`.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use url::Url;

use crate::error::Error;

/// The API token. Its `Debug` form is redacted; it is only ever read by [`Transport`].
#[derive(Clone)]
pub(crate) struct Token(String);

impl Token {
    pub(crate) fn new(s: String) -> Self {
        Token(s)
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One request: a path below the base URL (checked by the caller), a query, a body.
pub(crate) struct Outgoing<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: &'a [(&'static str, String)],
    pub body: Option<&'a [u8]>,
}

/// A response, whatever its status.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// The body, lossily UTF-8, with the token scrubbed.
    pub body: String,
}

impl Incoming {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Why no response came back.
#[derive(Debug)]
pub(crate) enum SendError {
    /// The connection was never made (refused, DNS, TLS): the request provably did not reach
    /// the server.
    NotSent(reqwest::Error),
    /// The request or the answer timed out; the request may have been received.
    TimedOut,
    /// The connection failed after it was made (reset, closed early): ambiguous.
    Failed(reqwest::Error),
    /// Refused before sending (a URL that would leave the API host).
    Refused(Error),
}

#[derive(Clone)]
pub(crate) struct Transport {
    http: reqwest::Client,
    base: Url,
    /// The base URL without a trailing slash, to which paths are appended.
    prefix: String,
    token: Token,
    request_timeout: Duration,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("base_url", &self.prefix)
            .field("token", &self.token)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

pub(crate) struct TransportConfig {
    pub base: Url,
    pub token: Token,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub user_agent: String,
}

/// Checks a base URL: absolute, no credentials, no query or fragment, HTTPS except on
/// loopback. The error never shows credentials.
pub(crate) fn check_base_url(text: &str) -> Result<Url, Error> {
    let shown = if text.contains('@') {
        "[url with credentials]".to_owned()
    } else {
        text.to_owned()
    };
    let fail = |reason| Error::InvalidBaseUrl {
        url: shown.clone(),
        reason,
    };
    let url = Url::parse(text.trim()).map_err(|_| fail("not an absolute url"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(fail(
            "credentials in the url are not allowed; use the token",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(fail("a query or fragment is not allowed"));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => return Err(fail("https is required except for loopback addresses")),
        _ => return Err(fail("the scheme must be https")),
    }
    if url.host().is_none() {
        return Err(fail("no host"));
    }
    Ok(url)
}

/// Reads a `Retry-After` header: delay seconds or an HTTP date (relative to `now`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if (0.0..1e9).contains(&secs) {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// True for `localhost`, 127.0.0.0/8 and `::1`.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl Transport {
    pub(crate) fn new(cfg: TransportConfig) -> Result<Self, Error> {
        // Checked here, where the header is made, so that nothing else reads the token.
        if HeaderValue::from_str(&format!("Bearer {}", cfg.token.0)).is_err() {
            return Err(Error::InvalidToken);
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(cfg.connect_timeout)
            .user_agent(cfg.user_agent)
            .https_only(!is_loopback(&cfg.base));
        if is_loopback(&cfg.base) {
            // Never hand loopback traffic (tests, the fake server) to a system proxy.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(Error::HttpClient)?;
        let prefix = cfg.base.as_str().trim_end_matches('/').to_owned();
        Ok(Transport {
            http,
            base: cfg.base,
            prefix,
            token: cfg.token,
            request_timeout: cfg.request_timeout,
        })
    }

    pub(crate) fn base_url(&self) -> &Url {
        &self.base
    }

    /// Replaces the token wherever it appears in `text`.
    pub(crate) fn scrub(&self, text: String) -> String {
        let t = self.token.0.as_str();
        if t.len() >= 4 && text.contains(t) {
            text.replace(t, "[redacted]")
        } else {
            text
        }
    }

    fn url_for(&self, req: &Outgoing<'_>) -> Result<Url, Error> {
        let refuse = |reason| Error::InvalidBaseUrl {
            url: self.prefix.clone(),
            reason,
        };
        let mut url = Url::parse(&format!("{}{}", self.prefix, req.path))
            .map_err(|_| refuse("cannot append the request path"))?;
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        let same_host = url.scheme() == self.base.scheme()
            && url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
            && url
                .path()
                .starts_with(self.base.path().trim_end_matches('/'));
        if !same_host {
            return Err(refuse("a request would leave the api host"));
        }
        Ok(url)
    }

    /// Sends one request and reads the whole answer. Every HTTP exchange goes through here.
    pub(crate) async fn send(&self, req: &Outgoing<'_>) -> Result<Incoming, SendError> {
        let url = self.url_for(req).map_err(SendError::Refused)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.0))
            .map_err(|_| SendError::Refused(Error::InvalidToken))?;
        auth.set_sensitive(true);
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
        };
        let mut builder = self
            .http
            .request(method, url)
            .timeout(self.request_timeout)
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        if req.method == Method::Post {
            builder = builder
                .header(CONTENT_TYPE, "application/json")
                .body(req.body.unwrap_or_default().to_vec());
        }
        tracing::debug!(
            method = req.method.as_str(),
            path = req.path,
            "sending request"
        );
        let response = builder.send().await.map_err(classify)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let bytes = response.bytes().await.map_err(classify)?;
        let body = self.scrub(String::from_utf8_lossy(&bytes).into_owned());
        tracing::debug!(
            method = req.method.as_str(),
            path = req.path,
            status,
            "received response"
        );
        Ok(Incoming {
            status,
            retry_after,
            body,
        })
    }
}

fn classify(e: reqwest::Error) -> SendError {
    // A connect-phase failure (refused, DNS, TLS handshake, connect timeout) happens before
    // any byte of the request is written, so the server cannot have received it.
    if e.is_connect() {
        SendError::NotSent(e)
    } else if e.is_timeout() {
        SendError::TimedOut
    } else {
        SendError::Failed(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(12));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(12))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(12));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        for bad in ["-1", "", "soon", "1e10"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
    }

    #[test]
    fn base_urls() {
        for ok in [
            "https://model-api.runcomfy.net",
            "http://127.0.0.1:8080",
            "http://localhost/",
            "http://[::1]:9",
        ] {
            assert!(check_base_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "model-api.runcomfy.net",
            "http://example.com",
            "ftp://example.com",
            "https://u:pw@example.com",
            "https://example.com/?a=b",
            "https://example.com/#x",
        ] {
            let err = check_base_url(bad).unwrap_err();
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }
}

//! `sync`'s HTTP: every page of `GET /v1/models?include_schema=true`, read before anything
//! is written. The token goes only to the base URL (no redirects followed) and never into a
//! message.

use std::time::Duration;

use anyhow::{bail, Context};
use reqwest::blocking::Client;
use reqwest::StatusCode;

use runcomfy_codegen::sync::{parse_page, Entry};

/// The largest page the catalog serves.
const LIMIT: usize = 100;
/// How often a rate-limited or failing page is asked again.
const RETRIES: u32 = 5;
/// The longest wait a `Retry-After` can ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);
/// More pages than any catalog has: a server that never ends its list.
const MAX_PAGES: usize = 10_000;

/// Where and how to read the catalog.
pub struct Source<'a> {
    /// `https://model-api.runcomfy.net`, or a test server.
    pub base_url: &'a str,
    /// The API token.
    pub token: &'a str,
    /// The environment variable it came from, for messages.
    pub token_env: &'a str,
}

/// Every entry of the catalog, page by page (`limit` 100, `offset`).
pub fn catalog(source: &Source<'_>) -> anyhow::Result<Vec<Entry>> {
    let base = source.base_url.trim_end_matches('/');
    let url =
        reqwest::Url::parse(base).with_context(|| format!("--base-url {base:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("--base-url {base:?} is not an http(s) URL");
    }
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .user_agent(concat!("runcomfy-codegen/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot start an HTTP client")?;
    let mut entries = Vec::new();
    let mut offset = 0usize;
    for _ in 0..MAX_PAGES {
        let page_url =
            format!("{base}/v1/models?include_schema=true&limit={LIMIT}&offset={offset}");
        let body = get(&client, &page_url, source, offset)?;
        let page = parse_page(&body)
            .map_err(|e| anyhow::anyhow!("catalog page at offset {offset}: {e}"))?;
        let n = page.models.len();
        for model in &page.models {
            entries.push(
                Entry::from_catalog(model)
                    .map_err(|e| anyhow::anyhow!("catalog page at offset {offset}: {e}"))?,
            );
        }
        offset += n;
        let more = match page.total {
            Some(total) => (offset as u64) < total,
            None => n == LIMIT,
        };
        if n == 0 || !more {
            return Ok(entries);
        }
    }
    bail!("the catalog did not end after {MAX_PAGES} pages")
}

/// One page's body, after waiting out rate limits and retrying server errors.
fn get(client: &Client, url: &str, source: &Source<'_>, offset: usize) -> anyhow::Result<Vec<u8>> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client
            .get(url)
            .bearer_auth(source.token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send();
        let response = match response {
            Ok(r) => r,
            Err(e) if attempt <= RETRIES && (e.is_connect() || e.is_timeout()) => {
                let wait = backoff(attempt);
                eprintln!(
                    "catalog page at offset {offset}: {}; asking again in {}s ({attempt} of {RETRIES})",
                    e.without_url(),
                    wait.as_secs()
                );
                std::thread::sleep(wait);
                continue;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e.without_url())).with_context(|| {
                    format!(
                        "cannot read the catalog page at offset {offset} from {}",
                        host(source.base_url)
                    )
                })
            }
        };
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS && attempt <= RETRIES {
            let wait = retry_after(&response)
                .unwrap_or_else(|| backoff(attempt))
                .min(MAX_WAIT);
            eprintln!(
                "rate limited (HTTP 429): waiting {}s as the server asks, then asking again ({attempt} of {RETRIES})",
                wait.as_secs()
            );
            std::thread::sleep(wait);
            continue;
        }
        if status.is_server_error() && attempt <= RETRIES {
            let wait = retry_after(&response)
                .unwrap_or_else(|| backoff(attempt))
                .min(MAX_WAIT);
            eprintln!(
                "catalog page at offset {offset}: HTTP {status}; asking again in {}s ({attempt} of {RETRIES})",
                wait.as_secs()
            );
            std::thread::sleep(wait);
            continue;
        }
        let body = response
            .bytes()
            .map_err(|e| e.without_url())
            .with_context(|| format!("the catalog page at offset {offset} broke off"))?;
        // 400004 (UserAccountError): a missing, expired or revoked token, which the API
        // may send with HTTP 400 or even 200.
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || error_code(&body) == Some(400004)
        {
            bail!(
                "the catalog refused the token in {} (HTTP {}): set {} to a valid RunComfy API token",
                source.token_env,
                status.as_u16(),
                source.token_env
            );
        }
        if !status.is_success() {
            bail!(
                "the catalog answered HTTP {} for the page at offset {offset}: {}",
                status.as_u16(),
                message(&body)
            );
        }
        return Ok(body.to_vec());
    }
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date.
fn retry_after(response: &reqwest::blocking::Response) -> Option<Duration> {
    let value = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.min(5))
}

/// The `error_code` of an API error body.
fn error_code(body: &[u8]) -> Option<i64> {
    let parsed: serde_json::Value = serde_json::from_slice(body).ok()?;
    parsed.get("error_code")?.as_i64()
}

/// An error body's message (`error_message`, `message` or `detail`), or its start.
fn message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        ["error_message", "message", "detail"]
            .iter()
            .find_map(|k| v.get(*k).and_then(serde_json::Value::as_str))
            .map(str::to_owned)
    });
    found.unwrap_or_else(|| {
        String::from_utf8_lossy(body)
            .chars()
            .filter(|c| !c.is_control())
            .take(120)
            .collect()
    })
}

/// The host of the base URL, for messages.
fn host(base: &str) -> String {
    reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| base.to_owned())
}

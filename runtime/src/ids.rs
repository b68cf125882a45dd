//! Identifier checks, run before any URL is built.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IdKind};

/// Checks a model id: 2 to 5 slash-separated segments of `[A-Za-z0-9_.-]`.
///
/// `.` and `..` segments are refused too: a URL parser would fold them into another path.
///
/// ```
/// assert!(runcomfy::check_model_id("happyhorse/happyhorse-1.0/image-to-video").is_ok());
/// assert!(runcomfy::check_model_id("kling/kling-video-o3/4K/image-to-video").is_ok());
/// assert!(runcomfy::check_model_id("one-segment").is_err());
/// assert!(runcomfy::check_model_id("a/../b").is_err());
/// ```
pub fn check_model_id(id: &str) -> Result<(), Error> {
    let fail = |reason| {
        Err(Error::InvalidId {
            kind: IdKind::Model,
            value: id.to_owned(),
            reason,
        })
    };
    let segments: Vec<&str> = id.split('/').collect();
    if !(2..=5).contains(&segments.len()) {
        return fail("expected 2 to 5 slash-separated segments");
    }
    for seg in segments {
        if seg.is_empty() {
            return fail("empty segment");
        }
        if seg == "." || seg == ".." {
            return fail("dot segments are not allowed");
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return fail("segments may only hold A-Z a-z 0-9 _ . -");
        }
    }
    Ok(())
}

/// Checks a request id: `[A-Za-z0-9_-]{1,128}`.
///
/// ```
/// assert!(runcomfy::check_request_id("0f3c9a2e-77b1-4c1e").is_ok());
/// assert!(runcomfy::check_request_id("../status").is_err());
/// ```
pub fn check_request_id(id: &str) -> Result<(), Error> {
    let fail = |reason| {
        Err(Error::InvalidId {
            kind: IdKind::Request,
            value: id.to_owned(),
            reason,
        })
    };
    if id.is_empty() || id.len() > 128 {
        return fail("expected 1 to 128 characters");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        return fail("only A-Z a-z 0-9 _ - are allowed");
    }
    Ok(())
}

/// A checked request id: the only handle on a paid job.
///
/// ```
/// let id = runcomfy::RequestId::new("abc-123")?;
/// assert_eq!(id.as_str(), "abc-123");
/// assert!(runcomfy::RequestId::new("a/b").is_err());
/// # Ok::<(), runcomfy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    /// Checks `id` (see [`check_request_id`]).
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        check_request_id(&id)?;
        Ok(RequestId(id))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RequestId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        RequestId::new(s)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> String {
        id.0
    }
}

impl AsRef<str> for RequestId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids() {
        for ok in [
            "a/b",
            "happyhorse/happyhorse-1.0/image-to-video",
            "kling/kling-video-o3/4K/image-to-video",
            "a/b/c/d/e",
            "x_y/z.1",
        ] {
            assert!(check_model_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a",
            "a/b/c/d/e/f",
            "a//b",
            "/a/b",
            "a/b/",
            "a/./b",
            "a/..",
            "a/b?c",
            "a/b#c",
            "a/b c",
            "a/%2e",
            "a/ü",
            "a\\b/c",
        ] {
            assert!(check_model_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_ids() {
        assert!(check_request_id(&"a".repeat(128)).is_ok());
        for bad in ["", "a.b", "a/b", "a b", "%41", "ä"] {
            assert!(check_request_id(bad).is_err(), "{bad}");
        }
        assert!(check_request_id(&"a".repeat(129)).is_err());
        let e = RequestId::new("a/b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid request id \"a/b\": only A-Z a-z 0-9 _ - are allowed"
        );
    }

    #[test]
    fn request_id_serde_checks() {
        let ok: RequestId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(ok.as_str(), "abc");
        assert!(serde_json::from_str::<RequestId>("\"../x\"").is_err());
    }
}

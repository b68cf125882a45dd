//! The identity of an input: SHA-256 of its canonical JSON.

use std::fmt::Write;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The SHA-256, in hex, of `value` written as compact JSON with object keys sorted, so two
/// inputs that differ only in key order have one identity.
pub fn input_sha256(value: &Value) -> String {
    hex(&Sha256::digest(canonical_json(value).as_bytes()))
}

/// `value` as compact JSON with object keys sorted: one text per input, whatever its key
/// order. The one definition of an input's identity (the store hashes it; the fake counts
/// jobs per input by it).
///
/// ```
/// let a = serde_json::json!({"b": 1, "a": [true, {"d": null, "c": "x"}]});
/// assert_eq!(runcomfy_store::canonical_json(&a), r#"{"a":[true,{"c":"x","d":null}],"b":1}"#);
/// ```
pub fn canonical_json(value: &Value) -> String {
    let mut text = String::new();
    canonical(value, &mut text);
    text
}

/// SHA-256 of `bytes` in hex.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_change_the_identity() {
        let a = json!({"prompt": "a cat", "size": {"w": 1, "h": 2}, "seeds": [1, 2]});
        let b = json!({"seeds": [1, 2], "size": {"h": 2, "w": 1}, "prompt": "a cat"});
        assert_eq!(input_sha256(&a), input_sha256(&b));
        assert_ne!(input_sha256(&a), input_sha256(&json!({"prompt": "a dog"})));
        assert_ne!(
            input_sha256(&json!({"seeds": [1, 2]})),
            input_sha256(&json!({"seeds": [2, 1]}))
        );
        assert_eq!(input_sha256(&json!({})).len(), 64);
    }
}

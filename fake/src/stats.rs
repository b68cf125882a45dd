//! Counters for exactly-once tests: paid jobs per model and per identical input, requests
//! per route. Served as JSON at `GET /_fake/stats`, `/_fake/inputs` and `/_fake/jobs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the server has seen, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Stats {
    /// Requests received, whatever their answer (API routes and output files; not the
    /// control endpoints `/_fake/stats`, `inputs`, `jobs` and `inject`).
    pub requests: usize,
    /// Requests per route name (`submit`, `status`, `result`, `cancel`, `list_models`,
    /// `get_model`, `file`, `other`).
    pub requests_by_route: BTreeMap<String, usize>,
    /// Jobs created: each a paid job on the real API (a submit refused by validation or a
    /// fault creates none; one answered by a dropped connection does).
    pub jobs: usize,
    /// Jobs per model id.
    pub jobs_by_model: BTreeMap<String, usize>,
    /// Distinct (model, input body) pairs among the jobs; bodies compare as JSON values
    /// (key order and spacing do not matter).
    pub distinct_inputs: usize,
    /// Distinct inputs submitted (as jobs) more than once.
    pub repeated_inputs: usize,
    /// The most jobs any one input got (0 without jobs).
    pub max_jobs_per_input: usize,
}

/// How many jobs one input got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InputCount {
    /// The model.
    pub model_id: String,
    /// The body, as first received.
    pub input: Value,
    /// Jobs created with this body.
    pub jobs: usize,
    /// Their request ids, in creation order.
    pub request_ids: Vec<String>,
}

/// One job, as listed by `GET /_fake/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobRecord {
    /// The job.
    pub request_id: String,
    /// Its model.
    pub model_id: String,
    /// The submitted body.
    pub input: Value,
}

/// The key an input is counted under: its canonical JSON, the same text the job store hashes
/// for an input's identity (so the fake's counts and the store's rows agree).
pub(crate) fn canonical(v: &Value) -> String {
    runcomfy_store::canonical_json(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inputs_compare_as_values() {
        let a: Value = serde_json::from_str(r#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#).unwrap();
        assert_eq!(canonical(&a), canonical(&b));
        assert_ne!(
            canonical(&a),
            canonical(&json!({"a": "s", "b": [{"x": 1, "y": 2}, 1]}))
        );
        assert_eq!(canonical(&json!({"k\"": 1})), r#"{"k\"":1}"#);
    }
}

//! The models a fake server knows: their schemas as written (what the catalog serves), the
//! validator of each input schema in the generator's reading (standard JSON Schema from
//! [`runcomfy_codegen::dialect`], checked by `jsonschema`), prices and sample outputs.

use serde_json::{json, Value};

use runcomfy_codegen::dialect::{self, StandardModel};

use crate::FakeError;

/// A model to register: its id, its input schema, and optionally its output schema, the
/// output its jobs answer and its price.
///
/// ```
/// use runcomfy_fake::{FakeServer, ModelSpec};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = FakeServer::builder()
///     .add_model(
///         ModelSpec::new("acme/clip/text-to-video", r#"{"type":"object","properties":{"prompt":{"type":"string"}}}"#)
///             .output_schema(serde_json::json!({"type":"object","properties":{"video":{"type":"string","format":"uri"}}}))
///             .price(0.25, "second"),
///     )
///     .start()
///     .await?;
/// # let _ = server; Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ModelSpec {
    pub(crate) id: String,
    input: Source,
    output_schema: Option<Value>,
    output: Option<Value>,
    price_usd: f64,
    price_unit: Option<String>,
    as_is: bool,
}

#[derive(Debug, Clone)]
enum Source {
    Text(String),
    Json(Value),
    Translated(Box<StandardModel>),
    None,
}

impl ModelSpec {
    /// A model with its input schema as JSON text (the dialect, as a catalog serves it).
    pub fn new(id: impl Into<String>, input_schema: impl Into<String>) -> Self {
        ModelSpec::with_source(id.into(), Source::Text(input_schema.into()))
    }

    /// A model with its input schema as a JSON value.
    pub fn from_json(id: impl Into<String>, input_schema: Value) -> Self {
        ModelSpec::with_source(id.into(), Source::Json(input_schema))
    }

    /// A model the catalog lists without an `input_schema`; submits to it are not checked.
    pub fn without_schema(id: impl Into<String>) -> Self {
        ModelSpec::with_source(id.into(), Source::None).as_is()
    }

    pub(crate) fn translated(model: StandardModel) -> Self {
        let mut spec = ModelSpec::with_source(model.id.clone(), Source::None);
        spec.output_schema = model.source_output.clone();
        spec.input = Source::Translated(Box::new(model));
        spec
    }

    fn with_source(id: String, input: Source) -> Self {
        ModelSpec {
            id,
            input,
            output_schema: None,
            output: None,
            price_usd: 0.1,
            price_unit: None,
            as_is: false,
        }
    }

    /// The output schema (as written, optionally wrapped in `{"output": ...}`): listed by the
    /// catalog as `output_schema`, and the source of the sample output when none is given.
    pub fn output_schema(mut self, schema: Value) -> Self {
        self.output_schema = Some(schema);
        self
    }

    /// What the `output` of a succeeded job is (default: a sample made from the output
    /// schema, or one media URL).
    pub fn output(mut self, output: Value) -> Self {
        self.output = Some(output);
        self
    }

    /// The catalog price: `base_price_usd` and `price_unit` (`second` or `output`; default
    /// `second` for video models, else `output`). Also the `cost` of a result.
    pub fn price(mut self, usd: f64, unit: &str) -> Self {
        self.price_usd = usd;
        self.price_unit = Some(unit.to_owned());
        self
    }

    /// Serves the schemas as written without compiling them, even when the generator would
    /// refuse them (to test a client that reads a broken catalog); submits are not checked.
    pub fn as_is(mut self) -> Self {
        self.as_is = true;
        self
    }
}

/// A registered model.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) id: String,
    /// The input schema as served (a JSON string when the text given was not JSON).
    pub(crate) input_schema: Option<Value>,
    pub(crate) output_schema: Option<Value>,
    validator: Option<jsonschema::Validator>,
    pub(crate) output: Option<Value>,
    pub(crate) price_usd: f64,
    pub(crate) price_unit: String,
}

impl Model {
    pub(crate) fn compile(spec: ModelSpec) -> Result<Model, FakeError> {
        let id = spec.id;
        if runcomfy_codegen::load::check_model_id(&id).is_err() {
            return Err(FakeError::ModelId(id));
        }
        let schema_error = |message: String| FakeError::Schema {
            model_id: id.clone(),
            message,
        };
        let (input_schema, standard) = match spec.input {
            Source::None => (None, None),
            Source::Translated(model) => (Some(model.source_input.clone()), Some(*model)),
            Source::Text(text) if spec.as_is => (
                Some(serde_json::from_str(&text).unwrap_or(Value::String(text))),
                None,
            ),
            Source::Json(value) if spec.as_is => (Some(value), None),
            Source::Text(text) => {
                let value: Value = serde_json::from_str(&text)
                    .map_err(|e| schema_error(format!("the input schema is not JSON: {e}")))?;
                (Some(value), None)
            }
            Source::Json(value) => (Some(value), None),
        };
        let standard = match (standard, &input_schema) {
            (Some(s), _) => Some(s),
            (None, Some(input)) if !spec.as_is => Some(
                dialect::translate(&id, input, spec.output_schema.as_ref()).map_err(|d| {
                    schema_error(format!(
                        "the generator refuses it: {}",
                        d.to_string().trim_end().replace('\n', "; ")
                    ))
                })?,
            ),
            _ => None,
        };
        let validator = match &standard {
            Some(standard) => Some(
                jsonschema::draft202012::options()
                    .should_validate_formats(false)
                    .with_pattern_options(jsonschema::PatternOptions::regex())
                    .build(&standard.input)
                    .map_err(|e| {
                        schema_error(format!("the standard schema does not compile: {e}"))
                    })?,
            ),
            None => None,
        };
        let price_unit = spec.price_unit.unwrap_or_else(|| {
            if id.contains("video") {
                "second"
            } else {
                "output"
            }
            .to_owned()
        });
        Ok(Model {
            input_schema,
            output_schema: spec.output_schema,
            validator,
            output: spec.output,
            price_usd: spec.price_usd,
            price_unit,
            id,
        })
    }

    /// The field errors of a request body: `{"loc": "/pointer", "msg": "..."}`, at most 20.
    pub(crate) fn check(&self, input: &Value) -> Vec<Value> {
        let Some(validator) = &self.validator else {
            return Vec::new();
        };
        validator
            .iter_errors(input)
            .take(20)
            .map(|e| json!({"loc": e.instance_path().as_str(), "msg": e.to_string()}))
            .collect()
    }

    /// The model's catalog entry.
    pub(crate) fn catalog_entry(&self, include_schema: bool) -> Value {
        let display = self
            .id
            .rsplit('/')
            .next()
            .unwrap_or(&self.id)
            .replace('-', " ");
        let mut entry = json!({
            "model_id": self.id,
            "display_name": display,
            "categories": categories_of(&self.id),
            "kind": "model",
            "base_price_usd": self.price_usd,
            "price_unit": self.price_unit,
            "pricing_note": "fake price",
        });
        if include_schema {
            if let Some(schema) = &self.input_schema {
                entry["input_schema"] = schema.clone();
            }
            if let Some(schema) = &self.output_schema {
                entry["output_schema"] = schema.clone();
            }
        }
        entry
    }

    /// What a succeeded job of this model answers as `output`, its URLs under `url_base`
    /// (`media`: named for the real media the fake serves).
    pub(crate) fn sample_output(&self, url_base: &str, media: bool) -> Value {
        if let Some(output) = &self.output {
            return output.clone();
        }
        sample_output(
            &self.id,
            self.output_schema.as_ref().unwrap_or(&Value::Null),
            url_base,
            media,
        )
    }

    /// What a job costs, in its catalog price's unit: per second of the input's `duration`
    /// (or the schema's default, else 5 s), or per output URL.
    pub(crate) fn cost_of(&self, input: &Value, output: &Value) -> f64 {
        let count = match self.price_unit.as_str() {
            "second" => {
                let number = |v: &Value| {
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                };
                input
                    .get("duration")
                    .and_then(number)
                    .or_else(|| {
                        self.input_schema
                            .as_ref()
                            .and_then(|s| s.pointer("/properties/duration/default"))
                            .and_then(number)
                    })
                    .unwrap_or(5.0)
            }
            _ => urls_in(output).max(1) as f64,
        };
        self.price_usd * count
    }
}

/// The catalog categories of a model, from the words of its id.
pub(crate) fn categories_of(id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (word, cat) in [
        ("video", "video"),
        ("image", "image"),
        ("audio", "audio"),
        ("edit", "image"),
    ] {
        if id.contains(word) && !out.iter().any(|c| c == cat) {
            out.push(cat.to_owned());
        }
    }
    out
}

/// A plausible output for a model: one URL under `url_base` with the key its schema (or
/// id) suggests.
/// How many URL strings a value holds (an output's files).
fn urls_in(v: &Value) -> usize {
    match v {
        Value::String(s) => usize::from(s.starts_with("http")),
        Value::Array(items) => items.iter().map(urls_in).sum(),
        Value::Object(map) => map.values().map(urls_in).sum(),
        _ => 0,
    }
}

pub(crate) fn sample_output(model_id: &str, schema: &Value, url_base: &str, media: bool) -> Value {
    let props = schema
        .pointer("/properties/output/properties")
        .or_else(|| schema.pointer("/output/properties"))
        .or_else(|| schema.get("properties"))
        .and_then(Value::as_object);
    let kind = ["video", "audio", "image"]
        .into_iter()
        .find(|k| model_id.contains(k))
        .unwrap_or(if model_id.contains("edit") {
            "image"
        } else {
            "video"
        });
    let ext = match (kind, media) {
        ("video", false) => "mp4",
        ("video", true) => "webm",
        ("audio", false) => "mp3",
        ("audio", true) => "wav",
        _ => "png",
    };
    let url = format!("{url_base}/{}.{ext}", model_id.replace('/', "-"));
    let key = props
        .and_then(|p| {
            p.keys()
                .find(|k| k.as_str() == kind)
                .or_else(|| p.keys().find(|k| k.starts_with(kind)))
                .or_else(|| p.keys().next())
        })
        .cloned()
        .unwrap_or_else(|| kind.to_owned());
    let is_list = props
        .and_then(|p| p.get(&key))
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        == Some("array");
    let value = if is_list { json!([url]) } else { json!(url) };
    json!({ key: value })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CDN: &str = "https://cdn.example/fake";

    #[test]
    fn sample_outputs() {
        let schema = json!({"properties": {"image": {"type": "string"}, "video": {"type": "string"}, "videos": {"type": "array"}}});
        let out = sample_output("a/b/image-to-video", &schema, CDN, false);
        assert_eq!(
            out["video"],
            "https://cdn.example/fake/a-b-image-to-video.mp4"
        );
        let out = sample_output(
            "a/b/text-to-audio",
            &json!({"properties": {"audios": {"type": "array"}}}),
            CDN,
            false,
        );
        assert!(out["audios"][0].as_str().unwrap().ends_with(".mp3"));
        let wrapped = json!({"output": {"properties": {"image": {"type": "string"}}}});
        assert!(sample_output("a/b/x", &wrapped, CDN, false)
            .get("image")
            .is_some());
        assert!(sample_output("a/b", &Value::Null, CDN, false)
            .get("video")
            .is_some());
    }

    #[test]
    fn the_generator_dialect_decides_what_is_valid() {
        let model = Model::compile(ModelSpec::new(
            "a/b",
            r#"{"type":"object","required":["n"],"properties":{"n":{"type":"integer","minimum":1,"maximum":8},"f":{"type":"FLOAT"}}}"#,
        ))
        .unwrap();
        assert!(model.check(&json!({"n": 3, "f": 0.5})).is_empty());
        let errors = model.check(&json!({"n": 9, "f": "x"}));
        let locs: Vec<&str> = errors.iter().filter_map(|e| e["loc"].as_str()).collect();
        assert_eq!(locs.len(), 2, "{errors:?}");
        assert!(locs.contains(&"/n") && locs.contains(&"/f"), "{errors:?}");
        // The catalog serves the dialect as written.
        assert_eq!(
            model.catalog_entry(true)["input_schema"]["properties"]["f"]["type"],
            "FLOAT"
        );
    }

    #[test]
    fn refused_schemas_and_as_is() {
        let int = r#"{"type":"object","properties":{"n":{"type":"int"}}}"#;
        let err = Model::compile(ModelSpec::new("a/b", int))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"bad schema for a/b: the generator refuses it: a/b/input.json#/properties/n/type: unsupported type "int""#
        );
        let err = Model::compile(ModelSpec::new("a/b", "{oops")).unwrap_err();
        assert!(err.to_string().contains("not JSON"), "{err}");
        assert!(matches!(
            Model::compile(ModelSpec::new("a", "{}")),
            Err(FakeError::ModelId(_))
        ));
        // As is: served, never checked.
        let model = Model::compile(ModelSpec::new("a/b", int).as_is()).unwrap();
        assert!(model.check(&json!({"n": "x"})).is_empty());
        let model = Model::compile(ModelSpec::new("a/b", "{oops").as_is()).unwrap();
        assert_eq!(model.catalog_entry(true)["input_schema"], "{oops");
        let model = Model::compile(ModelSpec::without_schema("a/b")).unwrap();
        assert!(model.catalog_entry(true).get("input_schema").is_none());
    }
}

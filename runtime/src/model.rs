//! The `Model` trait: what every generated model module implements.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::validate::Validate;

/// A RunComfy model known at compile time.
///
/// Generated code implements it on a marker type named `Model` in each model's module,
/// so the generic client code knows the model id, the input type and the output type.
///
/// ```
/// use runcomfy::Model;
/// use runcomfy::models::happyhorse::happyhorse_1_0::image_to_video as i2v;
///
/// assert_eq!(i2v::Model::ID, "happyhorse/happyhorse-1.0/image-to-video");
/// ```
pub trait Model: Send + Sync + 'static {
    /// The model id, as it appears in `/v1/models/{model_id}`.
    const ID: &'static str;
    /// The request body.
    type Input: Serialize + Validate + Send + Sync;
    /// The result's `output` object.
    type Output: DeserializeOwned + Send + 'static;
}

/// Facts about one generated model, for registries and the command line: each model
/// module's `INFO`, and all of them in `runcomfy::models::ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    /// The model id.
    pub id: &'static str,
    /// The first line of the model's description, if any.
    pub summary: &'static str,
}

/// The schema files one generated model was made from, as compact JSON text: an entry of
/// `runcomfy::models::SCHEMAS` (feature `schema-texts`), for tools that show or check
/// schemas at run time (the command line's `schema` command, the fake server).
///
/// ```
/// # #[cfg(feature = "schema-texts")] {
/// let text = runcomfy::models::SCHEMAS
///     .iter()
///     .find(|s| s.id == "happyhorse/happyhorse-1.0/image-to-video")
///     .expect("a shipped model");
/// let schema: serde_json::Value = serde_json::from_str(text.input).unwrap();
/// assert_eq!(schema["type"], "object");
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaText {
    /// The model id.
    pub id: &'static str,
    /// `input.json`.
    pub input: &'static str,
    /// `output.json` (unwrapped from `{"output": ...}`), when the model ships one.
    pub output: Option<&'static str>,
}

impl SchemaText {
    /// The entry of `table` for model `id`.
    pub fn find<'a>(table: &'a [SchemaText], id: &str) -> Option<&'a SchemaText> {
        table.iter().find(|s| s.id == id)
    }
}

/// The result shape of a model that ships no `output.json`: what RunComfy documents for
/// every model, a URL or a list of URLs under `image`/`images`, `video`/`videos`,
/// `audio`/`audios`, with any other key kept in [`extra`](Self::extra).
///
/// A singular key that holds a one-item list, or a plural key that holds a single URL, is
/// accepted too: the API's documentation does not pin the shape per key.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct MediaOutput {
    /// A single image URL.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "media::one"
    )]
    pub image: Option<url::Url>,
    /// Several image URLs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "media::many"
    )]
    pub images: Option<Vec<url::Url>>,
    /// A single video URL.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "media::one"
    )]
    pub video: Option<url::Url>,
    /// Several video URLs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "media::many"
    )]
    pub videos: Option<Vec<url::Url>>,
    /// A single audio URL.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "media::one"
    )]
    pub audio: Option<url::Url>,
    /// Several audio URLs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "media::many"
    )]
    pub audios: Option<Vec<url::Url>>,
    /// Every other key of the output, as sent.
    #[serde(flatten)]
    pub extra: std::collections::BTreeMap<String, serde_json::Value>,
}

impl MediaOutput {
    /// Every URL of the output, singular keys first: images, videos, audios.
    pub fn urls(&self) -> Vec<&url::Url> {
        let mut out = Vec::new();
        for (one, many) in [
            (&self.image, &self.images),
            (&self.video, &self.videos),
            (&self.audio, &self.audios),
        ] {
            out.extend(one.iter());
            out.extend(many.iter().flatten());
        }
        out
    }
}

mod media {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(url::Url),
        Many(Vec<url::Url>),
    }

    pub fn one<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
        match Option::<OneOrMany>::deserialize(d)? {
            None => Ok(None),
            Some(OneOrMany::One(u)) => Ok(Some(u)),
            Some(OneOrMany::Many(mut list)) if list.len() <= 1 => Ok(list.pop()),
            Some(OneOrMany::Many(list)) => Err(D::Error::custom(format!(
                "expected one URL, found a list of {}",
                list.len()
            ))),
        }
    }

    pub fn many<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<url::Url>>, D::Error> {
        Ok(match Option::<OneOrMany>::deserialize(d)? {
            None => None,
            Some(OneOrMany::One(u)) => Some(vec![u]),
            Some(OneOrMany::Many(list)) => Some(list),
        })
    }
}

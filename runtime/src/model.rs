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
    type Output: DeserializeOwned + Send;
}

/// Facts about one generated model, for registries, the command line and the fake server.
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    /// The model id.
    pub id: &'static str,
    /// The model's input schema, as JSON text (the file the model was generated from).
    pub input_schema: &'static str,
    /// The model's output schema, as JSON text, when the model ships one.
    pub output_schema: Option<&'static str>,
    /// The first line of the model's description, if any.
    pub summary: &'static str,
}

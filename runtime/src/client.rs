//! Placeholder client: replaced by the real client (issue 3).

use std::marker::PhantomData;

use crate::model::Model;

/// The RunComfy client.
#[derive(Clone, Default)]
pub struct Client {}

/// A typed endpoint of one model on a [`Client`].
pub struct Endpoint<'c, M: Model> {
    client: &'c Client,
    _model: PhantomData<fn() -> M>,
}

impl<'c, M: Model> Endpoint<'c, M> {
    /// The endpoint of model `M` on `client`.
    pub fn new(client: &'c Client) -> Self {
        Endpoint {
            client,
            _model: PhantomData,
        }
    }

    /// The client this endpoint uses.
    pub fn client(&self) -> &'c Client {
        self.client
    }
}

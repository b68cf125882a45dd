//! HTTP: one exchange ([`transport`]), and the one retry loop around it ([`retry`]).

pub(crate) mod retry;
pub(crate) mod transport;

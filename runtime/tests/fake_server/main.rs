//! The client against the fake server, over real HTTP on 127.0.0.1.

mod common;
mod download;
mod errors;
mod retry;
mod wait;
mod wire;

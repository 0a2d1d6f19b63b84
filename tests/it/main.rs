//! One integration binary: every test boots a real broker on 127.0.0.1:0 with a temporary data dir
//! and a manual clock, and talks to it over gRPC as a client would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod cli;
mod foundation;
mod helpers;
mod inputs;
mod mfa;
mod policies;
mod sessions;
mod transport;

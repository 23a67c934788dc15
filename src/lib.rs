//! batten: first-boot hardening for server images.
//!
//! The binary in `main.rs` is a thin shell over this library, so that the
//! integration tests and the binary share every line of real logic.

pub mod config;
pub mod root;

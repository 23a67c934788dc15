//! batten: first-boot hardening for server images.
//!
//! The binary in `main.rs` is a thin shell over this library, so that the
//! integration tests and the binary share every line of real logic. Data
//! flows one way: `config` (load, validate) -> `plan` -> `apply`.

#![warn(missing_docs)]

pub mod account_files;
pub mod accounts;
pub mod apply;
pub mod cli;
pub mod cloud_init;
pub mod commands;
pub mod config;
pub mod crypt;
pub mod daemon;
pub mod distro;
pub mod exec;
pub mod exit;
pub mod firewall;
pub mod lifecycle;
pub mod metadata;
pub mod plan;
pub mod proxy;
pub mod root;
pub mod schema;
pub mod sockets;
pub mod ssh;
pub mod systemd;
pub mod verify;

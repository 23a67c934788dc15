//! batten: first-boot hardening for server images.
//!
//! The binary in `main.rs` is a thin shell over this library, so that the
//! integration tests and the binary share every line of real logic. The
//! modules are layered, and an import only ever points down this list
//! (`tests/layers.rs` holds it so):
//!
//! - `cli`: one file per command, the output people and scripts read;
//! - `pipeline`: the stages wired together (sources, load, plan, run);
//! - `verify`: the live proof of what the plan promised;
//! - `apply`: the interpreter that carries a plan out and undoes it;
//! - `exit`: the exit codes, and the one place an error becomes one;
//! - `concerns`: accounts, ssh, firewall, proxy, cloud-init, each
//!   planning, applying and verifying its own part;
//! - `plan`: the plan as data, and its printout;
//! - `metadata`, `input`: where user-data comes from and what it means;
//! - `state`: what batten remembers between runs;
//! - `host`: the machine itself: its files, programs, daemons, units;
//! - `crypt`: password hashes.

#![warn(missing_docs)]

pub mod apply;
pub mod cli;
pub mod concerns;
pub mod crypt;
pub mod exit;
pub mod host;
pub mod input;
pub mod metadata;
pub mod pipeline;
pub mod plan;
pub mod state;
pub mod verify;

//! Web admin panels behind nginx with basic auth (`batten.proxy`).
//!
//! Each entry becomes one server block in the distribution's place, an
//! htpasswd file nginx's workers can read and nobody else can, and, for
//! users without a given hash, a random password recorded for root in the
//! credentials file. The upstream stays on loopback (validation insists)
//! and its port is dropped by the firewall (safety rule 3).

pub mod acme;
pub mod certificate;
pub mod htpasswd;

pub mod nginx;
pub mod plan;
pub mod probe;
pub mod tls;

pub mod verify;

pub use plan::plan;

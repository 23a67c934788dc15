//! What batten hardens, one folder per concern. Each plans its part of the
//! desired state from the validated user-data and the root, applies the
//! steps that are its own, and says how to verify them.

pub mod accounts;
pub mod cloud_init;
pub mod firewall;
pub mod proxy;
pub mod ssh;

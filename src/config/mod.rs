//! User-data: where it is found, how it is decoded, and what it means.

pub mod decode;
pub mod yaml;

//! Known default passwords: found behind the image's /etc/shadow hashes
//! and locked, on every distribution, before sshd or a console asks for
//! one. The list and the hash checks are `crypt::defaults`; this concern
//! plans the locks and checks that none is left.
//!
//! Locking puts `!` before the hash, as `passwd -l` does: the password no
//! longer opens the account, and its keys still do.
//!
//! The same concern raises SHA-512 crypt's rounds in `/etc/login.defs`
//! (`login_defs`), since a password set later is its business too.

pub mod login_defs;
pub mod plan;
pub mod verify;

pub use plan::{plan, plan_locks};

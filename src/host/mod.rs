//! The machine batten works on: its files (through a root that refuses
//! symlinks), the one place programs start, its daemons, systemd units and
//! distribution. Everything above reaches the machine through here.

pub mod after_sshd;
pub mod daemon;
pub mod distro;
pub mod elf;
pub mod exec;
pub mod netns;
pub mod root;
pub mod systemd;
pub mod undo;

//! Drift in the journal: one entry per drifted item at warning level and
//! one summary entry per run, each with a stable `MESSAGE_ID` so a fleet's
//! log pipeline can match them, sent over journald's native socket. Where
//! there is no journal (an image, a container without one), the same lines
//! go to standard error with their priority prefix.

use std::os::unix::net::UnixDatagram;

/// journald's native socket.
pub const SOCKET: &str = "/run/systemd/journal/socket";
/// The message id of a drifted item.
pub const DRIFTED: &str = "5b8a3f0e9c2d4e71a6b0c4d2e8f1a9b3";
/// The message id of a repair by the timer.
pub const REPAIRED: &str = "9d4f1b7c2e8a4f63b5c0d1e2f3a4b5c6";
/// The message id of a run's summary.
pub const SUMMARY: &str = "0c7e2d9a4b6f4c1e8a3d5f7b9e1c2a46";

/// One journal entry: `priority` as syslog numbers it (4 warning, 6 info).
pub fn send(priority: u8, message_id: &str, message: &str, fields: &[(&str, &str)]) {
    let mut entry =
        format!("PRIORITY={priority}\nSYSLOG_IDENTIFIER=batten\nMESSAGE_ID={message_id}\n");
    for (k, v) in fields {
        entry.push_str(&field(k, v));
    }
    entry.push_str(&field("MESSAGE", message));
    let sent = UnixDatagram::unbound()
        .and_then(|s| s.send_to(entry.as_bytes(), SOCKET))
        .is_ok();
    if !sent {
        eprintln!("<{priority}>{message}");
    }
}

/// A field in the native protocol, on one line (`KEY=value`): a newline
/// in the value becomes a space.
fn field(key: &str, value: &str) -> String {
    format!("{key}={}\n", value.replace('\n', " "))
}

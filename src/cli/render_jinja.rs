//! `batten render-jinja` (hidden): the limited child that renders one
//! jinja template for the batten that started it.

use std::io::{Read as _, Write as _};

use crate::exit::{Code, Failure};
use crate::input::decode::MAX_USER_DATA_BYTES;

/// Read the request on standard input, write the text on standard output.
pub fn run() -> Result<Code, Failure> {
    let mut input = Vec::new();
    std::io::stdin()
        .take(2 * MAX_USER_DATA_BYTES as u64)
        .read_to_end(&mut input)
        .map_err(|e| Failure::new(Code::Usage, format!("cannot read standard input: {e}")))?;
    let (code, output) = crate::input::jinja::render_for_parent(&input);
    let _ = std::io::stdout().write_all(&output);
    Ok(match code {
        0 => Code::Ok,
        65 => Code::InvalidUserData,
        _ => Code::Usage,
    })
}

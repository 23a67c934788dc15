//! `batten schema`: the JSON Schema of the user-data batten accepts.

use crate::exit::{Code, Failure};

/// Print the schema.
pub fn run() -> Result<Code, Failure> {
    print!("{}", crate::input::schema::schema_text());
    Ok(Code::Ok)
}

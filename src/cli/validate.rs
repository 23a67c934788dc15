//! `batten validate`: check user-data files and report every problem with
//! its line and column; nothing is read from or written to a root.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

use super::Format;
use crate::exit::{Code, Failure};
use crate::input::jinja::InstanceData;
use crate::input::validate::Issue;
use crate::input::{self, meta};
use crate::pipeline::print_issues;
use crate::pipeline::sources::{read_input, renderer};

/// `batten validate FILE... [--meta-data FILE] [--format human|json]`
#[derive(Debug, Args)]
pub struct Validate {
    /// User-data files (`-` for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Meta-data to render jinja templates (`## template: jinja`) with,
    /// as the machine will (`ds.meta_data`, `v1.instance_id`); without
    /// it, placeholder values stand in and only names are checked.
    #[arg(long, value_name = "FILE")]
    pub meta_data: Option<PathBuf>,
    /// Output format: human lines or one JSON document.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

impl Validate {
    /// Check every file and report.
    pub fn run(&self) -> Result<Code, Failure> {
        validate(&self.files, self.meta_data.as_deref(), self.format)
    }
}

#[derive(Serialize)]
struct FileReport {
    file: String,
    valid: bool,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    left_to_cloud_init: Vec<String>,
    /// Parts batten does not read (scripts, `#include`, ...): the users,
    /// keys and settings in them are not batten's.
    other_parts: Vec<String>,
    /// Jinja templates rendered (with placeholder instance data unless
    /// --meta-data was given).
    rendered: Vec<String>,
    /// No SSH key in what batten reads while password login goes off: a run
    /// refuses the file unless the image or the meta-data gives a key.
    needs_keys_from_elsewhere: bool,
}

/// Check `files`, rendering templates with `meta_data`, and print the
/// reports in `format`.
fn validate(files: &[PathBuf], meta_data: Option<&Path>, format: Format) -> Result<Code, Failure> {
    let meta = match meta_data {
        Some(path) => {
            let (name, bytes) = read_input(path)?;
            meta::parse(&name, &bytes)
                .map_err(|e| Failure::new(Code::InvalidUserData, e))?
                .document
        }
        None => None,
    };
    let instance_data = InstanceData::placeholder(meta).rendered_by(renderer());
    let mut reports = Vec::new();
    for path in files {
        let (name, bytes) = read_input(path)?;
        let report = match input::load_with(&name, &bytes, &instance_data) {
            Ok(loaded) => {
                let ud = &loaded.user_data;
                let any_key = !ud.ssh_authorized_keys.is_empty()
                    || ud.users.iter().any(|u| !u.ssh_authorized_keys.is_empty())
                    || ud
                        .default_user_config
                        .as_ref()
                        .is_some_and(|u| !u.ssh_authorized_keys.is_empty());
                let passwords_off = ud.ssh_pwauth != crate::input::model::PasswordAuth::Allow;
                FileReport {
                    file: name,
                    valid: true,
                    errors: Vec::new(),
                    warnings: loaded.warnings,
                    left_to_cloud_init: loaded.user_data.left_to_cloud_init.clone(),
                    other_parts: loaded.other_parts,
                    rendered: loaded.rendered,
                    needs_keys_from_elsewhere: passwords_off && !any_key,
                }
            }
            Err(invalid) => FileReport {
                file: name,
                valid: false,
                errors: invalid.errors,
                warnings: invalid.warnings,
                left_to_cloud_init: Vec::new(),
                other_parts: Vec::new(),
                rendered: Vec::new(),
                needs_keys_from_elsewhere: false,
            },
        };
        reports.push(report);
    }
    let all_valid = reports.iter().all(|r| r.valid);
    match format {
        Format::Json => {
            let doc = serde_json::json!({ "valid": all_valid, "files": reports });
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        Format::Human => {
            for r in &reports {
                print_issues("error", &r.errors);
                print_issues("warning", &r.warnings);
                if !r.valid {
                    println!("{}: invalid ({} problems)", r.file, r.errors.len());
                    continue;
                }
                if !r.rendered.is_empty() {
                    println!(
                        "note: rendered the jinja template in {} with {}",
                        r.rendered.join(", "),
                        if meta_data.is_some() {
                            "the meta-data given and placeholder values for the rest"
                        } else {
                            "placeholder instance data (give --meta-data FILE for the machine's)"
                        }
                    );
                }
                if !r.other_parts.is_empty() {
                    println!(
                        "note: batten does not read {} (cloud-init runs them): users, keys and settings in them are not batten's",
                        r.other_parts.join(", ")
                    );
                }
                if r.needs_keys_from_elsewhere {
                    println!(
                        "note: no SSH key in what batten reads, and password login goes off: `batten run` refuses this file unless the image or the meta-data gives a key for an account sshd lets in"
                    );
                }
                let mut line = if r.needs_keys_from_elsewhere {
                    format!("{}: valid, but it gives no SSH key (see the note)", r.file)
                } else {
                    format!("{}: valid", r.file)
                };
                if !r.left_to_cloud_init.is_empty() {
                    line.push_str(&format!(
                        "; left to cloud-init: {}",
                        r.left_to_cloud_init.join(", ")
                    ));
                }
                println!("{line}");
            }
        }
    }
    Ok(if all_valid {
        Code::Ok
    } else {
        Code::InvalidUserData
    })
}

//! User-data: where it is found, how it is decoded, and what it means.
//!
//! `load` is the first two stages of the pipeline (load, validate): bytes in,
//! either a typed `UserData` or every problem with its position out.

pub mod decode;
pub mod grammar;
pub mod host_certificate;
pub mod jinja;
pub mod key_options;
pub mod labels;
pub mod meta;
pub mod model;
pub mod pi_os;
pub mod schema;
pub mod sources;
pub mod validate;
pub mod yaml;

use decode::PartKind;
use validate::{Checker, Issue};
use yaml::{Node, Pos, Value};

/// A user-data document that passed validation, with what batten noticed.
#[derive(Debug)]
pub struct Loaded {
    /// The typed document, its cloud-config parts merged as cloud-init
    /// merges them.
    pub user_data: model::UserData,
    /// Things accepted but worth telling the user, in file order.
    pub warnings: Vec<Issue>,
    /// Non-cloud-config parts (scripts, boothooks, ...) cloud-init will run.
    pub other_parts: Vec<String>,
    /// Jinja templates batten rendered (their labels, the file's name for
    /// a whole-file template).
    pub rendered: Vec<String>,
}

/// Why a document was refused: every problem found, in file order.
#[derive(Debug)]
pub struct Invalid {
    /// Why the document was refused; never empty.
    pub errors: Vec<Issue>,
    /// Warnings found on the way, reported with the errors.
    pub warnings: Vec<Issue>,
}

/// Decode, parse, merge and validate one user-data file that holds no jinja
/// template, or whose templates need only placeholder instance data (tests,
/// built-in documents). `name` is how the file is called in messages.
pub fn load(name: &str, bytes: &[u8]) -> Result<Loaded, Invalid> {
    load_with(name, bytes, &jinja::InstanceData::placeholder(None))
}

/// Decode, parse, merge and validate one user-data file, rendering its jinja
/// templates with `instance` as cloud-init would. `name` is how the file is
/// called in messages (its path, or `<stdin>`).
pub fn load_with(
    name: &str,
    bytes: &[u8],
    instance: &jinja::InstanceData,
) -> Result<Loaded, Invalid> {
    let whole_file = |message: String| Invalid {
        errors: vec![Issue {
            file: name.to_string(),
            line: 1,
            column: 1,
            path: String::new(),
            message,
        }],
        warnings: Vec::new(),
    };
    let parts = decode::decode(bytes).map_err(|e| whole_file(e.to_string()))?;
    let mut labels = Vec::new();
    let mut other_parts = Vec::new();
    let mut parse_errors = Vec::new();
    let mut rendered = Vec::new();
    let parts: Vec<decode::Part> = parts
        .into_iter()
        .filter_map(|part| {
            if part.kind != PartKind::Jinja {
                return Some(part);
            }
            let shown = if part.label.is_empty() {
                name.to_string()
            } else {
                format!("{name} ({})", part.label)
            };
            match jinja::render(&part.text, instance) {
                Ok(text) => {
                    let (kind, content_type) = decode::rendered_kind(&text);
                    rendered.push(shown);
                    // Named as rendered: with blocks trimmed, a line of
                    // the result is not always the template's same line.
                    let label = if part.label.is_empty() {
                        "rendered from its jinja template".to_string()
                    } else {
                        format!("{}, rendered", part.label)
                    };
                    Some(decode::Part {
                        kind,
                        label,
                        content_type: format!("{content_type}, rendered from jinja"),
                        text,
                    })
                }
                Err(e) => {
                    parse_errors.push(Issue {
                        file: shown,
                        line: e.line,
                        column: 1,
                        path: String::new(),
                        message: e.message,
                    });
                    None
                }
            }
        })
        .collect();
    let mut merged: Vec<(Node, Node)> = Vec::new();
    let mut merged_pos = None;
    let mut replaced: Vec<(Node, String)> = Vec::new();
    let mut custom_merge = false;
    for part in &parts {
        let label = if part.label.is_empty() {
            name.to_string()
        } else {
            format!("{name} ({})", part.label)
        };
        if part.kind != PartKind::CloudConfig {
            other_parts.push(if part.label.is_empty() {
                part.content_type.clone()
            } else {
                part.label.clone()
            });
            continue;
        }
        let index = labels.len();
        labels.push(label.clone());
        match yaml::parse(&part.text) {
            Ok(mut node) => {
                node.set_part(index);
                match node.value {
                    // cloud-init skips empty documents with a warning.
                    Value::Null => {}
                    // Parts merge as cloud-init's dict(replace): a later part's
                    // top-level key replaces an earlier one.
                    Value::Map(entries) => {
                        merged_pos.get_or_insert(node.pos);
                        for (k, v) in entries {
                            if merged.iter().any(|(old, _)| old.value == k.value) {
                                replaced.push((k.clone(), label.clone()));
                            }
                            if matches!(&k.value, Value::Str(s) if s == "merge_how" || s == "merge_type")
                            {
                                custom_merge = true;
                            }
                            merged.retain(|(old, _)| old.value != k.value);
                            merged.push((k, v));
                        }
                    }
                    other => parse_errors.push(Issue {
                        file: label,
                        line: node.pos.line,
                        column: node.pos.column,
                        path: String::new(),
                        message: format!(
                            "a cloud-config document is a mapping of keys, found {}",
                            other.kind()
                        ),
                    }),
                }
            }
            Err(e) => parse_errors.push(Issue {
                file: label,
                line: e.line,
                column: e.column,
                path: String::new(),
                message: format!("invalid YAML: {}", e.message),
            }),
        }
    }
    // batten merges parts as cloud-init does by default. With merge_how a
    // key batten honours could end up different in cloud-init's hands, so
    // that case is refused rather than guessed.
    if custom_merge {
        for (key, label) in &replaced {
            if let Value::Str(name) = &key.value
                && validate::HONOURED_KEYS.contains(&name.as_str())
            {
                parse_errors.push(Issue {
                    file: label.clone(),
                    line: key.pos.line,
                    column: key.pos.column,
                    path: name.clone(),
                    message: "this key is also set in an earlier part, and merge_how asks for a merge batten does not implement; put it in one part".into(),
                });
            }
        }
    }
    if !parse_errors.is_empty() {
        return Err(Invalid {
            errors: parse_errors,
            warnings: Vec::new(),
        });
    }
    let doc = Node {
        value: Value::Map(merged),
        pos: merged_pos.unwrap_or(Pos {
            line: 1,
            column: 1,
            part: 0,
        }),
    };
    if labels.is_empty() {
        labels.push(name.to_string());
    }
    let mut checker = Checker::new(labels);
    let result = validate::validate(&mut checker, &doc);
    let (errors, warnings) = (checker.errors, checker.warnings);
    match result {
        Some(user_data) => Ok(Loaded {
            user_data,
            warnings,
            other_parts,
            rendered,
        }),
        None => Err(Invalid { errors, warnings }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mime(second_part: &str) -> String {
        format!(
            "Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n--B\nContent-Type: text/cloud-config\n\n#cloud-config\nusers: [alice]\nruncmd: [a]\n\n--B\nContent-Type: text/cloud-config\n\n{second_part}\n--B--\n"
        )
    }

    #[test]
    fn later_parts_replace_top_level_keys() {
        let loaded = load("ud", mime("#cloud-config\nusers: [bob]\n").as_bytes()).unwrap();
        let names: Vec<_> = loaded
            .user_data
            .users
            .iter()
            .map(|u| u.name.clone())
            .collect();
        assert_eq!(names, [Some("bob".to_string())]);
    }

    #[test]
    fn merge_how_over_an_honoured_key_is_refused() {
        let text =
            mime("#cloud-config\nmerge_how: [{name: list, settings: [append]}]\nusers: [bob]\n");
        let invalid = load("ud", text.as_bytes()).unwrap_err();
        assert_eq!(invalid.errors.len(), 1, "{:?}", invalid.errors);
        let e = &invalid.errors[0];
        assert_eq!((e.path.as_str(), e.line, e.column), ("users", 3, 1));
        assert!(e.file.contains("part 2"), "{}", e.file);
        // Over keys left to cloud-init, merge_how is cloud-init's business.
        let text =
            mime("#cloud-config\nmerge_how: [{name: list, settings: [append]}]\nruncmd: [b]\n");
        assert!(load("ud", text.as_bytes()).is_ok());
    }

    #[test]
    fn errors_in_a_part_name_the_part() {
        let invalid = load("ud", mime("#cloud-config\nusers: [\"a b\"]\n").as_bytes()).unwrap_err();
        assert!(
            invalid.errors[0].file.starts_with("ud (part 2"),
            "{:?}",
            invalid.errors
        );
        assert_eq!(invalid.errors[0].line, 2);
    }
}

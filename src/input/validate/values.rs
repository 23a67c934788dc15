//! The shared readers: how a mapping, a boolean, a string, a port or a
//! "one or many" value is read wherever it appears in the user-data, so
//! that every key spells its values and reports its problems alike.

use super::checker::Checker;
use crate::input::grammar;
use crate::input::yaml::{Node, Value};

/// The key path of `key` inside `path` (`batten.ssh`), as messages name it.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The key path of item `i` of the list at `path` (`users[1]`).
pub(super) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Walk a mapping, reporting keys outside `known` as errors with a
/// did-you-mean, and hand each known entry to `f`.
pub(super) fn each_entry<'a>(
    c: &mut Checker,
    node: &'a Node,
    path: &str,
    known: &[&str],
    mut f: impl FnMut(&mut Checker, &str, &'a Node, String),
) {
    let Some(entries) = node.as_map() else {
        c.expected(node, path, "a mapping");
        return;
    };
    for (k, v) in entries {
        let Value::Str(key) = &k.value else {
            c.error(
                k.pos,
                path,
                format!("keys here are words, found {}", k.value.kind()),
            );
            continue;
        };
        let key_path = join(path, key);
        if known.contains(&key.as_str()) {
            f(c, key, v, key_path);
        } else {
            let hint = grammar::suggest(key, known)
                .map(|s| format!("; did you mean {s:?}?"))
                .unwrap_or_else(|| format!("; known keys: {}", known.join(", ")));
            c.error(k.pos, &key_path, format!("unknown key {key:?}{hint}"));
        }
    }
}

/// A boolean word in any case, as cloud-init's `translate_bool` reads it.
pub(super) fn bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// A boolean as cloud-init reads it: YAML booleans, and the strings
/// true/false/yes/no/on/off/1/0 in any case (PyYAML's YAML 1.1 booleans
/// plus what cloud-init's `translate_bool` accepts).
pub(super) fn boolean(c: &mut Checker, node: &Node, path: &str) -> Option<bool> {
    match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        Value::Str(s) => match bool_word(s) {
            Some(b) => Some(b),
            None => {
                c.error(
                    node.pos,
                    path,
                    format!("expected true or false, found {s:?}"),
                );
                None
            }
        },
        _ => {
            c.expected(node, path, "true or false");
            None
        }
    }
}

/// A string; any other kind of value is an error naming what was found.
pub(super) fn string<'a>(c: &mut Checker, node: &'a Node, path: &str) -> Option<&'a str> {
    match &node.value {
        Value::Str(s) => Some(s),
        _ => {
            c.expected(node, path, "a string");
            None
        }
    }
}

/// A string checked by a grammar function.
pub(super) fn checked<T>(
    c: &mut Checker,
    node: &Node,
    path: &str,
    grammar: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let s = string(c, node, path)?;
    match grammar(s) {
        Ok(v) => Some(v),
        Err(e) => {
            c.error(node.pos, path, e);
            None
        }
    }
}

/// A port number, written as a number or a string; out of range is an error.
pub(super) fn port(c: &mut Checker, node: &Node, path: &str) -> Option<u16> {
    let r = match &node.value {
        Value::Int(n) => grammar::port_number(*n),
        Value::Str(s) => grammar::port_text(s),
        _ => {
            c.expected(node, path, "a port number");
            return None;
        }
    };
    r.map_err(|e| c.error(node.pos, path, e)).ok()
}

/// Like `one_or_many`, for a setting batten enforces where no item means
/// nothing sensible: an empty value (`from:` with the address forgotten)
/// or `[]` is an error, never read as "everyone" or "the default".
pub(super) fn some_of<'a>(
    c: &mut Checker,
    node: &'a Node,
    path: &str,
    what: &str,
) -> Vec<(&'a Node, Option<usize>)> {
    let items = one_or_many(node);
    if items.is_empty() {
        c.error(
            node.pos,
            path,
            format!("no value; give {what}, or leave the key out"),
        );
    }
    items
}

/// A scalar or a list of scalars: cloud-init accepts both in many places.
pub(super) fn one_or_many(node: &Node) -> Vec<(&Node, Option<usize>)> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (n, Some(i)))
            .collect(),
        Value::Null => Vec::new(),
        _ => vec![(node, None)],
    }
}

/// The key path of an item `one_or_many` returned: indexed for a list,
/// the key itself for a single value.
pub(super) fn item_path(path: &str, i: Option<usize>) -> String {
    match i {
        Some(i) => index(path, i),
        None => path.to_string(),
    }
}

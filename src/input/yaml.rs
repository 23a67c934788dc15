//! A YAML tree that remembers where every node came from.
//!
//! Validation reports *every* problem in a document at once, each with its
//! line and column. serde's derive stops at the first error, so the document
//! is first read into this small tree (every node carrying its position) and
//! the typed model is built from it by hand in `validate/`.
//!
//! Parsing is serde-saphyr's: it rejects duplicate keys, bounds nesting,
//! node counts and alias expansion (so an alias bomb or a deeply nested
//! document fails fast instead of eating the machine's memory).
//!
//! Only `true`/`false` (any of YAML's cases) become booleans in the tree;
//! `yes`, `off` and friends stay strings. cloud-init's PyYAML turns
//! `yes/no/on/off` into booleans everywhere, but serde-saphyr's YAML 1.1
//! mode also turns `y` and `n` into booleans, which PyYAML does not (a user
//! called `n` would vanish). So the validator reads the YAML 1.1 spellings
//! where cloud-init takes a boolean, and nowhere else.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Line and column (both 1-based) of a node in its source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pos {
    /// Counted within the part's own text, not the whole multipart file.
    pub line: u64,
    /// Column within the line, to point at the exact key or value.
    pub column: u64,
    /// Which cloud-config part of a multipart document the node is from.
    pub part: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node holds, tags and aliases resolved.
    pub value: Value,
    /// Where the node is used; for an alias, the `*alias`, not its anchor.
    pub pos: Pos,
}

/// The shapes a YAML node can take once tags and aliases are resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// Only `true`/`false` in any of YAML's cases; `yes`, `on` and the like
    /// stay strings.
    Bool(bool),
    /// An integer; one too large for i64 is a parse error.
    Int(i64),
    /// A number with a fraction or exponent, or `.inf`/`.nan`.
    Float(f64),
    /// Any other scalar, quoted or plain.
    Str(String),
    /// A list, in document order.
    Seq(Vec<Node>),
    /// Keys keep their own positions so an unknown key can be pointed at.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// A word for the kind of value, used in "expected X, found Y" errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The entries of a mapping node, or `None` for any other kind.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value under `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
            .map(|(_, v)| v)
    }

    /// The text of a scalar the way cloud-init (Python) would print it.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_string()),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            value: spanned.value,
            pos: Pos {
                line: spanned.referenced.line(),
                column: spanned.referenced.column(),
                part: 0,
            },
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

impl Node {
    /// Mark every node of this tree as coming from MIME part `part`.
    pub fn set_part(&mut self, part: usize) {
        self.pos.part = part;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_part(part)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.set_part(part);
                v.set_part(part);
            }),
            _ => {}
        }
    }
}

/// Limits for untrusted YAML: user-data is small, so anything near these is
/// an attack or an accident, and is refused quickly.
fn options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = 32;
    budget.max_nodes = 100_000;
    budget.max_events = 400_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_total_scalar_bytes = 16 * 1024 * 1024;
    budget.max_documents = 1;
    serde_saphyr::options! {
        budget: Some(budget),
        legacy_octal_numbers: true,
        strict_booleans: true,
    }
}

/// A YAML syntax or limit error, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the error; 0 when the parser gave none.
    pub line: u64,
    /// 1-based column of the error; 0 when the parser gave none.
    pub column: u64,
    /// The parser's reason on one line, without its position or its advice
    /// to programmers.
    pub message: String,
}

/// A node as JSON (keys as their text), for data handed on as it was
/// written: meta-data for jinja templates.
pub fn to_json(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::json!(f),
        Value::Str(s) => s.clone().into(),
        Value::Seq(items) => items.iter().map(to_json).collect(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| (k.scalar_text().unwrap_or_default(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

/// Parse one YAML document into a tree, within the limits above.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    match serde_saphyr::from_str_with_options::<Option<Node>>(text, options()) {
        Ok(Some(node)) => Ok(node),
        Ok(None) => Ok(Node {
            value: Value::Null,
            pos: Pos {
                line: 1,
                column: 1,
                part: 0,
            },
        }),
        Err(e) => {
            let loc = e.location();
            let message = e.without_snippet().to_string();
            // The crate's message starts with "error: line L column C: "; keep the rest.
            let message = message
                .split_once(": ")
                .filter(|(head, _)| head.starts_with("error"))
                .map(|(_, rest)| rest.to_string())
                .unwrap_or(message);
            let message = match message.split_once(": ") {
                Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
                _ => message,
            };
            let message = message.lines().next().unwrap_or("");
            // The crate's advice to its programmer means nothing to a user.
            let message = message
                .split(", set DuplicateKeyPolicy")
                .next()
                .unwrap_or(message)
                .to_string();
            Err(ParseError {
                line: loc.map(|l| l.line()).unwrap_or(0),
                column: loc.map(|l| l.column()).unwrap_or(0),
                message,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_yaml_11_scalars() {
        let n = parse("a: yes\nb:\n  - \"on\"\n  - Off\nc: {x: 0755, y: ~}\n").unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Str("yes".into()));
        let b = n.get("b").unwrap();
        let Value::Seq(items) = &b.value else {
            panic!()
        };
        assert_eq!(items[0].value, Value::Str("on".into()));
        assert_eq!(items[1].value, Value::Str("Off".into()));
        assert_eq!((items[1].pos.line, items[1].pos.column), (4, 5));
        let x = n.get("c").unwrap().get("x").unwrap();
        assert_eq!(x.value, Value::Int(0o755));
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().value, Value::Null);
        assert_eq!(parse("# only a comment\n").unwrap().value, Value::Null);
    }

    #[test]
    fn duplicate_keys_are_refused_with_position() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        assert_eq!(e.message, "duplicate mapping key: a");
    }

    #[test]
    fn alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let start = std::time::Instant::now();
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("budget"), "{}", e.message);
        assert!(start.elapsed().as_secs() < 10);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let e = parse(&"[".repeat(10_000)).unwrap_err();
        assert!(e.line >= 1, "{e:?}");
        let nested = (0..100)
            .map(|i| format!("{}k:", "  ".repeat(i)))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(parse(&nested).is_err());
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line >= 1 && e.column >= 1, "{e:?}");
    }
}

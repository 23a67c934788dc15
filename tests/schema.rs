//! The JSON Schema agrees with the validator: every example passes it, and
//! documents the validator refuses for their shape are refused by it too.

mod common;

use batten::config::yaml::{self, Node, Value};
use common::repo;

fn to_json(node: &Node) -> serde_json::Value {
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

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(repo().join("cloud-init/schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::draft202012::new(&schema).expect("the schema is valid draft 2020-12")
}

fn doc(text: &str) -> serde_json::Value {
    to_json(&yaml::parse(text).expect("test YAML parses"))
}

#[test]
fn every_example_passes_the_schema() {
    let validator = schema();
    let dir = repo().join("cloud-init/examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&doc(&text))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        seen += 1;
    }
    assert!(seen >= 3);
}

#[test]
fn schema_refuses_what_batten_refuses_by_shape() {
    let validator = schema();
    for bad in [
        "batten:\n  proxxy: []\n",
        "batten:\n  firewall:\n    allow:\n      - {port: 70000}\n",
        "batten:\n  firewall:\n    allow:\n      - {}\n",
        "users:\n  - name: a\n    ssh_authorised_keys: []\n",
        "ssh_pwauth: maybe-not-a-bool\ndisable_root: y\n",
        "batten:\n  proxy:\n    - {upstream: 127.0.0.1:8080}\n",
    ] {
        assert!(
            !validator.is_valid(&doc(bad)),
            "the schema accepted:\n{bad}"
        );
    }
    for good in [
        "users:\n  - default\n  - name: a\n    lock-passwd: false\n",
        "ssh_pwauth: unchanged\ndisable_root: Off\npackages: [nginx]\n",
    ] {
        let errors: Vec<String> = validator
            .iter_errors(&doc(good))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{good}: {errors:#?}");
    }
}

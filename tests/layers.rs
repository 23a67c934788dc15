//! The layers of `src/` hold: a module only imports modules below it in
//! the order `lib.rs` gives, so the data flows one way and no import runs
//! in a circle. A new import that points up fails here, with the file and
//! the module it names.

use std::path::Path;

/// From the top of the pipeline to the machine underneath.
const LAYERS: &[&str] = &[
    "main", "cli", "pipeline", "verify", "apply", "exit", "concerns", "plan", "metadata", "input",
    "state", "host", "crypt",
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

/// The source of a file without its unit tests (tests may reach anywhere).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Every `crate::NAME` the text names.
fn named_modules(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .map(|(i, m)| {
            text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect()
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_import_points_down() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    for path in all {
        let rel = path.strip_prefix(&src).expect("under src");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.trim_end_matches(".rs").to_string())
            .expect("a name");
        if top == "lib" {
            continue;
        }
        let own = rank(&top).unwrap_or_else(|| {
            panic!("src/{top} is in no layer: add it to LAYERS here and to lib.rs")
        });
        let text = std::fs::read_to_string(&path).expect("read a source file");
        for module in named_modules(without_tests(&text)) {
            if let Some(r) = rank(&module)
                && r < own
            {
                upward.push(format!("{} imports crate::{module}", rel.display()));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports that point up a layer:\n{}",
        upward.join("\n")
    );
}

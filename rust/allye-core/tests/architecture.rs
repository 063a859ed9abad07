//! The core's modules depend on each other in one direction only: each top-level module
//! may use the modules of lower layers, never those of its own layer's peers above it or
//! of higher layers, so there is no cycle. Reads the sources, collects the `crate::`
//! paths of non-test code, and checks every edge against the declared layer order.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules, lowest layer first.
const LAYERS: &[&str] = &[
    "error", "protocol", "tuning", "sys", "store", "pool", "manifest", "payload", "gc", "arrays", "tables", "objects",
    "watch", "streams", "handle", "lib",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

/// `(from, to)` for every `crate::to` path in the non-test, non-comment code of `src`.
fn edges(src: &Path) -> BTreeSet<(String, String)> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = BTreeSet::new();
    for file in files {
        let from = module_of(src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        for line in text.lines() {
            if line.starts_with("#[cfg(test)]") {
                break; // test modules close every file
            }
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            let mut rest = code;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != from {
                    out.insert((from.clone(), name));
                }
            }
        }
    }
    out
}

fn layer(name: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| *l == name)
        .unwrap_or_else(|| panic!("module {name:?} is not in the declared layers; add it to LAYERS"))
}

#[test]
fn every_module_dependency_points_to_a_lower_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = edges(&src);
    assert!(edges.len() > 10, "the scan found too few edges to be looking at the code: {edges:?}");
    let upward: Vec<_> = edges.iter().filter(|(from, to)| layer(to) >= layer(from)).collect();
    assert!(upward.is_empty(), "dependencies against the layer order (a cycle, or one in the making): {upward:?}");
}

#[test]
fn every_source_module_is_declared_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in files {
        layer(&module_of(&src, &file));
    }
}

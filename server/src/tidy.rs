//! The layering rule of `lib.rs`'s Layout section, held by a test: every `crate::<module>`
//! a file of `server/src` names must be in a layer below the file's own module. The layers
//! are read from the Layout section itself, so the rule is written down once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `module → layer index` (0 = top), read from the ```text block of `lib.rs`'s Layout.
fn layers(lib: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    let mut in_block = false;
    let mut index = 0;
    for line in lib.lines() {
        let Some(doc) = line.strip_prefix("//!") else {
            continue;
        };
        let doc = doc.trim();
        if doc.starts_with("```") {
            if in_block {
                break;
            }
            in_block = true;
            continue;
        }
        if !in_block {
            continue;
        }
        // `name:  module module   description`; continuation lines have no `name:`.
        let Some((name, rest)) = doc.split_once(':') else {
            continue;
        };
        if name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        let modules: Vec<&str> = rest
            .split("  ")
            .map(str::trim)
            .find(|part| !part.is_empty())
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        for module in modules {
            layers.insert(module.to_owned(), index);
        }
        index += 1;
    }
    layers
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Each `crate::<name>` in `source` with its line number (comments and doc lines skipped).
fn imports(source: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((number + 1, name));
            }
            rest = after;
        }
    }
    found
}

/// Every import that breaks the layering: `file:line: module imports crate::other`.
fn violations(src: &Path, layers: &BTreeMap<String, usize>) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut broken = Vec::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap_or(&file);
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_owned();
        let Some(&own) = layers.get(&top) else {
            // lib.rs, main.rs and this file stand above every layer.
            continue;
        };
        let source = std::fs::read_to_string(&file).unwrap_or_default();
        for (line, name) in imports(&source) {
            if name == top {
                continue;
            }
            match layers.get(&name) {
                Some(&other) if other > own => {}
                Some(_) => broken.push(format!(
                    "{}:{line}: `{top}` imports `crate::{name}`, which is not in a layer below it",
                    relative.display()
                )),
                // Re-exports at the crate root (`crate::App`) name no module.
                None => {}
            }
        }
    }
    broken
}

#[test]
fn every_module_imports_only_layers_below_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let layers = layers(&lib);
    assert!(
        layers.len() >= 15,
        "the Layout section lists too few modules: {layers:?}"
    );
    for module in lib
        .lines()
        .filter_map(|line| line.strip_prefix("pub mod "))
        .map(|rest| rest.trim_end_matches(';'))
    {
        assert!(
            layers.contains_key(module),
            "module `{module}` is in no layer of lib.rs's Layout section"
        );
    }
    let broken = violations(&src, &layers);
    assert!(broken.is_empty(), "layering broken:\n{}", broken.join("\n"));
}

#[test]
fn an_upward_import_is_reported_with_its_file_and_line() {
    let temp = tempfile::Builder::new()
        .prefix("linkbox-tidy-")
        .tempdir()
        .expect("temp dir");
    let dir = temp.path();
    std::fs::create_dir(dir.join("store")).expect("temp dir");
    std::fs::write(
        dir.join("store").join("mod.rs"),
        "//! x\nuse crate::config::Settings;\nuse crate::http::routes; // up\n",
    )
    .expect("write");
    std::fs::write(dir.join("config.rs"), "use crate::store::Store;\n").expect("write");
    let layers = layers(
        "//! ```text\n//! serve: http    top\n//! state: store\n//! base: config  bottom\n//! ```\n",
    );
    let broken = violations(dir, &layers);
    assert_eq!(
        broken,
        [
            "config.rs:1: `config` imports `crate::store`, which is not in a layer below it",
            "store/mod.rs:3: `store` imports `crate::http`, which is not in a layer below it",
        ]
    );
}

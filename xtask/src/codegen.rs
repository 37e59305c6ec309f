//! `cargo xtask codegen [--check]`: writes the OpenAPI document (`openapi/`) and one JSON
//! Schema per wire type (`schemas/`) from `linkbox-contracts`; with `--check`, compares
//! instead and fails when anything is stale.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use linkbox_contracts::{openapi, schemas};

/// Every generated file: path relative to the workspace root → contents.
pub fn generated() -> anyhow::Result<BTreeMap<PathBuf, String>> {
    let mut files = BTreeMap::new();
    files.insert(
        PathBuf::from("openapi/linkbox.openapi.json"),
        openapi::json(),
    );
    for (path, schema) in schemas::all() {
        let mut text = serde_json::to_string_pretty(&schema)?;
        text.push('\n');
        files.insert(Path::new("schemas").join(path), text);
    }
    Ok(files)
}

/// Writes the files, or (with `check`) fails naming each stale one.
pub fn run(root: &Path, check: bool) -> anyhow::Result<()> {
    let files = generated()?;
    let mut stale = Vec::new();
    for (path, contents) in &files {
        let full = root.join(path);
        let current = std::fs::read_to_string(&full).ok();
        if current.as_deref() == Some(contents.as_str()) {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else {
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            std::fs::write(&full, contents)
                .with_context(|| format!("cannot write {}", full.display()))?;
            eprintln!("xtask: wrote {}", path.display());
        }
    }
    for dir in ["schemas", "openapi"] {
        for leftover in json_files(&root.join(dir))? {
            let relative = leftover
                .strip_prefix(root)
                .unwrap_or(&leftover)
                .to_path_buf();
            if !files.contains_key(&relative) {
                if check {
                    stale.push(format!("{} (no longer generated)", relative.display()));
                } else {
                    std::fs::remove_file(&leftover)
                        .with_context(|| format!("cannot remove {}", leftover.display()))?;
                    eprintln!("xtask: removed {}", relative.display());
                }
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated files are stale:\n  {}\nrun `cargo xtask codegen` and commit",
            stale.join("\n  ")
        );
    }
    Ok(())
}

fn json_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(json_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schemas_and_openapi_are_fresh() {
        if let Err(error) = run(&crate::workspace_root(), true) {
            panic!("{error:#}");
        }
    }

    #[test]
    fn check_mode_reports_a_stale_file_and_writes_nothing() {
        let temp = tempfile::Builder::new()
            .prefix("linkbox-codegen-")
            .tempdir()
            .expect("temporary directory");
        let dir = temp.path();
        let error = run(dir, true).expect_err("an empty tree is stale");
        assert!(
            error
                .to_string()
                .contains("run `cargo xtask codegen` and commit")
        );
        assert!(!dir.join("openapi").exists(), "check mode wrote files");
        run(dir, false).expect("write");
        run(dir, true).expect("fresh after writing");
        std::fs::write(dir.join("openapi/linkbox.openapi.json"), "{}").expect("tamper");
        let error = run(dir, true).expect_err("tampered");
        assert!(error.to_string().contains("openapi/linkbox.openapi.json"));
    }
}

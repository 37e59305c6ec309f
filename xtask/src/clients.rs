//! `cargo xtask clients`: the OpenAPI document as partners use it. Starts the workspace's
//! linkbox, has `openapi-typescript` and `openapi-python-client` generate clients from the
//! `/openapi.json` it serves, and runs the vendors' documented flows with each
//! (`tests/clients/ts`, `tests/clients/python`). A generator warning, a schema generated as
//! `unknown`/`Any` where the document says what it is, a type error under `tsc --strict`, or
//! an unexpected answer fails the task.
//!
//! Needs Node.js with npm, and Python 3. Without them the task says so and skips, unless
//! `LINKBOX_CLIENT_TESTS=1` (set by `.ci/run`), which makes a missing tool a failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

/// Runs both clients against one linkbox.
pub fn run(root: &Path) -> anyhow::Result<()> {
    let required = std::env::var("LINKBOX_CLIENT_TESTS").is_ok_and(|value| value == "1");
    let missing: Vec<&str> = ["node", "npm", "python3"]
        .into_iter()
        .filter(|tool| !on_path(tool))
        .collect();
    if !missing.is_empty() {
        let what = missing.join(", ");
        if required {
            bail!("LINKBOX_CLIENT_TESTS=1, but {what} cannot be found on PATH");
        }
        eprintln!(
            "xtask clients: SKIPPED, {what} not found on PATH (install Node.js with npm and \
             Python 3 to run the generated-client tests; LINKBOX_CLIENT_TESTS=1 makes this an error)"
        );
        return Ok(());
    }
    let started = Instant::now();
    crate::cargo(&["build", "--quiet", "-p", "linkbox", "--bin", "linkbox"])?;
    let server = Linkbox::start(&target_dir(root).join("debug").join("linkbox"))?;
    eprintln!("xtask clients: linkbox at {}", server.base);
    // The two are independent (each uses its own key and Leaf account), so one installs
    // while the other compiles.
    let (typescript, python) = std::thread::scope(|scope| {
        let typescript = scope.spawn(|| typescript(root, &server.base));
        let python = python(root, &server.base);
        (typescript.join(), python)
    });
    let typescript = typescript
        .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
        .context("the TypeScript client");
    python.context("the Python client")?;
    typescript?;
    eprintln!(
        "xtask clients: both generated clients passed in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// `openapi-typescript` types, checked under `tsc --strict`, driving `openapi-fetch`.
fn typescript(root: &Path, base: &str) -> anyhow::Result<()> {
    let dir = root.join("tests/clients/ts");
    let bin = dir.join("node_modules/.bin");
    // `npm ci` starts from nothing each time; skip it while the lock file is the one installed.
    let lock = std::fs::read_to_string(dir.join("package-lock.json"))
        .context("cannot read tests/clients/ts/package-lock.json")?;
    let stamp = dir.join("node_modules/.linkbox-installed-lock");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
        step(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            "npm ci",
        )?;
        std::fs::write(&stamp, lock)
            .with_context(|| format!("cannot write {}", stamp.display()))?;
    }
    let types = dir.join("generated/linkbox.ts");
    let output = step(
        Command::new(bin.join("openapi-typescript"))
            .arg(format!("{base}/openapi.json"))
            .arg("--output")
            .arg(&types)
            .current_dir(&dir),
        "openapi-typescript",
    )?;
    refuse_warnings("openapi-typescript", &output, |line| {
        line.starts_with("✨ openapi-typescript") || line.starts_with("🚀 ")
    })?;
    let text = std::fs::read_to_string(&types)
        .with_context(|| format!("cannot read {}", types.display()))?;
    let untyped = untyped_typescript(&text);
    if !untyped.is_empty() {
        bail!(
            "openapi-typescript typed these as unknown or empty:\n  {}",
            untyped.join("\n  ")
        );
    }
    step(
        Command::new(bin.join("tsc"))
            .args(["--strict", "--noEmit", "-p", "."])
            .current_dir(&dir),
        "tsc --strict --noEmit",
    )?;
    // Checked above; emitting the JavaScript need not check again.
    step(
        Command::new(bin.join("tsc"))
            .args(["--noCheck", "-p", "."])
            .current_dir(&dir),
        "tsc --noCheck",
    )?;
    let output = step(
        Command::new("node")
            .arg("build/src/flows.js")
            .arg(base)
            .current_dir(&dir),
        "node build/src/flows.js",
    )?;
    print!("{output}");
    Ok(())
}

/// An `openapi-python-client` package in a temporary directory, driven by `flows.py`.
fn python(root: &Path, base: &str) -> anyhow::Result<()> {
    let dir = root.join("tests/clients/python");
    let venv = python_tools(root, &dir.join("requirements.txt"))?;
    let venv_bin = venv.join("bin");
    // Removed when this returns, however the run ends.
    let scratch = tempfile::Builder::new()
        .prefix("linkbox-python-client-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let out = scratch.path();
    // The generator formats with ruff from the same virtualenv, as on a partner's machine.
    let path = std::env::join_paths(
        std::iter::once(venv_bin.clone()).chain(
            std::env::var_os("PATH")
                .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
    )?;
    let output = step(
        Command::new(venv_bin.join("openapi-python-client"))
            .args(["generate", "--meta", "none", "--url"])
            .arg(format!("{base}/openapi.json"))
            .arg("--output-path")
            .arg(out.join("linkbox_client"))
            .env("PATH", &path),
        "openapi-python-client generate",
    )?;
    refuse_warnings("openapi-python-client", &output, |line| {
        line.starts_with("Generating ")
    })?;
    let untyped = untyped_python(&out.join("linkbox_client/models"))?;
    if !untyped.is_empty() {
        bail!(
            "openapi-python-client typed these as Any:\n  {}",
            untyped.join("\n  ")
        );
    }
    let output = step(
        Command::new(venv_bin.join("python"))
            .arg(dir.join("flows.py"))
            .arg(base)
            .env("PYTHONPATH", out),
        "flows.py",
    )?;
    print!("{output}");
    Ok(())
}

/// A virtualenv under the target directory with `requirements`, reused while they are the same.
fn python_tools(root: &Path, requirements: &Path) -> anyhow::Result<PathBuf> {
    let venv = target_dir(root).join("clients/venv");
    let stamp = venv.join("requirements.txt");
    let wanted = std::fs::read_to_string(requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(venv);
    }
    let _ = std::fs::remove_dir_all(&venv);
    step(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    step(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(requirements),
        "pip install",
    )?;
    std::fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(venv)
}

/// Runs `command`, returning what it printed (stdout then stderr); fails with that text when
/// it fails.
fn step(command: &mut Command, name: &str) -> anyhow::Result<String> {
    let started = Instant::now();
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {name}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("{name} failed ({}):\n{text}", output.status);
    }
    eprintln!("xtask clients: {name} ({:.1?})", started.elapsed());
    Ok(text)
}

/// Fails when a generator printed anything but its usual progress lines.
fn refuse_warnings(
    generator: &str,
    output: &str,
    is_progress: impl Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let extra: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_progress(line))
        .collect();
    if !extra.is_empty() {
        bail!("{generator} warned:\n{}", extra.join("\n"));
    }
    Ok(())
}

/// Lines of generated TypeScript where a value is `unknown` or an object has no members,
/// except where the document says so: the index signatures of free-form objects and of
/// response headers, the JSON array of a fault body and of a drift report's value.
fn untyped_typescript(text: &str) -> Vec<String> {
    const ALLOWED: [&str; 4] = [
        "[name: string]: unknown;",
        "[key: string]: unknown;",
        "} | unknown[] | string | number | boolean;",
        "} | unknown[] | string | number | boolean | null;",
    ];
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.trim();
            let comment = code.starts_with('*') || code.starts_with("/*");
            let empty =
                code.contains("Record<string, never>") && !code.starts_with("export type $defs");
            let unknown = code
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|word| word == "unknown");
            !comment && (empty || (unknown && !ALLOWED.contains(&code)))
        })
        .map(|(index, line)| format!("line {}: {}", index + 1, line.trim()))
        .collect()
}

/// Attributes of the generated Python models typed `Any`, except the dict behind free-form
/// objects and the JSON array of a fault body.
fn untyped_python(models: &Path) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(models)
        .with_context(|| format!("cannot read {}", models.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "py"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for line in text.lines() {
            // Class-level attributes: four spaces, a name, a colon, a type.
            let Some(attribute) = line.strip_prefix("    ") else {
                continue;
            };
            let Some((name, annotation)) = attribute.split_once(": ") else {
                continue;
            };
            let is_attribute =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !is_attribute || name == "additional_properties" {
                continue;
            }
            let annotation = annotation.replace("list[Any]", "");
            if annotation
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|word| word == "Any")
            {
                let file = file.file_name().unwrap_or_default().to_string_lossy();
                found.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    Ok(found)
}

/// The workspace's linkbox binary, serving on a free loopback port until dropped.
struct Linkbox {
    child: Child,
    base: String,
}

impl Linkbox {
    fn start(binary: &Path) -> anyhow::Result<Linkbox> {
        let mut child = Command::new(binary)
            .args(["serve", "--addr", "127.0.0.1:0", "--log-format", "json"])
            .env("LINKBOX_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|stdout| BufReader::new(stdout).read_line(&mut line));
        let base = line.trim().strip_prefix("listening on ").map(str::to_owned);
        match (read, base) {
            (Some(Ok(_)), Some(base)) => Ok(Linkbox { child, base }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("linkbox did not say where it listens (first line: {line:?})")
            }
        }
    }
}

impl Drop for Linkbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_objects_and_stray_unknowns_are_untyped_typescript() {
        let text = "\
export type $defs = Record<string, never>;
        metadata?: Record<string, never> | null;
            [name: string]: unknown;
            [key: string]: unknown;
        payload: unknown;
        /** @description unknown link */
";
        assert_eq!(
            untyped_typescript(text),
            [
                "line 2: metadata?: Record<string, never> | null;",
                "line 5: payload: unknown;"
            ]
        );
    }

    #[test]
    fn any_attributes_are_untyped_python_but_free_form_dicts_are_not() {
        let dir = tempfile::Builder::new()
            .prefix("linkbox-untyped-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(
            dir.path().join("model.py"),
            "class Model:\n    payload: Any\n    body: list[Any] | str | Unset = UNSET\n    \
             additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)\n    \
             def to_dict(self) -> dict[str, Any]:\n",
        )
        .expect("write");
        let found = untyped_python(dir.path()).expect("reads");
        assert_eq!(found, ["model.py: payload: Any"]);
    }

    #[test]
    fn a_generator_line_that_is_not_progress_is_a_warning() {
        let progress = |line: &str| line.starts_with("Generating ");
        assert!(refuse_warnings("gen", "Generating x\n\n", progress).is_ok());
        let error = refuse_warnings("gen", "Generating x\nWarning(s) encountered\n", progress)
            .expect_err("warned");
        assert!(error.to_string().contains("Warning(s) encountered"));
    }
}

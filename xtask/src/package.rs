//! `cargo xtask package [--profile release|dev]`: the Python wheel (maturin, from the
//! `server` crate, into `target/wheels/`) and the npm tarballs `linkbox` and
//! `@linkbox/linux-x64` (`npm pack`, into `target/npm/`), all three at the workspace version.
//!
//! maturin builds the binary (stripped) and the npm platform package ships that same file.
//! maturin comes from `$MATURIN`, else `PATH`, else a virtualenv this task makes under
//! `target/package/` (from PyPI). `--profile dev` reuses the debug build, which is what CI
//! tests; the default `release` is what gets published.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The version of all three packages: the workspace's, which this crate inherits.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What committed `package.json` files carry where the version goes.
const VERSION_PLACEHOLDER: &str = "0.0.0-workspace";

/// The maturin releases this task knows how to drive.
const MATURIN_REQUIREMENT: &str = "maturin>=1.5,<2";

pub fn run(root: &Path, args: &[String]) -> anyhow::Result<()> {
    let profile = parse_profile(args)?;
    if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        bail!("the npm platform package is linux-x64 only: run `cargo xtask package` there");
    }
    let target = target_dir(root)?;
    let maturin = maturin(&target)?;

    let wheels = target.join("wheels");
    let wheel = build_wheel(root, &target, &maturin, &profile, &wheels)?;
    // maturin has just built (and stripped) the binary the wheel holds; npm ships the same.
    let binary = target.join(profile_dir(&profile)).join("linkbox");
    if !binary.is_file() {
        bail!("maturin built no {}", binary.display());
    }

    let npm_out = target.join("npm");
    let stage = npm_out.join("stage");
    let platform = stage_npm(
        &root.join("packages/npm/linux-x64"),
        &stage.join("linux-x64"),
    )?;
    let bin_dir = platform.join("bin");
    std::fs::create_dir_all(&bin_dir)?;
    let shipped = bin_dir.join("linkbox");
    std::fs::copy(&binary, &shipped)
        .with_context(|| format!("cannot copy {} into the npm package", binary.display()))?;
    make_executable(&shipped)?;
    let main = stage_npm(&root.join("packages/npm/linkbox"), &stage.join("linkbox"))?;

    let tarballs = [npm_pack(&platform, &npm_out)?, npm_pack(&main, &npm_out)?];
    eprintln!("xtask: linkbox {VERSION} ({profile})");
    for artifact in std::iter::once(&wheel).chain(&tarballs) {
        let size = std::fs::metadata(artifact).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "xtask:   {} ({:.1} MB)",
            artifact.display(),
            size as f64 / 1e6
        );
        println!("{}", artifact.display());
    }
    Ok(())
}

fn parse_profile(args: &[String]) -> anyhow::Result<String> {
    match args {
        [] => Ok("release".to_owned()),
        [flag, profile] if flag == "--profile" => Ok(profile.clone()),
        [flag] if flag.starts_with("--profile=") => {
            Ok(flag.trim_start_matches("--profile=").to_owned())
        }
        _ => bail!("usage: cargo xtask package [--profile release|dev]"),
    }
}

/// The directory cargo puts a profile's artifacts in.
fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// The workspace's target directory, as cargo resolves it (`CARGO_TARGET_DIR`, config).
fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let cargo = crate::cargo_program();
    let output = crate::cargo_command()
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .with_context(|| format!("cannot run {cargo} metadata"))?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    metadata["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("cargo metadata names no target_directory")
}

/// maturin: `$MATURIN`, else on PATH, else installed into a virtualenv under `target/`.
fn maturin(target: &Path) -> anyhow::Result<PathBuf> {
    if let Some(explicit) = std::env::var_os("MATURIN") {
        return Ok(PathBuf::from(explicit));
    }
    if runs(Command::new("maturin").arg("--version")) {
        return Ok(PathBuf::from("maturin"));
    }
    let venv = target.join("package/venv");
    let installed = venv.join("bin/maturin");
    if runs(Command::new(&installed).arg("--version")) {
        return Ok(installed);
    }
    eprintln!("xtask: installing maturin into {}", venv.display());
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
    check(
        Command::new(&python).args(["-m", "venv"]).arg(&venv),
        "make a virtualenv for maturin",
    )?;
    check(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            MATURIN_REQUIREMENT,
        ]),
        "install maturin",
    )?;
    Ok(installed)
}

fn build_wheel(
    root: &Path,
    target: &Path,
    maturin: &Path,
    profile: &str,
    out: &Path,
) -> anyhow::Result<PathBuf> {
    let project = root.join("packages/python");
    let mut command = Command::new(maturin);
    // maturin runs cargo with this environment: the same as every other build's, so that
    // it reuses what `cargo xtask ci` compiled.
    crate::as_from_a_shell(&mut command);
    command
        .args(["build", "--profile", profile, "--out"])
        .arg(out)
        .current_dir(&project)
        .env("CARGO_TARGET_DIR", target);
    eprintln!("xtask: maturin build --profile {profile} (packages/python)");
    check(&mut command, "build the wheel with maturin")?;
    // The newest wheel of this version: maturin names it after the platform it detected.
    let prefix = format!("linkbox-{VERSION}-");
    let mut wheels: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(out)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(&prefix) && name.ends_with(".whl"))
        })
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
        .collect();
    wheels.sort();
    wheels
        .pop()
        .map(|(_, path)| path)
        .with_context(|| format!("maturin wrote no {prefix}*.whl into {}", out.display()))
}

/// Copies an npm package's committed files into a fresh `stage` directory and puts the
/// workspace version where the placeholder is.
fn stage_npm(source: &Path, stage: &Path) -> anyhow::Result<PathBuf> {
    if stage.exists() {
        std::fs::remove_dir_all(stage)
            .with_context(|| format!("cannot clear {}", stage.display()))?;
    }
    copy_tree(source, stage)?;
    let manifest = stage.join("package.json");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let stamped = text.replace(VERSION_PLACEHOLDER, VERSION);
    let parsed: serde_json::Value = serde_json::from_str(&stamped)
        .with_context(|| format!("{} is not JSON", source.join("package.json").display()))?;
    if parsed["version"] != VERSION {
        bail!(
            "{}: \"version\" must be {VERSION_PLACEHOLDER:?} (the workspace version goes there)",
            source.join("package.json").display()
        );
    }
    if let Some(optional) = parsed["optionalDependencies"].as_object()
        && let Some((name, _)) = optional.iter().find(|(_, version)| **version != VERSION)
    {
        bail!(
            "{}: optional dependency {name} must be at {VERSION_PLACEHOLDER:?}",
            source.join("package.json").display()
        );
    }
    std::fs::write(&manifest, stamped)?;
    Ok(stage.to_path_buf())
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        if name == "node_modules" {
            continue;
        }
        let (source, dest) = (entry.path(), to.join(&name));
        if entry.file_type()?.is_dir() {
            copy_tree(&source, &dest)?;
        } else {
            std::fs::copy(&source, &dest)
                .with_context(|| format!("cannot copy {}", source.display()))?;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// `npm pack` of a staged package into `out`; the tarball's path.
fn npm_pack(stage: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(out)
        .current_dir(stage)
        .output()
        .context("cannot run npm (is Node.js installed?)")?;
    if !output.status.success() {
        bail!(
            "npm pack in {} failed: {}",
            stage.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let name = stdout
        .lines()
        .map(str::trim)
        .rfind(|line| line.ends_with(".tgz"))
        .with_context(|| format!("npm pack in {} named no tarball", stage.display()))?;
    Ok(out.join(name))
}

fn runs(command: &mut Command) -> bool {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn check(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("cannot {what}: {:?} did not start", command.get_program()))?;
    if !status.success() {
        bail!(
            "cannot {what}: {:?} failed ({status})",
            command.get_program()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_defaults_to_release_and_maps_to_cargos_directory() {
        assert_eq!(parse_profile(&[]).expect("default"), "release");
        let dev = ["--profile".to_owned(), "dev".to_owned()];
        assert_eq!(parse_profile(&dev).expect("dev"), "dev");
        assert_eq!(profile_dir("dev"), "debug");
        assert_eq!(profile_dir("release"), "release");
        assert!(parse_profile(&["--fast".to_owned()]).is_err());
    }

    #[test]
    fn the_committed_npm_manifests_take_the_workspace_version() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let stage = tempfile::Builder::new()
            .prefix("linkbox-stage-")
            .tempdir()
            .expect("temporary directory");
        for package in ["linkbox", "linux-x64"] {
            let staged = stage_npm(
                &root.join("packages/npm").join(package),
                &stage.path().join(package),
            )
            .expect("stages");
            let manifest: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(staged.join("package.json")).expect("staged manifest"),
            )
            .expect("JSON");
            assert_eq!(manifest["version"], VERSION);
            if package == "linkbox" {
                assert_eq!(
                    manifest["optionalDependencies"]["@linkbox/linux-x64"],
                    VERSION
                );
                assert_eq!(manifest["bin"]["linkbox"], "bin/linkbox.js");
            }
        }
        stage.close().expect("cleans up");
    }
}

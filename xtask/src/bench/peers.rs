//! The generic mock servers linkbox is compared with, measured in the same run on the same
//! create-link request: WireMock (its standalone jar, from the npm package `wiremock`, on the
//! machine's Java) answering a stub of the vendor's example, and Stoplight Prism mocking
//! linkbox's own OpenAPI document. Installed with npm under `target/bench/peers` (a cache
//! that is rebuilt when missing); a peer that cannot be installed or started is reported as
//! not measured, never guessed.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A peer process on loopback, killed on drop.
pub struct Peer {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The vendor's example response, which the WireMock stub returns.
const EXAMPLE_RESPONSE: &str = r#"{"success":true,"data":{"linkId":"link_acme_a1b2c3d4e5f6","referenceId":"user-12345","status":"created","url":"https://widget.m2m.leapfinancial.com/link_acme_a1b2c3d4e5f6/m2m-basic","token":"550e8400-e29b-41d4-a716-446655440000","expiresAt":"2026-02-11T12:00:00.000Z","createdAt":"2026-02-10T12:00:00.000Z"}}"#;

/// Installs the npm packages once into `dir`.
pub fn install(dir: &Path) -> anyhow::Result<()> {
    let marker = dir.join("node_modules/wiremock/package.json");
    let prism = dir.join("node_modules/.bin/prism");
    if marker.exists() && prism.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(dir)
        .args(["wiremock@3", "@stoplight/prism-cli@5"])
        .stdout(Stdio::null())
        .status()
        .context("npm is not available")?;
    if !status.success() {
        bail!("npm install of the peers failed");
    }
    Ok(())
}

/// Starts WireMock with a stub for `POST /partner/links`.
pub fn wiremock(dir: &Path) -> anyhow::Result<Peer> {
    let jar = find_jar(&dir.join("node_modules/wiremock"))?;
    let root = dir.join("wiremock-root");
    std::fs::create_dir_all(root.join("mappings"))?;
    let stub = serde_json::json!({
        "request": {"method": "POST", "url": "/partner/links"},
        "response": {
            "status": 201,
            "headers": {"Content-Type": "application/json"},
            "body": EXAMPLE_RESPONSE
        }
    });
    std::fs::write(root.join("mappings/create-link.json"), stub.to_string())?;
    let addr = free_port()?;
    let child = Command::new("java")
        .arg("-jar")
        .arg(&jar)
        .args(["--bind-address", "127.0.0.1", "--port"])
        .arg(addr.port().to_string())
        .arg("--root-dir")
        .arg(&root)
        .args(["--disable-banner"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("java is not available")?;
    let peer = Peer {
        name: "WireMock 3",
        addr,
        child,
    };
    wait_for(addr, Duration::from_secs(60))?;
    Ok(peer)
}

/// Starts Prism mocking linkbox's committed OpenAPI document.
pub fn prism(dir: &Path, document: &Path) -> anyhow::Result<Peer> {
    let addr = free_port()?;
    let child = Command::new(dir.join("node_modules/.bin/prism"))
        .arg("mock")
        .arg(document)
        .args(["-h", "127.0.0.1", "-p"])
        .arg(addr.port().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("prism did not start")?;
    let peer = Peer {
        name: "Prism 5",
        addr,
        child,
    };
    wait_for(addr, Duration::from_secs(60))?;
    Ok(peer)
}

fn find_jar(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| {
                    name.starts_with("wiremock-standalone") && name.ends_with(".jar")
                })
            {
                return Ok(path);
            }
        }
    }
    bail!("no wiremock-standalone jar under {}", dir.display())
}

/// A loopback port that was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Waits until something accepts connections on `addr`.
fn wait_for(addr: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listened on {addr} within {limit:?}")
}

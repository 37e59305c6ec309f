//! A headless Chromium driven over WebDriver, for the tests that click through the hosted
//! pages as an end user would. [`launch`] starts `chromedriver` on a free loopback port and
//! opens a session in a fresh profile; dropping the [`Browser`] kills chromedriver and the
//! browsers it started, and deletes the profile.
//!
//! `LINKBOX_BROWSER_TESTS` decides: `1` (what CI sets) runs them and fails, saying what to
//! install, when Chromium or chromedriver is missing; `0` skips them; unset, they run when
//! both are installed and are skipped — saying so on stderr — when not, so `cargo xtask ci`
//! works on a fresh clone without a browser.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// Debian's `chromium` package puts the browser here.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's `chromium-driver` package; found on `PATH`.
pub const CHROMEDRIVER: &str = "chromedriver";
/// The longest any one wait of a browser test may take.
pub const WAIT: Duration = Duration::from_secs(30);

const INSTALL: &str = "install Debian's chromium and chromium-driver \
    (apt-get install chromium chromium-driver), or set LINKBOX_BROWSER_TESTS=0 to skip \
    the browser tests";

/// The browser for `test`, or `None` (said on stderr) when the tests are skipped (see the
/// module docs). Panics, saying what is missing, when they are required and cannot start.
pub async fn launch(test: &str, width: u32, height: u32) -> Option<Browser> {
    match std::env::var("LINKBOX_BROWSER_TESTS").as_deref() {
        Ok("0") => {
            eprintln!("{test}: skipped, LINKBOX_BROWSER_TESTS=0");
            return None;
        }
        Ok("1") => {}
        _ if !installed() => {
            eprintln!(
                "{test}: skipped, no browser: {INSTALL} (LINKBOX_BROWSER_TESTS=1 requires it)"
            );
            return None;
        }
        _ => {}
    }
    Some(Browser::start(width, height).await)
}

/// Whether Chromium and chromedriver are both installed.
fn installed() -> bool {
    Path::new(CHROMIUM).exists()
        && Command::new(CHROMEDRIVER)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
}

/// A WebDriver session in a headless Chromium of its own.
pub struct Browser {
    pub client: Client,
    // Declared after `client`, so it is dropped after it.
    _driver: Driver,
}

impl Browser {
    async fn start(width: u32, height: u32) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "no Chromium at {CHROMIUM}: {INSTALL}"
        );
        let driver = Driver::spawn();
        driver.wait_until_ready().await;
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    // Only loopback pages are visited: never go through a proxy.
                    "--no-proxy-server",
                    "--hide-scrollbars",
                    format!("--user-data-dir={}", driver.profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let millis = u64::try_from(WAIT.as_millis()).unwrap_or(u64::MAX);
        capabilities.insert(
            "timeouts".into(),
            json!({"pageLoad": millis, "script": millis, "implicit": 0}),
        );
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let session = builder.connect(&driver.url);
        let client = match tokio::time::timeout(WAIT, session).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => panic!(
                "chromedriver could not start {CHROMIUM}: {error}\n{}",
                driver.log()
            ),
            Err(_) => panic!("no browser session within {WAIT:?}\n{}", driver.log()),
        };
        Browser {
            client,
            _driver: driver,
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        bounded(&format!("open {url}"), self.client.goto(url)).await;
    }

    /// Waits for the element `css` and returns it.
    pub async fn find(&self, css: &str) -> Element {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css));
        match found.await {
            Ok(element) => element,
            Err(error) => panic!(
                "no `{css}` on {}: {error}\n{}",
                self.current_url().await,
                self.source().await
            ),
        }
    }

    /// The visible text of the element `css`, once it is there.
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        bounded(&format!("read `{css}`"), element.text()).await
    }

    /// Clicks the element `css` (a form's button) and waits until the page the form leads to
    /// has replaced this one: the clicked element is gone from the document.
    pub async fn click_and_wait(&self, css: &str) {
        let element = self.find(css).await;
        let before = self.current_url().await;
        bounded(&format!("click `{css}`"), element.click()).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match element.tag_name().await {
                Err(error) if error.is_stale_element_reference() => return,
                // Chrome's answer when the page was replaced between its lookup of the node
                // and its reply: the element is gone all the same.
                Err(error)
                    if error
                        .to_string()
                        .contains("does not belong to the document") =>
                {
                    return;
                }
                Err(error) => panic!("after clicking `{css}` on {before}: {error}"),
                Ok(_) => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "clicking `{css}` on {before} led nowhere within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fills the input `css` with `text`.
    pub async fn fill(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        bounded(&format!("clear `{css}`"), element.clear()).await;
        bounded(&format!("type into `{css}`"), element.send_keys(text)).await;
    }

    pub async fn current_url(&self) -> String {
        bounded("read the URL", self.client.current_url())
            .await
            .to_string()
    }

    /// The page's HTML, for failure messages.
    pub async fn source(&self) -> String {
        bounded("read the page", self.client.source()).await
    }

    /// Resizes the window (the viewport is somewhat smaller).
    pub async fn resize(&self, width: u32, height: u32) {
        bounded(
            "resize the window",
            self.client.set_window_size(width, height),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        bounded("take a screenshot", self.client.screenshot()).await
    }

    /// Ends the session cleanly; dropping the browser without it still kills everything.
    pub async fn close(self) {
        let _ = tokio::time::timeout(WAIT, self.client.clone().close()).await;
    }
}

/// Runs one WebDriver command within [`WAIT`], panicking with `what` when it fails.
async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    command: impl Future<Output = Result<T, E>>,
) -> T {
    match tokio::time::timeout(WAIT, command).await {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => panic!("could not {what}: {error}"),
        Err(_) => panic!("could not {what} within {WAIT:?}"),
    }
}

/// A running chromedriver, in a process group of its own with the browsers it starts.
struct Driver {
    child: Child,
    url: String,
    /// The browser profile; chromedriver's log sits beside it.
    profile: PathBuf,
    /// Removed once chromedriver and its browsers are killed (fields drop after `drop`).
    dir: tempfile::TempDir,
}

impl Driver {
    fn spawn() -> Driver {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("linkbox-browser-")
            .tempdir()
            .expect("create a temporary directory");
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).expect("create the browser profile");
        let log = File::create(dir.path().join("chromedriver.log")).expect("create the driver log");
        let spawned = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("driver log"))
            .stderr(log)
            .process_group(0)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(error) => panic!("cannot run {CHROMEDRIVER}: {error}: {INSTALL}"),
        };
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            profile,
            dir,
        }
    }

    /// chromedriver is another program: all there is to know it listens is to ask it.
    async fn wait_until_ready(&self) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let status = client.get(format!("{}/status", self.url)).send().await;
            if let Ok(response) = status {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == true {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver not ready within {WAIT:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        format!("chromedriver log:\n{log}")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // The child leads its own process group (spawned with `process_group(0)`), so
            // this also stops the browsers chromedriver started.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

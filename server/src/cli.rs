//! The `linkbox` command line (clap). Every flag can also be set through an environment
//! variable `LINKBOX_<FLAG>`. Values are checked here, so a bad one is a usage error naming
//! its flag: `--addr` takes `HOST:PORT` with a host name or an IP (`localhost:8642`), URLs
//! must be absolute `http(s)` URLs, `--count` at least 1.

use std::net::ToSocketAddrs;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{FileConfig, Options, RateLimits};

/// The environment variables that are not flags, shown under `--help`.
pub const ENVIRONMENT: &str = "\
Environment:
  LINKBOX_LOG   what `serve` logs on stderr, as a tracing filter (default: info): one line
                per request at info (target linkbox::request; health checks at debug),
                webhook attempts at debug;
                e.g. LINKBOX_LOG=debug, or LINKBOX_LOG=info,linkbox::request=off
  NO_COLOR      set to anything non-empty: no colour in log lines (there is none anyway
                when stderr is not a terminal)
  LINKBOX_<FLAG>  every flag of serve, seed and openapi, e.g. LINKBOX_ADDR=127.0.0.1:9000;
                a switch takes 1/0, true/false, yes/no or on/off, e.g.
                LINKBOX_STOP_WITH_STDIN=1
                (contract reads LINKBOX_M2M_KEY and LINKBOX_LEAF_TOKEN)";

#[derive(Debug, Parser)]
#[command(
    name = "linkbox",
    version,
    about = "A local sandbox of the M2M and Leaf magic-link APIs",
    after_help = ENVIRONMENT
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sandbox.
    #[command(after_help = ENVIRONMENT)]
    Serve(Box<ServeArgs>),
    /// Print the OpenAPI document of everything linkbox serves.
    Openapi(OpenapiArgs),
    /// Seed fake links into a running sandbox through its control API.
    Seed(SeedArgs),
    /// Print a shell completion script, e.g. `linkbox completions bash > ~/.local/share/bash-completion/completions/linkbox`.
    Completions(CompletionsArgs),
    /// Run the contract suite against linkbox in-process, or a deployment (--target URL);
    /// `linkbox contract --help` lists its flags.
    Contract(ContractArgs),
}

/// `linkbox contract`'s words, parsed by the suite itself (`linkbox_suite::cli`), so the
/// binary and `cargo xtask contract` take exactly the same flags.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct ContractArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `HOST:PORT` as given, once it resolves to at least one address.
fn socket_addr(text: &str) -> Result<String, String> {
    match text.to_socket_addrs().map(|mut addrs| addrs.next()) {
        Ok(Some(_)) => Ok(text.to_owned()),
        Ok(None) => Err(format!("{text} resolves to no address")),
        Err(error) => Err(format!(
            "expected HOST:PORT, like 127.0.0.1:8642 or localhost:8642 ({error})"
        )),
    }
}

/// A browser origin as `--cors` takes it: `*`, or `scheme://host[:port]` with nothing after
/// (an `Origin` header is never more), as given.
pub fn origin(text: &str) -> Result<String, String> {
    if text == "*" {
        return Ok(text.to_owned());
    }
    let expected = "expected * or an origin as browsers send it, like https://app.example or \
                    http://localhost:3000 (lowercase scheme and host, maybe a port, no path)";
    let url = url::Url::parse(text).map_err(|error| format!("{expected} ({error})"))?;
    // The origin's own form drops any path, query, fragment or user, and is "null" for a
    // URL that has none: a value that is not already that form is no origin. A browser
    // sends only http(s) origins, and never a wildcard in a host.
    if url.origin().ascii_serialization() != text.trim_end_matches('/')
        || !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_some_and(|host| host.contains('*'))
    {
        return Err(expected.to_owned());
    }
    Ok(text.to_owned())
}

/// An absolute `http://` or `https://` URL with a host, as given (without a trailing `/`).
pub fn http_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|error| {
        format!("expected an absolute http(s) URL like http://127.0.0.1:8642 ({error})")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(String::from(
            "expected an absolute http(s) URL like http://127.0.0.1:8642",
        ));
    }
    // Paths are appended to it (`/widget/…`, `/partner/links`): a query or a fragment
    // would end up in the middle of every URL made from it.
    if url.query().is_some() || url.fragment().is_some() {
        return Err(String::from(
            "expected a base URL without a query or a fragment (paths are appended to it), \
             like https://sandbox.example or https://proxy.example/linkbox",
        ));
    }
    // As the URL reads, not as typed: `http:host` or a space would otherwise be handed out
    // in every link made from it, which no client could follow.
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// The running sandbox, e.g. http://127.0.0.1:8642
    #[arg(long, env = "LINKBOX_TARGET", value_parser = http_url)]
    pub target: String,
    /// Which API's links to seed.
    #[arg(long, env = "LINKBOX_API", value_parser = ["m2m", "leaf"])]
    pub api: String,
    /// How many links (at least 1).
    #[arg(long, env = "LINKBOX_COUNT", value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// The partner key (for --api m2m).
    #[arg(long, env = "LINKBOX_KEY", conflicts_with = "token")]
    pub key: Option<String>,
    /// The Leaf id_token (for --api leaf).
    #[arg(long, env = "LINKBOX_TOKEN")]
    pub token: Option<String>,
    /// The same seed gives the same data (default: a random one, printed on stderr).
    #[arg(long, env = "LINKBOX_RNG_SEED")]
    pub rng_seed: Option<u64>,
    /// PEM file of the certificate authority an https:// --target's certificate is issued by,
    /// when it is a private one (trusted besides the system's).
    #[arg(long, env = "LINKBOX_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<std::path::PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct OpenapiArgs {
    #[arg(long, env = "LINKBOX_FORMAT", value_enum, default_value = "json")]
    pub format: DocFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DocFormat {
    Json,
    Yaml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT with a host name or an IP; port 0 picks a free port.
    #[arg(long, env = "LINKBOX_ADDR", default_value = "127.0.0.1:8642", value_parser = socket_addr)]
    pub addr: String,
    /// Base URL of the links linkbox hands out, an absolute http(s) URL (default: http://ADDR
    /// as bound).
    #[arg(long, env = "LINKBOX_PUBLIC_URL", value_parser = http_url)]
    pub public_url: Option<String>,
    /// TOML file of partners, Leaf accounts and flows (default: open mode).
    #[arg(long, env = "LINKBOX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Enforce the vendor's documented rate limits, or none.
    #[arg(
        long,
        env = "LINKBOX_RATE_LIMITS",
        value_enum,
        default_value = "documented"
    )]
    pub rate_limits: RateLimits,
    /// Base of M2M widget URLs (default: PUBLIC_URL/widget), e.g.
    /// https://widget.m2m.leapfinancial.com to reproduce production URLs.
    #[arg(long, env = "LINKBOX_M2M_WIDGET_BASE", value_parser = http_url)]
    pub m2m_widget_base: Option<String>,
    /// Bearer token that sees every tenant in the control API (default: a control request
    /// without any key is an admin request).
    #[arg(long, env = "LINKBOX_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// How many requests of each tenant the journal (`GET /_sandbox/requests`) keeps.
    #[arg(long, env = "LINKBOX_JOURNAL_SIZE", default_value_t = linkbox_contracts::sandbox::DEFAULT_JOURNAL_SIZE as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub journal_size: u64,
    /// Seconds a webhook receiver may take to answer an attempt (default 30, as documented).
    /// In a sandbox shared by replicas, a replica renews its claim on an attempt while the
    /// attempt runs; the claim lapses 5 s after the replica stops.
    #[arg(long, env = "LINKBOX_WEBHOOK_TIMEOUT", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub webhook_timeout: Option<u64>,
    /// Base of Leaf magic links (default: PUBLIC_URL/magic-link), e.g.
    /// https://magic-link.withleaf.io to reproduce production URLs.
    #[arg(long, env = "LINKBOX_LEAF_LINK_BASE", value_parser = http_url)]
    pub leaf_link_base: Option<String>,
    /// Keep every change in this SQLite file, durable before each response, and start from
    /// what it holds; or, as a `postgres://` URL, share one sandbox with every replica started
    /// on the same database (default: in memory only).
    #[arg(long, env = "LINKBOX_STATE")]
    pub state: Option<PathBuf>,
    /// Deliver webhooks to non-loopback hosts too (default: only 127.0.0.0/8, ::1 and
    /// localhost; any other URL gets a failed attempt and no network traffic).
    #[arg(long, env = "LINKBOX_EXTERNAL_WEBHOOKS", value_parser = BoolishValueParser::new())]
    pub external_webhooks: bool,
    /// A PEM file of the CA an https webhook receiver's certificate chains to, besides the
    /// public roots (a receiver in a test runner with a self-signed or company CA).
    #[arg(long, env = "LINKBOX_WEBHOOK_CA_CERT", value_name = "FILE")]
    pub webhook_ca_cert: Option<PathBuf>,
    /// Let browsers on ORIGIN call linkbox (CORS); repeat for more origins, or `*` for any.
    /// Off by default: the vendors' APIs are server to server.
    #[arg(
        long = "cors",
        value_name = "ORIGIN",
        env = "LINKBOX_CORS",
        value_delimiter = ',',
        value_parser = origin
    )]
    pub cors: Vec<String>,
    /// Log lines on stderr as text or JSON (levels and targets: LINKBOX_LOG, see --help).
    #[arg(long, env = "LINKBOX_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// Start with N fake links per API (at most 100,000) for a demo partner and a demo Leaf
    /// account, whose credentials are printed after the `listening on` line.
    #[arg(long, env = "LINKBOX_SEED", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::ops::seed::MAX_DEMO_COUNT)))]
    pub seed: u32,
    /// The seed of the fake data of --seed.
    #[arg(long, env = "LINKBOX_RNG_SEED", default_value_t = 1)]
    pub rng_seed: u64,
    /// Serve at most N connections at once (default: sized to the descriptor limit); beyond
    /// it a new connection gets one prompt request answered, then is closed.
    #[arg(long, env = "LINKBOX_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Open mode: create at most N partners (one per new key) and N Leaf accounts (one per
    /// new username); further new ones are refused with a clear error (default: unbounded).
    #[arg(long, env = "LINKBOX_MAX_TENANTS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tenants: Option<u64>,
    /// What one partner or Leaf account may store, in MiB, counted as its links, users and
    /// the texts clients gave them; a write that would pass it is refused (403) and nothing
    /// is stored. Reset the tenant to store more.
    #[arg(long, env = "LINKBOX_MAX_TENANT_MIB", default_value_t = crate::config::DEFAULT_MAX_TENANT_MIB, value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
    pub max_tenant_mib: u64,
    /// What all partners and Leaf accounts together may store, in MiB, counted as for
    /// --max-tenant-mib (default: half the machine's memory, at least 2048); a write that
    /// would pass it is refused (403) and nothing is stored.
    #[arg(long, env = "LINKBOX_MAX_STORED_MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 40))]
    pub max_stored_mib: Option<u64>,
    /// What the request bodies being read, and the answers over 64 KiB being sent, may hold
    /// at once together, in MiB (default 512), no one tenant (or all callers without
    /// credentials together) more than a quarter (at least 16). A body or answer that finds
    /// no room now is answered 503 with Retry-After: 1, in its API's envelope; a body
    /// declared larger than a quarter, which no wait makes room for, 413.
    #[arg(long, env = "LINKBOX_MAX_BODIES_MIB", value_parser = clap::value_parser!(u64).range(16..=1 << 30))]
    pub max_bodies_mib: Option<u64>,
    /// Who may move the shared sandbox clock: `admin` only, or any `tenants` too (default:
    /// tenants on a loopback address, admin otherwise).
    #[arg(long, env = "LINKBOX_CLOCK", value_enum)]
    pub clock: Option<crate::config::ClockPolicy>,
    /// Allow binding a non-loopback address without --admin-token, where every request
    /// without a key is admin (reset everything, read every tenant).
    #[arg(long, env = "LINKBOX_INSECURE_OPEN", value_parser = BoolishValueParser::new())]
    pub insecure_open: bool,
    /// Shadow mode for M2M: forward every `/partner/...` request to the vendor at URL and
    /// answer with the vendor's answer; apply it to linkbox too and report every difference
    /// at GET /_sandbox/drift.
    #[arg(long, env = "LINKBOX_SHADOW_M2M", value_name = "URL", value_parser = upstream)]
    pub shadow_m2m: Option<url::Url>,
    /// Shadow mode for Leaf: the same for `/api/...` and `/services/...` requests.
    #[arg(long, env = "LINKBOX_SHADOW_LEAF", value_name = "URL", value_parser = upstream)]
    pub shadow_leaf: Option<url::Url>,
    /// Shadow mode forwards `m2m_live_` keys too (refused by default: shadowing is for test
    /// keys).
    #[arg(long, env = "LINKBOX_SHADOW_ALLOW_LIVE", value_parser = BoolishValueParser::new())]
    pub shadow_allow_live: bool,
    /// A PEM file of the CA the upstream's certificate chains to, besides the public roots.
    #[arg(long, env = "LINKBOX_SHADOW_CA_CERT", value_name = "FILE")]
    pub shadow_ca_cert: Option<PathBuf>,
    /// Accept any certificate from the upstream (a private deployment; never for a real one).
    #[arg(long, env = "LINKBOX_SHADOW_INSECURE", value_parser = BoolishValueParser::new())]
    pub shadow_insecure: bool,
    /// Stop, as on SIGTERM, when standard input reaches its end: give linkbox a pipe whose
    /// write end only the starting process holds, and linkbox stops when that process goes,
    /// however it goes. What arrives on stdin is read and discarded.
    #[arg(long, env = "LINKBOX_STOP_WITH_STDIN", value_parser = BoolishValueParser::new())]
    pub stop_with_stdin: bool,
}

/// The PEM file `flag` names, read and checked to hold at least one certificate, every one
/// of which TLS can trust: a client is built with them here, so a damaged one is this
/// error at start, not a client that cannot be built once serving.
fn read_ca_cert(flag: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let pem =
        std::fs::read(path).with_context(|| format!("{flag}: cannot read {}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .ok()
        .filter(|certificates| !certificates.is_empty())
        .with_context(|| format!("{flag}: {} holds no PEM certificate", path.display()))?;
    certificates
        .into_iter()
        .fold(reqwest::Client::builder(), |builder, certificate| {
            builder.add_root_certificate(certificate)
        })
        .build()
        .map_err(|error| {
            // reqwest's own words ("builder error") say less than its sources.
            let mut causes = Vec::new();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                causes.push(cause.to_string());
                source = cause.source();
            }
            let why = if causes.is_empty() {
                error.to_string()
            } else {
                causes.join(": ")
            };
            anyhow::anyhow!(
                "{flag}: {} holds a certificate TLS cannot use ({why})",
                path.display()
            )
        })?;
    Ok(pem)
}

/// An upstream for shadow mode: an absolute http or https URL.
fn upstream(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|error| format!("{text:?} is not a URL: {error}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} is not an http or https URL with a host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{text:?} has a query or fragment; give the base URL only"
        ));
    }
    Ok(url)
}

impl ServeArgs {
    /// Refuses an address reachable from other machines without `--admin-token` (unless
    /// `--insecure-open`); returns the warnings worth printing for the address chosen.
    pub fn check_exposure(&self) -> anyhow::Result<Vec<String>> {
        let ips: Vec<std::net::IpAddr> = self
            .addr
            .to_socket_addrs()
            .map(|addrs| addrs.map(|addr| addr.ip()).collect())
            .unwrap_or_default();
        if !ips.is_empty() && ips.iter().all(std::net::IpAddr::is_loopback) {
            return Ok(Vec::new());
        }
        let has_token = self.admin_token.as_deref().is_some_and(|t| !t.is_empty());
        if !has_token && !self.insecure_open {
            anyhow::bail!(
                "refusing to listen on {} without --admin-token: every request without a key \
                 would be admin (reset everything, read every tenant). Set --admin-token, bind \
                 a loopback address, or pass --insecure-open",
                self.addr
            );
        }
        let mut warnings = Vec::new();
        if ips.iter().any(std::net::IpAddr::is_unspecified) && self.public_url.is_none() {
            warnings.push(format!(
                "listening on {}: links would say http://{}; pass --public-url with the \
                 address clients reach this machine by",
                self.addr, self.addr
            ));
        }
        Ok(warnings)
    }

    /// The options these flags set, with the config file read and checked.
    pub fn options(&self) -> anyhow::Result<Options> {
        Ok(Options {
            public_url: self.public_url.clone(),
            m2m_widget_base: self.m2m_widget_base.clone(),
            leaf_link_base: self.leaf_link_base.clone(),
            rate_limits: Some(self.rate_limits),
            file: self.config.as_deref().map(FileConfig::load).transpose()?,
            admin_token: self.admin_token.clone(),
            journal_size: Some(usize::try_from(self.journal_size).unwrap_or(usize::MAX)),
            webhook_timeout: self.webhook_timeout.map(std::time::Duration::from_secs),
            external_webhooks: self.external_webhooks,
            webhook_ca_cert: self
                .webhook_ca_cert
                .as_deref()
                .map(|path| read_ca_cert("--webhook-ca-cert", path))
                .transpose()?,
            state: self.state.clone(),
            cors: self.cors.clone(),
            max_connections: self
                .max_connections
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            connection_limits: None,
            max_tenants: self
                .max_tenants
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            max_tenant_mib: Some(self.max_tenant_mib),
            max_stored_mib: self.max_stored_mib,
            max_bodies_mib: self.max_bodies_mib,
            clock: self.clock,
            shadow: self.shadow()?,
        })
    }

    /// The shadow-mode options, with the CA file read and checked.
    fn shadow(&self) -> anyhow::Result<crate::config::Shadow> {
        let ca_cert = self
            .shadow_ca_cert
            .as_deref()
            .map(|path| read_ca_cert("--shadow-ca-cert", path))
            .transpose()?;
        Ok(crate::config::Shadow {
            m2m: self.shadow_m2m.clone(),
            leaf: self.shadow_leaf.clone(),
            allow_live: self.shadow_allow_live,
            ca_cert,
            insecure: self.shadow_insecure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serve_defaults_to_the_documented_address_and_limits() {
        let cli = Cli::try_parse_from(["linkbox", "serve"]).expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.addr, "127.0.0.1:8642");
        assert_eq!(args.rate_limits, RateLimits::Documented);
        assert_eq!(args.log_format, LogFormat::Pretty);
    }

    #[test]
    fn shadow_flags_take_http_urls_and_a_readable_ca() {
        let args = serve_args(&[
            "--shadow-m2m",
            "https://api.example.com/",
            "--shadow-leaf",
            "http://127.0.0.1:9000",
            "--shadow-allow-live",
        ]);
        let shadow = args.options().expect("options").shadow;
        assert_eq!(
            shadow.m2m.as_ref().map(url::Url::as_str),
            Some("https://api.example.com/")
        );
        assert_eq!(
            shadow.leaf.as_ref().map(url::Url::as_str),
            Some("http://127.0.0.1:9000/")
        );
        assert!(shadow.allow_live && !shadow.insecure && shadow.ca_cert.is_none());
        for bad in ["ftp://example.com", "not a url", "https://example.com/?a=1"] {
            assert!(
                Cli::try_parse_from(["linkbox", "serve", "--shadow-m2m", bad]).is_err(),
                "{bad}"
            );
        }
        let missing = serve_args(&[
            "--shadow-m2m",
            "https://x.example",
            "--shadow-ca-cert",
            "/nonexistent.pem",
        ]);
        let error = missing.options().expect_err("unreadable CA");
        assert!(error.to_string().contains("--shadow-ca-cert"), "{error}");
    }

    /// `--webhook-ca-cert` is read at start: a readable bundle of certificates is kept, a
    /// missing file or one without a certificate is an error naming the flag and the file.
    #[test]
    fn the_webhook_ca_is_read_at_start_and_checked() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let missing = serve_args(&["--webhook-ca-cert", &path("missing.pem")]);
        let error = missing.options().expect_err("unreadable CA").to_string();
        assert!(
            error.contains("--webhook-ca-cert") && error.contains("missing.pem"),
            "{error}"
        );
        std::fs::write(path("empty.pem"), "no certificate here\n").expect("written");
        let empty = serve_args(&["--webhook-ca-cert", &path("empty.pem")]);
        let error = empty.options().expect_err("no certificate").to_string();
        assert!(error.contains("holds no PEM certificate"), "{error}");
        // PEM whose certificate is no certificate: refused at start, not by the engine
        // once serving (which then sent no webhook at all).
        std::fs::write(
            path("damaged.pem"),
            "-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n",
        )
        .expect("written");
        let damaged = serve_args(&["--webhook-ca-cert", &path("damaged.pem")]);
        let error = damaged
            .options()
            .expect_err("a damaged certificate")
            .to_string();
        assert!(
            error.contains("--webhook-ca-cert") && error.contains("a certificate TLS cannot use"),
            "{error}"
        );
        assert_eq!(
            serve_args(&[]).options().expect("options").webhook_ca_cert,
            None
        );
    }

    #[test]
    fn each_tenants_budget_is_whole_mebibytes_two_gib_unless_given() {
        let resolve = |args: &[&str]| {
            crate::config::Settings::resolve(
                serve_args(args).options().expect("options"),
                "127.0.0.1:8642".parse().expect("an address"),
            )
            .max_tenant_mib
        };
        assert_eq!(resolve(&[]), 2048);
        assert_eq!(resolve(&["--max-tenant-mib", "64"]), 64);
        let stored = |args: &[&str]| {
            crate::config::Settings::resolve(
                serve_args(args).options().expect("options"),
                "127.0.0.1:8642".parse().expect("an address"),
            )
            .max_stored_mib
        };
        assert!(stored(&[]) >= 2048);
        assert_eq!(stored(&[]), crate::config::default_max_stored_mib());
        assert_eq!(stored(&["--max-stored-mib", "100"]), 100);
        assert!(Cli::try_parse_from(["linkbox", "serve", "--max-stored-mib", "0"]).is_err());
        for refused in ["0", "-1", "1.5", "2GiB", "1099511627777"] {
            assert!(
                Cli::try_parse_from(["linkbox", "serve", "--max-tenant-mib", refused]).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_webhook_timeout_is_whole_seconds_from_one_to_an_hour_and_a_state_url_is_a_database() {
        let options = serve_args(&[
            "--webhook-timeout",
            "7",
            "--state",
            "postgres://u@127.0.0.1:5432/db",
        ])
        .options()
        .expect("options");
        assert_eq!(
            options.webhook_timeout,
            Some(std::time::Duration::from_secs(7))
        );
        let settings = crate::config::Settings::resolve(
            options,
            "127.0.0.1:8642".parse().expect("an address"),
        );
        assert_eq!(
            settings.database.as_deref(),
            Some("postgres://u@127.0.0.1:5432/db")
        );
        assert_eq!(settings.state, None);
        for refused in ["0", "3601", "1.5"] {
            assert!(
                Cli::try_parse_from(["linkbox", "serve", "--webhook-timeout", refused]).is_err(),
                "{refused}"
            );
        }
        let file = serve_args(&["--state", "sandbox.db"])
            .options()
            .expect("options");
        let settings =
            crate::config::Settings::resolve(file, "127.0.0.1:8642".parse().expect("an address"));
        assert_eq!(settings.database, None);
        assert_eq!(
            settings.state.as_deref(),
            Some(std::path::Path::new("sandbox.db"))
        );
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "linkbox",
            "serve",
            "--addr",
            "[::1]:0",
            "--rate-limits",
            "off",
            "--log-format",
            "json",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.addr, "[::1]:0");
        assert_eq!(args.rate_limits, RateLimits::Off);
        assert_eq!(args.log_format, LogFormat::Json);
    }

    fn serve_args(args: &[&str]) -> ServeArgs {
        let cli = Cli::try_parse_from([&["linkbox", "serve"], args].concat()).expect("parses");
        match cli.command {
            Command::Serve(args) => *args,
            _ => panic!("not serve"),
        }
    }

    #[test]
    fn a_public_address_needs_an_admin_token_or_insecure_open() {
        let refused = serve_args(&["--addr", "0.0.0.0:8642"])
            .check_exposure()
            .expect_err("refused");
        assert!(refused.to_string().contains("--admin-token"), "{refused}");
        assert!(
            serve_args(&["--addr", "192.0.2.1:8642"])
                .check_exposure()
                .is_err()
        );
        let warnings = serve_args(&["--addr", "0.0.0.0:8642", "--admin-token", "t"])
            .check_exposure()
            .expect("allowed");
        assert!(warnings[0].contains("--public-url"), "{warnings:?}");
        let quiet = serve_args(&[
            "--addr",
            "0.0.0.0:8642",
            "--insecure-open",
            "--public-url",
            "http://qa.example:8642",
        ])
        .check_exposure()
        .expect("allowed");
        assert!(quiet.is_empty(), "{quiet:?}");
        assert!(
            serve_args(&["--addr", "[::1]:0"])
                .check_exposure()
                .expect("loopback")
                .is_empty()
        );
    }

    #[test]
    fn contract_hands_every_word_to_the_suite() {
        let cli = Cli::try_parse_from([
            "linkbox",
            "contract",
            "--target",
            "https://sandbox.example",
            "--help",
            "--fail-fast",
        ])
        .expect("parses");
        let Command::Contract(args) = cli.command else {
            panic!("not contract");
        };
        assert_eq!(
            args.args,
            [
                "--target",
                "https://sandbox.example",
                "--help",
                "--fail-fast"
            ]
        );
    }

    #[test]
    fn the_admin_token_and_journal_size_are_flags() {
        let cli = Cli::try_parse_from([
            "linkbox",
            "serve",
            "--admin-token",
            "t0ken",
            "--journal-size",
            "5",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.admin_token.as_deref(), Some("t0ken"));
        assert_eq!(args.journal_size, 5);
        assert!(Cli::try_parse_from(["linkbox", "serve", "--journal-size", "0"]).is_err());
        assert!(args.cors.is_empty());
        let cli = Cli::try_parse_from([
            "linkbox",
            "serve",
            "--cors",
            "https://app.example",
            "--cors",
            "http://localhost:3000",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.cors, ["https://app.example", "http://localhost:3000"]);
    }

    /// Bases of the links the API hands out and CORS origins are checked as `--public-url`
    /// is: a value that is no URL (or no origin) is a usage error naming the flag, not links
    /// that are not URLs.
    #[test]
    fn link_bases_and_cors_origins_are_checked() {
        for (flag, bad) in [
            ("--m2m-widget-base", "x y"),
            ("--leaf-link-base", "javascript:alert(1)"),
            ("--cors", "not an origin"),
            ("--cors", "https://app.example/path"),
            ("--cors", "https://user@app.example"),
            ("--cors", "https://*.example.com"),
            ("--cors", "ftp://a.example"),
        ] {
            let refused = Cli::try_parse_from(["linkbox", "serve", flag, bad])
                .expect_err("refused")
                .to_string();
            assert!(refused.contains(flag), "{flag} {bad}: {refused}");
        }
        for (flag, good) in [
            ("--m2m-widget-base", "https://widget.m2m.leapfinancial.com"),
            ("--leaf-link-base", "https://magic-link.withleaf.io/"),
            ("--cors", "*"),
            ("--cors", "http://localhost:3000"),
            ("--cors", "https://app.example/"),
        ] {
            assert!(
                Cli::try_parse_from(["linkbox", "serve", flag, good]).is_ok(),
                "{flag} {good}"
            );
        }
        // A base is handed out as the URL reads, not as typed.
        for (typed, read) in [
            ("http:w.example", "http://w.example"),
            ("https://w.example/a b", "https://w.example/a%20b"),
            ("HTTPS://W.EXAMPLE/", "https://w.example"),
        ] {
            assert_eq!(http_url(typed).as_deref(), Ok(read), "{typed}");
        }
    }

    #[test]
    fn addr_takes_host_names_and_refuses_what_does_not_resolve() {
        let cli = Cli::try_parse_from(["linkbox", "serve", "--addr", "localhost:8642"])
            .expect("a host name parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.addr, "localhost:8642");
        assert!(Cli::try_parse_from(["linkbox", "serve", "--addr", "localhost"]).is_err());
        assert!(Cli::try_parse_from(["linkbox", "serve", "--addr", "nonsense:port"]).is_err());
    }

    #[test]
    fn public_url_must_be_an_absolute_http_url() {
        for bad in [
            "notaurl",
            "/relative",
            "ftp://example.com",
            "http://",
            "https://sandbox.example/p?q=1",
            "https://sandbox.example#frag",
        ] {
            let error = Cli::try_parse_from(["linkbox", "serve", "--public-url", bad])
                .expect_err(bad)
                .to_string();
            assert!(error.contains("--public-url"), "{error}");
        }
        let cli = Cli::try_parse_from([
            "linkbox",
            "serve",
            "--public-url",
            "https://sandbox.example/",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("not serve");
        };
        assert_eq!(args.public_url.as_deref(), Some("https://sandbox.example"));
    }

    #[test]
    fn seed_needs_a_count_of_at_least_one_and_an_http_target() {
        let seed = |count: &str, target: &str| {
            Cli::try_parse_from([
                "linkbox", "seed", "--target", target, "--api", "m2m", "--count", count, "--key",
                "k",
            ])
        };
        assert!(seed("1", "http://127.0.0.1:8642").is_ok());
        let zero = seed("0", "http://127.0.0.1:8642").expect_err("count 0");
        assert_eq!(zero.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(seed("5", "127.0.0.1:8642").is_err());
    }

    #[test]
    fn completions_take_a_shell() {
        for shell in ["bash", "zsh", "fish"] {
            assert!(Cli::try_parse_from(["linkbox", "completions", shell]).is_ok());
        }
        assert!(Cli::try_parse_from(["linkbox", "completions", "cmd"]).is_err());
    }
}

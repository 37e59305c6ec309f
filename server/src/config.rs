//! What a running sandbox is configured with: the command-line options resolved against the
//! bound address, and the optional TOML file of partners, Leaf accounts and flows.
//!
//! Without a file (or with a file that lists no partners) the M2M API runs in *open mode*:
//! every well-formed `m2m_test_` key is its own partner. Likewise for Leaf accounts.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use linkbox_contracts::{m2m, sandbox};
use serde::Deserialize;

/// Whether the documented rate limits are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateLimits {
    /// 100 creates and 1000 other requests per partner per minute, as the vendor documents.
    Documented,
    /// No limits (load tests, benchmarks).
    Off,
}

/// Everything a running sandbox reads its behaviour from; built once at startup.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base of every URL linkbox hands out for its own pages, without a trailing slash.
    pub public_url: String,
    /// Base of M2M widget URLs: `{m2m_widget_base}/{linkId}/{flow}`.
    pub m2m_widget_base: String,
    /// Base of Leaf magic links: `{leaf_link_base}/{magicLinkId}`.
    pub leaf_link_base: String,
    pub rate_limits: RateLimits,
    /// Flows `POST /partner/links` accepts.
    pub flows: Vec<String>,
    /// The flow of a link created without one: `default_flow` from the file, else
    /// `m2m-basic` when `flows` lists it, else the first of `flows`; always one of `flows`.
    pub default_flow: String,
    /// Configured partners; empty means open mode.
    pub partners: Vec<PartnerConfig>,
    /// Configured Leaf accounts; empty means open mode.
    pub leaf_accounts: Vec<LeafAccountConfig>,
    /// `--admin-token`: the Bearer token that sees every tenant in the control API. When
    /// unset, a control request without any key is an admin request.
    pub admin_token: Option<String>,
    /// `--journal-size`: how many requests of each tenant the journal keeps (at least 1).
    pub journal_size: usize,
    /// How long a webhook receiver may take to answer; 30 s as documented (tests shorten it).
    pub webhook_timeout: std::time::Duration,
    /// Whether webhooks may leave this machine; off, a non-loopback URL is recorded as a
    /// failed attempt without any network traffic.
    pub external_webhooks: bool,
    /// `--webhook-ca-cert`: PEM of a CA an https receiver's certificate may chain to,
    /// besides the public roots.
    pub webhook_ca_cert: Option<Vec<u8>>,
    /// `--state`: the SQLite file every change is kept in; `None` keeps everything in memory
    /// (or in the database of `database`).
    pub state: Option<std::path::PathBuf>,
    /// `--state postgres://…`: the PostgreSQL database this process shares the sandbox
    /// through with other replicas.
    pub database: Option<String>,
    /// `--cors`: origins whose browsers may call linkbox (`*` for any); empty, CORS is off.
    pub cors: Vec<String>,
    /// Whether linkbox listens on a loopback address only. Then a request without
    /// credentials is the admin only if its `Host` names this machine (a page rebound to
    /// 127.0.0.1 names its own); listening wider without an admin token (`--insecure-open`)
    /// opens the admin to whoever reaches it, by whatever name.
    pub loopback_only: bool,
    /// The host of `public_url`, lowercase: read once, for the keyless admin's `Host` check.
    pub public_host: Option<String>,
    /// The origin of `public_url` (`https://host[:port]`, its port only when not the
    /// scheme's): linkbox's own pages are served there, behind a proxy whatever `Host` the
    /// proxy sends on, so a browser's `Origin` naming it is linkbox's own page.
    pub public_origin: Option<String>,
    /// How many connections are served at once, and how long a silent one may stay open.
    pub connections: ConnectionLimits,
    /// `--max-tenants`: open mode creates at most this many partners; `None` is unbounded.
    pub max_tenants: Option<usize>,
    /// `--max-tenant-mib`: what one partner or Leaf account may store, counted
    /// ([`crate::store::quota`]).
    pub max_tenant_mib: u64,
    /// `--max-stored-mib`: what all tenants together may store, counted.
    pub max_stored_mib: u64,
    /// `--max-bodies-mib`: what the request bodies being read or worked on, and the answers
    /// held whole while they are sent, may hold at once ([`crate::bodies`]).
    pub max_bodies_mib: u64,
    /// `--clock`: who may move the shared sandbox clock.
    pub clock: ClockPolicy,
    /// `--shadow-m2m`, `--shadow-leaf`: the vendors whose answers linkbox forwards and
    /// compares with its own.
    pub shadow: Shadow,
}

/// Shadow mode: each API given an upstream is forwarded there, and the same requests are
/// applied to linkbox's own sandbox and the answers compared ([`crate::drift`]).
#[derive(Debug, Clone, Default)]
pub struct Shadow {
    /// `--shadow-m2m URL`: the M2M deployment, e.g. `https://api.example.com`.
    pub m2m: Option<url::Url>,
    /// `--shadow-leaf URL`: the Leaf deployment.
    pub leaf: Option<url::Url>,
    /// `--shadow-allow-live`: forward `m2m_live_` keys too.
    pub allow_live: bool,
    /// `--shadow-ca-cert`: PEM of a CA the upstream's certificate may chain to, besides the
    /// public roots.
    pub ca_cert: Option<Vec<u8>>,
    /// `--shadow-insecure`: accept any certificate from the upstream.
    pub insecure: bool,
}

impl Shadow {
    /// Whether any API is shadowed.
    pub fn any(&self) -> bool {
        self.m2m.is_some() || self.leaf.is_some()
    }
}

/// `--clock admin|tenants`: who may move the one clock every tenant shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ClockPolicy {
    /// Only the admin (the admin token, or anyone when none is configured).
    Admin,
    /// Any caller the control API accepts, tenants included.
    Tenants,
}

impl ClockPolicy {
    /// The default: `tenants` on a loopback address (one developer's sandbox), `admin`
    /// anywhere else (a shared one).
    pub fn default_for(bound: SocketAddr) -> ClockPolicy {
        if bound.ip().is_loopback() {
            ClockPolicy::Tenants
        } else {
            ClockPolicy::Admin
        }
    }
}

/// What the connection loop allows each client ([`crate::http`]'s `serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `--max-connections`: connections served at once; beyond it a new connection is
    /// still answered, but only its first request and only if it arrives promptly.
    pub max_connections: usize,
    /// How long a new connection may stay silent before its first byte, and how long a
    /// client may take over its request headers.
    pub first_byte: std::time::Duration,
    /// How long a connection (HTTP/1 keep-alive or HTTP/2) may go without a byte either way.
    pub idle: std::time::Duration,
}

impl ConnectionLimits {
    /// Descriptors kept for everything but client connections: the state file, webhook
    /// attempts, the overflow connections that keep health checks answered.
    pub const RESERVED_DESCRIPTORS: usize = 128;

    /// The defaults: 10 s to the first byte and through the headers, 150 s idle (longer than
    /// the longest fault delay, during which a connection is silent both ways), and as many
    /// connections as the descriptor limit allows after [`Self::RESERVED_DESCRIPTORS`].
    pub fn defaults(max_connections: Option<usize>) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: max_connections
                .unwrap_or_else(|| descriptor_limit().saturating_sub(Self::RESERVED_DESCRIPTORS))
                .max(1),
            first_byte: std::time::Duration::from_secs(10),
            idle: std::time::Duration::from_secs(150),
        }
    }
}

/// The soft limit on open file descriptors (`RLIMIT_NOFILE`), or 1,024 when unknown.
pub fn descriptor_limit() -> usize {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) if soft != RLIM_INFINITY => usize::try_from(soft).unwrap_or(1024),
        _ => 1024,
    }
}

/// What one tenant may store by default, in MiB (`--max-tenant-mib`), counted as
/// [`crate::store::quota`] says: room for a million of the seeder's realistic M2M links
/// (about 610 bytes each, counted) in one partner, three times over.
pub const DEFAULT_MAX_TENANT_MIB: u64 = 2048;

/// What the request bodies read at once may hold by default, in MiB (`--max-bodies-mib`,
/// [`crate::bodies`]). [design]
pub const DEFAULT_MAX_BODIES_MIB: u64 = 512;

/// What all tenants together may store by default, in MiB (`--max-stored-mib`), counted:
/// half the machine's memory (a counted byte costs about one and a half in memory), and at
/// least [`DEFAULT_MAX_TENANT_MIB`]; that when the memory cannot be read.
pub fn default_max_stored_mib() -> u64 {
    let memory = nix::sys::sysinfo::sysinfo()
        .map(|info| info.ram_total() / (1024 * 1024))
        .unwrap_or(0);
    (memory / 2).max(DEFAULT_MAX_TENANT_MIB)
}

/// The options of `linkbox serve` that shape [`Settings`], before the address is bound.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub public_url: Option<String>,
    pub m2m_widget_base: Option<String>,
    pub leaf_link_base: Option<String>,
    pub rate_limits: Option<RateLimits>,
    pub file: Option<FileConfig>,
    pub admin_token: Option<String>,
    pub journal_size: Option<usize>,
    pub webhook_timeout: Option<std::time::Duration>,
    /// Send webhooks to hosts other than loopback ones (`--external-webhooks`).
    pub external_webhooks: bool,
    /// `--webhook-ca-cert`, read: PEM of the CA https receivers' certificates chain to.
    pub webhook_ca_cert: Option<Vec<u8>>,
    pub state: Option<std::path::PathBuf>,
    /// Origins allowed to call linkbox from a browser (`--cors`, repeatable, or `*`).
    pub cors: Vec<String>,
    /// `--max-connections`; `None` sizes it to the descriptor limit.
    pub max_connections: Option<usize>,
    /// Overrides the connection deadlines (tests shorten them).
    pub connection_limits: Option<ConnectionLimits>,
    /// `--max-tenants`.
    pub max_tenants: Option<usize>,
    /// `--max-tenant-mib`; `None` is [`DEFAULT_MAX_TENANT_MIB`].
    pub max_tenant_mib: Option<u64>,
    /// `--max-stored-mib`; `None` is [`default_max_stored_mib`].
    pub max_stored_mib: Option<u64>,
    /// `--max-bodies-mib`; `None` is [`DEFAULT_MAX_BODIES_MIB`].
    pub max_bodies_mib: Option<u64>,
    /// `--clock`; `None` picks by the bound address ([`ClockPolicy::default_for`]).
    pub clock: Option<ClockPolicy>,
    /// `--shadow-*`.
    pub shadow: Shadow,
}

impl Settings {
    /// Resolves `options` against the address actually bound, so that `--addr 127.0.0.1:0`
    /// still hands out working URLs.
    pub fn resolve(options: Options, bound: SocketAddr) -> Settings {
        let public_url = options
            .public_url
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{bound}"));
        let m2m_widget_base = options
            .m2m_widget_base
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{public_url}/widget"));
        let leaf_link_base = options
            .leaf_link_base
            .map(|url| url.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("{public_url}/magic-link"));
        let file = options.file.unwrap_or_default();
        let flows = if file.flows.is_empty() {
            vec![m2m::DEFAULT_FLOW.to_owned()]
        } else {
            file.flows
        };
        let default_flow = file
            .default_flow
            .filter(|flow| flows.contains(flow))
            .or_else(|| {
                // The vendor's documented default wherever it is accepted, whatever its
                // place in the list.
                let documented = m2m::DEFAULT_FLOW.to_owned();
                flows.contains(&documented).then_some(documented)
            })
            .unwrap_or_else(|| flows[0].clone());
        let parsed = url::Url::parse(&public_url).ok();
        let public_host = parsed
            .as_ref()
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
        let public_origin = parsed
            .map(|url| url.origin())
            .filter(url::Origin::is_tuple)
            .map(|origin| origin.ascii_serialization());
        Settings {
            loopback_only: bound.ip().is_loopback(),
            public_host,
            public_origin,
            public_url,
            m2m_widget_base,
            leaf_link_base,
            rate_limits: options.rate_limits.unwrap_or(RateLimits::Documented),
            flows,
            default_flow,
            partners: file.partners,
            leaf_accounts: file.leaf_accounts,
            admin_token: options.admin_token.filter(|token| !token.is_empty()),
            journal_size: options
                .journal_size
                .unwrap_or(sandbox::DEFAULT_JOURNAL_SIZE)
                .max(1),
            webhook_timeout: options
                .webhook_timeout
                .unwrap_or(std::time::Duration::from_secs(
                    sandbox::WEBHOOK_TIMEOUT_SECS,
                )),
            external_webhooks: options.external_webhooks,
            webhook_ca_cert: options.webhook_ca_cert,
            database: options
                .state
                .as_deref()
                .and_then(std::path::Path::to_str)
                .filter(|state| is_database_url(state))
                .map(str::to_owned),
            state: options
                .state
                .filter(|state| !state.to_str().is_some_and(is_database_url)),
            cors: options.cors,
            connections: options
                .connection_limits
                .unwrap_or_else(|| ConnectionLimits::defaults(options.max_connections)),
            max_tenants: options.max_tenants,
            max_tenant_mib: options.max_tenant_mib.unwrap_or(DEFAULT_MAX_TENANT_MIB),
            max_stored_mib: options
                .max_stored_mib
                .unwrap_or_else(default_max_stored_mib),
            max_bodies_mib: options.max_bodies_mib.unwrap_or(DEFAULT_MAX_BODIES_MIB),
            clock: options
                .clock
                .unwrap_or_else(|| ClockPolicy::default_for(bound)),
            shadow: options.shadow,
        }
    }
}

/// The `--config` TOML file.
///
/// ```toml
/// flows = ["m2m-basic", "m2m-express"]
/// default_flow = "m2m-basic"   # one of `flows`; unset: m2m-basic if listed, else the first
///
/// [[partners]]
/// slug = "acme"
/// keys = ["m2m_test_0123456789abcdefghijklmnopqrstuv"]
/// webhook_url = "http://127.0.0.1:9000/hooks"
/// webhook_secret = "whsec_0123456789abcdefghijklmn"
/// default_expires_in_minutes = 120
/// theme = "dark"
/// suspended = false
///
/// [[leaf_accounts]]
/// username = "qa@example.com"
/// password = "secret"
/// max_usage = 5
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub flows: Vec<String>,
    /// The flow of a link created without one; must be one of `flows` (or `m2m-basic` when
    /// `flows` is not set). A file whose default is not accepted does not load.
    #[serde(default)]
    pub default_flow: Option<String>,
    #[serde(default)]
    pub partners: Vec<PartnerConfig>,
    #[serde(default)]
    pub leaf_accounts: Vec<LeafAccountConfig>,
}

/// One configured M2M partner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// Lowercase letters and digits; appears in every id (`link_<slug>_...`).
    pub slug: String,
    /// Its `m2m_test_` keys.
    pub keys: Vec<String>,
    pub webhook_url: Option<String>,
    pub webhook_secret: Option<String>,
    pub default_expires_in_minutes: Option<u32>,
    pub theme: Option<String>,
    #[serde(default)]
    pub suspended: bool,
}

/// One configured Leaf account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeafAccountConfig {
    pub username: String,
    pub password: String,
    /// Accesses a magic link allows; 3 unless set.
    pub max_usage: Option<u32>,
}

impl FileConfig {
    /// Reads and checks a config file; every problem names the file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        FileConfig::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        let config: FileConfig = toml::from_str(text)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        let mut slugs = HashSet::new();
        let mut keys = HashSet::new();
        for flow in &self.flows {
            if flow.is_empty() {
                bail!("flows must not contain an empty name");
            }
        }
        if let Some(default) = &self.default_flow {
            let accepted = if self.flows.is_empty() {
                default == m2m::DEFAULT_FLOW
            } else {
                self.flows.contains(default)
            };
            if !accepted {
                bail!(
                    "default_flow {default:?} is not one of flows ({})",
                    if self.flows.is_empty() {
                        m2m::DEFAULT_FLOW.to_owned()
                    } else {
                        self.flows.join(", ")
                    }
                );
            }
        }
        for partner in &self.partners {
            let slug = &partner.slug;
            if slug.is_empty()
                || !slug
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            {
                bail!("partner slug {slug:?} must be lowercase letters and digits");
            }
            if !slugs.insert(slug.as_str()) {
                bail!("partner slug {slug:?} appears twice");
            }
            if partner.keys.is_empty() {
                bail!("partner {slug:?} has no keys");
            }
            for key in &partner.keys {
                if !m2m::is_test_key(key) {
                    bail!(
                        "partner {slug:?}: key {key:?} is not `{}` followed by {} letters or digits",
                        m2m::TEST_KEY_PREFIX,
                        m2m::KEY_SECRET_LEN
                    );
                }
                if !keys.insert(key.as_str()) {
                    bail!("key {key:?} is configured twice");
                }
            }
            if let Some(minutes) = partner.default_expires_in_minutes
                && !(m2m::EXPIRES_IN_MINUTES_MIN..=m2m::EXPIRES_IN_MINUTES_MAX).contains(&minutes)
            {
                bail!(
                    "partner {slug:?}: default_expires_in_minutes must be between {} and {}",
                    m2m::EXPIRES_IN_MINUTES_MIN,
                    m2m::EXPIRES_IN_MINUTES_MAX
                );
            }
            if let Some(url) = &partner.webhook_url {
                url::Url::parse(url)
                    .with_context(|| format!("partner {slug:?}: webhook_url {url:?}"))?;
            }
        }
        let mut usernames = HashSet::new();
        for account in &self.leaf_accounts {
            if account.username.is_empty() || account.password.is_empty() {
                bail!("a Leaf account needs a non-empty username and password");
            }
            if !usernames.insert(account.username.as_str()) {
                bail!("Leaf account {:?} appears twice", account.username);
            }
            if account.max_usage == Some(0) {
                bail!(
                    "Leaf account {:?}: max_usage must be at least 1 (a link allows that many \
                     accesses of its page)",
                    account.username
                );
            }
        }
        Ok(())
    }
}

/// Whether a `--state` value names a PostgreSQL database rather than a file.
pub fn is_database_url(state: &str) -> bool {
    state.starts_with("postgres://") || state.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "m2m_test_0123456789abcdefghijklmnopqrstuv";

    #[test]
    fn a_full_file_parses() {
        let config = FileConfig::parse(&format!(
            r#"
            flows = ["m2m-basic", "m2m-express"]
            [[partners]]
            slug = "acme"
            keys = ["{KEY}"]
            default_expires_in_minutes = 120
            suspended = true
            [[leaf_accounts]]
            username = "qa"
            password = "pw"
            max_usage = 5
            "#
        ));
        let config = config.expect("valid config");
        assert_eq!(config.flows, ["m2m-basic", "m2m-express"]);
        assert_eq!(config.partners[0].default_expires_in_minutes, Some(120));
        assert!(config.partners[0].suspended);
        assert_eq!(config.leaf_accounts[0].max_usage, Some(5));
    }

    #[test]
    fn malformed_keys_bad_slugs_and_unknown_fields_are_refused() {
        let bad_key =
            "[[partners]]\nslug = \"acme\"\nkeys = [\"m2m_live_0123456789abcdefghijklmnopqrstuv\"]";
        assert!(FileConfig::parse(bad_key).is_err());
        let bad_slug = format!("[[partners]]\nslug = \"Acme!\"\nkeys = [\"{KEY}\"]");
        assert!(FileConfig::parse(&bad_slug).is_err());
        assert!(FileConfig::parse("colour = \"red\"").is_err());
        let bad_expiry = format!(
            "[[partners]]\nslug = \"a\"\nkeys = [\"{KEY}\"]\ndefault_expires_in_minutes = 4"
        );
        assert!(FileConfig::parse(&bad_expiry).is_err());
    }

    #[test]
    fn a_leaf_account_allows_at_least_one_access() {
        let account = |max: u32| {
            format!("[[leaf_accounts]]\nusername = \"qa\"\npassword = \"p\"\nmax_usage = {max}\n")
        };
        let error = FileConfig::parse(&account(0)).expect_err("0 accesses");
        assert!(
            error.to_string().contains("max_usage must be at least 1"),
            "{error}"
        );
        assert!(FileConfig::parse(&account(1)).is_ok());
    }

    #[test]
    fn the_default_flow_is_one_of_the_flows() {
        let bound: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let only_express = FileConfig::parse("flows = [\"m2m-express\"]").expect("valid");
        let settings = Settings::resolve(
            Options {
                file: Some(only_express),
                ..Options::default()
            },
            bound,
        );
        assert_eq!(settings.default_flow, "m2m-express");
        let basic_second =
            FileConfig::parse("flows = [\"m2m-express\", \"m2m-basic\"]").expect("valid");
        let settings = Settings::resolve(
            Options {
                file: Some(basic_second),
                ..Options::default()
            },
            bound,
        );
        assert_eq!(
            settings.default_flow, "m2m-basic",
            "the documented default wherever it is listed"
        );
        let chosen =
            FileConfig::parse("flows = [\"a\", \"b\"]\ndefault_flow = \"b\"").expect("valid");
        assert_eq!(chosen.default_flow.as_deref(), Some("b"));
        let error = FileConfig::parse("flows = [\"m2m-express\"]\ndefault_flow = \"m2m-basic\"")
            .expect_err("a default that is not accepted");
        assert!(error.to_string().contains("default_flow"), "{error}");
        assert!(FileConfig::parse("default_flow = \"m2m-express\"").is_err());
        assert!(FileConfig::parse("default_flow = \"m2m-basic\"").is_ok());
    }

    #[test]
    fn urls_default_to_the_bound_address() {
        let bound: SocketAddr = "127.0.0.1:4321".parse().expect("addr");
        let settings = Settings::resolve(Options::default(), bound);
        assert_eq!(settings.public_url, "http://127.0.0.1:4321");
        assert_eq!(settings.m2m_widget_base, "http://127.0.0.1:4321/widget");
        assert_eq!(settings.leaf_link_base, "http://127.0.0.1:4321/magic-link");
        assert_eq!(settings.flows, [m2m::DEFAULT_FLOW]);
        assert_eq!(settings.rate_limits, RateLimits::Documented);
    }

    #[test]
    fn explicit_bases_win_and_lose_their_trailing_slash() {
        let bound: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let settings = Settings::resolve(
            Options {
                public_url: Some("https://sandbox.example/".into()),
                m2m_widget_base: Some("https://widget.m2m.leapfinancial.com/".into()),
                leaf_link_base: Some("https://magic-link.withleaf.io/".into()),
                ..Options::default()
            },
            bound,
        );
        assert_eq!(settings.public_url, "https://sandbox.example");
        assert_eq!(
            settings.m2m_widget_base,
            "https://widget.m2m.leapfinancial.com"
        );
        assert_eq!(settings.leaf_link_base, "https://magic-link.withleaf.io");
    }
}

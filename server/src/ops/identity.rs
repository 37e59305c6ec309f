//! Who is calling, resolved once per request from its headers and handed to every surface:
//! the M2M API (a partner by key), the Leaf API (an account by token), the control API and
//! the pages (either, or the admin), and the journal and fault table (the tenant's label).
//!
//! Resolving never creates a tenant and never counts against a rate limit. A key or Leaf
//! username seen for the first time is answered, while it only reads, by an empty tenant in
//! no table (a *stranger*: empty lists, 404s, nothing persisted, not counted by
//! `--max-tenants`); the handler of a write makes it real first (`materialize` on the
//! partner or account table). Each surface renders a refusal ([`Refusal`], [`LeafToken`])
//! in its own envelope.
//!
//! Tenant labels: the partner's slug, or `leaf:<username>` for a Leaf account (slugs are
//! lowercase letters and digits, so the two never collide).

use std::sync::Arc;

use http::{HeaderMap, HeaderName, header};

use super::tokens;
use crate::app::App;
use crate::store::leaf::Account;
use crate::store::m2m::{KeyError, Lookup, Partner};
use crate::webhooks::Visible;

/// The caller of one request.
#[derive(Clone, Default)]
pub struct Caller {
    /// `Authorization: Bearer <--admin-token>`.
    admin: bool,
    /// Whether an admin token is configured at all.
    admin_configured: bool,
    /// Why a request without credentials may not be the admin even where no admin token is
    /// configured ([`keyless_refusal`]): it is not a person at this machine.
    keyless: Option<Refusal>,
    /// The M2M key presented (`X-API-Key`, else the Bearer token), and what it names.
    key: Option<(Box<str>, Lookup)>,
    /// The Bearer token, read as a Leaf token.
    leaf: LeafToken,
    /// The tenant label, for the journal and the fault table.
    tenant: Option<Arc<str>>,
    /// Which credential names that tenant.
    named_by: NamedBy,
}

/// Which of a request's credentials names its tenant ([`resolve_for`]): the label, the
/// journal ring's standing and the bodies' share all follow the one choice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum NamedBy {
    Key,
    Token,
    #[default]
    Nothing,
}

/// A Bearer token read as a Leaf `id_token`.
#[derive(Clone, Default)]
pub enum LeafToken {
    /// No Bearer token.
    #[default]
    Missing,
    /// A Bearer token this process did not sign, or of an unknown account.
    Invalid,
    /// Signed here, for this account, expired on the sandbox clock.
    Expired(Arc<Account>),
    /// Signed here, for this account, valid now.
    Valid(Arc<Account>),
}

/// Why a control or page request has no one to act for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "Missing authentication. Provide X-API-Key (or Bearer) with a partner key, or the admin token as a Bearer token."
    )]
    MissingAuth,
    #[error("Invalid or revoked API key")]
    InvalidKey,
    #[error("Partner account is suspended or not found")]
    Suspended,
    #[error(
        "This m2m_test_ key maps to a sandbox partner id another key already uses (ids are short hashes of keys); use a different key"
    )]
    KeyCollision,
    #[error(
        "This sandbox already holds its maximum number of partners (--max-tenants); new keys are refused until the admin resets it (POST /_sandbox/reset as admin forgets every partner) or it is restarted with a higher limit. Use an existing key"
    )]
    TenantLimit,
    #[error(
        "This request is a webhook delivery (it carries X-M2M-Signature), and a delivery is never the admin: a webhook URL pointed at the control API acts for no one. Call it with a partner key, a Leaf token or the admin token"
    )]
    Delivery,
    #[error(
        "This request sends an X-API-Key or Authorization header without a credential linkbox can read in it (an empty key, or a scheme other than Bearer), and a request without credentials would be the admin: it is refused rather than made the admin. Send a partner key, Authorization: Bearer <token>, or neither header"
    )]
    UnreadableCredential,
    #[error(
        "This request comes from a web page of another origin (its Origin header), and a request without credentials is the admin only from this machine itself: no page's form or script may reset or read the sandbox. Call it with a partner key, a Leaf token or the admin token, or list the page's origin with --cors"
    )]
    CrossOrigin,
    #[error(
        "This request names a host that is not this machine (its Host header, or the host its target names), as a page that has its name rebound to this address does; a request without credentials is the admin only when it names localhost, a loopback address or --public-url's host. Call it with a partner key, a Leaf token or the admin token"
    )]
    ForeignHost,
    #[error(transparent)]
    AccountLimit(#[from] crate::store::leaf::AccountLimit),
    /// A new tenant the sandbox has no room for (`--max-stored-mib`).
    #[error(transparent)]
    StorageFull(crate::store::quota::StorageFull),
    #[error("The bearer token has expired")]
    ExpiredToken,
    #[error("This endpoint acts on one partner: call it with that partner's X-API-Key")]
    TenantRequired,
    #[error(
        "This endpoint acts on one Leaf account: call it with Authorization: Bearer <id_token>"
    )]
    LeafTokenRequired,
}

impl From<KeyError> for Refusal {
    fn from(error: KeyError) -> Refusal {
        match error {
            KeyError::Invalid => Refusal::InvalidKey,
            KeyError::Suspended => Refusal::Suspended,
            KeyError::SlugTaken => Refusal::KeyCollision,
            KeyError::TenantLimit => Refusal::TenantLimit,
            KeyError::StorageFull(full) => Refusal::StorageFull(full),
        }
    }
}

/// Who a control request acts for.
#[derive(Clone)]
pub enum Scope {
    /// Every tenant.
    Admin,
    /// One M2M partner.
    Tenant(Arc<Partner>),
    /// One Leaf account, and its tenant label `leaf:<username>`.
    Leaf(Arc<Account>, Arc<str>),
}

/// The tenant label of a Leaf account.
pub fn leaf_label(username: &str) -> String {
    format!("leaf:{username}")
}

/// Why a request without any credentials, on a sandbox without an admin token, is not the
/// admin all the same, or `None` when it may be: the admin-by-absence is meant for a person
/// at this machine (curl, the dashboard), and four kinds of request only look like one —
/// - one that sends `X-API-Key` or `Authorization` with nothing linkbox reads as a
///   credential in it (an empty key, `Bearer ` alone, a `Basic` or `Token` scheme): a CI
///   job whose secret is unset, or that misspells the scheme, meant to act as one tenant,
///   and must not reset every tenant instead;
/// - a webhook delivery (it carries `X-M2M-Signature`): any key holder can aim a
///   `callbackUrl` at the control API, and a stranger's `link.created` would reset everyone;
/// - a browser's request from a page of another origin (its `Origin` is neither the origin
///   the request names in `Host`, nor `--public-url`'s, nor one `--cors` lists): a form on
///   any site the developer visits could post to `http://127.0.0.1:8642/_sandbox/reset`;
/// - a request naming a host that is not this machine's (`Host` neither `localhost`, a
///   loopback address, nor `--public-url`'s host): a page whose name was rebound to
///   127.0.0.1 is same-origin to the browser, but still names its own host.
fn keyless_refusal(app: &App, headers: &HeaderMap) -> Option<Refusal> {
    if headers.contains_key(linkbox_contracts::m2m::webhook_headers::SIGNATURE) {
        return Some(Refusal::Delivery);
    }
    if headers.contains_key("x-api-key") || headers.contains_key(header::AUTHORIZATION) {
        return Some(Refusal::UnreadableCredential);
    }
    foreign_page(app, headers)
}

/// Why a request may come from a page that is not linkbox's own, or `None` when it cannot:
/// a browser's request from another origin, or one naming a host that is not this machine
/// (the last two kinds of [`keyless_refusal`]). The dashboard's buttons ask it whatever
/// credential their form carries: a form field, unlike a header, is one any site's page can
/// send, and a made-up `m2m_test_` key is a tenant.
pub fn foreign_page(app: &App, headers: &HeaderMap) -> Option<Refusal> {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::to_ascii_lowercase);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("null").to_ascii_lowercase();
        // A `Host` naming `--public-url`'s host without a port came through the proxy in
        // front of linkbox, which dropped it (nginx's `$host`): there the page's origin is
        // `--public-url`'s alone, not any scheme or port on that host. A `Host` with its
        // port (a browser at linkbox's own address) is compared with the `Origin` whole.
        let names_public = host.as_deref().is_some_and(|host| {
            host.parse::<http::uri::Authority>().is_ok_and(|authority| {
                authority.port().is_none()
                    && app.settings.public_host.as_deref() == Some(authority.host())
            })
        });
        let same = !names_public
            && host.as_deref().is_some_and(|host| {
                origin
                    .split_once("://")
                    .is_some_and(|(_, authority)| authority == host)
            });
        let listed = app
            .settings
            .cors
            .iter()
            .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(&origin));
        // `--public-url`'s origin is where linkbox's own pages are, behind a proxy that may
        // send another `Host` on (nginx's `$host` drops the port; some rewrite it).
        let public = app.settings.public_origin.as_deref() == Some(origin.as_str());
        if !same && !listed && !public {
            return Some(Refusal::CrossOrigin);
        }
    }
    match host {
        Some(host) if app.settings.loopback_only && !is_this_machine(app, &host) => {
            Some(Refusal::ForeignHost)
        }
        _ => None,
    }
}

/// Whether `host` (a `Host` header, maybe with its port) names this machine: `localhost` or
/// a name under it, a loopback address, or the host of `--public-url`.
fn is_this_machine(app: &App, host: &str) -> bool {
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    let name = authority.host();
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if bare
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
    {
        return true;
    }
    app.settings.public_host.as_deref() == Some(name)
}

/// Whether requests to `path` never carry a tenant's credentials, so their caller is never
/// a tenant (nor is any tenant's fault touched by them): the Leaf login, which issues the
/// token; the pages a browser visits — the M2M widget, the Leaf magic-link page, the landing
/// page; and the API documents. Each is a literal path or a whole subtree (what
/// [`crate::faults::PathPattern::confined_to`] needs); the serving layer's tests hold it to
/// the route tables.
pub fn tenantless(path: &str) -> bool {
    const PATHS: [&str; 3] = ["/", "/api/authenticate", "/openapi.json"];
    const SUBTREES: [&str; 3] = ["/widget", "/magic-link", "/docs"];
    PATHS.contains(&path)
        || SUBTREES.iter().any(|root| {
            path.strip_prefix(root)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// Resolves the caller of a request with these headers, to anything but the M2M API
/// ([`resolve_for`]).
pub fn resolve(app: &App, headers: &HeaderMap) -> Caller {
    resolve_for(app, headers, false)
}

/// Resolves the caller of a request with these headers; `m2m`: the request is to the M2M
/// API. A request carrying both a key and a Leaf token is its API's tenant's (the journal
/// entry, the faults that strike it, its share of the bodies' bound): on the M2M API the
/// key's partner, elsewhere the token's account, whom the Leaf API and the control API
/// ([`Caller::scope`]) act for. Named by the key everywhere, a Leaf request was journaled
/// under the partner, and the account's own faults never struck it.
pub fn resolve_for(app: &App, headers: &HeaderMap, m2m: bool) -> Caller {
    let bearer = bearer(headers);
    let admin_token = app.settings.admin_token.as_deref();
    let admin = admin_token.is_some() && bearer == admin_token && bearer != Some(UNREADABLE);
    let leaf = match bearer {
        None => LeafToken::Missing,
        Some(token) => leaf_token(app, token),
    };
    let key = presented_key(headers).map(|key| (key.into(), app.store.m2m().lookup(key)));
    let by_key = key.as_ref().and_then(|(_, lookup)| lookup.slug());
    let by_token = match &leaf {
        LeafToken::Valid(account) | LeafToken::Expired(account) => {
            Some(leaf_label(&account.username).into())
        }
        _ => None,
    };
    let (named_by, tenant) = match (by_key, by_token) {
        (Some(slug), _) if m2m => (NamedBy::Key, Some(slug)),
        (_, Some(label)) => (NamedBy::Token, Some(label)),
        (Some(slug), None) => (NamedBy::Key, Some(slug)),
        (None, None) => (NamedBy::Nothing, None),
    };
    Caller {
        admin,
        admin_configured: admin_token.is_some(),
        keyless: (admin_token.is_none() && bearer.is_none() && key.is_none())
            .then(|| keyless_refusal(app, headers))
            .flatten(),
        key,
        leaf,
        tenant,
        named_by,
    }
}

/// Whose journal a control request with these headers reads: its caller's, as
/// [`Caller::scope`] decides it — the admin's (every tenant's), a tenant's, or no one's (a
/// request it refuses, which must not cost a shared sandbox every tenant's lock and the
/// whole journal to be told so). A key that never wrote is read as the stranger it is,
/// making nothing.
pub fn journal_reader(app: &App, headers: &HeaderMap) -> JournalReader {
    match resolve(app, headers).scope(app) {
        Ok(Scope::Admin) => JournalReader::Admin,
        Ok(scope) => scope.slug().map_or(JournalReader::Refused, |slug| {
            JournalReader::Tenant(slug.to_owned())
        }),
        Err(_) => JournalReader::Refused,
    }
}

/// Whose journal a control request reads ([`journal_reader`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalReader {
    Admin,
    Tenant(String),
    Refused,
}

/// The tenant a request with these headers acts on when it carries credentials, in the
/// order [`resolve_for`] names it: on the M2M API the partner of its M2M key (known, or the
/// open-mode partner the key would create), or else the Leaf account its Bearer token was
/// signed for (valid or expired); elsewhere the other way round. Reads nothing but the
/// partner table and the token key, so a shared sandbox can lock the tenant before the
/// request resolves its caller against the tenant's current state. (Read in one order
/// only, a Leaf request with a partner's key beside a token linkbox never signed was
/// journaled under the partner without its lock.)
pub fn tenant_hint(app: &App, headers: &HeaderMap, m2m: bool) -> Option<String> {
    let by_key = || {
        let key = presented_key(headers)?;
        match app.store.m2m().lookup(key) {
            Lookup::Known(partner) => Some(partner.slug.to_string()),
            Lookup::New(slug) => Some(slug.to_string()),
            Lookup::Refused(KeyError::Invalid | KeyError::Suspended) => None,
            Lookup::Refused(_) => Some(crate::store::m2m::open_mode_slug(key)),
        }
    };
    let by_token = || {
        let claims = tokens::verify(app.store.leaf(), bearer(headers)?).ok()?;
        Some(leaf_label(&claims.sub))
    };
    match m2m {
        true => by_key().or_else(by_token),
        false => by_token().or_else(by_key),
    }
}

/// Whether every route that takes credentials refuses a request with these headers,
/// whatever the state of a shared sandbox: its credentials name no tenant ([`tenant_hint`]:
/// no key, or none that can be one; no token linkbox signed), and it is not the admin —
/// with an admin token, one it does not carry; without, one that is not admin by the
/// absence of credentials ([`keyless_refusal`]: it carries an unreadable or made-up
/// credential, or is a delivery or a foreign page's). Such a request reaches no tenant.
/// (Without an admin token a made-up key's control write locked every tenant of a shared
/// sandbox to be told it is refused.)
pub fn refused_whatever_the_state(app: &App, headers: &HeaderMap) -> bool {
    let names_no_tenant =
        || tenant_hint(app, headers, true).is_none() && tenant_hint(app, headers, false).is_none();
    match app.settings.admin_token.as_deref() {
        Some(admin_token) => bearer(headers) != Some(admin_token) && names_no_tenant(),
        None => names_no_tenant() && keyless_refusal(app, headers).is_some(),
    }
}

fn leaf_token(app: &App, token: &str) -> LeafToken {
    let accounts = app.store.leaf();
    let Ok(claims) = tokens::verify(accounts, token) else {
        return LeafToken::Invalid;
    };
    let Some(account) = accounts.find(&claims.sub) else {
        return LeafToken::Invalid;
    };
    if claims.exp <= app.clock.now().unix_timestamp() {
        LeafToken::Expired(account)
    } else {
        LeafToken::Valid(account)
    }
}

impl Caller {
    /// The tenant label ([`resolve_for`]): on the M2M API the slug of the key's partner
    /// (created or not), else the Leaf account of a token; elsewhere the other way round.
    pub fn tenant(&self) -> Option<&Arc<str>> {
        self.tenant.as_ref()
    }

    /// The share its bodies count in ([`crate::bodies`]): that of its tenant
    /// ([`Caller::tenant`]: the partner its key names, or the Leaf account its token was
    /// signed for), when that tenant exists;
    /// `None` (every such caller together) without credentials, or for a key or username
    /// that has never written (made up at no cost, so not a caller of its own).
    pub fn body_share(&self) -> Option<crate::bodies::Share> {
        self.existing_share().cloned()
    }

    /// Whether the tenant the request names exists: a known partner, or a Leaf account that
    /// has written or is configured ([`Caller::body_share`]).
    pub fn tenant_exists(&self) -> bool {
        self.existing_share().is_some()
    }

    /// The body share of the tenant the request names ([`Caller::tenant`], chosen as
    /// [`resolve_for`] chooses it), when that tenant exists. Read key first on every API,
    /// a Leaf request carrying a known partner's key and the token of a username made up
    /// at no cost was journaled in that username's ring as an existing tenant's, and
    /// strangers' entries pushed out other tenants' instead of going first.
    fn existing_share(&self) -> Option<&crate::bodies::Share> {
        match (self.named_by, &self.key, &self.leaf) {
            (NamedBy::Key, Some((_, Lookup::Known(partner))), _) => Some(&partner.body_share),
            (NamedBy::Token, _, LeafToken::Valid(account) | LeafToken::Expired(account))
                if account.exists() =>
            {
                Some(&account.body_share)
            }
            _ => None,
        }
    }

    /// Why [`Caller::partner`] would refuse the presented key, found without making a
    /// stranger or cloning a partner: `Some(None)` when no key was presented.
    pub fn key_refusal(&self) -> Option<Option<KeyError>> {
        let Some((_, lookup)) = &self.key else {
            return Some(None);
        };
        match lookup {
            Lookup::Known(partner) if partner.suspended => Some(Some(KeyError::Suspended)),
            Lookup::Refused(error) => Some(Some(*error)),
            Lookup::Known(_) | Lookup::New(_) => None,
        }
    }

    /// Whether the request presented an M2M key.
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The M2M partner of the presented key — for a key new in open mode, an empty
    /// stranger that a write must materialize ([`crate::store::m2m::Partners::stranger`]);
    /// `None` when no key was presented.
    pub fn partner(&self, app: &App) -> Option<Result<Arc<Partner>, KeyError>> {
        let (key, lookup) = self.key.as_ref()?;
        Some(match lookup {
            Lookup::Known(partner) => partner.check_active(),
            Lookup::Refused(error) => Err(*error),
            Lookup::New(_) => Ok(app.store.m2m().stranger(key)),
        })
    }

    /// The Bearer token read as a Leaf token.
    pub fn leaf(&self) -> &LeafToken {
        &self.leaf
    }

    /// Who a control request acts for: the admin token; a Leaf token; a partner key; or,
    /// with no admin token configured, a request with no credentials at all is admin (a
    /// sandbox on a developer's machine needs no ceremony) — unless it only looks like a
    /// person at the machine ([`keyless_refusal`]: a webhook delivery, a page of another
    /// origin, a request naming a foreign host).
    pub fn scope(&self, app: &App) -> Result<Scope, Refusal> {
        if self.admin {
            return Ok(Scope::Admin);
        }
        match &self.leaf {
            LeafToken::Valid(account) => {
                return Ok(Scope::Leaf(
                    account.clone(),
                    leaf_label(&account.username).into(),
                ));
            }
            LeafToken::Expired(_) => return Err(Refusal::ExpiredToken),
            LeafToken::Missing | LeafToken::Invalid => {}
        }
        match self.partner(app) {
            Some(partner) => Ok(Scope::Tenant(partner?)),
            None if !self.admin_configured => match self.keyless {
                Some(refusal) => Err(refusal),
                None => Ok(Scope::Admin),
            },
            None => Err(Refusal::MissingAuth),
        }
    }
}

/// Why a tenant may not move the clock under `--clock admin`, naming who the admin is on
/// this sandbox: the holder of `--admin-token`, or without one a request that carries no
/// credential.
pub fn clock_admin_only(app: &App) -> &'static str {
    if app.settings.admin_token.is_some() {
        "The sandbox clock is shared by every tenant; this sandbox runs with --clock admin, \
         so only the admin (a request with the admin token) may move it"
    } else {
        "The sandbox clock is shared by every tenant; this sandbox runs with --clock admin, \
         so only the admin may move it: this sandbox has no --admin-token, so the admin is \
         a request that carries no key or token"
    }
}

impl Scope {
    /// Whether this caller may move the shared clock (`--clock`): the admin always; a
    /// tenant only under `--clock tenants`.
    pub fn may_move_clock(&self, app: &App) -> bool {
        matches!(self, Scope::Admin) || app.settings.clock == crate::config::ClockPolicy::Tenants
    }

    /// The same scope, its tenant made real if it was a stranger: what a control endpoint
    /// that stores something for the tenant (faults, webhook settings, seeds, a restore)
    /// acts through. Refused when `--max-tenants` is reached.
    pub fn materialize(self, app: &App) -> Result<Scope, Refusal> {
        Ok(match self {
            Scope::Admin => Scope::Admin,
            Scope::Tenant(partner) => Scope::Tenant(app.store.m2m().materialize(&partner)?),
            Scope::Leaf(account, label) => {
                Scope::Leaf(app.store.leaf().materialize(&account)?, label)
            }
        })
    }

    /// The tenant's label, or `None` for admin.
    pub fn slug(&self) -> Option<&str> {
        match self {
            Scope::Admin => None,
            Scope::Tenant(partner) => Some(&partner.slug),
            Scope::Leaf(_, label) => Some(label),
        }
    }

    /// The Leaf account, for endpoints that act on exactly one.
    pub fn leaf(&self) -> Result<&Arc<Account>, Refusal> {
        match self {
            Scope::Leaf(account, _) => Ok(account),
            _ => Err(Refusal::LeafTokenRequired),
        }
    }

    /// The partner, for endpoints that act on exactly one.
    pub fn partner(&self) -> Result<&Arc<Partner>, Refusal> {
        match self {
            Scope::Admin | Scope::Leaf(..) => Err(Refusal::TenantRequired),
            Scope::Tenant(partner) => Ok(partner),
        }
    }

    /// Which webhook deliveries the caller sees.
    pub fn deliveries(&self) -> Visible<'_> {
        match self {
            Scope::Admin => Visible::All,
            Scope::Tenant(partner) => Visible::Tenant(&partner.slug),
            // Webhooks are M2M's: a Leaf account has none, so it sees none.
            Scope::Leaf(_, label) => Visible::Tenant(label),
        }
    }

    /// The Leaf account whose magic link `id` is acted on: the caller's own (another
    /// account's link is then simply not found there), or for admin the account holding
    /// the link (`None`: no account does). A partner key plays no Leaf end user.
    pub fn magic_link_owner(&self, app: &App, id: &str) -> Result<Option<Arc<Account>>, Refusal> {
        match self {
            Scope::Leaf(account, _) => Ok(Some(account.clone())),
            Scope::Admin => Ok(app.store.leaf().owner_of_link(id)),
            Scope::Tenant(_) => Err(Refusal::LeafTokenRequired),
        }
    }

    /// The partner owning `link_id`: the caller's own (another tenant's id is simply not
    /// found there), or for admin the partner whose slug the id embeds.
    pub fn link_owner(&self, app: &App, link_id: &str) -> Option<Arc<Partner>> {
        match self {
            Scope::Tenant(partner) => Some(partner.clone()),
            Scope::Leaf(..) => None,
            Scope::Admin => link_slug(link_id).and_then(|slug| app.store.m2m().by_slug(slug)),
        }
    }
}

/// The partner's slug an M2M link's id embeds (`link_{slug}_{suffix}`), whether or not
/// such a partner or link exists.
pub fn link_slug(link_id: &str) -> Option<&str> {
    link_id
        .strip_prefix("link_")
        .and_then(|rest| rest.rsplit_once('_'))
        .map(|(slug, _)| slug)
}

/// What [`presented_key`] and [`bearer`] give for a credential that is not ASCII text: one
/// was sent, so it must be refused as invalid, not read as missing. No key or token is this.
const UNREADABLE: &str = "\u{fffd}";

/// The key a request presents, if any. `X-API-Key` wins over a Bearer token.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    // A name given as text is parsed and hashed on every lookup; this one is built once.
    static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
    let api_key = headers
        .get(&X_API_KEY)
        .map(|value| value.to_str().unwrap_or(UNREADABLE))
        .map(str::trim)
        .filter(|key| !key.is_empty());
    api_key.or_else(|| bearer(headers))
}

/// The token of `Authorization: Bearer <token>`, if the request has one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes().trim_ascii();
    let space = value.iter().position(|&byte| byte == b' ')?;
    let (scheme, token) = (&value[..space], value[space + 1..].trim_ascii());
    if !scheme.eq_ignore_ascii_case(b"bearer") || token.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(token)
        .ok()
        .filter(|token| token.is_ascii());
    Some(text.unwrap_or(UNREADABLE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("a header value"));
        }
        map
    }

    /// A sandbox of the default settings: open mode, no admin token.
    fn open_app() -> App {
        App::new(crate::config::Settings::resolve(
            crate::config::Options::default(),
            "127.0.0.1:1".parse().expect("addr"),
        ))
    }

    /// A Leaf account that has written exists for the journal's rings and the bodies'
    /// shares, though its Bearer token is also read (and refused) as an M2M key; one that
    /// has not written does not.
    #[test]
    fn a_leaf_account_that_has_written_exists_though_its_token_is_no_key() {
        let app = open_app();
        let accounts = app.store.leaf();
        let now = app.clock.now();
        let token = tokens::issue(accounts, "farmco", false, now).expect("token");
        let mut map = HeaderMap::new();
        map.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
        let before = resolve(&app, &map);
        assert!(!before.tenant_exists(), "a token made up for a read");
        assert!(before.body_share().is_none());
        accounts.account("farmco").expect("written");
        let after = resolve(&app, &map);
        assert_eq!(after.tenant().map(|label| &**label), Some("leaf:farmco"));
        assert!(after.tenant_exists());
        assert!(after.body_share().is_some());
    }

    /// A request carrying a known partner's key and the token of a username that never
    /// wrote is, on the Leaf API and the control API, that username's: a tenant that does
    /// not exist, with no share of its own. On the M2M API it is the partner's.
    #[test]
    fn a_made_up_accounts_token_beside_a_known_key_names_no_existing_tenant_off_m2m() {
        let app = open_app();
        let key = "m2m_test_known000000000000000000000000000";
        let partners = app.store.m2m();
        partners
            .materialize(&partners.stranger(key))
            .expect("the key's partner made");
        let token =
            tokens::issue(app.store.leaf(), "made-up", false, app.clock.now()).expect("token");
        let mut map = headers(&[("x-api-key", key)]);
        map.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
        let leaf = resolve_for(&app, &map, false);
        assert_eq!(leaf.tenant().map(|label| &**label), Some("leaf:made-up"));
        assert!(!leaf.tenant_exists(), "a username that never wrote");
        assert!(leaf.body_share().is_none());
        let m2m = resolve_for(&app, &map, true);
        let partner = crate::store::m2m::open_mode_slug(key);
        assert_eq!(m2m.tenant().map(|label| &**label), Some(&*partner));
        assert!(m2m.tenant_exists(), "the known partner");
        app.store.leaf().account("made-up").expect("written");
        assert!(
            resolve_for(&app, &map, false).tenant_exists(),
            "written now"
        );
    }

    /// The tenant a shared sandbox locks before a request runs is the one the request is
    /// then resolved to, for every mix of a known, new or malformed key and a valid or
    /// made-up token, on each API. (A key refused for what the sandbox holds — its tenant
    /// limit, its storage, a slug taken — is hinted as the partner it would make, whose row
    /// the request locks to read that state fresh, and resolves to none.)
    #[test]
    fn the_hint_names_the_tenant_the_caller_resolves_to() {
        let app = open_app();
        let known = "m2m_test_known000000000000000000000000000";
        let partners = app.store.m2m();
        partners
            .materialize(&partners.stranger(known))
            .expect("the key's partner made");
        let token =
            tokens::issue(app.store.leaf(), "grower", false, app.clock.now()).expect("token");
        let keys = [
            None,
            Some(known),
            Some("m2m_test_new00000000000000000000000000000"),
            Some("not-a-key"),
        ];
        let tokens = [None, Some(token.as_str()), Some("not.a.token")];
        for key in keys {
            for token in tokens {
                let mut map = HeaderMap::new();
                if let Some(key) = key {
                    map.insert("x-api-key", HeaderValue::from_str(key).expect("key"));
                }
                if let Some(token) = token {
                    let value = HeaderValue::from_str(&format!("Bearer {token}"));
                    map.insert(header::AUTHORIZATION, value.expect("token"));
                }
                for m2m in [true, false] {
                    let resolved = resolve_for(&app, &map, m2m);
                    assert_eq!(
                        tenant_hint(&app, &map, m2m).as_deref(),
                        resolved.tenant().map(|label| &**label),
                        "key {key:?}, token {token:?}, m2m {m2m}"
                    );
                }
            }
        }
    }

    /// Without an admin token, a request whose credentials name no tenant is refused by
    /// every route, whatever the state; one without credentials is the admin, and one
    /// naming a tenant, known or not, may be served.
    #[test]
    fn without_an_admin_token_only_credentials_that_name_no_tenant_are_refused_at_once() {
        let app = open_app();
        let token =
            tokens::issue(app.store.leaf(), "grower", false, app.clock.now()).expect("token");
        let bearer = format!("Bearer {token}");
        for (pairs, refused) in [
            (&[][..], false),
            (&[("x-api-key", "not-a-key")][..], true),
            (&[("authorization", "Basic abc")][..], true),
            (&[("authorization", "Bearer not.a.token")][..], true),
            (
                &[("x-api-key", "m2m_test_new00000000000000000000000000000")][..],
                false,
            ),
            (&[("authorization", bearer.as_str())][..], false),
            (
                &[
                    ("x-api-key", "not-a-key"),
                    ("authorization", bearer.as_str()),
                ][..],
                false,
            ),
        ] {
            let map = headers(pairs);
            assert_eq!(refused_whatever_the_state(&app, &map), refused, "{pairs:?}");
            if refused {
                assert!(resolve(&app, &map).scope(&app).is_err(), "{pairs:?}");
            }
        }
    }

    #[test]
    fn the_api_key_header_wins_over_bearer() {
        let map = headers(&[("x-api-key", "a"), ("authorization", "Bearer b")]);
        assert_eq!(presented_key(&map), Some("a"));
    }

    #[test]
    fn a_bearer_token_is_accepted_as_the_key() {
        assert_eq!(
            presented_key(&headers(&[("authorization", "bearer k")])),
            Some("k")
        );
        assert_eq!(
            presented_key(&headers(&[("authorization", "Basic k")])),
            None
        );
        assert_eq!(presented_key(&headers(&[("x-api-key", " ")])), None);
        assert_eq!(presented_key(&HeaderMap::new()), None);
    }

    #[test]
    fn only_bearer_authorizations_carry_a_token() {
        assert_eq!(bearer(&HeaderMap::new()), None);
        assert_eq!(bearer(&headers(&[("authorization", "Basic abc")])), None);
        assert_eq!(bearer(&headers(&[("authorization", "Bearer ")])), None);
        assert_eq!(
            bearer(&headers(&[("authorization", "bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer(&headers(&[("authorization", "  Bearer   abc ")])),
            Some("abc")
        );
    }
}

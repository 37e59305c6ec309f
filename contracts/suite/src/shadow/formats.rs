//! Which values are generated (ids, tokens, URLs, timestamps) and how their format is checked:
//! the contract's patterns, compiled once; RFC 3339 through `time`; URLs through `url`; and the
//! shape of an id the contract has no pattern for.

use std::sync::OnceLock;

use regex::Regex;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::routes::Family;
use crate::Api;

/// How one value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A generated id or token: by format, never by value.
    Id(IdFormat),
    /// A generated timestamp: RFC 3339, fraction digits and zone form.
    Time,
    /// A generated URL: parses, same scheme (http and https alike).
    Url,
    /// An echoed string that embeds ids (a Leaf problem's `path`): equal once the upstream's
    /// ids are replaced by the shadow's.
    Embeds,
    /// An enum, echoed value or documented constant: equality.
    Plain,
}

/// The documented format of an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdFormat {
    LinkId,
    UserId,
    DataRequestId,
    OperationId,
    WebhookSecret,
    /// A UUID version 4 (the M2M link `token`).
    UuidV4,
    /// Any UUID (Leaf user ids).
    Uuid,
    /// A Leaf magic-link id: base64url without padding; same length on both sides too.
    LeafLinkId,
    /// A JWT: three base64url parts.
    Jwt,
    /// No documented pattern: same length and the same separators at the same places.
    Shape,
}

impl IdFormat {
    /// Whether the pair is an id the server should map (webhook secrets are not named in
    /// requests, so they are not).
    pub(crate) fn is_mapped(self) -> bool {
        !matches!(self, IdFormat::WebhookSecret)
    }
}

/// The compiled patterns; `None` only if a constant of the contract were not a valid regex,
/// which a unit test rules out (a value is then taken to fit rather than the comparison panic).
struct Patterns {
    link_id: Option<Regex>,
    user_id: Option<Regex>,
    data_request_id: Option<Regex>,
    operation_id: Option<Regex>,
    webhook_secret: Option<Regex>,
    uuid_v4: Option<Regex>,
    uuid: Option<Regex>,
    leaf_link_id: Option<Regex>,
    jwt: Option<Regex>,
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        use linkbox_contracts::m2m;
        let compile = |pattern: &str| Regex::new(pattern).ok();
        Patterns {
            link_id: compile(m2m::LINK_ID_PATTERN),
            user_id: compile(m2m::USER_ID_PATTERN),
            data_request_id: compile(m2m::DATA_REQUEST_ID_PATTERN),
            // M2M-FORMAT-OPERATION-ID: `op_<partner slug>_<6 letters or digits>`.
            operation_id: compile("^op_[a-z0-9]+_[A-Za-z0-9]{6}$"),
            webhook_secret: compile(m2m::WEBHOOK_SECRET_PATTERN),
            uuid_v4: compile(
                "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
            ),
            uuid: compile(
                "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
            ),
            leaf_link_id: compile("^[A-Za-z0-9_-]+$"),
            jwt: compile("^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*$"),
        }
    })
}

/// The kind of the value under `key` (for an array element, the array's key) in an answer of
/// `family`. `in_credentials` is true under a Leaf user's per-provider credentials object.
pub(crate) fn kind(api: Api, family: Family, key: &str, in_credentials: bool) -> Kind {
    if is_timestamp_key(key) {
        return Kind::Time;
    }
    match api {
        Api::M2m => match key {
            "linkId" => Kind::Id(IdFormat::LinkId),
            "userId" => Kind::Id(IdFormat::UserId),
            "dataRequestId" => Kind::Id(IdFormat::DataRequestId),
            "operationId" => Kind::Id(IdFormat::OperationId),
            "webhookSecret" => Kind::Id(IdFormat::WebhookSecret),
            "token" => Kind::Id(IdFormat::UuidV4),
            "url" | "replyEndpoint" => Kind::Url,
            _ => Kind::Plain,
        },
        _ => match key {
            "id" if in_credentials => Kind::Id(IdFormat::Shape),
            "id" if family.is_leaf_user() => Kind::Id(IdFormat::Uuid),
            "id" => Kind::Id(IdFormat::LeafLinkId),
            "leafUserId" => Kind::Id(IdFormat::Uuid),
            "id_token" => Kind::Id(IdFormat::Jwt),
            "link" => Kind::Url,
            "path" => Kind::Embeds,
            _ => Kind::Plain,
        },
    }
}

/// `createdAt`, `expiresAt`, `revokedAt`, ... `createdTime`, `timestamp`.
fn is_timestamp_key(key: &str) -> bool {
    key.len() > 2 && key.ends_with("At") || key == "createdTime" || key == "timestamp"
}

/// Whether `value` has the documented format.
pub(crate) fn fits(format: IdFormat, value: &str) -> bool {
    let p = patterns();
    let pattern = match format {
        IdFormat::LinkId => &p.link_id,
        IdFormat::UserId => &p.user_id,
        IdFormat::DataRequestId => &p.data_request_id,
        IdFormat::OperationId => &p.operation_id,
        IdFormat::WebhookSecret => &p.webhook_secret,
        IdFormat::UuidV4 => &p.uuid_v4,
        IdFormat::Uuid => &p.uuid,
        IdFormat::LeafLinkId => &p.leaf_link_id,
        IdFormat::Jwt => &p.jwt,
        IdFormat::Shape => return true,
    };
    pattern
        .as_ref()
        .is_none_or(|pattern| pattern.is_match(value))
}

/// Whether two ids of this format agree: both fit the pattern (or both miss it with the same
/// shape), and where the format is only a shape, the shapes are equal.
pub(crate) fn same_id_format(format: IdFormat, upstream: &str, linkbox: &str) -> bool {
    let (up, lb) = (fits(format, upstream), fits(format, linkbox));
    if up != lb {
        return false;
    }
    match format {
        IdFormat::Shape | IdFormat::LeafLinkId => same_shape(upstream, linkbox),
        _ if !up => same_shape(upstream, linkbox),
        _ => true,
    }
}

/// Same length, and every character that is not a letter or digit (a separator) at the same
/// place: `op_x_AB12cd` and `op_y_99zzQQ` agree; `ab-cd` and `abcde` do not.
fn same_shape(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || x.is_ascii_alphanumeric() && y.is_ascii_alphanumeric())
}

/// What of a timestamp's form the contract fixes: the separator of date and time (`T`, or
/// the `t` or space RFC 3339 allows), the number of fraction digits and the zone as written
/// (`Z`, `z`, `+00:00`, ...), as the suite's pattern of linkbox's form reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeForm<'a> {
    pub(crate) separator: u8,
    pub(crate) fraction_digits: usize,
    pub(crate) zone: &'a str,
}

/// Parses an RFC 3339 timestamp (through `time`) and reads its form.
pub(crate) fn timestamp(text: &str) -> Option<(OffsetDateTime, TimeForm<'_>)> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    // RFC 3339 (which `time` just accepted) puts the seconds at 17..19; then an optional
    // fraction, then the zone.
    let rest = text.get(19..)?;
    let fraction_digits = rest
        .strip_prefix('.')
        .map_or(0, |f| f.bytes().take_while(u8::is_ascii_digit).count());
    let zone = &rest[if fraction_digits > 0 {
        1 + fraction_digits
    } else {
        0
    }..];
    Some((
        at,
        TimeForm {
            separator: text.as_bytes().get(10).copied().unwrap_or_default(),
            fraction_digits,
            zone,
        },
    ))
}

/// Whether two timestamps have the same form; `false` when one does not parse.
pub(crate) fn same_time_form(upstream: &str, linkbox: &str) -> bool {
    match (timestamp(upstream), timestamp(linkbox)) {
        (Some((_, up)), Some((_, lb))) => up == lb,
        (None, None) => true,
        _ => false,
    }
}

/// Whether two generated URLs agree: both parse, with the same scheme — where `http` and
/// `https` count as one: the vendor serves its pages over https while a shadowing linkbox
/// usually serves its own over http on loopback, which is no drift.
pub(crate) fn same_url_form(upstream: &str, linkbox: &str) -> bool {
    let web = |scheme: &str| matches!(scheme, "http" | "https");
    match (url::Url::parse(upstream), url::Url::parse(linkbox)) {
        (Ok(up), Ok(lb)) => up.scheme() == lb.scheme() || web(up.scheme()) && web(lb.scheme()),
        (Err(_), Err(_)) => true,
        _ => false,
    }
}

/// The path segments of a URL (empty when it does not parse).
pub(crate) fn url_segments(text: &str) -> Vec<String> {
    url::Url::parse(text)
        .ok()
        .and_then(|url| {
            url.path_segments()
                .map(|segments| segments.map(str::to_owned).collect())
        })
        .unwrap_or_default()
}

/// Whether every pattern compiled.
#[cfg(test)]
pub(crate) fn all_compiled() -> bool {
    let p = patterns();
    [
        &p.link_id,
        &p.user_id,
        &p.data_request_id,
        &p.operation_id,
        &p.webhook_secret,
        &p.uuid_v4,
        &p.uuid,
        &p.leaf_link_id,
        &p.jwt,
    ]
    .iter()
    .all(|pattern| pattern.is_some())
}

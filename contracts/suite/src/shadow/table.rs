//! Which fact of `docs/contract/` a difference contradicts: a table from (endpoint, rule,
//! pointer) to fact ids, each id checked at compile time against the pages, plus the documented
//! messages and titles (a message names its fact better than its place does), and the `[doc]`
//! or `[design]` source of each fact, read from the catalogue once.

use std::collections::HashMap;
use std::sync::OnceLock;

use super::Rule;
use crate::{Api, Source};

/// One row: the first row that matches a difference names its fact.
pub(crate) struct Entry {
    api: Api,
    /// `METHOD /template` with `*` for any one segment (a method included) and a trailing `**`
    /// for any rest; `*` alone for every endpoint.
    endpoint: &'static str,
    rules: &'static [Rule],
    /// A JSON pointer (`/data/expiresAt`, `header:location`) with the same wildcards.
    pointer: &'static str,
    /// For [`Rule::Status`]: a status one of the two sides answered; 0 for any.
    status: u16,
    fact: &'static str,
}

/// A table row whose fact id must be a fact of the pages, or the build fails.
macro_rules! row {
    ($api:ident, $endpoint:literal, [$($rule:ident),+], $pointer:literal, $status:literal => $fact:literal) => {
        Entry {
            api: Api::$api,
            endpoint: $endpoint,
            rules: &[$(Rule::$rule),+],
            pointer: $pointer,
            status: $status,
            fact: {
                const _: () = assert!(
                    crate::facts::known($fact),
                    concat!("unknown fact id `", $fact, "`: not a fact of docs/contract/*.md")
                );
                $fact
            },
        }
    };
}

/// A documented text (message, title) and its fact, the id checked at compile time.
macro_rules! text {
    ($text:expr => $fact:literal) => {
        ($text, {
            const _: () = assert!(
                crate::facts::known($fact),
                concat!("unknown fact id `", $fact, "`")
            );
            $fact
        })
    };
}

/// Rows are read in order: specific before general.
static TABLE: &[Entry] = &[
    // ---- M2M statuses.
    row!(M2m, "*", [Status], "", 401 => "M2M-AUTH-INVALID-KEY-STATUS"),
    row!(M2m, "*", [Status], "", 429 => "M2M-RATE-OTHER"),
    row!(M2m, "*", [Status], "", 405 => "M2M-ENVELOPE-WRONG-METHOD-ALLOW"),
    row!(M2m, "*", [Status], "", 413 => "M2M-ENVELOPE-TOO-LARGE"),
    row!(M2m, "POST /partner/links", [Status], "", 409 => "M2M-LINK-ONE-ACTIVE"),
    row!(M2m, "POST /partner/links", [Status], "", 0 => "M2M-CREATE-STATUS"),
    row!(M2m, "GET /partner/links", [Status], "", 400 => "M2M-LIST-BAD-QUERY"),
    row!(M2m, "GET /partner/links", [Status], "", 0 => "M2M-LIST-SHAPE"),
    row!(M2m, "GET /partner/links/{linkId}", [Status], "", 404 => "M2M-DETAIL-UNKNOWN"),
    row!(M2m, "GET /partner/links/{linkId}", [Status], "", 0 => "M2M-DETAIL-FIELDS"),
    row!(M2m, "POST /partner/links/{linkId}/revoke", [Status], "", 404 => "M2M-REVOKE-UNKNOWN"),
    row!(M2m, "POST /partner/links/{linkId}/revoke", [Status], "", 400 => "M2M-REVOKE-TWICE"),
    row!(M2m, "POST /partner/links/{linkId}/revoke", [Status], "", 0 => "M2M-REVOKE-STATUS"),
    row!(M2m, "PUT /partner/data-requests/{dataRequestId}", [Status], "", 404 => "M2M-DATA-REQUEST-UNKNOWN"),
    row!(M2m, "PUT /partner/data-requests/{dataRequestId}", [Status], "", 0 => "M2M-DATA-REQUEST-FULFIL"),
    row!(M2m, "POST /partner/webhooks/config/regenerate-secret", [Status], "", 0 => "M2M-SECRET-NO-ENVELOPE"),
    row!(M2m, "*", [Status], "", 404 => "M2M-ENVELOPE-UNKNOWN-PATH"),
    row!(M2m, "*", [MediaType], "", 0 => "M2M-ENVELOPE-CONTENT-TYPE"),
    // ---- M2M headers.
    row!(M2m, "*", [Header], "header:allow", 0 => "M2M-ENVELOPE-WRONG-METHOD-ALLOW"),
    row!(M2m, "*", [Header], "header:retry-after", 0 => "M2M-RATE-RETRY-AFTER"),
    // ---- M2M envelopes.
    row!(M2m, "*", [Value, Type], "/success", 0 => "M2M-ENVELOPE-SUCCESS"),
    row!(M2m, "*", [MissingField, UnexpectedField, Type], "/error/**", 0 => "M2M-ENVELOPE-ERROR-EXACT"),
    row!(M2m, "POST /partner/webhooks/config/regenerate-secret", [MissingField, UnexpectedField, Type], "/**", 0 => "M2M-SECRET-NO-ENVELOPE"),
    row!(M2m, "POST /partner/webhooks/config/regenerate-secret", [Format], "/webhookSecret", 0 => "M2M-SECRET-FORMAT"),
    row!(M2m, "POST /partner/webhooks/config/regenerate-secret", [Value], "/message", 0 => "M2M-SECRET-MESSAGE"),
    row!(M2m, "*", [MissingField, UnexpectedField], "/*", 0 => "M2M-ENVELOPE-SUCCESS"),
    // ---- M2M formats, wherever they appear.
    row!(M2m, "*", [Format], "/**/linkId", 0 => "M2M-FORMAT-LINK-ID"),
    row!(M2m, "*", [Format], "/**/userId", 0 => "M2M-FORMAT-USER-ID"),
    row!(M2m, "*", [Format], "/**/operationId", 0 => "M2M-FORMAT-OPERATION-ID"),
    row!(M2m, "*", [Format], "/**/dataRequestId", 0 => "M2M-FORMAT-DATA-REQUEST-ID"),
    row!(M2m, "*", [Format], "/**/token", 0 => "M2M-FORMAT-TOKEN"),
    row!(M2m, "*", [Format], "/**/url", 0 => "M2M-FORMAT-URL"),
    row!(M2m, "*", [Format], "/**/*At", 0 => "M2M-FORMAT-TIMESTAMP"),
    // ---- Create.
    row!(M2m, "POST /partner/links", [Relation], "/data/expiresAt", 0 => "M2M-CREATE-DEFAULT-EXPIRY"),
    row!(M2m, "POST /partner/links", [Value], "/data/status", 0 => "M2M-CREATE-STATUS-CREATED"),
    row!(M2m, "POST /partner/links", [Value], "/data/referenceId", 0 => "M2M-CREATE-REFERENCE-ID-ECHOED"),
    row!(M2m, "POST /partner/links", [MissingField, UnexpectedField, Type], "/data/**", 0 => "M2M-CREATE-FIELDS"),
    // ---- List.
    row!(M2m, "GET /partner/links", [Paging], "/**", 0 => "M2M-LIST-PAGINATION-ARITHMETIC"),
    row!(M2m, "GET /partner/links", [Value], "/data/pagination/*", 0 => "M2M-LIST-DEFAULT-PAGING"),
    row!(M2m, "GET /partner/links", [MissingField, UnexpectedField, Type], "/data/pagination/**", 0 => "M2M-LIST-SHAPE"),
    row!(M2m, "GET /partner/links", [MissingField, UnexpectedField, Type], "/data/*", 0 => "M2M-LIST-SHAPE"),
    row!(M2m, "GET /partner/links", [UnexpectedField], "/data/items/*/token", 0 => "M2M-LIST-ITEM-NO-TOKEN"),
    row!(M2m, "GET /partner/links", [MissingField, UnexpectedField], "/data/items/*/*", 0 => "M2M-LIST-ITEM-FIELDS"),
    row!(M2m, "GET /partner/links", [Type], "/data/items/*/*", 0 => "M2M-LIST-ITEM-NULLS"),
    row!(M2m, "GET /partner/links", [Relation], "/data/items/*/expiresAt", 0 => "M2M-READ-DEFAULT-EXPIRY"),
    row!(M2m, "GET /partner/links", [Value], "/data/items/*/userData/**", 0 => "M2M-LIST-ITEM-USER-DATA"),
    row!(M2m, "GET /partner/links", [Value], "/data/items/*/status", 0 => "M2M-LINK-STATUSES"),
    // ---- Detail.
    row!(M2m, "GET /partner/links/{linkId}", [Relation], "/data/expiresAt", 0 => "M2M-READ-DEFAULT-EXPIRY"),
    row!(M2m, "GET /partner/links/{linkId}", [Relation], "/data/openedAt", 0 => "M2M-LINK-OPEN-SETS-OPENED"),
    row!(M2m, "GET /partner/links/{linkId}", [Relation], "/data/revokedAt", 0 => "M2M-REVOKE-DETAIL"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/flow", 0 => "M2M-CREATE-FLOW-DEFAULT"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/language", 0 => "M2M-CREATE-LANGUAGE"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/theme", 0 => "M2M-CREATE-THEME"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/metadata/**", 0 => "M2M-CREATE-METADATA"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/callbackUrl", 0 => "M2M-CREATE-CALLBACK-HTTPS"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/userData/**", 0 => "M2M-CREATE-USER-DATA"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/revokeReason", 0 => "M2M-REVOKE-REASON"),
    row!(M2m, "GET /partner/links/{linkId}", [Value], "/data/status", 0 => "M2M-LINK-STATUSES"),
    row!(M2m, "GET /partner/links/{linkId}", [MissingField, UnexpectedField], "/data/*", 0 => "M2M-DETAIL-FIELDS"),
    row!(M2m, "GET /partner/links/{linkId}", [Type], "/data/*", 0 => "M2M-DETAIL-NULLS"),
    // ---- Revoke and data requests.
    row!(M2m, "POST /partner/links/{linkId}/revoke", [Value, MissingField, UnexpectedField, Type], "/data/**", 0 => "M2M-REVOKE-STATUS"),
    row!(M2m, "POST /partner/links/{linkId}/revoke", [Relation], "/data/**", 0 => "M2M-REVOKE-STATUS"),
    row!(M2m, "PUT /partner/data-requests/{dataRequestId}", [Value, MissingField, UnexpectedField, Type], "/data/**", 0 => "M2M-DATA-REQUEST-FULFIL"),
    // ---- Leaf statuses.
    row!(Leaf, "*", [Status], "", 401 => "LEAF-AUTH-NO-TOKEN"),
    row!(Leaf, "*", [Status], "", 405 => "LEAF-PROBLEM-WRONG-METHOD"),
    row!(Leaf, "*", [Status], "", 415 => "LEAF-PROBLEM-UNSUPPORTED-TYPE"),
    row!(Leaf, "POST /api/authenticate", [Status], "", 0 => "LEAF-AUTH-AUTHENTICATE"),
    row!(Leaf, "POST /services/widgets/api/magic-link/**", [Status], "", 404 => "LEAF-CREATE-UNKNOWN-USER"),
    row!(Leaf, "POST /services/widgets/api/magic-link/**", [Status], "", 0 => "LEAF-CREATE-STATUS"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*/{magicLinkId}", [Status], "", 404 => "LEAF-GET-UNKNOWN"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*/{magicLinkId}", [Status], "", 0 => "LEAF-GET-FIELDS"),
    row!(Leaf, "DELETE /services/widgets/api/magic-link/*/{magicLinkId}", [Status], "", 404 => "LEAF-DELETE-THEN-404"),
    row!(Leaf, "DELETE /services/widgets/api/magic-link/*/{magicLinkId}", [Status], "", 0 => "LEAF-DELETE-204"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*", [Status], "", 400 => "LEAF-LIST-BAD-PAGING"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*", [Status], "", 0 => "LEAF-LIST-BARE-ARRAY"),
    row!(Leaf, "POST /services/usermanagement/api/users", [Status], "", 400 => "LEAF-USERS-CREATE-REQUIRED"),
    row!(Leaf, "POST /services/usermanagement/api/users", [Status], "", 0 => "LEAF-USERS-CREATE-STATUS"),
    row!(Leaf, "GET /services/usermanagement/api/users", [Status], "", 0 => "LEAF-USERS-LIST"),
    row!(Leaf, "GET /services/usermanagement/api/users/{id}", [Status], "", 0 => "LEAF-USERS-GET"),
    row!(Leaf, "PUT /services/usermanagement/**", [Status], "", 0 => "LEAF-USERS-PUT"),
    row!(Leaf, "DELETE /services/usermanagement/api/users/{id}", [Status], "", 0 => "LEAF-USERS-DELETE"),
    row!(Leaf, "*", [Status], "", 404 => "LEAF-PROBLEM-UNKNOWN-PATH"),
    // ---- Leaf headers.
    row!(Leaf, "*", [Header], "header:allow", 0 => "LEAF-PROBLEM-ALLOW-HEADER"),
    row!(Leaf, "POST /services/usermanagement/api/users", [Header], "header:location", 0 => "LEAF-USERS-CREATE-LOCATION"),
    row!(Leaf, "GET /services/usermanagement/api/users", [Header, Paging], "**", 0 => "LEAF-USERS-PAGED"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*", [Header, Paging], "header:x-total-count", 0 => "LEAF-LIST-TOTAL-COUNT-HEADER"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*", [Header, Paging], "header:link", 0 => "LEAF-LIST-LINK-HEADER"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*", [Paging], "**", 0 => "LEAF-LIST-PAGED"),
    // ---- Problems (error answers have no other `/type`, `/detail`, ... at the top).
    row!(Leaf, "*", [Value], "/type", 0 => "LEAF-PROBLEM-SHAPE"),
    row!(Leaf, "*", [Value], "/status", 0 => "LEAF-PROBLEM-SHAPE"),
    row!(Leaf, "*", [Value], "/detail", 0 => "LEAF-PROBLEM-SHAPE"),
    row!(Leaf, "*", [Value], "/title", 0 => "LEAF-PROBLEM-TITLE-REASON"),
    row!(Leaf, "*", [Value], "/path", 0 => "LEAF-PROBLEM-PATH"),
    row!(Leaf, "*", [Value], "/message", 0 => "LEAF-PROBLEM-MESSAGE"),
    row!(Leaf, "*", [Value, MissingField, UnexpectedField, Type], "/fieldErrors/**", 0 => "LEAF-PROBLEM-FIELD-ERRORS"),
    // ---- Leaf formats.
    row!(Leaf, "POST /api/authenticate", [Format], "/id_token", 0 => "LEAF-AUTH-JWT"),
    row!(Leaf, "POST /api/authenticate", [MissingField, UnexpectedField, Type], "/**", 0 => "LEAF-AUTH-AUTHENTICATE"),
    row!(Leaf, "POST /services/widgets/api/magic-link/**", [Format], "/expiresAt", 0 => "LEAF-FORMAT-CREATE-TIMESTAMP"),
    row!(Leaf, "*", [Format], "/**/*At", 0 => "LEAF-FORMAT-GET-TIMESTAMPS"),
    row!(Leaf, "* /services/widgets/**", [Format], "/**/id", 0 => "LEAF-FORMAT-ID"),
    row!(Leaf, "* /services/usermanagement/**", [Format], "/**/id", 0 => "LEAF-USERS-CREATE"),
    row!(Leaf, "*", [Format], "/**/leafUserId", 0 => "LEAF-FORMAT-LEAF-USER-ID"),
    row!(Leaf, "*", [Format], "/**/link", 0 => "LEAF-FORMAT-LINK"),
    // ---- Magic links.
    row!(Leaf, "POST /services/widgets/api/magic-link/**", [MissingField, UnexpectedField, Type], "/*", 0 => "LEAF-CREATE-FIELDS"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*", [Relation], "/*/expiresAt", 0 => "LEAF-READ-DEFAULT-EXPIRES-IN"),
    row!(Leaf, "* /services/widgets/**", [Relation], "/**/expiresAt", 0 => "LEAF-CREATE-EXPIRES-IN-DEFAULT"),
    row!(Leaf, "* /services/widgets/**", [Relation], "/**/lastAccessedAt", 0 => "LEAF-USAGE-ACCESS-COUNTS"),
    row!(Leaf, "* /services/widgets/**", [Value, Type], "/**/settings/**", 0 => "LEAF-SETTINGS-DEFAULTS"),
    row!(Leaf, "* /services/widgets/**", [Value, Type], "/**/maxUsage", 0 => "LEAF-GET-USAGE-DEFAULTS"),
    row!(Leaf, "* /services/widgets/**", [Value, Type], "/**/usageCount", 0 => "LEAF-GET-USAGE-DEFAULTS"),
    row!(Leaf, "* /services/widgets/**", [Type], "/**/lastAccessedAt", 0 => "LEAF-GET-USAGE-DEFAULTS"),
    row!(Leaf, "* /services/widgets/**", [Value], "/**/widget", 0 => "LEAF-GET-WIDGET"),
    row!(Leaf, "* /services/widgets/**", [Value], "/**/allowedProviders/**", 0 => "LEAF-PROVIDER-ALLOWED-DEFAULT"),
    row!(Leaf, "* /services/widgets/**", [Value], "/**/provider", 0 => "LEAF-AUTHENTICATION-PROVIDER-VALUES"),
    row!(Leaf, "GET /services/widgets/api/magic-link/*", [MissingField, UnexpectedField, Type], "/*/**", 0 => "LEAF-LIST-BARE-ARRAY"),
    row!(Leaf, "* /services/widgets/**", [MissingField, UnexpectedField, Type], "/**", 0 => "LEAF-GET-FIELDS"),
    // ---- Users.
    row!(Leaf, "* /services/usermanagement/**", [Value, MissingField, UnexpectedField, Type], "/**/*Credentials/**", 0 => "LEAF-USERS-CREDENTIALS-NULL"),
    row!(Leaf, "PUT /services/usermanagement/**", [Value, MissingField, UnexpectedField, Type], "/**", 0 => "LEAF-USERS-PUT"),
    row!(Leaf, "* /services/usermanagement/**", [Value, MissingField, UnexpectedField, Type], "/**", 0 => "LEAF-USERS-GET"),
    row!(Leaf, "*", [MissingField, UnexpectedField, Type], "/*", 0 => "LEAF-PROBLEM-SHAPE"),
];

/// M2M error messages (and the code that goes with them) by their fact.
fn m2m_messages() -> &'static [(&'static str, &'static str)] {
    use linkbox_contracts::m2m::messages as m;
    const MESSAGES: &[(&str, &str)] = &[
        text!(m::MISSING_AUTH => "M2M-AUTH-NO-KEY-MESSAGE"),
        text!(m::INVALID_API_KEY => "M2M-AUTH-INVALID-KEY-MESSAGE"),
        text!(m::PARTNER_SUSPENDED => "M2M-AUTH-SUSPENDED"),
        text!(m::ACTIVE_LINK_EXISTS => "M2M-LINK-ONE-ACTIVE-CODE"),
        text!(m::LINK_EXPIRED => "M2M-REVOKE-EXPIRED"),
        text!(m::REFERENCE_ID_MISMATCH => "M2M-DATA-REQUEST-MISMATCH"),
        text!(m::RATE_LIMITED => "M2M-RATE-BODY"),
        text!(m::INVALID_JSON => "M2M-ENVELOPE-BAD-JSON"),
        text!(m::CONTENT_TYPE => "M2M-ENVELOPE-CONTENT-TYPE-MESSAGE"),
        text!(m::BODY_NOT_OBJECT => "M2M-ENVELOPE-BODY-NOT-OBJECT"),
        text!(m::BODY_TOO_LARGE => "M2M-ENVELOPE-TOO-LARGE"),
        text!(m::REFERENCE_ID_REQUIRED => "M2M-CREATE-REFERENCE-ID-REQUIRED"),
        text!(m::REFERENCE_ID_TOO_LONG => "M2M-CREATE-REFERENCE-ID-MAX-MESSAGE"),
        text!(m::EXPIRES_IN_MINUTES => "M2M-CREATE-EXPIRY-MESSAGE"),
        text!(m::LANGUAGE => "M2M-CREATE-LANGUAGE-MESSAGE"),
        text!(m::CALLBACK_URL => "M2M-CREATE-CALLBACK-MESSAGE"),
        text!(m::METADATA => "M2M-CREATE-METADATA-MESSAGE"),
        text!(m::USER_DATA => "M2M-CREATE-USER-DATA-MESSAGE"),
        text!(m::PAYMENT_METHOD_REQUIRED => "M2M-CREATE-PAYMENT-METHOD-MESSAGE"),
        text!(m::LINK_NOT_FOUND => "M2M-DETAIL-NOT-FOUND-MESSAGE"),
        text!(m::DATA_REQUEST_NOT_FOUND => "M2M-DATA-REQUEST-UNKNOWN"),
        text!(m::ONLY_ACTIVE_REVOCABLE => "M2M-REVOKE-TWICE-MESSAGE"),
        text!(m::DATA_REQUEST_FULFILLED => "M2M-DATA-REQUEST-FULFILLED-TWICE"),
        text!(m::DATA_REQUEST_FULFILLED_OK => "M2M-DATA-REQUEST-FULFIL-MESSAGE"),
        text!(m::USER_DATA_REQUIRED => "M2M-DATA-REQUEST-USER-DATA-REQUIRED"),
        text!(m::REGENERATED_SECRET => "M2M-SECRET-MESSAGE"),
        text!("The theme field must be a string" => "M2M-CREATE-THEME-MESSAGE"),
        text!("The flow field must be one of" => "M2M-CREATE-FLOW-MESSAGE"),
        text!("Cannot " => "M2M-ENVELOPE-UNKNOWN-PATH-CODE"),
    ];
    MESSAGES
}

/// Leaf problem titles by their fact.
fn leaf_titles() -> &'static [(&'static str, &'static str)] {
    use linkbox_contracts::leaf::messages as m;
    const TITLES: &[(&str, &str)] = &[
        text!(m::MAGIC_LINK_NOT_FOUND => "LEAF-PROBLEM-NOT-FOUND-TITLE"),
        text!(m::LEAF_USER_NOT_FOUND => "LEAF-PROBLEM-UNKNOWN-USER-TITLE"),
        text!(m::METHOD_ARGUMENT_NOT_VALID => "LEAF-PROBLEM-CONSTRAINT-TITLE"),
    ];
    TITLES
}

/// The fact of a documented text: the text itself, or failing that the first text of the
/// table it opens with (messages that name the request's values, such as `Cannot GET /...`).
fn by_text(table: &[(&'static str, &'static str)], text: &str) -> Option<&'static str> {
    table
        .iter()
        .find(|(known, _)| text == *known)
        .or_else(|| table.iter().find(|(known, _)| text.starts_with(known)))
        .map(|(_, fact)| *fact)
}

/// What the fact lookup knows of one difference.
pub(crate) struct Query<'a> {
    pub(crate) api: Api,
    pub(crate) endpoint: &'a str,
    pub(crate) rule: Rule,
    pub(crate) pointer: &'a str,
    pub(crate) statuses: (u16, u16),
    pub(crate) upstream: &'a serde_json::Value,
    pub(crate) linkbox: &'a serde_json::Value,
    /// The request set `expiresInMinutes` (M2M) or `expiresIn` (Leaf).
    pub(crate) expiry_sent: bool,
}

/// A fact id named in code rather than in the table, checked at compile time all the same.
macro_rules! checked_id {
    ($fact:literal) => {{
        const _: () = assert!(
            crate::facts::known($fact),
            concat!("unknown fact id `", $fact, "`")
        );
        $fact
    }};
}

/// The fact a difference contradicts, if the contract has one.
pub(crate) fn fact(query: &Query<'_>) -> Option<&'static str> {
    let texts = |table: &[(&'static str, &'static str)]| {
        [query.upstream, query.linkbox]
            .into_iter()
            .filter_map(|value| value.as_str())
            .find_map(|text| by_text(table, text))
    };
    match (query.api, query.rule, query.pointer) {
        (Api::M2m, Rule::Value, pointer)
            if pointer == "/error/code" || pointer.ends_with("/message") =>
        {
            if let Some(fact) = texts(m2m_messages()) {
                return Some(fact);
            }
            if pointer == "/error/code"
                && let Some(fact) = m2m_code_fact(query)
            {
                return Some(fact);
            }
        }
        (Api::Leaf, Rule::Value, "/title") => {
            if let Some(fact) = texts(leaf_titles()) {
                return Some(fact);
            }
        }
        (Api::Leaf, Rule::MediaType, _) => {
            return if query.statuses.0 >= 400 || query.statuses.1 >= 400 {
                Some(checked_id!("LEAF-PROBLEM-CONTENT-TYPE"))
            } else if glob("POST /services/widgets/api/magic-link/**", query.endpoint) {
                Some(checked_id!("LEAF-CREATE-CONTENT-TYPE"))
            } else {
                None
            };
        }
        (Api::M2m, Rule::Relation, "/data/expiresAt") if query.expiry_sent => {
            return Some(checked_id!("M2M-CREATE-EXPIRY-HONOURED"));
        }
        (Api::Leaf, Rule::Relation, _) if query.expiry_sent => {
            return Some(checked_id!("LEAF-CREATE-EXPIRES-IN-KEPT"));
        }
        _ => {}
    }
    TABLE
        .iter()
        .find(|entry| {
            entry.api == query.api
                && entry.rules.contains(&query.rule)
                && (entry.status == 0
                    || entry.status == query.statuses.0
                    || entry.status == query.statuses.1)
                && glob(entry.endpoint, query.endpoint)
                && glob(entry.pointer, query.pointer)
        })
        .map(|entry| entry.fact)
}

/// The fact a differing M2M error code contradicts, read off the code linkbox answered
/// where the contract documents it: a code is no message, so the message table cannot
/// name it.
fn m2m_code_fact(query: &Query<'_>) -> Option<&'static str> {
    let code = query.linkbox.as_str()?;
    Some(match (query.statuses.1, code, query.endpoint) {
        (401, "UNAUTHORIZED", _) => checked_id!("M2M-AUTH-NO-KEY-CODE"),
        (401, "INVALID_API_KEY", _) => checked_id!("M2M-AUTH-INVALID-KEY-CODE"),
        (409, "ACTIVE_LINK_EXISTS", "POST /partner/links") => {
            checked_id!("M2M-LINK-ONE-ACTIVE-CODE")
        }
        (400, "INVALID_REQUEST", "POST /partner/links/{linkId}/revoke") => {
            checked_id!("M2M-REVOKE-TWICE")
        }
        _ => return None,
    })
}

/// Whether `text` fits `pattern`: `*` alone matches everything; otherwise both are split at `/`
/// (and, for endpoints, the method's space too), `*` matches one segment, `*At` any segment
/// ending `At`, and `**` any number of segments.
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let pattern: Vec<&str> = pattern.split(['/', ' ']).collect();
    let text: Vec<&str> = text.split(['/', ' ']).collect();
    matches(&pattern, &text)
}

fn matches(pattern: &[&str], text: &[&str]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((&"**", rest)) => (0..=text.len()).any(|skip| matches(rest, &text[skip..])),
        Some((want, rest)) => match text.split_first() {
            None => false,
            Some((got, text_rest)) => segment(want, got) && matches(rest, text_rest),
        },
    }
}

fn segment(want: &str, got: &str) -> bool {
    if want == "*" {
        return true;
    }
    if let Some(suffix) = want.strip_prefix('*') {
        return got.ends_with(suffix);
    }
    want == got
}

/// `[doc]` or not, per fact id, from the catalogue (parsed once).
pub(crate) fn is_doc(fact: &str) -> bool {
    static SOURCES: OnceLock<HashMap<&'static str, bool>> = OnceLock::new();
    SOURCES
        .get_or_init(|| {
            crate::facts::catalogue()
                .into_iter()
                .map(|fact| (fact.id, fact.source == Source::Doc))
                .collect()
        })
        .get(fact)
        .copied()
        .unwrap_or(false)
}

#[cfg(test)]
pub(crate) fn rows() -> usize {
    TABLE.len()
}

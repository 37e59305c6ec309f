//! Which fact of `docs/contract/` a difference contradicts: a table from (endpoint, rule,
//! pointer) to fact ids, each id checked at compile time against the pages; before it, the
//! error situations — what went wrong, as the contract's answer words it (an M2M message, a
//! Leaf problem's detail or violations) — with the facts of their status, code and words,
//! since a status or a code alone names no situation (a 401 is a missing key or a bad one,
//! `INVALID_REQUEST` a dozen refusals); and the `[doc]` or `[design]` source of each fact,
//! read from the catalogue once.

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
    /// The answers the row is for.
    status: Status,
    fact: &'static str,
}

/// Which answers a row is for.
#[derive(Debug, Clone, Copy)]
enum Status {
    Any,
    /// A status one of the two sides answered (for [`Rule::Status`]).
    Is(u16),
    /// Error answers (4xx, 5xx): their bodies are the API's error shape, whose facts are not
    /// those of the endpoint's success body.
    Error,
}

impl Status {
    /// `0` for any status.
    const fn from(status: u16) -> Status {
        if status == 0 {
            Status::Any
        } else {
            Status::Is(status)
        }
    }

    fn fits(self, (upstream, linkbox): (u16, u16)) -> bool {
        match self {
            Status::Any => true,
            Status::Is(status) => status == upstream || status == linkbox,
            Status::Error => upstream >= 400 || linkbox >= 400,
        }
    }
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

/// A table row whose fact id must be a fact of the pages, or the build fails: `401 =>` for a
/// status, `0 =>` for any answer, `error =>` for error answers.
macro_rules! row {
    ($api:ident, $endpoint:literal, [$($rule:ident),+], $pointer:literal, error => $fact:literal) => {
        row!(@ $api, $endpoint, [$($rule),+], $pointer, Status::Error, $fact)
    };
    ($api:ident, $endpoint:literal, [$($rule:ident),+], $pointer:literal, $status:literal => $fact:literal) => {
        row!(@ $api, $endpoint, [$($rule),+], $pointer, Status::from($status), $fact)
    };
    (@ $api:ident, $endpoint:literal, [$($rule:ident),+], $pointer:literal, $status:expr, $fact:literal) => {
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

/// What the contract's answer says went wrong.
#[derive(Debug, Clone, Copy)]
enum Says {
    /// An M2M `error.message`: this text, or one opening with it (`Cannot GET /...`).
    Message(&'static str),
    /// A Leaf problem's `detail`, or its opening.
    Detail(&'static str),
    /// One of a Leaf problem's `fieldErrors`: its `field`, and its `message` or the message's
    /// opening (`""` for any).
    Violation(&'static str, &'static str),
}

impl Says {
    fn fits(self, body: &serde_json::Value) -> bool {
        let opens = |text: Option<&str>, known: &str| {
            text.is_some_and(|text| text == known || text.starts_with(known))
        };
        match self {
            Says::Message(known) => opens(
                body.pointer("/error/message").and_then(|v| v.as_str()),
                known,
            ),
            Says::Detail(known) => opens(body.get("detail").and_then(|v| v.as_str()), known),
            Says::Violation(field, known) => body
                .get("fieldErrors")
                .and_then(|v| v.as_array())
                .is_some_and(|errors| {
                    errors.iter().any(|error| {
                        error.get("field").and_then(|v| v.as_str()) == Some(field)
                            && opens(error.get("message").and_then(|v| v.as_str()), known)
                    })
                }),
        }
    }
}

/// What the request's JSON body holds when a situation is the one: a message that stands
/// for two situations (`The referenceId field is required`, for none and for an empty one)
/// is told apart by the request.
#[derive(Debug, Clone, Copy)]
enum When {
    Always,
    /// The field is a string of nothing but white space (an empty `referenceId`, not a
    /// missing one).
    Blank(&'static str),
    /// The field is there and not a number.
    NotNumber(&'static str),
    /// The field is there and not an integer.
    NotInteger(&'static str),
}

impl When {
    fn holds(self, request: Option<&serde_json::Value>) -> bool {
        let field = |name: &str| request.and_then(|body| body.get(name));
        match self {
            When::Always => true,
            When::Blank(name) => field(name)
                .and_then(|v| v.as_str())
                .is_some_and(|text| text.trim().is_empty()),
            When::NotNumber(name) => field(name).is_some_and(|v| !v.is_number()),
            When::NotInteger(name) => field(name).is_some_and(|v| !(v.is_i64() || v.is_u64())),
        }
    }
}

/// One error situation of the contract, and the facts that document it.
struct Situation {
    api: Api,
    /// As in [`Entry`].
    endpoint: &'static str,
    /// The status the contract answers it with.
    status: u16,
    says: Says,
    when: When,
    /// The fact of its status.
    answer: &'static str,
    /// The fact of its M2M error code.
    code: &'static str,
    /// The fact of its words (an M2M `message`, a Leaf `detail`), when the contract has one.
    words: Option<&'static str>,
}

/// A situation, its fact ids checked at compile time; `_` for words no fact documents.
macro_rules! situation {
    (@words _) => {
        None
    };
    (@words $fact:literal) => {
        Some(checked_id!($fact))
    };
    ($api:ident, $endpoint:literal, $status:literal, $says:expr, $when:expr => $answer:literal, $code:literal, $words:tt) => {
        Situation {
            api: Api::$api,
            endpoint: $endpoint,
            status: $status,
            says: $says,
            when: $when,
            answer: checked_id!($answer),
            code: checked_id!($code),
            words: situation!(@words $words),
        }
    };
}

/// The error situations, read in order: specific before general. A Leaf problem has no code:
/// its situations repeat the status's fact there.
static SITUATIONS: &[Situation] = {
    use Says::{Detail, Message, Violation};
    use When::{Always, Blank, NotInteger, NotNumber};
    use linkbox_contracts::leaf::messages as l;
    use linkbox_contracts::m2m::messages as m;
    &[
        // ---- M2M authentication.
        situation!(M2m, "*", 401, Message(m::MISSING_AUTH), Always => "M2M-AUTH-NO-KEY-STATUS", "M2M-AUTH-NO-KEY-CODE", "M2M-AUTH-NO-KEY-MESSAGE"),
        situation!(M2m, "*", 401, Message(m::INVALID_API_KEY), Always => "M2M-AUTH-INVALID-KEY-STATUS", "M2M-AUTH-INVALID-KEY-CODE", "M2M-AUTH-INVALID-KEY-MESSAGE"),
        situation!(M2m, "*", 403, Message(m::PARTNER_SUSPENDED), Always => "M2M-AUTH-SUSPENDED", "M2M-AUTH-SUSPENDED", "M2M-AUTH-SUSPENDED"),
        // ---- M2M envelopes and bodies, on any endpoint.
        situation!(M2m, "*", 400, Message(m::INVALID_JSON), Always => "M2M-ENVELOPE-BAD-JSON", "M2M-ENVELOPE-BAD-JSON", "M2M-ENVELOPE-BAD-JSON"),
        situation!(M2m, "*", 400, Message(m::CONTENT_TYPE), Always => "M2M-ENVELOPE-CONTENT-TYPE-REQUIRED", "M2M-ENVELOPE-CONTENT-TYPE-REQUIRED", "M2M-ENVELOPE-CONTENT-TYPE-MESSAGE"),
        situation!(M2m, "*", 400, Message(m::BODY_NOT_OBJECT), Always => "M2M-ENVELOPE-BODY-NOT-OBJECT", "M2M-ENVELOPE-BODY-NOT-OBJECT", "M2M-ENVELOPE-BODY-NOT-OBJECT"),
        situation!(M2m, "*", 413, Message(m::BODY_TOO_LARGE), Always => "M2M-ENVELOPE-TOO-LARGE", "M2M-ENVELOPE-TOO-LARGE", "M2M-ENVELOPE-TOO-LARGE"),
        situation!(M2m, "*", 404, Message("Cannot "), Always => "M2M-ENVELOPE-UNKNOWN-PATH", "M2M-ENVELOPE-UNKNOWN-PATH-CODE", "M2M-ENVELOPE-UNKNOWN-PATH-CODE"),
        situation!(M2m, "*", 405, Message("Cannot "), Always => "M2M-ENVELOPE-WRONG-METHOD-ALLOW", "M2M-ENVELOPE-WRONG-METHOD-ALLOW", _),
        situation!(M2m, "POST /partner/links", 429, Message(m::RATE_LIMITED), Always => "M2M-RATE-CREATE", "M2M-RATE-BODY", "M2M-RATE-BODY"),
        situation!(M2m, "*", 429, Message(m::RATE_LIMITED), Always => "M2M-RATE-OTHER", "M2M-RATE-BODY", "M2M-RATE-BODY"),
        // ---- Create.
        situation!(M2m, "POST /partner/links", 400, Message(m::REFERENCE_ID_REQUIRED), Blank("referenceId") => "M2M-CREATE-REFERENCE-ID-EMPTY", "M2M-CREATE-REFERENCE-ID-EMPTY", "M2M-CREATE-REFERENCE-ID-EMPTY-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::REFERENCE_ID_REQUIRED), Always => "M2M-CREATE-REFERENCE-ID-REQUIRED", "M2M-CREATE-REFERENCE-ID-REQUIRED", "M2M-CREATE-REFERENCE-ID-REQUIRED"),
        situation!(M2m, "POST /partner/links", 400, Message(m::REFERENCE_ID_TOO_LONG), Always => "M2M-CREATE-REFERENCE-ID-MAX", "M2M-CREATE-REFERENCE-ID-MAX", "M2M-CREATE-REFERENCE-ID-MAX-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::EXPIRES_IN_MINUTES), NotNumber("expiresInMinutes") => "M2M-CREATE-EXPIRY-NUMBER", "M2M-CREATE-EXPIRY-NUMBER", "M2M-CREATE-EXPIRY-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::EXPIRES_IN_MINUTES), Always => "M2M-CREATE-EXPIRY-RANGE", "M2M-CREATE-EXPIRY-RANGE", "M2M-CREATE-EXPIRY-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::LANGUAGE), Always => "M2M-CREATE-LANGUAGE-INVALID", "M2M-CREATE-LANGUAGE-INVALID", "M2M-CREATE-LANGUAGE-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message("The theme field must be a string"), Always => "M2M-CREATE-THEME-INVALID", "M2M-CREATE-THEME-INVALID", "M2M-CREATE-THEME-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::METADATA), Always => "M2M-CREATE-METADATA-INVALID", "M2M-CREATE-METADATA-INVALID", "M2M-CREATE-METADATA-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::CALLBACK_URL), Always => "M2M-CREATE-CALLBACK-INVALID", "M2M-CREATE-CALLBACK-INVALID", "M2M-CREATE-CALLBACK-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message("The flow field must be one of"), Always => "M2M-CREATE-FLOW-UNKNOWN", "M2M-CREATE-FLOW-UNKNOWN", "M2M-CREATE-FLOW-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::USER_DATA), Always => "M2M-CREATE-USER-DATA-INVALID", "M2M-CREATE-USER-DATA-INVALID", "M2M-CREATE-USER-DATA-MESSAGE"),
        situation!(M2m, "POST /partner/links", 400, Message(m::PAYMENT_METHOD_REQUIRED), Always => "M2M-CREATE-PAYMENT-METHOD-REQUIRED", "M2M-CREATE-PAYMENT-METHOD-REQUIRED", "M2M-CREATE-PAYMENT-METHOD-MESSAGE"),
        situation!(M2m, "POST /partner/links", 409, Message(m::ACTIVE_LINK_EXISTS), Always => "M2M-LINK-ONE-ACTIVE", "M2M-LINK-ONE-ACTIVE-CODE", "M2M-LINK-ONE-ACTIVE-CODE"),
        // ---- List: every bad query parameter is one fact, two of them have their message's.
        situation!(M2m, "GET /partner/links", 400, Message("The page query parameter must be an integer greater than or equal to 1"), Always => "M2M-LIST-BAD-QUERY", "M2M-LIST-BAD-QUERY", "M2M-LIST-PAGE-MESSAGE"),
        situation!(M2m, "GET /partner/links", 400, Message("The limit query parameter must be an integer between 1 and 100"), Always => "M2M-LIST-BAD-QUERY", "M2M-LIST-BAD-QUERY", "M2M-LIST-LIMIT-MESSAGE"),
        situation!(M2m, "GET /partner/links", 400, Message("The "), Always => "M2M-LIST-BAD-QUERY", "M2M-LIST-BAD-QUERY", _),
        // ---- Detail, revoke, data requests.
        situation!(M2m, "GET /partner/links/{linkId}", 404, Message(m::LINK_NOT_FOUND), Always => "M2M-DETAIL-UNKNOWN", "M2M-DETAIL-UNKNOWN", "M2M-DETAIL-NOT-FOUND-MESSAGE"),
        situation!(M2m, "POST /partner/links/{linkId}/revoke", 404, Message(m::LINK_NOT_FOUND), Always => "M2M-REVOKE-UNKNOWN", "M2M-REVOKE-UNKNOWN", "M2M-REVOKE-UNKNOWN"),
        situation!(M2m, "POST /partner/links/{linkId}/revoke", 400, Message(m::ONLY_ACTIVE_REVOCABLE), Always => "M2M-REVOKE-TWICE", "M2M-REVOKE-TWICE", "M2M-REVOKE-TWICE-MESSAGE"),
        situation!(M2m, "POST /partner/links/{linkId}/revoke", 400, Message(m::LINK_EXPIRED), Always => "M2M-REVOKE-EXPIRED", "M2M-REVOKE-EXPIRED", "M2M-REVOKE-EXPIRED"),
        situation!(M2m, "POST /partner/links/{linkId}/revoke", 400, Message("The reason field must be a string"), Always => "M2M-REVOKE-REASON-INVALID", "M2M-REVOKE-REASON-INVALID", _),
        situation!(M2m, "PUT /partner/data-requests/{dataRequestId}", 404, Message(m::DATA_REQUEST_NOT_FOUND), Always => "M2M-DATA-REQUEST-UNKNOWN", "M2M-DATA-REQUEST-UNKNOWN", "M2M-DATA-REQUEST-UNKNOWN"),
        situation!(M2m, "PUT /partner/data-requests/{dataRequestId}", 400, Message(m::REFERENCE_ID_MISMATCH), Always => "M2M-DATA-REQUEST-MISMATCH", "M2M-DATA-REQUEST-MISMATCH", "M2M-DATA-REQUEST-MISMATCH"),
        situation!(M2m, "PUT /partner/data-requests/{dataRequestId}", 400, Message(m::DATA_REQUEST_FULFILLED), Always => "M2M-DATA-REQUEST-FULFILLED-TWICE", "M2M-DATA-REQUEST-FULFILLED-TWICE", "M2M-DATA-REQUEST-FULFILLED-TWICE"),
        situation!(M2m, "PUT /partner/data-requests/{dataRequestId}", 400, Message(m::LINK_EXPIRED), Always => "M2M-DATA-REQUEST-LINK-EXPIRED", "M2M-DATA-REQUEST-LINK-EXPIRED", "M2M-DATA-REQUEST-LINK-EXPIRED"),
        situation!(M2m, "PUT /partner/data-requests/{dataRequestId}", 400, Message(m::USER_DATA_REQUIRED), Always => "M2M-DATA-REQUEST-USER-DATA-REQUIRED", "M2M-DATA-REQUEST-USER-DATA-REQUIRED", "M2M-DATA-REQUEST-MESSAGES"),
        situation!(M2m, "PUT /partner/data-requests/{dataRequestId}", 400, Message(m::REFERENCE_ID_REQUIRED), Always => "M2M-DATA-REQUEST-REFERENCE-ID-REQUIRED", "M2M-DATA-REQUEST-REFERENCE-ID-REQUIRED", "M2M-DATA-REQUEST-MESSAGES"),
        // ---- Leaf authentication.
        situation!(Leaf, "POST /api/authenticate", 401, Detail(l::BAD_CREDENTIALS), Always => "LEAF-AUTH-AUTHENTICATE", "LEAF-AUTH-AUTHENTICATE", _),
        situation!(Leaf, "POST /api/authenticate", 400, Violation("rememberMe", ""), Always => "LEAF-AUTH-REMEMBER-ME-INVALID", "LEAF-AUTH-REMEMBER-ME-INVALID", _),
        situation!(Leaf, "POST /api/authenticate", 400, Violation("username", ""), Always => "LEAF-AUTH-CREDENTIALS-REQUIRED", "LEAF-AUTH-CREDENTIALS-REQUIRED", _),
        situation!(Leaf, "POST /api/authenticate", 400, Violation("password", ""), Always => "LEAF-AUTH-CREDENTIALS-REQUIRED", "LEAF-AUTH-CREDENTIALS-REQUIRED", _),
        situation!(Leaf, "*", 401, Detail(l::FULL_AUTH_REQUIRED), Always => "LEAF-AUTH-NO-TOKEN", "LEAF-AUTH-NO-TOKEN", _),
        situation!(Leaf, "*", 401, Detail(l::INVALID_TOKEN), Always => "LEAF-AUTH-BAD-TOKEN", "LEAF-AUTH-BAD-TOKEN", _),
        situation!(Leaf, "*", 401, Detail(l::EXPIRED_TOKEN), Always => "LEAF-AUTH-EXPIRED-TOKEN", "LEAF-AUTH-EXPIRED-TOKEN", "LEAF-AUTH-EXPIRED-TOKEN"),
        // ---- Leaf bodies.
        situation!(Leaf, "*", 400, Detail("Failed to read request"), Always => "LEAF-PROBLEM-BAD-JSON", "LEAF-PROBLEM-BAD-JSON", _),
        situation!(Leaf, "*", 415, Detail("Content type"), Always => "LEAF-PROBLEM-UNSUPPORTED-TYPE", "LEAF-PROBLEM-UNSUPPORTED-TYPE", _),
        // ---- Magic-link creates: a documented violation of the request.
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("expiresIn", ""), NotInteger("expiresIn") => "LEAF-CREATE-EXPIRES-IN-INTEGER", "LEAF-CREATE-EXPIRES-IN-INTEGER", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("expiresIn", ""), Always => "LEAF-CREATE-EXPIRES-IN-RANGE", "LEAF-CREATE-EXPIRES-IN-RANGE", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("externalId", l::NOT_BLANK), Always => "LEAF-CREATE-EXTERNAL-ID-BLANK", "LEAF-CREATE-EXTERNAL-ID-BLANK", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("externalId", ""), Always => "LEAF-CREATE-EXTERNAL-ID-REQUIRED", "LEAF-CREATE-EXTERNAL-ID-REQUIRED", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("allowedProviders", ""), Always => "LEAF-PROVIDER-ALLOWED-UNKNOWN", "LEAF-PROVIDER-ALLOWED-UNKNOWN", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("provider", l::PROVIDER), Always => "LEAF-AUTHENTICATION-PROVIDER-NOT-ALL", "LEAF-AUTHENTICATION-PROVIDER-NOT-ALL", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("provider", ""), Always => "LEAF-AUTHENTICATION-PROVIDER-REQUIRED", "LEAF-AUTHENTICATION-PROVIDER-REQUIRED", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("settings.backgroundColor", ""), Always => "LEAF-SETTINGS-BACKGROUND-COLOR", "LEAF-SETTINGS-BACKGROUND-COLOR", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("settings.showLeafUserName", ""), Always => "LEAF-SETTINGS-BOOLEANS", "LEAF-SETTINGS-BOOLEANS", _),
        situation!(Leaf, "POST /services/widgets/api/magic-link/**", 400, Violation("settings.disconnectEnabled", ""), Always => "LEAF-SETTINGS-BOOLEANS", "LEAF-SETTINGS-BOOLEANS", _),
        // ---- Leaf users.
        situation!(Leaf, "POST /services/usermanagement/api/users", 400, Violation("externalId", l::EXTERNAL_ID_TAKEN), Always => "LEAF-USERS-EXTERNAL-ID-UNIQUE", "LEAF-USERS-EXTERNAL-ID-UNIQUE", _),
        situation!(Leaf, "POST /services/usermanagement/api/users", 400, Violation("name", ""), Always => "LEAF-USERS-CREATE-REQUIRED", "LEAF-USERS-CREATE-REQUIRED", _),
        situation!(Leaf, "POST /services/usermanagement/api/users", 400, Violation("email", ""), Always => "LEAF-USERS-CREATE-REQUIRED", "LEAF-USERS-CREATE-REQUIRED", _),
    ]
};

/// Rows are read in order: specific before general.
static TABLE: &[Entry] = &[
    // ---- M2M statuses, where no situation names the fact (`SITUATIONS`).
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
    // ---- M2M error envelopes: `success`, `error`, its `code` and `message` are documented
    // (an error body with one of them missing or elsewhere is not the documented shape); a
    // key more is linkbox's "exactly these keys".
    row!(M2m, "*", [Type], "", error => "M2M-ENVELOPE-ERROR"),
    row!(M2m, "*", [Value, MissingField, UnexpectedField, Type], "/success", error => "M2M-ENVELOPE-ERROR"),
    row!(M2m, "*", [MissingField, UnexpectedField, Type], "/error", error => "M2M-ENVELOPE-ERROR"),
    row!(M2m, "*", [MissingField, UnexpectedField, Type], "/error/code", error => "M2M-ENVELOPE-ERROR"),
    row!(M2m, "*", [MissingField, UnexpectedField, Type], "/error/message", error => "M2M-ENVELOPE-ERROR"),
    row!(M2m, "*", [MissingField, UnexpectedField, Type], "/**", error => "M2M-ENVELOPE-ERROR-EXACT"),
    // ---- M2M success envelopes.
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
    row!(M2m, "GET /partner/links", [MissingField, UnexpectedField], "/data/items/*/token", 0 => "M2M-LIST-ITEM-NO-TOKEN"),
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
    row!(M2m, "PUT /partner/data-requests/{dataRequestId}", [Value], "/data/message", 0 => "M2M-DATA-REQUEST-FULFIL-MESSAGE"),
    row!(M2m, "PUT /partner/data-requests/{dataRequestId}", [Value, MissingField, UnexpectedField, Type], "/data/**", 0 => "M2M-DATA-REQUEST-FULFIL"),
    // ---- Leaf statuses, where no situation names the fact.
    row!(Leaf, "POST /api/authenticate", [Status], "", 0 => "LEAF-AUTH-AUTHENTICATE"),
    row!(Leaf, "*", [Status], "", 401 => "LEAF-AUTH-NO-TOKEN"),
    row!(Leaf, "*", [Status], "", 405 => "LEAF-PROBLEM-WRONG-METHOD"),
    row!(Leaf, "*", [Status], "", 415 => "LEAF-PROBLEM-UNSUPPORTED-TYPE"),
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
    row!(Leaf, "GET /services/usermanagement/api/users", [Status], "", 400 => "LEAF-USERS-SIZE-MAX"),
    row!(Leaf, "GET /services/usermanagement/api/users", [Status], "", 0 => "LEAF-USERS-LIST"),
    row!(Leaf, "GET /services/usermanagement/api/users/{id}", [Status], "", 0 => "LEAF-USERS-GET"),
    row!(Leaf, "PUT /services/usermanagement/**", [Status], "", 0 => "LEAF-USERS-PUT"),
    row!(Leaf, "DELETE /services/usermanagement/api/users/{id}", [Status], "", 0 => "LEAF-USERS-DELETE"),
    row!(Leaf, "*", [Status], "", 404 => "LEAF-PROBLEM-UNKNOWN-PATH"),
    // ---- Leaf headers.
    row!(Leaf, "*", [Header], "header:allow", 0 => "LEAF-PROBLEM-ALLOW-HEADER"),
    row!(Leaf, "*", [Header], "header:www-authenticate", 0 => "LEAF-AUTH-WWW-AUTHENTICATE"),
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
    // A member more or fewer, or of another type, is the problem's shape, not the fields of
    // the endpoint's success body.
    row!(Leaf, "*", [MissingField, UnexpectedField, Type], "/**", error => "LEAF-PROBLEM-SHAPE"),
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
/// table it opens with.
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
    /// The upstream's status and linkbox's; in the suite, the target's and the one the case
    /// expected.
    pub(crate) statuses: (u16, u16),
    pub(crate) upstream: &'a serde_json::Value,
    pub(crate) linkbox: &'a serde_json::Value,
    /// The upstream's and linkbox's JSON bodies, whole (in the suite, the target's and none):
    /// an error's situation is read off them.
    pub(crate) bodies: (Option<&'a serde_json::Value>, Option<&'a serde_json::Value>),
    /// The request's JSON body.
    pub(crate) request: Option<&'a serde_json::Value>,
}

impl Query<'_> {
    /// The request set `expiresInMinutes` (M2M) or `expiresIn` (Leaf).
    fn expiry_sent(&self) -> bool {
        let key = match self.api {
            Api::M2m => "expiresInMinutes",
            _ => "expiresIn",
        };
        self.request
            .and_then(|body| body.as_object())
            .is_some_and(|body| body.contains_key(key))
    }

    /// The error situation the answers tell: read off linkbox's answer (the contract's), or
    /// failing that the upstream's, and one the contract answers with linkbox's status (in the
    /// suite, the status the case expected) — a vendor's 400 "referenceId is required" to a
    /// create linkbox answered 201 is no missing `referenceId` to the contract.
    fn situation(&self) -> Option<&'static Situation> {
        let (upstream, linkbox) = self.bodies;
        [linkbox, upstream].into_iter().flatten().find_map(|body| {
            SITUATIONS.iter().find(|situation| {
                situation.api == self.api
                    && situation.status == self.statuses.1
                    && glob(situation.endpoint, self.endpoint)
                    && situation.says.fits(body)
                    && situation.when.holds(self.request)
            })
        })
    }
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
        (_, Rule::Status, _) => {
            if let Some(situation) = query.situation() {
                return Some(situation.answer);
            }
        }
        (Api::M2m, Rule::Value, "/error/code") => {
            if let Some(situation) = query.situation() {
                return Some(situation.code);
            }
        }
        (Api::M2m, Rule::Value, "/error/message") | (Api::Leaf, Rule::Value, "/detail") => {
            if let Some(words) = query.situation().and_then(|situation| situation.words) {
                return Some(words);
            }
        }
        (Api::Leaf, Rule::Value, "/title") => {
            if let Some(fact) = texts(leaf_titles()) {
                return Some(fact);
            }
            if query
                .situation()
                .is_some_and(|situation| situation.answer == "LEAF-PROBLEM-BAD-JSON")
            {
                return Some(checked_id!("LEAF-PROBLEM-BAD-JSON-TITLE"));
            }
        }
        (Api::Leaf, Rule::Value, "/type")
            if [query.upstream, query.linkbox].into_iter().any(|kind| {
                kind.as_str() == Some(linkbox_contracts::leaf::CONSTRAINT_VIOLATION)
            }) =>
        {
            return Some(checked_id!("LEAF-PROBLEM-CONSTRAINT-TYPE"));
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
        (Api::M2m, Rule::Relation, "/data/expiresAt") if query.expiry_sent() => {
            return Some(checked_id!("M2M-CREATE-EXPIRY-HONOURED"));
        }
        (Api::Leaf, Rule::Relation, _) if query.expiry_sent() => {
            return Some(checked_id!("LEAF-CREATE-EXPIRES-IN-KEPT"));
        }
        // A timestamp that is no ISO 8601 date-time string (a number for `expiresAt`, or
        // `yesterday`) breaks what the docs write, wherever it is, not one endpoint's list
        // of fields or of nulls; one in another form (other fraction digits, `+00:00` for
        // `Z`) breaks only linkbox's form of it.
        //
        // The vendor's timestamp that is none is that fact whatever linkbox's side holds
        // (`null` for a detail's `openedAt`), and so is one in a field linkbox lacks, at
        // any depth, as the suite reads every `*At` of an answer.
        // Success answers only, as the suite's case reads them: a member more in an error
        // body is the error envelope's exact members, whatever it holds.
        (Api::M2m, Rule::Type | Rule::Format | Rule::MissingField, pointer)
            if query.statuses.0 < 400
                && query.statuses.1 < 400
                && holds_a_bad_timestamp(pointer, query.upstream) =>
        {
            return Some(checked_id!("M2M-FORMAT-TIMESTAMP-ISO"));
        }
        // A link linkbox has not seen opened (its `openedAt` null) that the vendor's detail
        // shows opened, or without `openedAt`: what the docs write of a new link's detail,
        // as the suite's case of a new link reads it.
        (Api::M2m, Rule::UnexpectedField | Rule::Type | Rule::Relation, "/data/openedAt")
            if query.linkbox.is_null()
                && query.statuses == (200, 200)
                && glob("GET /partner/links/{linkId}", query.endpoint) =>
        {
            return Some(checked_id!("M2M-READ-STATUS-CREATED"));
        }
        (Api::M2m, Rule::Type | Rule::Format, pointer)
            if !query.upstream.is_null()
                && !query.linkbox.is_null()
                && glob("/**/*At", pointer) =>
        {
            return Some(if iso(query.upstream) && iso(query.linkbox) {
                checked_id!("M2M-FORMAT-TIMESTAMP")
            } else {
                checked_id!("M2M-FORMAT-TIMESTAMP-ISO")
            });
        }
        _ => {}
    }
    // A nulls fact is about a field being `null` rather than absent: a type difference
    // where neither side is `null` is not its.
    let neither_null = !query.upstream.is_null() && !query.linkbox.is_null();
    let found = TABLE
        .iter()
        .find(|entry| {
            entry.api == query.api
                && entry.rules.contains(&query.rule)
                && entry.status.fits(query.statuses)
                && glob(entry.endpoint, query.endpoint)
                && glob(entry.pointer, query.pointer)
                && !(query.rule == Rule::Type && neither_null && entry.fact.ends_with("-NULLS"))
        })
        .map(|entry| entry.fact)?;
    // A field the vendor's success answer carries that a list of fields does not name (a
    // `vendorExtra` in `data`) is one the docs are silent on: linkbox lacks it, but the
    // vendor contradicts no fact by sending it, as the suite's schemas let it.
    if query.api == Api::M2m
        && query.rule == Rule::MissingField
        && query.statuses.0 < 400
        && query.statuses.1 < 400
        && query.pointer.starts_with("/data/")
        && let Some(field) = query.pointer.rsplit('/').next()
        && !names_field(found, field)
    {
        return None;
    }
    Some(found)
}

/// Whether `value` is an ISO 8601 date-time string (RFC 3339).
fn iso(value: &serde_json::Value) -> bool {
    value
        .as_str()
        .is_some_and(|text| linkbox_contracts::timefmt::parse(text).is_some())
}

/// Whether `value`, at `pointer` in a vendor's answer, is or holds a timestamp that is no
/// ISO 8601 date-time string: a member named `…At` (not `null`) that is not one, as the
/// suite's `M2M-FORMAT-TIMESTAMP-ISO` case finds them.
fn holds_a_bad_timestamp(pointer: &str, value: &serde_json::Value) -> bool {
    fn named_a_timestamp(name: &str) -> bool {
        name.len() > 2 && name.ends_with("At")
    }
    if pointer.rsplit('/').next().is_some_and(named_a_timestamp) && !value.is_null() && !iso(value)
    {
        return true;
    }
    match value {
        serde_json::Value::Object(members) => members
            .iter()
            .any(|(name, member)| holds_a_bad_timestamp(&format!("/{name}"), member)),
        serde_json::Value::Array(items) => {
            items.iter().any(|item| holds_a_bad_timestamp("/-", item))
        }
        _ => false,
    }
}

/// Whether the fact `id` names `field` in what it quotes (`` `token` ``, or `` `data
/// {linkId, status, revokedAt}` ``), when it quotes anything: a fact that quotes nothing
/// says nothing of which fields there are, and the detail's ("the list item plus …")
/// names the list item's too.
fn names_field(id: &str, field: &str) -> bool {
    let Some(fact) = crate::facts::find(id) else {
        return true;
    };
    !fact.text.contains('`')
        || quotes_name(fact.text, field)
        || (fact.text.contains("list item")
            && crate::facts::find("M2M-LIST-ITEM-FIELDS")
                .is_some_and(|item| quotes_name(item.text, field)))
}

/// Whether a span of `text` between backticks holds `name` as a word of its own.
fn quotes_name(text: &str, name: &str) -> bool {
    text.split('`').skip(1).step_by(2).any(|quoted| {
        quoted
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| word == name)
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

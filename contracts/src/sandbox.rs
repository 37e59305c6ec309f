//! linkbox's own control API under `/_sandbox`: request and response bodies, and the error
//! envelope `{"error": {"code", "message"}}` every control endpoint fails with.
//!
//! None of this exists at the vendors; it is how a partner's tests and QA drive the sandbox
//! (move the clock, play the end user, inspect requests and webhooks, inject faults).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::m2m::{Language, LinkStatus, OperationAmount, OperationStatus};

/// What a server whose own certificate is a CA's is told: `openssl req -x509` makes one
/// (`basicConstraints CA:TRUE`), and the TLS verifier refuses it as a server's even when it
/// is the very certificate passed as the trusted CA.
pub const CA_AS_SERVER: &str = "the server's own certificate is marked as a CA's \
    (basicConstraints CA:TRUE, as `openssl req -x509` makes one by default), which TLS does \
    not accept as a server's even when it is the file passed as the trusted CA: give the \
    server a certificate made with `-addext basicConstraints=critical,CA:FALSE`, or one \
    signed by a CA whose certificate you pass";

/// Default number of requests the journal keeps (`--journal-size`).
pub const DEFAULT_JOURNAL_SIZE: usize = 1_000;
/// Bytes of a request or response body the journal keeps; the rest is cut
/// (`bodyTruncated`).
pub const JOURNAL_BODY_LIMIT: usize = 16 * 1024;
/// Bytes the journal holds at most over every tenant, bodies and headers counted; past it
/// the oldest entry of the tenant holding the most bytes goes first.
pub const JOURNAL_MAX_BYTES: usize = 32 * 1024 * 1024;
/// What stands in the journal for a secret: `X-API-Key`, `Authorization`, `Cookie`, and
/// JSON fields named like a password, secret or token.
pub const REDACTED: &str = "[redacted]";
/// Seconds after which a webhook receiver that has not answered counts as failed. [doc]
pub const WEBHOOK_TIMEOUT_SECS: u64 = 30;
/// Delay before each webhook attempt after the previous one: immediately, then +1 min,
/// +5 min, +30 min, +2 h. [doc]
pub const WEBHOOK_RETRY_DELAYS_SECS: [i64; 5] = [0, 60, 300, 1_800, 7_200];

/// A whole-number field of a control body that takes fewer values than its type holds,
/// declared once: the check of its value and the message for a value of the wrong kind
/// ("expected a whole number from 1 to 1000", not the type's range) both read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeRange {
    /// Where the field is in its body, as a refusal names it (`count`, `delayMs`).
    pub field: &'static str,
    pub min: i64,
    pub max: i64,
}

impl WholeRange {
    pub const fn new(field: &'static str, min: i64, max: i64) -> WholeRange {
        WholeRange { field, min, max }
    }

    pub const fn contains(&self, value: i64) -> bool {
        self.min <= value && value <= self.max
    }
}

/// A control body's whole-number fields that take fewer values than their types hold
/// ([`WholeRange`]); a field not listed takes its type's whole range.
pub trait WholeRanges {
    const WHOLE_RANGES: &'static [WholeRange] = &[];
}

/// Each control body with narrowed fields, by its schema's name: the schemas' tests hold
/// their `minimum` and `maximum` to these ranges.
#[cfg(test)]
pub(crate) const RANGED_BODIES: &[(&str, &[WholeRange])] = &[
    ("ClockChange", ClockChange::WHOLE_RANGES),
    ("FaultRequest", FaultRequest::WHOLE_RANGES),
    ("SeedRequest", SeedRequest::WHOLE_RANGES),
];

/// The control API's error codes.
pub mod codes {
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const INVALID_API_KEY: &str = "INVALID_API_KEY";
    pub const PARTNER_SUSPENDED: &str = "PARTNER_SUSPENDED";
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const CONFLICT: &str = "CONFLICT";
    /// `POST /_sandbox/requests/verify`: the journal does not hold what was expected.
    pub const VERIFICATION_FAILED: &str = "VERIFICATION_FAILED";
    pub const TENANT_REQUIRED: &str = "TENANT_REQUIRED";
    /// An action only the admin token may take (`--clock admin`).
    pub const ADMIN_REQUIRED: &str = "ADMIN_REQUIRED";
    /// The tenant holds what `--max-tenant-mib` allows.
    pub const STORAGE_FULL: &str = "STORAGE_FULL";
    /// A request body linkbox has no room to hold now (`--max-bodies-mib`): a 503 with
    /// `Retry-After`.
    pub const BODIES_FULL: &str = "BODIES_FULL";
}

/// `GET /_sandbox/health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Health {
    /// Always `ok` while the process answers.
    pub status: String,
    /// linkbox's version.
    pub version: String,
}

/// linkbox's error body: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct SandboxErrorBody {
    pub error: SandboxErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct SandboxErrorDetail {
    pub code: String,
    pub message: String,
}

/// `GET /_sandbox/clock`, and the answer to `POST /_sandbox/clock`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClockView {
    /// What the sandbox clock reads: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub now: String,
    /// Seconds the clock is ahead of real time (negative when behind).
    pub offset_seconds: i64,
    pub frozen: bool,
}

/// `POST /_sandbox/clock`: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClockChange {
    /// Seconds to move the clock by, either way: at most a century.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = ClockChange::ADVANCE_SECONDS.min, max = ClockChange::ADVANCE_SECONDS.max))]
    #[schema(minimum = -3162240000_i64, maximum = 3162240000_i64)]
    pub advance_seconds: Option<i64>,
    /// The instant to set the clock to: RFC 3339, any offset, any number of fraction digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub set_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frozen: Option<bool>,
}

impl ClockChange {
    /// The most a move takes the clock either way: a century.
    pub const ADVANCE_SECONDS: WholeRange = WholeRange::new(
        "advanceSeconds",
        -100 * 366 * 24 * 3600,
        100 * 366 * 24 * 3600,
    );
}

impl WholeRanges for ClockChange {
    const WHOLE_RANGES: &'static [WholeRange] = &[ClockChange::ADVANCE_SECONDS];
}

/// `POST /_sandbox/reset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetDone {
    /// `tenant` (the caller's partner) or `all` (admin).
    pub scope: String,
}

/// `POST /_sandbox/m2m/links/{linkId}/open`: what the end user's device reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenLinkRequest {
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

impl WholeRanges for OpenLinkRequest {}

/// A data request, as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataRequestView {
    pub data_request_id: String,
    pub required_fields: Vec<String>,
    pub reply_endpoint: String,
    /// The link's expiry, after which the request cannot be fulfilled: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
}

/// Answer to opening a link as the end user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenedLink {
    pub link_id: String,
    pub status: LinkStatus,
    /// When the link was first opened: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub opened_at: Option<String>,
    /// True only on the first open, which alone sends `link.opened`.
    pub first_open: bool,
    /// The data request this open created, when the user's CIP data is incomplete.
    pub data_request: Option<DataRequestView>,
}

/// `POST /_sandbox/m2m/links/{linkId}/operation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationRequest {
    /// The amount sent, from 0.01 to 1,000,000,000.
    #[schemars(range(min = OperationRequest::MIN_AMOUNT, max = OperationRequest::MAX_AMOUNT))]
    #[schema(minimum = 0.01, maximum = 1000000000)]
    pub amount: f64,
    /// At least 0 and less than the amount; default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    #[schema(minimum = 0)]
    pub fee: Option<f64>,
    /// receive = (amount - fee) × exchangeRate: greater than 0 and at most 10,000; default 1.
    #[serde(default)]
    #[schemars(range(max = OperationRequest::MAX_EXCHANGE_RATE), extend("exclusiveMinimum" = 0))]
    #[schema(exclusive_minimum = 0, maximum = 10000)]
    pub exchange_rate: Option<f64>,
    /// A three-letter ISO 4217 code, in capitals; default `USD`.
    #[serde(default)]
    #[schemars(regex(pattern = OperationRequest::CURRENCY))]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub send_currency: Option<String>,
    /// A three-letter ISO 4217 code, in capitals; default the send currency.
    #[serde(default)]
    #[schemars(regex(pattern = OperationRequest::CURRENCY))]
    #[schema(pattern = "^[A-Z]{3}$")]
    pub receive_currency: Option<String>,
}

impl OperationRequest {
    /// The smallest amount an operation sends.
    pub const MIN_AMOUNT: f64 = 0.01;
    /// The largest amount an operation sends.
    pub const MAX_AMOUNT: f64 = 1_000_000_000.0;
    /// The largest exchange rate an operation uses.
    pub const MAX_EXCHANGE_RATE: f64 = 10_000.0;
    /// A currency code as ISO 4217 writes one: three capital letters.
    pub const CURRENCY: &str = "^[A-Z]{3}$";
}

impl WholeRanges for OperationRequest {}

/// An operation, as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    pub operation_id: String,
    pub link_id: String,
    pub reference_id: String,
    pub amount: OperationAmount,
    pub status: OperationStatus,
    /// When the end user completed the transfer: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// When the end user cancelled it, `null` unless they did: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub cancelled_at: Option<String>,
}

/// One request the journal kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Increases by one per recorded request.
    pub seq: u64,
    pub method: String,
    pub path: String,
    /// The raw query string, when there was one.
    pub query: Option<String>,
    /// The status answered; `null` when a fault dropped the connection unanswered.
    pub status: Option<u16>,
    /// True when a fault dropped the connection unanswered (`status` is then `null`).
    pub dropped: bool,
    /// When it arrived, on the sandbox clock: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub time: String,
    /// The partner slug of the key presented, if any.
    pub tenant: Option<String>,
    pub duration_ms: u64,
    /// The request's headers and body, secrets redacted.
    pub request: JournalMessage,
    /// The response's headers and body, secrets redacted (empty when dropped).
    pub response: JournalMessage,
}

/// Headers and body of one side of a journaled exchange.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalMessage {
    /// Lower-case names; repeated headers joined with `, `; secrets as `[redacted]`.
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body as text (invalid UTF-8 replaced), at most 16 KiB (16,384 bytes): a longer
    /// JSON body with its long strings shortened (`…[N more bytes]`), still JSON; any
    /// other, cut. `None` when there was none.
    pub body: Option<String>,
    /// Whether the body was made shorter to fit in 16 KiB (16,384 bytes).
    pub body_truncated: bool,
}

/// `POST /_sandbox/requests/verify`: what the journal must hold. Every criterion given
/// must hold for a request to match; `count` defaults to `{"atLeast": 1}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// The method, any case.
    pub method: Option<String>,
    /// The exact path, or a prefix ending in `*`.
    pub path: Option<String>,
    /// Text the request body contains.
    pub body_contains: Option<String>,
    /// A JSON object the request body contains: every field given, recursively; arrays
    /// element by element.
    pub body_json: Option<serde_json::Map<String, Value>>,
    pub count: Option<VerifyCount>,
}

impl WholeRanges for VerifyRequest {}

/// How many requests must match: exactly one of the three.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyCount {
    pub exactly: Option<u64>,
    pub at_least: Option<u64>,
    pub at_most: Option<u64>,
}

/// `200` of `POST /_sandbox/requests/verify`: the expectation holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResult {
    pub matched: u64,
}

/// `409` of `POST /_sandbox/requests/verify`: the error envelope, how many matched, and the
/// requests that came closest without matching, closest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyFailure {
    pub error: SandboxErrorDetail,
    pub matched: u64,
    pub near_misses: Vec<NearMiss>,
}

/// A journaled request that failed some criteria of a verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NearMiss {
    /// The criteria it failed: `method`, `path`, `bodyContains`, `bodyJson`.
    pub missed: Vec<String>,
    pub request: JournalEntry,
}

/// `GET /_sandbox/requests`: newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalPage {
    pub requests: Vec<JournalEntry>,
    /// How many requests the journal keeps per tenant (`--journal-size`); a tenant's older
    /// ones are dropped, never another tenant's.
    pub capacity: usize,
    /// How many requests the filters match in all, on every page.
    #[serde(default)]
    pub total: usize,
    /// When older matching requests remain past `limit`: pass it as `before` for the next
    /// page (the `seq` of this page's last request).
    #[serde(default)]
    pub next_before: Option<u64>,
}

/// The largest `limit` of `GET /_sandbox/requests` (without one, every matching request).
pub const MAX_JOURNAL_PAGE: usize = 1_000;

/// `GET /_sandbox/drift`: what shadow mode (`--shadow-m2m`, `--shadow-leaf`) found comparing
/// the vendor's answers with linkbox's own, one entry per endpoint, rule and place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    /// Requests whose two answers were compared.
    pub compared: u64,
    /// Requests that could not be compared: the upstream unreachable, a request linkbox
    /// could not map to its shadow tenant, a full comparison queue.
    pub errors: u64,
    /// The most recent errors, newest first (at most 20 kept per tenant), with notes on
    /// what a comparison passed over (the items of a list in doubt), which are not counted
    /// as errors.
    pub recent_errors: Vec<DriftError>,
    /// Newest last seen first.
    pub differences: Vec<DriftDifference>,
}

/// One kind of difference between the upstream's answers and linkbox's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftDifference {
    /// Stable for the same endpoint, rule and pointer.
    pub id: String,
    /// The route template: `POST /partner/links`, `GET /partner/links/{linkId}`.
    pub endpoint: String,
    /// `status`, `media-type`, `missing-field`, `unexpected-field`, `type`, `value`,
    /// `format`, `relation`, `header` or `paging`.
    pub rule: String,
    /// Where: a JSON pointer into the body, `header:<name>`, or empty for the status.
    pub pointer: String,
    /// What the upstream answered there, in the first example (`null` when absent).
    #[schema(value_type = crate::openapi::DriftValue)]
    pub upstream: serde_json::Value,
    /// What linkbox answered there, in the first example.
    #[schema(value_type = crate::openapi::DriftValue)]
    pub linkbox: serde_json::Value,
    /// The last example, when it was seen more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<DriftExample>,
    /// How many compared requests showed it.
    pub count: u64,
    /// RFC 3339, wall clock.
    pub first_seen: String,
    pub last_seen: String,
    /// `doc` when the contract marks the fact as the vendor's documented behaviour (the
    /// vendor drifts from its docs), `design` when it is linkbox's own decision (linkbox
    /// guessed wrong) or no fact is known.
    pub tag: String,
    /// The fact of `docs/contract/` it contradicts, when one is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fact: Option<String>,
}

/// The values of one example of a difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftExample {
    #[schema(value_type = crate::openapi::DriftValue)]
    pub upstream: serde_json::Value,
    #[schema(value_type = crate::openapi::DriftValue)]
    pub linkbox: serde_json::Value,
}

/// A request shadow mode could not compare.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftError {
    pub endpoint: String,
    pub message: String,
    /// RFC 3339, wall clock.
    pub at: String,
}

/// Outcome of a webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or being attempted).
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Every scheduled attempt failed; replay it to try again.
    Failed,
}

/// One attempt to deliver a webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// When it was sent, on the sandbox clock: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    /// Where it was sent, if anywhere.
    pub url: Option<String>,
    /// The receiver's status code, when it answered.
    pub status_code: Option<u16>,
    /// Why there is no status code (timeout, refused, no URL).
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// A webhook delivery and the latest attempts made at it (at most 50, and as many as hold
/// 16 KiB; older ones are not listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub event: String,
    /// The link's `callbackUrl`, else the partner's webhook URL as it is now.
    pub url: Option<String>,
    pub status: DeliveryStatus,
    pub attempts: Vec<DeliveryAttempt>,
    /// When the next attempt is due, on the sandbox clock; `null` once delivered or failed:
    /// ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub next_attempt_at: Option<String>,
    /// When the event happened, on the sandbox clock: ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    pub tenant: String,
    /// The exact body sent.
    #[schema(value_type = crate::openapi::WebhookBody)]
    pub payload: Value,
}

/// `GET /_sandbox/webhooks?limit=&before=`: newest first, one page at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// How many deliveries the caller may see in all.
    #[serde(default)]
    pub total: usize,
    /// When older deliveries remain: pass it as `before` for the next page.
    #[serde(default)]
    pub next_before: Option<String>,
}

/// Deliveries per page of `GET /_sandbox/webhooks` unless `limit` says otherwise.
pub const DEFAULT_DELIVERY_PAGE: usize = 100;
/// The largest `limit` of `GET /_sandbox/webhooks`.
pub const MAX_DELIVERY_PAGE: usize = 1_000;

/// `PUT /_sandbox/m2m/webhook-config`: the partner's webhook URL (null clears it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[schemars(extend("required" = ["url"]))]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// HTTPS (or http on a loopback host), at most 2,084 characters; `null` clears it.
    // Required, so that a body without it cannot clear the URL by accident.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schemars(url, length(max = crate::m2m::MAX_URL_CHARS))]
    #[schema(format = "uri", max_length = 2084, required = true)]
    pub url: Option<String>,
}

impl WholeRanges for WebhookConfig {}

/// `POST /_sandbox/faults`: what to do to matching requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRequest {
    /// HTTP method to match; any when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// Path pattern to match, segment by segment: `*` is one segment, a trailing `/**` any
    /// rest, a last segment ending in `*` a prefix; any path when absent. No query string,
    /// and never a control path (`/_sandbox`): such a fault could not fire. A tenant's fault
    /// touches only requests carrying its own key or token, on any path (one on the Leaf
    /// login or the pages, usually reached without them, is kept with a warning).
    #[serde(default)]
    pub path: Option<String>,
    /// Answer with this status instead of the real handler.
    #[serde(default)]
    #[schemars(range(min = FaultRequest::STATUS.min, max = FaultRequest::STATUS.max))]
    #[schema(minimum = 200, maximum = 599)]
    pub status: Option<u16>,
    /// Answer with this body (JSON; a string is sent as text). Without it a faulted status
    /// answers in the vendor's own error shape.
    #[serde(default)]
    #[schema(value_type = Option<crate::openapi::FaultBody>)]
    pub body: Option<Value>,
    /// Wait this long (real time) before answering: at most two minutes.
    #[serde(default)]
    #[schemars(range(min = FaultRequest::DELAY_MS.min, max = FaultRequest::DELAY_MS.max))]
    #[schema(minimum = 0, maximum = 120000)]
    pub delay_ms: Option<u64>,
    /// Close the connection without an answer.
    #[serde(default)]
    pub drop: Option<bool>,
    /// Chance (above 0, at most 1: 0 would never fire) that a request is faulted; default 1.
    #[serde(default)]
    #[schemars(range(max = 1), extend("exclusiveMinimum" = 0))]
    #[schema(exclusive_minimum = 0, maximum = 1)]
    pub probability: Option<f64>,
    /// Fault this many matching requests, then stop; unlimited when absent.
    #[serde(default)]
    #[schemars(range(min = FaultRequest::TIMES.min, max = FaultRequest::TIMES.max))]
    #[schema(minimum = 1, maximum = 4294967295_u64, format = Int64)]
    pub times: Option<u32>,
}

impl FaultRequest {
    /// The statuses a fault answers with.
    pub const STATUS: WholeRange = WholeRange::new("status", 200, 599);
    /// The longest delay a fault adds: two minutes.
    pub const DELAY_MS: WholeRange = WholeRange::new("delayMs", 0, 120_000);
    /// How many requests a fault strikes: at least one.
    pub const TIMES: WholeRange = WholeRange::new("times", 1, u32::MAX as i64);
}

impl WholeRanges for FaultRequest {
    const WHOLE_RANGES: &'static [WholeRange] = &[
        FaultRequest::STATUS,
        FaultRequest::DELAY_MS,
        FaultRequest::TIMES,
    ];
}

/// A fault in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FaultView {
    pub id: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    /// The body it answers with, `null` for the vendor's own error shape.
    #[schema(value_type = Option<crate::openapi::FaultBody>)]
    pub body: Option<Value>,
    pub delay_ms: Option<u64>,
    pub drop: bool,
    pub probability: f64,
    /// Faults left; null when unlimited.
    pub remaining: Option<u32>,
    /// How many requests it has faulted.
    pub hits: u64,
    /// The partner whose requests it applies to; null for every request (admin).
    pub tenant: Option<String>,
}

/// `GET /_sandbox/faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct FaultPage {
    pub faults: Vec<FaultView>,
}

/// A data request's `requiredFields`, read no further than the CIP fields it may name (each
/// once): a snapshot of millions of `""` there took some fifteen times its size to read
/// before any was checked.
fn at_most_cip_fields<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    struct Fields;
    impl<'de> serde::de::Visitor<'de> for Fields {
        type Value = Vec<String>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            write!(
                formatter,
                "a list of at most {} CIP field names",
                crate::m2m::CIP_FIELDS.len()
            )
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Vec<String>, A::Error> {
            let most = crate::m2m::CIP_FIELDS.len();
            let mut fields = Vec::new();
            while let Some(field) = seq.next_element::<String>()? {
                if fields.len() == most {
                    return Err(serde::de::Error::custom(format!(
                        "a data request names at most the {most} CIP fields"
                    )));
                }
                fields.push(field);
            }
            Ok(fields)
        }
    }
    deserializer.deserialize_seq(Fields)
}

/// A JSON value kept as the text it came as, unparsed: a snapshot's `metadata` and `userData`.
/// Read as a tree, a value costs tens of bytes however few it is written in (`0,`), so a
/// snapshot of millions of small values took some 36 times its size to read; each is read
/// as a tree on its own, once its values are counted, or not at all. Two are equal when
/// their texts are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<serde_json::value::RawValue>);

impl RawJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The value, read as a tree.
    pub fn parse(&self) -> serde_json::Result<Value> {
        serde_json::from_str(self.get())
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &RawJson) -> bool {
        self.get() == other.get()
    }
}

impl From<Box<serde_json::value::RawValue>> for RawJson {
    fn from(raw: Box<serde_json::value::RawValue>) -> RawJson {
        RawJson(raw)
    }
}

impl From<&Value> for RawJson {
    /// `value` as compact text. Serializing a `Value` cannot fail: its keys are strings
    /// and its numbers finite.
    fn from(value: &Value) -> RawJson {
        let text = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        RawJson(
            serde_json::value::RawValue::from_string(text)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
        )
    }
}

/// `GET|PUT /_sandbox/snapshot`: one partner's whole M2M state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct M2mSnapshot {
    /// Format version; 1.
    pub version: u32,
    /// The partner slug every id embeds; a snapshot restores only into the same partner.
    pub partner: String,
    pub webhook_url: Option<String>,
    /// Oldest first.
    pub users: Vec<SnapshotUser>,
    /// In creation order.
    pub links: Vec<SnapshotLink>,
    pub data_requests: Vec<SnapshotDataRequest>,
    pub operations: Vec<OperationView>,
}

impl WholeRanges for M2mSnapshot {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotUser {
    pub user_id: String,
    pub reference_id: String,
    /// `null` when no data was ever sent for the user.
    #[schema(value_type = Option<crate::openapi::StoredUserData>)]
    #[schemars(with = "Option<Value>")]
    pub user_data: Option<RawJson>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotLink {
    pub link_id: String,
    pub reference_id: String,
    pub status: LinkStatus,
    pub token: String,
    pub flow: String,
    pub theme: Option<String>,
    pub language: Option<Language>,
    pub callback_url: Option<String>,
    /// `null` when the link was created without metadata.
    #[schema(value_type = Option<crate::openapi::Metadata>)]
    #[schemars(with = "Option<Value>")]
    pub metadata: Option<RawJson>,
    /// ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// `null` until the link is opened; ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub opened_at: Option<String>,
    /// `null` unless the link was revoked; ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub revoked_at: Option<String>,
    pub revoke_reason: Option<String>,
    pub operation_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotDataRequest {
    pub data_request_id: String,
    pub link_id: String,
    /// The CIP fields asked for, each once: at most seven.
    #[serde(deserialize_with = "at_most_cip_fields")]
    #[schemars(length(max = 7))]
    #[schema(max_items = 7)]
    pub required_fields: Vec<String>,
    /// `null` until the request is fulfilled; ISO 8601 UTC with exactly three fraction digits (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub fulfilled_at: Option<String>,
}

/// `POST /_sandbox/leaf/magic-links/{id}/connect`: the provider the end user connects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LeafConnectRequest {
    /// One of the providers the link allows (`JohnDeere`, `CNHI`, ...).
    #[schema(value_type = crate::leaf::Provider)]
    #[schemars(with = "crate::leaf::Provider")]
    pub provider: String,
}

impl WholeRanges for LeafConnectRequest {}

/// `POST /_sandbox/seed`: fake users and links for the caller's tenant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRequest {
    /// `m2m` (needs a partner key) or `leaf` (needs a Leaf token).
    #[schema(value_type = SeedApi)]
    #[schemars(with = "SeedApi")]
    pub api: String,
    /// How many links, 1 to 1000.
    #[schemars(range(min = SeedRequest::COUNT.min, max = SeedRequest::COUNT.max))]
    #[schema(minimum = 1, maximum = 1000)]
    pub count: u32,
    /// The same seed gives the same data; absent: a random one, echoed in the answer.
    #[serde(default)]
    pub rng_seed: Option<u64>,
    /// Relative weights of the link states (m2m: created, opened, completed, cancelled,
    /// revoked, expired; leaf: provider, authentication, fileUpload, usedUp, expired).
    #[serde(default)]
    pub mix: Option<std::collections::BTreeMap<String, u32>>,
}

// The schema of `SeedRequest::api`, which the server reads as text, so that its refusal
// names the values it takes in its own words.
/// The API a seed fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SeedApi {
    /// A partner's links and users: needs a partner key.
    M2m,
    /// A Leaf account's users and magic links: needs a Leaf token.
    Leaf,
}

impl SeedRequest {
    /// The most links one request seeds.
    pub const MAX_COUNT: u32 = 1000;
    pub const COUNT: WholeRange = WholeRange::new("count", 1, SeedRequest::MAX_COUNT as i64);
}

impl WholeRanges for SeedRequest {
    const WHOLE_RANGES: &'static [WholeRange] = &[SeedRequest::COUNT];
}

/// Answer to `POST /_sandbox/seed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedResult {
    pub api: String,
    pub rng_seed: u64,
    /// The created link ids, in creation order.
    pub created: Vec<String>,
    /// The state each link was left in, in the same order.
    pub states: Vec<String>,
}

/// The filters of `GET` and `DELETE /_sandbox/requests`: both read the same entries. [design]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct JournalQuery {
    /// Only this method.
    pub method: Option<String>,
    /// Exact path, or a prefix ending in `*`.
    pub path: Option<String>,
    /// A status from 100 to 599 (`404`), or a class from `1xx` to `5xx` (`4xx`); a request a
    /// fault dropped was answered none, so no status matches it.
    pub status: Option<String>,
    /// Text the request body contains.
    pub body_contains: Option<String>,
    /// `name:value`, a request header (any-case name) with exactly this value.
    pub header: Option<String>,
    /// Only this tenant label (partner slug, `leaf:<username>`).
    pub tenant: Option<String>,
    /// RFC 3339; only requests at or after it, on the sandbox clock.
    pub since: Option<String>,
}

//! LeapFinancial's M2M partner-link API: constants and wire types.
//!
//! Facts tagged `[doc]` in `m2m.md` are the vendor's; the rest (`[design]`) are linkbox's
//! decisions where the vendor is silent. The server parses request bodies field by field (to
//! report the first violation in the vendor's words), so the request types here describe the
//! accepted shape for schemas and clients rather than drive deserialization.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Prefix of sandbox keys: `m2m_test_` followed by [`KEY_SECRET_LEN`] alphanumerics. [doc]
pub const TEST_KEY_PREFIX: &str = "m2m_test_";
/// Prefix of production keys; linkbox refuses every one of them. [doc]
pub const LIVE_KEY_PREFIX: &str = "m2m_live_";
/// Number of alphanumerics after the key prefix. [doc]
pub const KEY_SECRET_LEN: usize = 32;
/// Pattern of a well-formed sandbox key.
pub const TEST_KEY_PATTERN: &str = "^m2m_test_[A-Za-z0-9]{32}$";

/// Pattern of a link id: `link_<partnerSlug>_<12 lowercase hex>`. [ex]
pub const LINK_ID_PATTERN: &str = "^link_[a-z0-9]+_[0-9a-f]{12}$";
/// Pattern of a user id: `user_<partnerSlug>_<6 alphanumerics>`. [ex]
pub const USER_ID_PATTERN: &str = "^user_[a-z0-9]+_[A-Za-z0-9]{6}$";
/// Pattern of a data request id: `dr_<partnerSlug>_<12 lowercase hex>`. [ex]
pub const DATA_REQUEST_ID_PATTERN: &str = "^dr_[a-z0-9]+_[0-9a-f]{12}$";
/// Pattern of a webhook signing secret. [ex]
pub const WEBHOOK_SECRET_PATTERN: &str = "^whsec_[A-Za-z0-9]{24}$";

/// Lower bound of `expiresInMinutes`. [doc]
pub const EXPIRES_IN_MINUTES_MIN: u32 = 5;
/// Upper bound of `expiresInMinutes` (seven days). [doc]
pub const EXPIRES_IN_MINUTES_MAX: u32 = 10_080;
/// `expiresInMinutes` when neither the request nor the partner sets one. [doc]
pub const DEFAULT_EXPIRES_IN_MINUTES: u32 = 60;
/// Longest accepted `referenceId`. [design]
pub const REFERENCE_ID_MAX_LEN: usize = 255;
/// The widget flow used when a request names none. [doc]
pub const DEFAULT_FLOW: &str = "m2m-basic";
/// Widget languages. [doc]
pub const LANGUAGES: [&str; 2] = ["en", "es"];

/// First page of `GET /partner/links`. [doc]
pub const DEFAULT_PAGE: u32 = 1;
/// Default page size of `GET /partner/links`. [doc]
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size of `GET /partner/links`. [doc]
pub const MAX_LIMIT: u32 = 100;

/// Create-link requests a partner may send per minute. [doc]
pub const CREATE_LINK_PER_MINUTE: u32 = 100;
/// Requests to every other endpoint a partner may send per minute. [doc]
pub const OTHER_PER_MINUTE: u32 = 1_000;

/// Largest request body accepted, in bytes; larger bodies get 413. [design]
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Longest `callbackUrl` or webhook URL accepted, in characters; a longer one is not a
/// valid URL. The vendor documents no limit; this is the default of validator.js's `isURL`,
/// which is what the common validators of the vendor's stack allow. [design]
pub const MAX_URL_CHARS: usize = 2_084;

/// Prefix of webhook signing secrets, followed by [`WEBHOOK_SECRET_LEN`] alphanumerics. [ex]
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
/// Number of alphanumerics after the webhook secret prefix. [ex]
pub const WEBHOOK_SECRET_LEN: usize = 24;

/// The CIP fields, as dot paths into `userData`; a user missing any of them is incomplete. [doc]
pub const CIP_FIELDS: [&str; 7] = [
    "name.firstName",
    "name.secondName",
    "name.lastName",
    "name.secondLastName",
    "idNumber",
    "idType",
    "dob",
];

/// Payment method types. [doc]
pub const PAYMENT_METHOD_TYPES: [&str; 2] = ["bank_account", "cash"];

/// Header naming each request field linkbox ignored. [design]
pub const WARNING_HEADER: &str = "x-linkbox-warning";

/// The message of each documented (or documented-style) error.
pub mod messages {
    pub const MISSING_AUTH: &str = "Missing authentication. Provide X-API-Key or Bearer token.";
    pub const INVALID_API_KEY: &str = "Invalid or revoked API key";
    pub const PARTNER_SUSPENDED: &str = "Partner account is suspended or not found";
    pub const ACTIVE_LINK_EXISTS: &str = "User already has an active link";
    pub const LINK_EXPIRED: &str = "Magic link has expired";
    pub const REFERENCE_ID_MISMATCH: &str = "Reference ID doesn't match";
    pub const RATE_LIMITED: &str = "Too many requests, please retry later";
    pub const INVALID_JSON: &str = "Request body must be valid JSON";
    pub const CONTENT_TYPE: &str = "Content-Type must be application/json";
    pub const BODY_NOT_OBJECT: &str = "Request body must be a JSON object";
    pub const BODY_TOO_LARGE: &str = "Request body must not exceed 10 MiB";
    pub const REFERENCE_ID_REQUIRED: &str = "The referenceId field is required";
    /// What a `from` or `to` query parameter must be, after `The from query parameter `.
    pub const DATE_BOUND: &str = "must be an ISO 8601 date-time or a YYYY-MM-DD date";
    pub const REFERENCE_ID_TOO_LONG: &str = "The referenceId field must be at most 255 characters";
    pub const EXPIRES_IN_MINUTES: &str =
        "The expiresInMinutes field must be a number between 5 and 10080";
    pub const LANGUAGE: &str = "The language field must be one of: en, es";
    pub const CALLBACK_URL: &str = "The callbackUrl field must be a valid HTTPS URL";
    pub const METADATA: &str = "The metadata field must be an object";
    pub const USER_DATA: &str = "The userData field must be an object";
    pub const PAYMENT_METHOD_REQUIRED: &str =
        "The userData.paymentMethod field is required when userData is provided";
    pub const LINK_NOT_FOUND: &str = "Link not found";
    pub const DATA_REQUEST_NOT_FOUND: &str = "Data request not found";
    pub const ONLY_ACTIVE_REVOCABLE: &str =
        "Only links with status created or opened can be revoked";
    pub const DATA_REQUEST_FULFILLED: &str = "Data request has already been fulfilled";
    pub const DATA_REQUEST_FULFILLED_OK: &str = "User data received and merged successfully";
    pub const USER_DATA_REQUIRED: &str = "The userData field is required";
    pub const REGENERATED_SECRET: &str =
        "Copy this secret now. You will not be able to see it again.";
    pub const INTERNAL: &str = "Internal server error";
}

/// Every error code of the M2M API. [doc, except `RATE_LIMIT_EXCEEDED` and `INTERNAL_ERROR`]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    Unauthorized,
    InvalidApiKey,
    PartnerSuspended,
    InvalidRequest,
    ResourceNotFound,
    ActiveLinkExists,
    LinkExpired,
    ReferenceIdMismatch,
    RateLimitExceeded,
    InternalError,
}

/// The body of every M2M error response: `{"success": false, "error": {...}}`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorEnvelope {
    /// Always `false`.
    pub success: bool,
    pub error: ErrorDetail,
}

/// The code and message of one error: the first violation found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// The body of every M2M success response except regenerate-secret: `{"success": true, "data": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub success: bool,
    pub data: T,
}

/// Lifecycle status of a link. Expired is not a status: the `visibility` filter finds expired
/// links. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkStatus {
    Created,
    Opened,
    Revoked,
}

impl LinkStatus {
    pub const ALL: [LinkStatus; 3] = [LinkStatus::Created, LinkStatus::Opened, LinkStatus::Revoked];

    pub fn as_str(self) -> &'static str {
        match self {
            LinkStatus::Created => "created",
            LinkStatus::Opened => "opened",
            LinkStatus::Revoked => "revoked",
        }
    }
}

/// The `visibility` filter of the link list. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Not expired and not revoked.
    Active,
    /// Expired and not revoked.
    Expired,
}

/// Widget language. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Es,
}

impl Language {
    pub fn parse(text: &str) -> Option<Language> {
        match text {
            "en" => Some(Language::En),
            "es" => Some(Language::Es),
            _ => None,
        }
    }
}

/// Status of a data request. [design]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataRequestStatus {
    Pending,
    Fulfilled,
    Expired,
}

/// `POST /partner/links` request body. [doc]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateLinkRequest {
    /// Your identifier of the end user; links for the same one share an M2M user. Not
    /// blank: it holds a character other than white space, Unicode's included.
    #[schemars(
        length(min = 1, max = REFERENCE_ID_MAX_LEN),
        regex(pattern = crate::patterns::NOT_BLANK)
    )]
    #[schema(
        min_length = 1,
        max_length = 255,
        example = "user-12345",
        pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub reference_id: String,
    /// Link lifetime; defaults to the partner's setting (60 unless configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = EXPIRES_IN_MINUTES_MIN, max = EXPIRES_IN_MINUTES_MAX))]
    #[schema(minimum = 5, maximum = 10080, example = 120)]
    pub expires_in_minutes: Option<f64>,
    /// Pre-filled user data; `paymentMethod` is required when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<UserData>,
    /// Any key/value pairs, returned in link detail and webhook payloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::openapi::Metadata>)]
    pub metadata: Option<serde_json::Map<String, Value>>,
    /// Widget flow; one of the sandbox's configured flows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "m2m-basic")]
    pub flow: Option<String>,
    /// Overrides the partner's theme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    /// HTTPS URL (or http on a loopback host) that receives this link's webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url, length(max = MAX_URL_CHARS))]
    #[schema(format = "uri", max_length = 2084)]
    pub callback_url: Option<String>,
}

/// User data a partner pre-fills or a data request collects. [doc]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PersonName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    /// For example `CURP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_type: Option<String>,
    /// Date of birth, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date"))]
    #[schema(format = Date)]
    pub dob: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    /// A `data:` URL of the identity document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[\\x00-\\x20]*[Dd][Aa][Tt][Aa]:")]
    #[schemars(regex(pattern = "^[\\x00-\\x20]*[Dd][Aa][Tt][Aa]:"))]
    pub id_image: Option<String>,
}

/// The four parts of a name used by the CIP checks. [doc]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonName {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_last_name: Option<String>,
}

/// The kinds of a payment method: what its `type` may be. [doc] (The method keeps its
/// `type` as text, as a create sent it; this names the values the server takes, for the
/// OpenAPI document and the clients generated from it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    BankAccount,
    Cash,
}

/// How the user receives money: a bank account or cash pick-up. [doc] It carries its kind's
/// details: `bankAccount` for `bank_account`, `cash` for `cash`; a create without them is
/// refused, naming the missing one. [design]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethod {
    /// `bank_account` or `cash`.
    #[serde(rename = "type")]
    #[schema(value_type = PaymentKind)]
    #[schemars(with = "PaymentKind")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bank_account: Option<BankAccount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash: Option<CashPickup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BankAccount {
    pub country: String,
    pub account_number: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CashPickup {
    pub provider: String,
    pub reference: String,
}

/// `data` of a 201 from `POST /partner/links`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedLink {
    #[schema(pattern = "^link_[a-z0-9]+_[0-9a-f]{12}$")]
    #[schemars(regex(pattern = LINK_ID_PATTERN))]
    pub link_id: String,
    pub reference_id: String,
    pub status: LinkStatus,
    #[schema(format = "uri")]
    #[schemars(url)]
    pub url: String,
    #[schema(format = "uuid")]
    #[schemars(extend("format" = "uuid"))]
    pub token: String,
    /// When the link stops working: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// When the link was created: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}

/// One item of `GET /partner/links`. Unset values are `null`. [doc; nulls design]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkItem {
    #[schema(pattern = "^link_[a-z0-9]+_[0-9a-f]{12}$")]
    #[schemars(regex(pattern = LINK_ID_PATTERN))]
    pub link_id: String,
    pub reference_id: String,
    pub status: LinkStatus,
    #[schema(format = "uri")]
    #[schemars(url)]
    pub url: String,
    /// When the link stops working: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// When the link was created: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// When the end user first opened the link, `null` until then: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub opened_at: Option<String>,
    #[schema(pattern = "^user_[a-z0-9]+_[A-Za-z0-9]{6}$")]
    #[schemars(regex(pattern = USER_ID_PATTERN))]
    pub user_id: String,
    /// The transfer the end user completed through this link, `null` until then.
    pub operation_id: Option<String>,
    /// The end user's data, `null` when none was ever sent.
    #[schema(value_type = Option<crate::openapi::StoredUserData>)]
    pub user_data: Option<Value>,
}

/// `GET /partner/links/{linkId}`: the list item plus the link's own settings. [design]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkDetail {
    #[serde(flatten)]
    pub item: LinkItem,
    #[schema(format = "uuid")]
    #[schemars(extend("format" = "uuid"))]
    pub token: String,
    /// The link's metadata, `null` when it was created without.
    #[schema(value_type = Option<crate::openapi::Metadata>)]
    pub metadata: Option<Value>,
    pub flow: String,
    pub theme: Option<String>,
    pub language: Option<Language>,
    pub callback_url: Option<String>,
    /// When the link was revoked, `null` unless it was: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub revoked_at: Option<String>,
    pub revoke_reason: Option<String>,
}

/// Paging of `GET /partner/links`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub limit: u32,
    pub total: u64,
    pub total_pages: u64,
}

/// `data` of `GET /partner/links`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct LinkPage {
    pub items: Vec<LinkItem>,
    pub pagination: Pagination,
}

/// `POST /partner/links/{linkId}/revoke` body (optional). [doc]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct RevokeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `data` of a revoke. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokedLink {
    #[schema(pattern = "^link_[a-z0-9]+_[0-9a-f]{12}$")]
    #[schemars(regex(pattern = LINK_ID_PATTERN))]
    pub link_id: String,
    pub status: LinkStatus,
    /// When the link was revoked: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub revoked_at: String,
}

/// `PUT /partner/data-requests/{dataRequestId}` body. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfilDataRequest {
    pub reference_id: String,
    pub user_data: UserData,
}

/// `data` of a fulfilled data request. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FulfilledDataRequest {
    #[schema(pattern = "^dr_[a-z0-9]+_[0-9a-f]{12}$")]
    #[schemars(regex(pattern = DATA_REQUEST_ID_PATTERN))]
    pub data_request_id: String,
    pub status: DataRequestStatus,
    #[schema(pattern = "^link_[a-z0-9]+_[0-9a-f]{12}$")]
    #[schemars(regex(pattern = LINK_ID_PATTERN))]
    pub link_id: String,
    pub message: String,
    /// When the data arrived: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub fulfilled_at: String,
}

/// `POST /partner/webhooks/config/regenerate-secret`: no envelope. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegeneratedSecret {
    #[schema(pattern = "^whsec_[A-Za-z0-9]{24}$")]
    #[schemars(regex(pattern = WEBHOOK_SECRET_PATTERN))]
    pub webhook_secret: String,
    pub message: String,
}

/// The query of `GET /partner/links`. [doc]
#[derive(
    Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::IntoParams,
)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ListLinksQuery {
    /// 1-based page number.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_u64, default = 1)]
    #[schemars(range(min = 1))]
    pub page: Option<u32>,
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// Only links created at or after this instant (ISO 8601: RFC 3339 with any number of
    /// fraction digits, or to the minute, or the basic format; without an offset, UTC), or
    /// from the start of this `YYYY-MM-DD` day (UTC).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Only links created at or before this instant (as `from`), or to the end of this
    /// `YYYY-MM-DD` day (UTC).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `active`: neither expired nor revoked; `expired`: expired and not revoked.
    pub visibility: Option<Visibility>,
    pub status: Option<LinkStatus>,
    /// Only the links of this end user.
    pub reference_id: Option<String>,
}

macro_rules! success_envelope {
    ($(#[$doc:meta] $name:ident($data:ty);)*) => {$(
        #[$doc]
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Always `true`.
            pub success: bool,
            pub data: $data,
        }
    )*};
}

success_envelope! {
    /// 201 of `POST /partner/links`.
    CreateLinkResponse(CreatedLink);
    /// 200 of `GET /partner/links`.
    ListLinksResponse(LinkPage);
    /// 200 of `GET /partner/links/{linkId}`.
    LinkDetailResponse(LinkDetail);
    /// 200 of `POST /partner/links/{linkId}/revoke`.
    RevokeLinkResponse(RevokedLink);
    /// 200 of `PUT /partner/data-requests/{dataRequestId}`.
    FulfilDataRequestResponse(FulfilledDataRequest);
}

/// Webhook event names. [doc]
pub mod events {
    pub const LINK_CREATED: &str = "link.created";
    pub const LINK_OPENED: &str = "link.opened";
    pub const USER_DATA_REQUEST: &str = "user.data_request";
    pub const OPERATION_CREATED: &str = "operation.created";
    pub const OPERATION_CANCELLED: &str = "operation.cancelled";
}

/// Webhook request headers. [doc]
pub mod webhook_headers {
    pub const EVENT: &str = "x-m2m-event";
    pub const TIMESTAMP: &str = "x-m2m-timestamp";
    pub const SIGNATURE: &str = "x-m2m-signature";
    /// The signature header's value starts with this, then lowercase hex.
    pub const SIGNATURE_PREFIX: &str = "sha256=";
}

/// The body of every webhook: `{"event", "timestamp", "data"}`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct WebhookPayload<T> {
    pub event: String,
    /// When the event happened, on the sandbox clock: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: String,
    pub data: T,
}

/// `data` of `link.created`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkCreatedEvent {
    pub link_id: String,
    pub reference_id: String,
    pub url: String,
    pub status: LinkStatus,
    /// When the link stops working: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// When the link was created: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// The link's metadata; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::openapi::Metadata)]
    pub metadata: Option<Value>,
}

/// What the end user's device reported when opening a link. [doc] A field the device did not
/// report is absent, never `null`. [design]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// The `User-Agent`, verbatim; absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    #[schema(value_type = String)]
    pub user_agent: Option<String>,
    /// `ios`, `android`, `web`, or the user agent's first product name (`curl`); absent
    /// without a `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    #[schema(value_type = String)]
    pub platform: Option<String>,
    /// The first tag of `Accept-Language` (`es-MX`); absent for `*` or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    #[schema(value_type = String)]
    pub language: Option<String>,
}

/// `data` of `link.opened`, sent on the first open only. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkOpenedEvent {
    pub link_id: String,
    pub reference_id: String,
    /// When the end user first opened the link: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub opened_at: String,
    pub device_info: DeviceInfo,
    /// The link's metadata; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::openapi::Metadata)]
    pub metadata: Option<Value>,
}

/// `data` of `user.data_request`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DataRequestEvent {
    pub data_request_id: String,
    pub reference_id: String,
    pub link_id: String,
    /// Dot paths into `userData`, e.g. `name.lastName`.
    pub required_fields: Vec<String>,
    /// Full URL of `PUT /partner/data-requests/{dataRequestId}`.
    pub reply_endpoint: String,
    /// The link's expiry, after which the request cannot be fulfilled: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// The link's metadata; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::openapi::Metadata)]
    pub metadata: Option<Value>,
}

/// Amounts of an operation. [doc: send, receive, fee; design: currencies]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationAmount {
    /// Written as the vendor's Node server writes a number: `100`, not `100.0`.
    #[serde(serialize_with = "crate::json::javascript_number")]
    pub send: f64,
    #[serde(serialize_with = "crate::json::javascript_number")]
    pub receive: f64,
    #[serde(serialize_with = "crate::json::javascript_number")]
    pub fee: f64,
    pub send_currency: String,
    pub receive_currency: String,
}

/// Status of an operation. [design]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OperationStatus {
    Completed,
    Cancelled,
}

/// `data` of `operation.created`. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationCreatedEvent {
    pub operation_id: String,
    pub reference_id: String,
    pub link_id: String,
    pub amount: OperationAmount,
    pub status: OperationStatus,
    /// When the end user completed the transfer: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// The link's metadata; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::openapi::Metadata)]
    pub metadata: Option<Value>,
}

/// `data` of `operation.cancelled`. [doc; `cancelledAt` design]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationCancelledEvent {
    pub operation_id: String,
    pub reference_id: String,
    pub link_id: String,
    /// When the end user cancelled the transfer: ISO 8601 UTC with exactly three fraction digits, as the vendor sends (`2026-02-10T12:00:00.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub cancelled_at: String,
    /// The link's metadata; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = crate::openapi::Metadata)]
    pub metadata: Option<Value>,
}

/// Whether `key` is a well-formed sandbox key (`m2m_test_` + 32 alphanumerics).
pub fn is_test_key(key: &str) -> bool {
    key.strip_prefix(TEST_KEY_PREFIX).is_some_and(|secret| {
        secret.len() == KEY_SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_keys_need_the_prefix_and_32_alphanumerics() {
        assert!(is_test_key("m2m_test_abcdefghijklmnopqrstuvwxyz012345"));
        assert!(!is_test_key("m2m_test_abcdefghijklmnopqrstuvwxyz01234"));
        assert!(!is_test_key("m2m_test_abcdefghijklmnopqrstuvwxyz0123456"));
        assert!(!is_test_key("m2m_test_abcdefghijklmnopqrstuvwxyz01234-"));
        assert!(!is_test_key("m2m_live_abcdefghijklmnopqrstuvwxyz012345"));
    }

    #[test]
    fn error_codes_serialize_in_screaming_snake_case() {
        let json = serde_json::to_string(&ErrorCode::ActiveLinkExists).unwrap_or_default();
        assert_eq!(json, "\"ACTIVE_LINK_EXISTS\"");
    }

    #[test]
    fn link_detail_flattens_the_list_item() {
        let detail = LinkDetail {
            item: LinkItem {
                link_id: "link_p_000000000000".into(),
                reference_id: "r".into(),
                status: LinkStatus::Created,
                url: "u".into(),
                expires_at: "e".into(),
                created_at: "c".into(),
                opened_at: None,
                user_id: "user_p_abcdef".into(),
                operation_id: None,
                user_data: None,
            },
            token: "t".into(),
            metadata: None,
            flow: DEFAULT_FLOW.into(),
            theme: None,
            language: None,
            callback_url: None,
            revoked_at: None,
            revoke_reason: None,
        };
        let value = serde_json::to_value(&detail).unwrap_or_default();
        assert_eq!(value["linkId"], "link_p_000000000000");
        assert_eq!(value["openedAt"], Value::Null);
        assert_eq!(value["flow"], "m2m-basic");
    }
}

//! Documentation items of the M2M operations (`/partner/...`).

#![allow(dead_code)]

use crate::m2m::*;

/// Create a magic link
///
/// Creates a link for an end user and sends `link.created`. The first link for a
/// `referenceId` creates the M2M user; later ones reuse it and merge `userData` into what it
/// has. A user has at most one active link at a time: revoke it, or let it expire, first.
#[utoipa::path(
    post,
    path = "/partner/links",
    tag = "M2M",
    operation_id = "createLink",
    request_body(content = CreateLinkRequest, content_type = "application/json",
        example = json!({
            "referenceId": "user-12345",
            "expiresInMinutes": 120,
            "metadata": {"orderId": "ORD-2026-001", "campaign": "february-promo"},
            "flow": "m2m-basic",
            "theme": "dark",
            "language": "es",
            "callbackUrl": "https://api.example.com/callbacks/m2m"
        })),
    responses(
        (status = 201, description = "Magic link created successfully", body = CreateLinkResponse,
            example = json!({"success": true, "data": {
                "linkId": "link_acme_a1b2c3d4e5f6",
                "referenceId": "user-12345",
                "status": "created",
                "url": "https://widget.m2m.leapfinancial.com/link_acme_a1b2c3d4e5f6/m2m-basic",
                "token": "550e8400-e29b-41d4-a716-446655440000",
                "expiresAt": "2026-02-11T12:00:00.000Z",
                "createdAt": "2026-02-10T12:00:00.000Z"}})),
        (status = 400, description = "Invalid body", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
        (status = 403, description = "Partner suspended, or its or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) full", body = ErrorEnvelope),
        (status = 404, description = "No such route", body = ErrorEnvelope),
        (status = 409, description = "The user already has an active link", body = ErrorEnvelope),
        (status = 413, description = "Body over 10 MiB", body = ErrorEnvelope),
        (status = 415, description = "Body sent with a Content-Encoding other than identity (linkbox does not decompress request bodies)", body = ErrorEnvelope),
        (status = 429, description = "Rate limit: 100 creates a minute",
            headers(("Retry-After" = u64, description = "Seconds until the next window")),
            body = ErrorEnvelope),
    ),
    security(("apiKey" = []), ("bearer" = []))
)]
pub fn create_link() {}

/// List magic links
///
/// The partner's links, newest first, one page at a time. Filters combine: creation time
/// (`from`, `to`), `status`, `visibility` (active or expired) and `referenceId`.
#[utoipa::path(
    get,
    path = "/partner/links",
    tag = "M2M",
    operation_id = "listLinks",
    params(ListLinksQuery),
    responses(
        (status = 200, description = "One page of links", body = ListLinksResponse),
        (status = 400, description = "Invalid query", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
        (status = 403, description = "Partner suspended", body = ErrorEnvelope),
        (status = 429, description = "Rate limit: 1000 requests a minute",
            headers(("Retry-After" = u64, description = "Seconds until the next window")),
            body = ErrorEnvelope),
    ),
    security(("apiKey" = []), ("bearer" = []))
)]
pub fn list_links() {}

/// Get a magic link
///
/// One link with everything the list shows, plus its token, metadata, flow, theme, language,
/// callback URL and revocation. Another partner's link is answered as unknown.
#[utoipa::path(
    get,
    path = "/partner/links/{linkId}",
    tag = "M2M",
    operation_id = "getLink",
    params(("linkId" = String, Path, description = "link_<partner>_<12 hex>",
        example = "link_acme_a1b2c3d4e5f6")),
    responses(
        (status = 200, description = "The link", body = LinkDetailResponse),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
        (status = 403, description = "Partner suspended", body = ErrorEnvelope),
        (status = 404, description = "Unknown link, or another partner's", body = ErrorEnvelope),
        (status = 429, description = "Rate limit: 1000 requests a minute",
            headers(("Retry-After" = u64, description = "Seconds until the next window")),
            body = ErrorEnvelope),
    ),
    security(("apiKey" = []), ("bearer" = []))
)]
pub fn get_link() {}

/// Revoke a magic link
///
/// Stops a link from working. Only `created` or `opened` links that have not expired can be
/// revoked. The body, and its `reason`, may be left out.
#[utoipa::path(
    post,
    path = "/partner/links/{linkId}/revoke",
    tag = "M2M",
    operation_id = "revokeLink",
    params(("linkId" = String, Path, description = "link_<partner>_<12 hex>")),
    request_body(content = Option<RevokeRequest>, content_type = "application/json",
        example = json!({"reason": "User requested"})),
    responses(
        (status = 200, description = "Revoked", body = RevokeLinkResponse),
        (status = 400, description = "Already revoked (INVALID_REQUEST) or expired (LINK_EXPIRED)",
            body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
        (status = 403, description = "Partner suspended, or its or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) full", body = ErrorEnvelope),
        (status = 404, description = "Unknown link, or another partner's", body = ErrorEnvelope),
        (status = 413, description = "Body over 10 MiB", body = ErrorEnvelope),
        (status = 415, description = "Body sent with a Content-Encoding other than identity (linkbox does not decompress request bodies)", body = ErrorEnvelope),
        (status = 429, description = "Rate limit: 1000 requests a minute",
            headers(("Retry-After" = u64, description = "Seconds until the next window")),
            body = ErrorEnvelope),
    ),
    security(("apiKey" = []), ("bearer" = []))
)]
pub fn revoke_link() {}

/// Fulfil a data request
///
/// Sends the user data a `user.data_request` webhook asked for; it is merged into the user's
/// data. A request can be fulfilled once, before its link expires, with the link's
/// `referenceId`.
#[utoipa::path(
    put,
    path = "/partner/data-requests/{dataRequestId}",
    tag = "M2M",
    operation_id = "fulfilDataRequest",
    params(("dataRequestId" = String, Path, description = "dr_<partner>_<12 hex>")),
    request_body(content = FulfilDataRequest, content_type = "application/json",
        example = json!({"referenceId": "user-12345",
            "userData": {"idNumber": "GODE561231HDFRRN09", "dob": "1956-12-31"}})),
    responses(
        (status = 200, description = "Merged", body = FulfilDataRequestResponse),
        (status = 400, description = "Invalid body, already fulfilled, expired link or \
            referenceId mismatch", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
        (status = 403, description = "Partner suspended, or its or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) full", body = ErrorEnvelope),
        (status = 404, description = "Unknown data request", body = ErrorEnvelope),
        (status = 413, description = "Body over 10 MiB", body = ErrorEnvelope),
        (status = 415, description = "Body sent with a Content-Encoding other than identity (linkbox does not decompress request bodies)", body = ErrorEnvelope),
        (status = 429, description = "Rate limit: 1000 requests a minute",
            headers(("Retry-After" = u64, description = "Seconds until the next window")),
            body = ErrorEnvelope),
    ),
    security(("apiKey" = []), ("bearer" = []))
)]
pub fn fulfil_data_request() {}

/// Regenerate the webhook secret
///
/// Issues a new secret for signing webhooks; the old one stops signing at once. The answer
/// shows the secret this one time, and comes without the `success`/`data` envelope.
#[utoipa::path(
    post,
    path = "/partner/webhooks/config/regenerate-secret",
    tag = "M2M",
    operation_id = "regenerateWebhookSecret",
    responses(
        (status = 200, description = "The new secret, shown once", body = RegeneratedSecret),
        (status = 400, description = "A body it cannot read: it takes none, and one sent must be JSON", body = ErrorEnvelope),
        (status = 401, description = "Missing or invalid API key", body = ErrorEnvelope),
        (status = 403, description = "Partner suspended", body = ErrorEnvelope),
        (status = 429, description = "Rate limit: 1000 requests a minute",
            headers(("Retry-After" = u64, description = "Seconds until the next window")),
            body = ErrorEnvelope),
        (status = 413, description = "A body past the API's 10 MiB limit", body = ErrorEnvelope),
    ),
    security(("apiKey" = []), ("bearer" = []))
)]
pub fn regenerate_secret() {}

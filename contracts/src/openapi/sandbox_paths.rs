//! Documentation items of linkbox's own control API (`/_sandbox/...`). Every endpoint but
//! health is scoped by the caller's `X-API-Key` (or Bearer key); an admin token sees all.

#![allow(dead_code)]

use crate::sandbox::*;

/// Health
///
/// Answers while the process is up, with linkbox's version. Needs no key.
#[utoipa::path(get, path = "/_sandbox/health", tag = "Sandbox", operation_id = "health",
    responses((status = 200, description = "The process answers", body = Health)))]
pub fn health() {}

/// Forget state
///
/// Forgets the caller's partner's links, users, deliveries, journal entries and faults, or
/// everything when called with the admin token.
#[utoipa::path(post, path = "/_sandbox/reset", tag = "Sandbox", operation_id = "reset",
    responses(
        (status = 200, description = "Forgotten", body = ResetDone),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn reset() {}

/// Read the sandbox clock
///
/// What the sandbox clock reads, how far it is from real time, and whether it is frozen.
/// Every expiry, token lifetime and webhook retry follows this clock.
#[utoipa::path(get, path = "/_sandbox/clock", tag = "Sandbox", operation_id = "getClock",
    responses(
        (status = 200, description = "What the clock reads", body = ClockView),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn get_clock() {}

/// Move, set, freeze or unfreeze the sandbox clock
///
/// Send exactly one of `advanceSeconds`, `setTo` or `frozen`. Webhook retries that become due
/// are sent at once.
#[utoipa::path(post, path = "/_sandbox/clock", tag = "Sandbox", operation_id = "setClock",
    request_body(content = ClockChange, content_type = "application/json",
        example = json!({"advanceSeconds": 3600})),
    responses(
        (status = 200, description = "What the clock reads now", body = ClockView),
        (status = 400, description = "Not exactly one field", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
        (status = 403, description = "Under --clock admin, a tenant's key (ADMIN_REQUIRED)",
            body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn set_clock() {}

/// Open a link as its end user
///
/// Does what the end user's browser does on the link's page. The first open sets the status
/// to `opened`, sends `link.opened`, and, when the user's data lacks fields a transfer needs,
/// creates a data request and sends `user.data_request`. The body (the device) may be left
/// out.
#[utoipa::path(post, path = "/_sandbox/m2m/links/{linkId}/open", tag = "Sandbox",
    operation_id = "openLink",
    params(("linkId" = String, Path, description = "The link's id")),
    request_body(content = Option<OpenLinkRequest>, content_type = "application/json",
        example = json!({"userAgent": "Mozilla/5.0", "platform": "web", "language": "es"})),
    responses(
        (status = 200, description = "Opened", body = OpenedLink),
        (status = 400, description = "Invalid body", body = SandboxErrorBody),
        (status = 401, description = "Missing or unknown key", body = SandboxErrorBody),
        (status = 404, description = "Unknown link", body = SandboxErrorBody),
        (status = 409, description = "Expired or revoked", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub fn open_link() {}

/// Complete a transfer as the end user
///
/// Does what the end user does on finishing a transfer in the widget of an opened link, and
/// sends `operation.created`.
#[utoipa::path(post, path = "/_sandbox/m2m/links/{linkId}/operation", tag = "Sandbox",
    operation_id = "createOperation",
    params(("linkId" = String, Path, description = "The link's id")),
    request_body(content = OperationRequest, content_type = "application/json",
        example = json!({"amount": 100})),
    responses(
        (status = 201, description = "Created", body = OperationView),
        (status = 400, description = "Invalid body", body = SandboxErrorBody),
        (status = 401, description = "Missing or unknown key", body = SandboxErrorBody),
        (status = 404, description = "Unknown link", body = SandboxErrorBody),
        (status = 409, description = "Not opened, expired, revoked, or an operation exists",
            body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub fn create_operation() {}

/// Cancel the transfer as the end user
///
/// Cancels the link's completed transfer and sends `operation.cancelled`.
#[utoipa::path(post, path = "/_sandbox/m2m/links/{linkId}/operation/cancel", tag = "Sandbox",
    operation_id = "cancelOperation",
    params(("linkId" = String, Path, description = "The link's id")),
    responses(
        (status = 200, description = "Cancelled", body = OperationView),
        (status = 401, description = "Missing or unknown key", body = SandboxErrorBody),
        (status = 404, description = "Unknown link", body = SandboxErrorBody),
        (status = 409, description = "No live operation", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub fn cancel_operation() {}

/// Set the partner's webhook URL
///
/// Where the partner's webhooks go unless a link has its own `callbackUrl`; the vendor sets it
/// in its portal. `null` clears it.
#[utoipa::path(put, path = "/_sandbox/m2m/webhook-config", tag = "Sandbox",
    operation_id = "setWebhookConfig",
    request_body(content = WebhookConfig, content_type = "application/json",
        example = json!({"url": "http://127.0.0.1:9000/hooks"})),
    responses(
        (status = 200, description = "Set", body = WebhookConfig),
        (status = 400, description = "Not https or loopback http, or no partner", body = SandboxErrorBody),
        (status = 401, description = "Missing or unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub fn set_webhook_config() {}

/// The request journal
///
/// The requests linkbox answered for the caller's partner (every request for the admin),
/// newest first, optionally filtered by method, path and status; every matching one, or a
/// page at a time (`limit`, then `before` the page's `nextBefore`).
#[utoipa::path(get, path = "/_sandbox/requests", tag = "Sandbox", operation_id = "listRequests",
    params(
        JournalQuery,
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "Requests on the page, 1 to 1,000 (default: every matching one)"),
        ("before" = Option<u64>, Query, minimum = 1,
            description = "Only requests older than this `seq`: the previous page's `nextBefore`"),
    ),
    responses(
        (status = 200, description = "Newest first", body = JournalPage),
        (status = 400, description = "Bad filter", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn list_requests() {}

/// Verify the journal holds what a test expects
///
/// Counts the caller's journaled requests matching every criterion given; `count` defaults
/// to at least one.
#[utoipa::path(post, path = "/_sandbox/requests/verify", tag = "Sandbox", operation_id = "verifyRequests",
    request_body(content = VerifyRequest, content_type = "application/json",
        example = json!({"method": "POST", "path": "/partner/links",
            "bodyJson": {"referenceId": "user-42"}, "count": {"exactly": 1}})),
    responses(
        (status = 200, description = "The expectation holds", body = VerifyResult),
        (status = 400, description = "Bad expectation", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
        (status = 409, description = "It does not hold: the closest near misses", body = VerifyFailure),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn verify_requests() {}

/// Clear the request journal
///
/// Forgets the caller's journal entries (every entry for the admin), or only those the
/// filters match: the same filters as listing it, matching the same entries.
#[utoipa::path(delete, path = "/_sandbox/requests", tag = "Sandbox", operation_id = "clearRequests",
    params(JournalQuery),
    responses(
        (status = 204, description = "Cleared"),
        (status = 400, description = "Bad filter: nothing was forgotten", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn clear_requests() {}

/// Shadow-mode drift
///
/// With `--shadow-m2m` / `--shadow-leaf`, every request is forwarded to the vendor and also
/// applied to linkbox's own sandbox; this lists the differences between the two answers,
/// deduplicated per endpoint, rule and pointer. `GET /_sandbox/drift/junit` is the same
/// report as JUnit XML. (`?format=junit` here answers that XML too, for scripts written
/// before it had a path of its own; `?format=json` is this answer, any other format a 400.)
#[utoipa::path(get, path = "/_sandbox/drift", tag = "Sandbox", operation_id = "getDrift",
    responses(
        (status = 200, description = "The differences seen so far", body = DriftReport),
        (status = 400, description = "A query parameter it does not take", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn get_drift() {}

/// Shadow-mode drift as JUnit XML
///
/// The drift report (`GET /_sandbox/drift`) for a CI step to publish: one test case per
/// endpoint and rule, failing with every difference of that rule. It is `text/xml`, which
/// client generators read as text; a TypeScript client of openapi-fetch reads it with
/// `parseAs: "text"`.
#[utoipa::path(get, path = "/_sandbox/drift/junit", tag = "Sandbox", operation_id = "getDriftJunit",
    responses(
        (status = 200, description = "The differences seen so far, as JUnit XML",
            content((String = "text/xml"))),
        (status = 400, description = "A query parameter: it takes none", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn get_drift_junit() {}

/// Clear the drift report
///
/// Forgets the caller's differences, errors and counts (everyone's for the admin).
#[utoipa::path(delete, path = "/_sandbox/drift", tag = "Sandbox", operation_id = "clearDrift",
    responses(
        (status = 204, description = "Cleared"),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn clear_drift() {}

/// Webhook deliveries
///
/// Every webhook linkbox sent or will send for the caller, newest first, with each attempt's
/// status code or error and when the next attempt is due, a page at a time (`limit`, then
/// `before` the page's `nextBefore`).
#[utoipa::path(get, path = "/_sandbox/webhooks", tag = "Sandbox", operation_id = "listWebhooks",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000,
            description = "Deliveries on the page, 1 to 1,000 (default 100)"),
        ("before" = Option<String>, Query,
            description = "The id of the last delivery of the previous page, as `nextBefore` gives it"),
    ),
    responses(
        (status = 200, description = "Newest first, with every attempt", body = DeliveryPage),
        (status = 400, description = "A bad limit, an unknown parameter, or a before the caller cannot see", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn list_webhooks() {}

/// Send a delivery again
///
/// Queues the delivery for a fresh round of attempts, with the same body, signed anew.
#[utoipa::path(post, path = "/_sandbox/webhooks/{deliveryId}/replay", tag = "Sandbox",
    operation_id = "replayWebhook",
    params(("deliveryId" = String, Path, description = "The delivery's id")),
    responses(
        (status = 202, description = "Queued with a fresh schedule", body = DeliveryView),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
        (status = 404, description = "Unknown delivery", body = SandboxErrorBody),
        (status = 409, description = "An attempt is in flight", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn replay_webhook() {}

/// Inject a fault
///
/// Makes matching requests fail: answer another status or body, wait, or drop the
/// connection, for some or all of them, a number of times or until cleared.
#[utoipa::path(post, path = "/_sandbox/faults", tag = "Sandbox", operation_id = "addFault",
    request_body(content = FaultRequest, content_type = "application/json",
        example = json!({"method": "POST", "path": "/partner/links", "status": 429, "times": 1})),
    responses(
        (status = 201, description = "Armed", body = FaultView, headers(
            ("X-Linkbox-Warning" = String, description = "Sent when a tenant's fault matches only paths usually reached without credentials (the Leaf login, the pages): it touches only the requests there that carry the tenant's own key or token"),
        )),
        (status = 400, description = "Invalid fault, or one that could never fire (a control path, a query string)", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn add_fault() {}

/// The armed faults
///
/// The caller's faults in force, with how many requests each has hit and has left.
#[utoipa::path(get, path = "/_sandbox/faults", tag = "Sandbox", operation_id = "listFaults",
    responses(
        (status = 200, description = "Armed faults", body = FaultPage),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn list_faults() {}

/// Disarm every fault
///
/// Removes the caller's faults (every fault for the admin). It takes no query parameter.
#[utoipa::path(delete, path = "/_sandbox/faults", tag = "Sandbox", operation_id = "clearFaults",
    responses(
        (status = 204, description = "Cleared"),
        (status = 400, description = "A query parameter: nothing was removed", body = SandboxErrorBody),
        (status = 401, description = "Unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = []), ()))]
pub fn clear_faults() {}

/// The partner's whole state
///
/// The caller's users, links, data requests and operations, to save and restore later.
#[utoipa::path(get, path = "/_sandbox/snapshot", tag = "Sandbox", operation_id = "getSnapshot",
    responses(
        (status = 200, description = "Users, links, data requests, operations", body = M2mSnapshot),
        (status = 400, description = "No partner (admin)", body = SandboxErrorBody),
        (status = 401, description = "Missing or unknown key", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub fn get_snapshot() {}

/// Restore the partner's state
///
/// Replaces the caller's state with a snapshot taken from the same partner.
#[utoipa::path(put, path = "/_sandbox/snapshot", tag = "Sandbox", operation_id = "putSnapshot",
    request_body(content = M2mSnapshot, content_type = "application/json"),
    responses(
        (status = 200, description = "Restored", body = M2mSnapshot),
        (status = 400, description = "Invalid snapshot, or another partner's", body = SandboxErrorBody),
        (status = 401, description = "Missing or unknown key", body = SandboxErrorBody),
        (status = 403, description = "STORAGE_FULL: restored, the partner would hold more than --max-tenant-mib, or the sandbox more than --max-stored-mib",
            body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub fn put_snapshot() {}

/// Count an access to a Leaf magic link, as its hosted page does
///
/// Opening the link's page counts one use and sets `lastAccessedAt`; a link that has expired
/// or is used up is gone. The link's Leaf account, or the admin for any account's link.
#[utoipa::path(post, path = "/_sandbox/leaf/magic-links/{id}/access", tag = "Sandbox",
    operation_id = "accessMagicLink",
    params(("id" = String, Path, description = "The magic link's id")),
    responses(
        (status = 200, description = "The link after the access", body = crate::leaf::MagicLink),
        (status = 400, description = "An M2M key, not a Leaf token or the admin (TENANT_REQUIRED)", body = SandboxErrorBody),
        (status = 401, description = "Missing or invalid Leaf token", body = SandboxErrorBody),
        (status = 404, description = "Unknown link, or another account's", body = SandboxErrorBody),
        (status = 410, description = "Expired, used up, or its Leaf user deleted", body = SandboxErrorBody),
    ),
    security(("bearer" = [])))]
pub fn access_magic_link() {}

/// Connect a provider through a Leaf magic link
///
/// Fills the Leaf user's credentials object for that provider. The link's Leaf account, or
/// the admin for any account's link.
#[utoipa::path(post, path = "/_sandbox/leaf/magic-links/{id}/connect", tag = "Sandbox",
    operation_id = "connectMagicLink",
    params(("id" = String, Path, description = "The magic link's id")),
    request_body(content = LeafConnectRequest, content_type = "application/json",
        example = json!({"provider": "JohnDeere"})),
    responses(
        (status = 200, description = "The Leaf user, credentials filled", body = crate::leaf::LeafUser),
        (status = 400, description = "A provider the link does not allow, or an M2M key, not a Leaf token or the admin (TENANT_REQUIRED)", body = SandboxErrorBody),
        (status = 401, description = "Missing or invalid Leaf token", body = SandboxErrorBody),
        (status = 404, description = "Unknown link, or another account's", body = SandboxErrorBody),
        (status = 410, description = "Expired, or its Leaf user deleted", body = SandboxErrorBody),
    ),
    security(("bearer" = [])))]
pub fn connect_magic_link() {}

/// Seed fake users and links
///
/// Creates fake users and links, in given states, for the caller: an M2M partner (by key) or a
/// Leaf account (by token). The same `rngSeed` gives the same data.
#[utoipa::path(post, path = "/_sandbox/seed", tag = "Sandbox", operation_id = "seed",
    request_body(content = SeedRequest, content_type = "application/json",
        example = json!({"api": "m2m", "count": 20, "rngSeed": 7})),
    responses(
        (status = 201, description = "Created", body = SeedResult),
        (status = 400, description = "Invalid request", body = SandboxErrorBody),
        (status = 401, description = "Missing or unknown credentials", body = SandboxErrorBody),
        (status = 403, description = "STORAGE_FULL: the tenant has no room for count more links under \
            --max-tenant-mib or the sandbox under --max-stored-mib (each counted as at most 2 KiB)", body = SandboxErrorBody),
    ),
    security(("apiKey" = []), ("bearer" = [])))]
pub fn seed() {}

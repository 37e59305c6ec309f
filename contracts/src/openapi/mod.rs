//! The OpenAPI 3.1 document of everything linkbox serves, built by utoipa from the wire
//! types of this crate. The operations below are documentation items only: the server's
//! handlers live in `linkbox`, and the tests hold the two together by validating real
//! responses against this document's schemas.
//!
//! What the derive cannot say is added by the modifiers at the end of the list: security
//! schemes, optional request bodies, the `X-Linkbox-Warning` header, the answers any
//! operation may give (503, and 413 for a body too large), and the M2M webhooks.

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Required, ResponseBuilder,
};
use utoipa::{Modify, OpenApi};

use crate::{leaf, m2m, sandbox};

mod free_form;
mod leaf_paths;
mod m2m_paths;
mod sandbox_paths;
mod webhooks;
mod yaml;

#[cfg(test)]
mod generator_checks;

pub use free_form::{DriftValue, FaultBody, Metadata, StoredUserData, WebhookBody};
use webhooks::Webhooks;

/// The whole document.
#[allow(deprecated)]
#[derive(OpenApi)]
#[openapi(
    info(
        title = "linkbox",
        description = "A local, stateful sandbox of LeapFinancial's M2M partner-link API and \
            Leaf Agriculture's magic-link API. Paths and shapes are the vendors'; linkbox's own \
            control API lives under /_sandbox.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    paths(
        m2m_paths::create_link,
        m2m_paths::list_links,
        m2m_paths::get_link,
        m2m_paths::revoke_link,
        m2m_paths::fulfil_data_request,
        m2m_paths::regenerate_secret,
        leaf_paths::authenticate,
        leaf_paths::list_users,
        leaf_paths::get_user,
        leaf_paths::create_user,
        leaf_paths::replace_user,
        leaf_paths::replace_user_by_body,
        leaf_paths::delete_user,
        leaf_paths::provider::list,
        leaf_paths::provider::get,
        leaf_paths::provider::delete,
        leaf_paths::provider::create_for_user,
        leaf_paths::provider::create_legacy,
        leaf_paths::provider::create_with_user,
        leaf_paths::authentication::list,
        leaf_paths::authentication::get,
        leaf_paths::authentication::delete,
        leaf_paths::authentication::create_for_user,
        leaf_paths::authentication::create_legacy,
        leaf_paths::authentication::create_with_user,
        leaf_paths::file_upload::list,
        leaf_paths::file_upload::get,
        leaf_paths::file_upload::delete,
        leaf_paths::file_upload::create_for_user,
        leaf_paths::file_upload::create_legacy,
        leaf_paths::file_upload::create_with_user,
        sandbox_paths::health,
        sandbox_paths::reset,
        sandbox_paths::get_clock,
        sandbox_paths::set_clock,
        sandbox_paths::open_link,
        sandbox_paths::create_operation,
        sandbox_paths::cancel_operation,
        sandbox_paths::set_webhook_config,
        sandbox_paths::list_requests,
        sandbox_paths::verify_requests,
        sandbox_paths::clear_requests,
        sandbox_paths::get_drift,
        sandbox_paths::get_drift_junit,
        sandbox_paths::clear_drift,
        sandbox_paths::list_webhooks,
        sandbox_paths::replay_webhook,
        sandbox_paths::add_fault,
        sandbox_paths::list_faults,
        sandbox_paths::clear_faults,
        sandbox_paths::get_snapshot,
        sandbox_paths::put_snapshot,
        sandbox_paths::access_magic_link,
        sandbox_paths::connect_magic_link,
        sandbox_paths::seed,
    ),
    components(schemas(
        m2m::Visibility,
        m2m::LinkStatus,
        m2m::LinkCreatedEvent,
        m2m::LinkOpenedEvent,
        m2m::DataRequestEvent,
        m2m::OperationCreatedEvent,
        m2m::OperationCancelledEvent,
        leaf::TokenClaims,
        sandbox::DeliveryStatus,
    )),
    tags(
        (name = "M2M", description = "LeapFinancial M2M partner links (X-API-Key)"),
        (name = "M2M webhooks", description = "The events linkbox sends to a partner's \
            webhook URL, signed as the M2M API signs them"),
        (name = "Leaf", description = "Leaf Agriculture magic links and Leaf users (Bearer id_token)"),
        (name = "Sandbox", description = "linkbox's own control API: clock, end-user actions, \
            journal, webhooks, faults, snapshots"),
    ),
    modifiers(&SecuritySchemes, &OptionalBodies, &WarningHeader, &CommonAnswers, &Webhooks)
)]
pub struct ApiDoc;

/// The tag of the M2M webhooks the document describes (its `webhooks`).
pub(crate) const WEBHOOKS_TAG: &str = "M2M webhooks";

/// The document as pretty JSON, exactly as committed in `openapi/` and served at
/// `/openapi.json`.
pub fn json() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}"));
    text.push('\n');
    text
}

/// The document as YAML.
pub fn yaml() -> String {
    match serde_json::to_value(ApiDoc::openapi()) {
        Ok(value) => yaml::to_yaml(&value),
        Err(error) => format!("error: {error}\n"),
    }
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "A sandbox key: m2m_test_ followed by 32 letters or digits.",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The M2M key as a Bearer token, or a Leaf id_token from /api/authenticate.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every operation of the document, mutably.
fn operations(openapi: &mut utoipa::openapi::OpenApi) -> impl Iterator<Item = &mut Operation> {
    openapi
        .paths
        .paths
        .values_mut()
        .flat_map(|item: &mut PathItem| {
            [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
        })
        .filter_map(Option::as_mut)
}

/// An optional body (`request_body(content = Option<T>)`) is the plain schema of `T` with
/// `required: false`. The derive writes `oneOf [T, null]` instead, which says a client may send
/// the JSON `null`; generators then build a body argument that cannot be left out.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in operations(openapi) {
            let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
                continue;
            };
            if body.required.is_some() {
                continue;
            }
            for content in body.content.values_mut() {
                let RefOr::T(content) = content else {
                    continue;
                };
                if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
                    let mut others = one_of.items.iter().filter(|item| !is_null(item));
                    if let (Some(only), None) = (others.next(), others.next()) {
                        content.schema = Some(only.clone());
                    }
                }
            }
            body.required = Some(Required::False);
        }
    }
}

fn is_null(schema: &RefOr<Schema>) -> bool {
    matches!(schema, RefOr::T(Schema::Object(object))
        if object.schema_type == SchemaType::Type(Type::Null))
}

/// The operations that name each request field they ignored in `X-Linkbox-Warning`: those
/// that read a body or a query the vendor parses leniently.
pub const WARNING_OPERATIONS: [&str; 23] = [
    "createLink",
    "listLinks",
    "getLink",
    "regenerateWebhookSecret",
    "revokeLink",
    "fulfilDataRequest",
    "authenticate",
    "listLeafUsers",
    "createLeafUser",
    "replaceLeafUser",
    "replaceLeafUserById",
    "listProviderMagicLink",
    "listAuthenticationMagicLink",
    "listFileUploadMagicLink",
    "createForUserProviderMagicLink",
    "createForUserAuthenticationMagicLink",
    "createForUserFileUploadMagicLink",
    "createLegacyProviderMagicLink",
    "createLegacyAuthenticationMagicLink",
    "createLegacyFileUploadMagicLink",
    "createWithUserProviderMagicLink",
    "createWithUserAuthenticationMagicLink",
    "createWithUserFileUploadMagicLink",
];

/// The header's name as the document shows it (`m2m::WARNING_HEADER` is its lowercase form).
pub const WARNING_HEADER: &str = "X-Linkbox-Warning";

/// Documents `X-Linkbox-Warning` on the success responses of `WARNING_OPERATIONS`.
struct WarningHeader;

impl Modify for WarningHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let header = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(
                "Sent once for each request field linkbox ignored (the vendor ignores them \
                 silently), as: ignored unknown field \"name\"; an unknown key inside userData \
                 is kept as sent, as: unknown field kept as sent: \"userData.name\". A \
                 misspelt field shows up here instead of going unnoticed.",
            ))
            .example(Some("ignored unknown field \"expiresInMinute\"".into()))
            .build();
        for operation in operations(openapi) {
            let warns = operation
                .operation_id
                .as_deref()
                .is_some_and(|id| WARNING_OPERATIONS.contains(&id));
            if !warns {
                continue;
            }
            for (status, response) in operation.responses.responses.iter_mut() {
                if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
                    response
                        .headers
                        .insert(WARNING_HEADER.to_owned(), header.clone().into());
                }
            }
        }
    }
}

/// The answers any operation may give besides its own, in the envelope of its API: on the
/// vendor APIs, 500 (the vendors' internal error, as a fault injects it); 503 with
/// `Retry-After` (a body, or an answer past 64 KiB, linkbox has no room to hold now,
/// `--max-bodies-mib`; in a sandbox
/// shared by replicas, the database unavailable), and, on an operation that takes a body,
/// 413 for one past its limit (and on the control API's, 415 for one not JSON). A control
/// operation that takes no body reads one all the same: 400 for a field, 413 and 415 too.
/// Declared so that a generated client knows their shape.
struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let retry_after = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
            .description(Some("Seconds to wait before trying again."))
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path == "/_sandbox/health" {
                continue;
            }
            let (schema, content_type) = if path.starts_with("/partner") {
                ("ErrorEnvelope", "application/json")
            } else if path.starts_with("/api") || path.starts_with("/services") {
                ("Problem", "application/problem+json")
            } else {
                ("SandboxErrorBody", "application/json")
            };
            let answer = |description: &str| {
                ResponseBuilder::new().description(description).content(
                    content_type,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(schema)))
                        .build(),
                )
            };
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .filter_map(Option::as_mut)
            {
                let responses = &mut operation.responses.responses;
                responses.entry("503".to_owned()).or_insert_with(|| {
                    answer(
                        "linkbox cannot take the request now: a body, or an answer over \
                         64 KiB, it has no room to hold (--max-bodies-mib), or the shared \
                         database unavailable. Nothing was done (unless the message says the \
                         change was made, or the database was lost while the changes were \
                         being saved: then read the resource again); try again after \
                         Retry-After.",
                    )
                    .header("Retry-After", retry_after.clone())
                    .build()
                    .into()
                });
                // The vendors' own internal error, which linkbox answers only where a fault
                // injects it (`POST /_sandbox/faults`): M2M documents its 500, and a client
                // testing its handling of one should get it typed.
                if !path.starts_with("/_sandbox") {
                    responses.entry("500".to_owned()).or_insert_with(|| {
                        answer(
                            "The vendor's internal error (M2M's INTERNAL_ERROR). linkbox \
                             answers it only where a fault injects it (POST /_sandbox/faults), \
                             as it does any other status a fault names.",
                        )
                        .build()
                        .into()
                    });
                }
                if path.starts_with("/_sandbox") {
                    responses.entry("403".to_owned()).or_insert_with(|| {
                        answer(
                            "The caller is refused: a new key or Leaf username past \
                             --max-tenants (INVALID_API_KEY, UNAUTHORIZED), a suspended partner \
                             (PARTNER_SUSPENDED), or a write past the tenant's storage budget \
                             (STORAGE_FULL).",
                        )
                        .build()
                        .into()
                    });
                }
                // A control operation that takes no body reads one sent all the same, by
                // the rule of those that take one: none or `{}`, and any field refused.
                let control = path.starts_with("/_sandbox");
                let reads_none = operation.request_body.is_none();
                if control && reads_none {
                    responses.entry("400".to_owned()).or_insert_with(|| {
                        answer(
                            "A body this operation does not take: it takes none (or `{}`), and a \
                             field is refused, named",
                        )
                        .build()
                        .into()
                    });
                }
                if operation.request_body.is_none() && !(control && reads_none) {
                    continue;
                }
                if path.starts_with("/_sandbox") {
                    responses.entry("415".to_owned()).or_insert_with(|| {
                        answer("A body of a type other than JSON").build().into()
                    });
                }
                responses
                    .entry("413".to_owned())
                    .or_insert_with(|| answer("A body past this operation's limit").build().into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        serde_json::from_str(&json()).unwrap_or_default()
    }

    /// Every control-API operation but the health check may refuse its caller with a 403
    /// (`--max-tenants`, a suspended partner, a full budget): a generated client that raises
    /// on undocumented statuses must know it.
    #[test]
    fn every_control_operation_documents_its_403() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        let mut seen = 0;
        for (path, item) in paths {
            if !path.starts_with("/_sandbox") || path == "/_sandbox/health" {
                continue;
            }
            for (method, operation) in item.as_object().expect("a path item") {
                if let Some(responses) = operation.get("responses") {
                    assert!(responses.get("403").is_some(), "{method} {path}");
                    seen += 1;
                }
            }
        }
        assert!(seen > 15, "{seen} control operations");
    }

    /// Every vendor operation documents the vendors' 500 in its API's envelope: M2M lists it
    /// among its statuses, and a fault injects it on either API.
    #[test]
    fn every_vendor_operation_documents_the_vendors_500() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        let mut seen = 0;
        for (path, item) in paths {
            let schema = if path.starts_with("/partner") {
                "#/components/schemas/ErrorEnvelope"
            } else if path.starts_with("/api") || path.starts_with("/services") {
                "#/components/schemas/Problem"
            } else {
                continue;
            };
            for (method, operation) in item.as_object().expect("a path item") {
                let Some(responses) = operation.get("responses") else {
                    continue;
                };
                let content = responses["500"]["content"]
                    .as_object()
                    .and_then(|content| content.values().next());
                assert_eq!(
                    content.map(|content| &content["schema"]["$ref"]),
                    Some(&serde_json::json!(schema)),
                    "{method} {path}"
                );
                seen += 1;
            }
        }
        assert!(seen > 20, "{seen} vendor operations");
    }

    #[test]
    fn the_document_is_openapi_3_1_with_both_security_schemes() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["apiKey"]["name"], "X-API-Key");
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
    }

    #[test]
    fn the_documented_bounds_are_the_validated_constants() {
        let doc = document();
        let request = &doc["components"]["schemas"]["CreateLinkRequest"]["properties"];
        assert_eq!(
            request["expiresInMinutes"]["minimum"],
            m2m::EXPIRES_IN_MINUTES_MIN
        );
        assert_eq!(
            request["expiresInMinutes"]["maximum"],
            m2m::EXPIRES_IN_MINUTES_MAX
        );
        assert_eq!(
            request["referenceId"]["maxLength"],
            m2m::REFERENCE_ID_MAX_LEN
        );
        let operation = &doc["components"]["schemas"]["OperationRequest"]["properties"];
        let amount = |bound: &str| operation["amount"][bound].as_f64();
        assert_eq!(
            amount("minimum"),
            Some(crate::sandbox::OperationRequest::MIN_AMOUNT)
        );
        assert_eq!(
            amount("maximum"),
            Some(crate::sandbox::OperationRequest::MAX_AMOUNT)
        );
        assert_eq!(
            operation["exchangeRate"]["maximum"].as_f64(),
            Some(crate::sandbox::OperationRequest::MAX_EXCHANGE_RATE)
        );
        for currency in ["sendCurrency", "receiveCurrency"] {
            assert_eq!(
                operation[currency]["pattern"],
                crate::sandbox::OperationRequest::CURRENCY
            );
        }
        let created = &doc["components"]["schemas"]["CreatedLink"]["properties"];
        assert_eq!(created["linkId"]["pattern"], m2m::LINK_ID_PATTERN);
        let secret = &doc["components"]["schemas"]["RegeneratedSecret"]["properties"];
        assert_eq!(
            secret["webhookSecret"]["pattern"],
            m2m::WEBHOOK_SECRET_PATTERN
        );
        // The webhook list's paging, so that a generated client can page.
        let parameters = doc["paths"]["/_sandbox/webhooks"]["get"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let named = |name: &str| {
            parameters
                .iter()
                .find(|parameter| parameter["name"] == name)
                .cloned()
                .unwrap_or_default()
        };
        assert_eq!(
            named("limit")["schema"]["maximum"],
            crate::sandbox::MAX_DELIVERY_PAGE
        );
        assert_eq!(named("limit")["schema"]["minimum"], 1);
        assert_eq!(named("before")["in"], "query");
    }

    #[test]
    fn the_control_bodies_ranges_are_the_checked_ones() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for (name, ranges) in sandbox::RANGED_BODIES {
            for range in *ranges {
                let field = &schemas[*name]["properties"][range.field];
                assert_eq!(field["minimum"], range.min, "{name}.{}", range.field);
                assert_eq!(field["maximum"], range.max, "{name}.{}", range.field);
            }
        }
        // Above 0 (a fault of probability 0 could never fire), at most 1.
        let probability = &schemas["FaultRequest"]["properties"]["probability"];
        assert_eq!(
            (
                &probability["exclusiveMinimum"],
                &probability["minimum"],
                &probability["maximum"]
            ),
            (&0.into(), &serde_json::Value::Null, &1.into())
        );
    }

    #[test]
    fn every_referenced_schema_is_defined() {
        let text = json();
        let doc = document();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
    }
}

//! The OpenAPI 3.1 document of everything linkbox serves, built by utoipa from the wire
//! types of this crate. The operations below are documentation items only: the server's
//! handlers live in `linkbox`, and the tests hold the two together by validating real
//! responses against this document's schemas.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{leaf, m2m, sandbox};

mod leaf_paths;
mod m2m_paths;
mod sandbox_paths;

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
        (name = "Leaf", description = "Leaf Agriculture magic links and Leaf users (Bearer id_token)"),
        (name = "Sandbox", description = "linkbox's own control API: clock, end-user actions, \
            journal, webhooks, faults, snapshots"),
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

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
    ApiDoc::openapi()
        .to_yaml()
        .unwrap_or_else(|error| format!("error: {error}\n"))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        serde_json::from_str(&json()).unwrap_or_default()
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
        let created = &doc["components"]["schemas"]["CreatedLink"]["properties"];
        assert_eq!(created["linkId"]["pattern"], m2m::LINK_ID_PATTERN);
        let secret = &doc["components"]["schemas"]["RegeneratedSecret"]["properties"];
        assert_eq!(
            secret["webhookSecret"]["pattern"],
            m2m::WEBHOOK_SECRET_PATTERN
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

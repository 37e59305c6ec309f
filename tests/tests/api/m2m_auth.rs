//! M2M keys where the contract suite cannot reach: a configured linkbox (only configured
//! keys, a partner's own default expiry, a suspended partner) and the open-mode partner slug.
//! Missing, malformed, live and Bearer keys and tenant isolation are the suite's
//! (`m2m.auth.*`, `m2m.*.other-partner-404`, `m2m.list.tenant-isolation`).

use linkbox::Options;
use linkbox::config::FileConfig;
use linkbox_contracts::m2m::messages;
use linkbox_tests::{assert_m2m_error, spawn_app, spawn_app_with, test_key};
use serde_json::json;

const ACME: &str = "m2m_test_acmeacmeacmeacmeacmeacmeacmeacme";
const FROZEN: &str = "m2m_test_frozenfrozenfrozenfrozenfrozen00";

fn config_mode() -> Options {
    let config = FileConfig::parse(&format!(
        r#"
        [[partners]]
        slug = "acme"
        keys = ["{ACME}"]
        default_expires_in_minutes = 120

        [[partners]]
        slug = "frozen"
        keys = ["{FROZEN}"]
        suspended = true
        "#
    ))
    .expect("valid config");
    Options {
        file: Some(config),
        ..Options::default()
    }
}

#[tokio::test]
async fn config_mode_accepts_only_configured_keys() {
    let app = spawn_app_with(config_mode()).await;
    let reply = app.list_links(&test_key(1), "").await;
    assert_m2m_error(&reply, 401, "INVALID_API_KEY", messages::INVALID_API_KEY);
    let created = app.create_link_for(ACME, "user-1").await;
    assert!(
        created["linkId"]
            .as_str()
            .is_some_and(|id| id.starts_with("link_acme_")),
        "{created}"
    );
}

#[tokio::test]
async fn config_mode_uses_the_partner_default_expiry() {
    let app = spawn_app_with(config_mode()).await;
    let created = app.create_link_for(ACME, "user-1").await;
    let created_at =
        linkbox_contracts::timefmt::parse(created["createdAt"].as_str().unwrap_or_default());
    let expires_at =
        linkbox_contracts::timefmt::parse(created["expiresAt"].as_str().unwrap_or_default());
    let (Some(created_at), Some(expires_at)) = (created_at, expires_at) else {
        panic!("timestamps in {created}");
    };
    assert_eq!(expires_at - created_at, time::Duration::minutes(120));
}

#[tokio::test]
async fn a_suspended_partner_is_forbidden() {
    let app = spawn_app_with(config_mode()).await;
    let reply = app.create_link(FROZEN, &json!({"referenceId": "u"})).await;
    assert_m2m_error(
        &reply,
        403,
        "PARTNER_SUSPENDED",
        messages::PARTNER_SUSPENDED,
    );
}

#[tokio::test]
async fn open_mode_partners_are_named_after_a_hash_of_their_key() {
    let app = spawn_app().await;
    let created = app.create_link_for(&test_key(7), "user-1").await;
    let slug = linkbox::store::m2m::open_mode_slug(&test_key(7));
    assert!(
        created["linkId"]
            .as_str()
            .is_some_and(|id| id.starts_with(&format!("link_{slug}_"))),
        "{created}"
    );
}

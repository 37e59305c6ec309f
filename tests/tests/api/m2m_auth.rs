//! M2M keys where the contract suite cannot reach: a configured linkbox (only configured
//! keys, a partner's own default expiry, a suspended partner) and the open-mode partner slug.
//! Missing, malformed, live and Bearer keys and tenant isolation are the suite's
//! (`m2m.auth.*`, `m2m.*.other-partner-404`, `m2m.list.tenant-isolation`).

use http::Method;
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

/// Two distinct test keys whose open-mode slugs (`p` + 8 hex digits of SHA-256) coincide:
/// a birthday search over about 2¹⁶ keys.
fn colliding_keys() -> (String, String) {
    use sha2::{Digest, Sha256};
    let mut seen = std::collections::HashMap::new();
    for n in 0u32.. {
        let key = format!("m2m_test_collide{n:0>25}");
        let digest = Sha256::digest(key.as_bytes());
        let slug: [u8; 4] = [digest[0], digest[1], digest[2], digest[3]];
        if let Some(first) = seen.insert(slug, key.clone()) {
            return (first, key);
        }
    }
    unreachable!("a 32-bit collision exists among 2^32 + 1 keys")
}

#[tokio::test]
async fn a_key_whose_short_id_collides_is_refused_never_merged() {
    let app = spawn_app().await;
    let (first, second) = colliding_keys();
    let link = app.create_link_for(&first, "victim").await;
    let link_id = link["linkId"].as_str().expect("link id").to_owned();

    let stolen = app.get_link(&second, &link_id).await;
    assert_eq!(stolen.status, 401, "{stolen:?}");
    assert_eq!(stolen.json["error"]["code"], "INVALID_API_KEY");
    let message = stolen.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("another key"), "{message}");
    let listed = app.list_links(&second, "").await;
    assert_eq!(listed.status, 401, "{listed:?}");
    let hooks = app
        .control(Method::GET, "/webhooks", Some(&second), None)
        .await;
    assert_eq!(hooks.status, 401, "{hooks:?}");
    assert_eq!(hooks.json["error"]["code"], "INVALID_API_KEY", "{hooks:?}");

    let owner = app.get_link(&first, &link_id).await;
    assert_eq!(owner.status, 200, "{owner:?}");
}

#[tokio::test]
async fn beyond_max_tenants_a_new_key_is_refused_and_known_keys_still_work() {
    let app = spawn_app_with(Options {
        max_tenants: Some(2),
        ..Options::default()
    })
    .await;
    app.create_link_for(&test_key(1), "a").await;
    app.create_link_for(&test_key(2), "b").await;
    let refused = app
        .create_link(&test_key(3), &json!({"referenceId": "c"}))
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(refused.json["error"]["code"], "INVALID_API_KEY");
    let message = refused.json["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("--max-tenants"), "{message}");
    let listed = app.list_links(&test_key(3), "").await;
    assert_eq!(listed.status, 403, "{listed:?}");
    let known = app.list_links(&test_key(1), "").await;
    assert_eq!(known.status, 200, "{known:?}");
}

/// The admin reset forgets open-mode partners whole, so the places `--max-tenants` counts
/// are free again: a CI fleet with a key per job does not lock a shared sandbox for good.
/// A tenant's own reset keeps its partner (webhook URL and secret stay) and its place.
#[tokio::test]
async fn the_admin_reset_gives_back_every_place_max_tenants_counts() {
    let app = spawn_app_with(Options {
        max_tenants: Some(2),
        ..Options::default()
    })
    .await;
    app.create_link_for(&test_key(1), "a").await;
    app.create_link_for(&test_key(2), "b").await;
    let own = app
        .control(Method::POST, "/reset", Some(&test_key(2)), None)
        .await;
    assert_eq!(own.status, 200, "{own:?}");
    let refused = app
        .create_link(&test_key(3), &json!({"referenceId": "c"}))
        .await;
    assert_eq!(
        refused.status, 403,
        "a tenant's reset keeps its place: {refused:?}"
    );
    let everything = app.control(Method::POST, "/reset", None, None).await;
    assert_eq!(everything.status, 200, "{everything:?}");
    assert_eq!(everything.json["scope"], "all", "{everything:?}");
    app.create_link_for(&test_key(3), "c").await;
    app.create_link_for(&test_key(1), "a").await;
    let full = app
        .create_link(&test_key(2), &json!({"referenceId": "b"}))
        .await;
    assert_eq!(full.status, 403, "two places, two partners: {full:?}");
    let gone = app.list_links(&test_key(1), "").await;
    assert_eq!(gone.json["data"]["items"].as_array().map(Vec::len), Some(1));
}

/// A config file may give a partner any webhook URL. Its snapshot restores as it was taken,
/// though a restore that set that URL anew would be refused (plain http, not loopback).
#[tokio::test]
async fn a_configured_webhook_url_survives_its_snapshots_round_trip() {
    const HOOKED: &str = "m2m_test_hookedhookedhookedhookedhooked00";
    let config = FileConfig::parse(&format!(
        r#"
        [[partners]]
        slug = "hooked"
        keys = ["{HOOKED}"]
        webhook_url = "http://10.0.0.5:8080/hooks"
        "#
    ))
    .expect("valid config");
    let app = spawn_app_with(Options {
        file: Some(config),
        ..Options::default()
    })
    .await;
    app.create_link_for(HOOKED, "user-1").await;
    let taken = app
        .control(Method::GET, "/snapshot", Some(HOOKED), None)
        .await;
    assert_eq!(taken.json["webhookUrl"], "http://10.0.0.5:8080/hooks");
    let restored = app
        .control(Method::PUT, "/snapshot", Some(HOOKED), Some(&taken.json))
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    assert_eq!(restored.json, taken.json);
    let mut moved = taken.json.clone();
    moved["webhookUrl"] = json!("http://10.0.0.6:8080/hooks");
    let refused = app
        .control(Method::PUT, "/snapshot", Some(HOOKED), Some(&moved))
        .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    // A test changes the URL through the API; the snapshot taken before still restores,
    // the config file's URL with it.
    let changed = app
        .control(
            Method::PUT,
            "/m2m/webhook-config",
            Some(HOOKED),
            Some(&json!({"url": "https://hooks.example/new"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{changed:?}");
    let restored = app
        .control(Method::PUT, "/snapshot", Some(HOOKED), Some(&taken.json))
        .await;
    assert_eq!(restored.status, 200, "{restored:?}");
    assert_eq!(restored.json["webhookUrl"], "http://10.0.0.5:8080/hooks");
}

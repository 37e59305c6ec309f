//! Load and soak, bounded in count and time, on loopback: many clients over both APIs at
//! once. Afterwards every acknowledged link exists exactly once and each tenant's journal
//! ring sits at its bound, however many requests went through.

use std::collections::{HashMap, HashSet};

use linkbox::Options;
use linkbox::config::RateLimits;
use linkbox_tests::{spawn_app_with, test_key};
use reqwest::Method;
use serde_json::{Value, json};

const CLIENTS: u32 = 32;
const REQUESTS_PER_CLIENT: u32 = 60;
const JOURNAL: usize = 100;

#[tokio::test]
async fn many_clients_over_both_apis_lose_nothing_and_the_journal_stays_bounded() {
    let app = spawn_app_with(Options {
        rate_limits: Some(RateLimits::Off),
        journal_size: Some(JOURNAL),
        ..Options::default()
    })
    .await;
    let token = app.authenticate("load@example.com").await;
    let base = app.base.clone();
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let http = app.client.clone();
        let base = base.clone();
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let key = test_key(client % 8);
            let (mut m2m, mut leaf) = (Vec::new(), Vec::new());
            for n in 0..REQUESTS_PER_CLIENT {
                if n % 2 == 0 {
                    let response = http
                        .post(format!("{base}/partner/links"))
                        .header("x-api-key", &key)
                        .json(&json!({"referenceId": format!("load-{client}-{n}")}))
                        .send()
                        .await
                        .expect("m2m create");
                    assert_eq!(response.status(), 201);
                    let body: Value = response.json().await.expect("json");
                    m2m.push((
                        key.clone(),
                        body["data"]["linkId"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned(),
                    ));
                } else {
                    let response = http
                        .post(format!("{base}/services/widgets/api/magic-link/provider"))
                        .bearer_auth(&token)
                        .json(&json!({"externalId": format!("farm-{client}")}))
                        .send()
                        .await
                        .expect("leaf create");
                    assert_eq!(response.status(), 200);
                    let body: Value = response.json().await.expect("json");
                    leaf.push(body["id"].as_str().unwrap_or_default().to_owned());
                }
            }
            (m2m, leaf)
        }));
    }
    let mut acknowledged: HashMap<String, HashSet<String>> = HashMap::new();
    let mut leaf_acknowledged = HashSet::new();
    for task in tasks {
        let (m2m, leaf) = task.await.expect("client");
        for (key, link) in m2m {
            assert!(
                acknowledged.entry(key).or_default().insert(link),
                "duplicate link id"
            );
        }
        for id in leaf {
            assert!(leaf_acknowledged.insert(id), "duplicate magic link id");
        }
    }

    for (key, links) in &acknowledged {
        let mut listed = Vec::new();
        let mut page = 1;
        loop {
            let reply = app.list_links(key, &format!("limit=100&page={page}")).await;
            let items = reply.data()["items"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                break;
            }
            listed.extend(
                items
                    .iter()
                    .map(|item| item["linkId"].as_str().unwrap_or_default().to_owned()),
            );
            page += 1;
        }
        let unique: HashSet<String> = listed.iter().cloned().collect();
        assert_eq!(unique.len(), listed.len(), "a link is listed twice");
        assert_eq!(&unique, links, "listed links differ from acknowledged ones");
    }
    let leaf_listed = app
        .leaf(
            Method::GET,
            "/services/widgets/api/magic-link/provider",
            &token,
            None,
        )
        .await;
    let listed: Vec<String> = leaf_listed
        .json
        .as_array()
        .into_iter()
        .flatten()
        .map(|link| link["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let unique: HashSet<String> = listed.iter().cloned().collect();
    assert_eq!(unique.len(), listed.len());
    assert_eq!(unique, leaf_acknowledged);

    // Admin view (no admin token configured, no key): every tenant's ring, each at its
    // bound — eight partners and the Leaf account sent more than JOURNAL requests each —
    // plus the one request without a tenant (the Leaf login).
    let journal = app.control(Method::GET, "/requests", None, None).await;
    assert_eq!(journal.json["capacity"], JOURNAL);
    let mut per_tenant: HashMap<String, usize> = HashMap::new();
    for entry in journal.json["requests"].as_array().expect("requests") {
        let tenant = entry["tenant"].as_str().unwrap_or("-").to_owned();
        *per_tenant.entry(tenant).or_default() += 1;
    }
    assert_eq!(per_tenant.len(), 10, "{per_tenant:?}");
    assert_eq!(per_tenant.get("-"), Some(&1), "{per_tenant:?}");
    assert!(
        per_tenant
            .iter()
            .all(|(tenant, count)| tenant == "-" || *count == JOURNAL),
        "{per_tenant:?}"
    );
}

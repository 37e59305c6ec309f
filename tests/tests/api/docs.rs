//! The contract as a document: `/openapi.json` is the committed file, `/docs` browses it, the
//! committed request schema rejects what the server rejects, and the control API's responses
//! validate against their schemas. Responses of the vendor APIs are validated against the
//! committed schemas by the contract suite, on every request it sends.

use linkbox_tests::{assert_matches_schema, spawn_app, test_key};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn openapi_json_is_the_committed_document_byte_for_byte() {
    let app = spawn_app().await;
    let reply = app.send(Method::GET, "/openapi.json", &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let committed = include_str!("../../../openapi/linkbox.openapi.json");
    assert!(
        reply.text == committed,
        "served document differs from the committed one"
    );
    assert_eq!(reply.json["openapi"], "3.1.0");
}

#[tokio::test]
async fn docs_serve_a_swagger_ui_pointing_at_the_document() {
    let app = spawn_app().await;
    let index = app.send(Method::GET, "/docs/", &[], None).await;
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(index.text.contains("swagger"), "{}", index.text);
    let init = app
        .send(Method::GET, "/docs/swagger-initializer.js", &[], None)
        .await;
    assert_eq!(init.status, 200);
    // Relative to the UI's address, as the way there is: behind a proxy serving linkbox
    // under a path (`https://host/base/docs` → `https://host/base/docs/`, whose
    // `../openapi.json` is `https://host/base/openapi.json`) both stay under it.
    assert!(init.text.contains("\"../openapi.json\""), "{}", init.text);
    // `/docs` moves there (`Location: docs/`, followed by the client).
    let moved = app.send(Method::GET, "/docs", &[], None).await;
    assert_eq!(moved.status, 200);
    assert!(moved.text.contains("swagger"), "{}", moved.text);
    let missing = app.send(Method::GET, "/docs/nope.js", &[], None).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn the_schema_rejects_what_the_server_rejects_at_the_bounds() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../schemas/m2m/CreateLinkRequest.json"))
            .expect("schema");
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let app = spawn_app().await;
    for (i, minutes) in [4, 5, 10080, 10081].into_iter().enumerate() {
        let body = json!({"referenceId": format!("u{i}"), "expiresInMinutes": minutes});
        let accepted = app.create_link(&test_key(1), &body).await.status == 201;
        assert_eq!(validator.is_valid(&body), accepted, "{minutes}");
    }
    for (i, language) in ["en", "es", "fr"].into_iter().enumerate() {
        let body = json!({"referenceId": format!("l{i}"), "language": language});
        let accepted = app.create_link(&test_key(1), &body).await.status == 201;
        assert_eq!(validator.is_valid(&body), accepted, "{language}");
    }
}

/// The OpenAPI document's create request takes what the server takes: `null` in every
/// optional field counts as absent, so a typed client generated from it can send it; and a
/// payment method without its kind's details, which the server refuses, it refuses.
#[tokio::test]
async fn the_openapi_create_request_takes_what_the_server_takes() {
    let document: serde_json::Value =
        serde_json::from_str(include_str!("../../../openapi/linkbox.openapi.json"))
            .expect("document");
    let schema = json!({
        "$ref": "#/components/schemas/CreateLinkRequest",
        "components": document["components"],
    });
    let validator = jsonschema::validator_for(&schema).expect("compiles");
    let app = spawn_app().await;
    let nulls = json!({"referenceId": "nulls", "expiresInMinutes": null, "userData": null,
        "metadata": null, "flow": null, "theme": null, "language": null, "callbackUrl": null});
    let detailless = json!({"referenceId": "details",
        "userData": {"paymentMethod": {"type": "cash", "cash": {"provider": "OXXO"}}}});
    for body in [nulls, detailless] {
        let accepted = app.create_link(&test_key(1), &body).await.status == 201;
        assert_eq!(validator.is_valid(&body), accepted, "{body}");
    }
}

/// A validator of the served document's `schema`.
fn validator_of(schema: &str) -> jsonschema::Validator {
    let document: serde_json::Value =
        serde_json::from_str(include_str!("../../../openapi/linkbox.openapi.json"))
            .expect("document");
    let schema = json!({
        "$ref": format!("#/components/schemas/{schema}"),
        "components": document["components"],
    });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("compiles")
}

/// What the server refuses by its form, the document refuses too, and what it takes the
/// document takes: a payment method's kind, an identity image's `data:` URL, a colour, a
/// logo's and a header image's URL, blank references, external ids, Leaf names and
/// passwords (white space of Unicode's too), `rememberMe` as text. A value the document
/// took was one a client or mock generated from it would send, and the server refused.
#[tokio::test]
async fn the_documents_request_schemas_refuse_what_the_server_refuses() {
    let app = spawn_app().await;
    let key = test_key(1);
    let create = validator_of("CreateLinkRequest");
    let user_data = |payment: serde_json::Value, image: &str| json!({"paymentMethod": payment, "idImage": image});
    let cash = json!({"type": "cash", "cash": {"provider": "OXXO", "reference": "R-1"}});
    let paypal = json!({"type": "paypal", "cash": {"provider": "OXXO", "reference": "R-1"}});
    let image = "data:image/png;base64,iVBORw0KGgo=";
    for (n, user_data) in [
        user_data(cash.clone(), image),
        user_data(paypal, image),
        user_data(cash, "abc"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"referenceId": format!("pay-{n}"), "userData": user_data});
        let accepted = app.create_link(&key, &body).await.status == 201;
        assert_eq!(create.is_valid(&body), accepted, "{body}");
    }
    // A reference of white space alone, ASCII's or Unicode's, is blank.
    for reference in ["ref-ok", "   ", "\u{a0}", "\u{3000}\u{2028}"] {
        let body = json!({"referenceId": reference});
        let accepted = app.create_link(&key, &body).await.status == 201;
        assert_eq!(create.is_valid(&body), accepted, "{body}");
    }
    let login = validator_of("AuthenticateRequest");
    for (n, (password, remember)) in [
        ("secret", json!("true")),
        ("", json!(false)),
        ("   ", json!(false)),
        ("\u{a0}\u{85}", json!(false)),
        ("\u{2007}\u{1680}", json!(false)),
        ("secret", json!("yes")),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"username": format!("grower-{n}"), "password": password,
            "rememberMe": remember});
        let reply = app
            .send(
                Method::POST,
                "/api/authenticate",
                &[("content-type", "application/json")],
                Some(body.to_string().into_bytes()),
            )
            .await;
        assert_eq!(
            login.is_valid(&body),
            reply.status == 200,
            "{body}: {reply:?}"
        );
    }
    let token = app.authenticate("grower").await;
    let leaf_cases = [
        (
            "LeafUserRequest",
            "/services/usermanagement/api/users",
            201,
            ["Ada", "", " ", "\u{3000}"]
                .into_iter()
                .enumerate()
                .map(|(n, name)| {
                    json!({"externalId": format!("farm-{n}"), "name": name,
                        "email": format!("u{n}@example.com")})
                })
                .collect::<Vec<_>>(),
        ),
        (
            "ProviderLinkWithUserRequest",
            "/services/widgets/api/magic-link/provider",
            200,
            ["", "   ", "\u{a0}"]
                .into_iter()
                .map(|external| json!({"externalId": external, "provider": "JohnDeere"}))
                .collect(),
        ),
        (
            "ProviderLinkWithUserRequest",
            "/services/widgets/api/magic-link/provider",
            200,
            [
                json!({"backgroundColor": "#fff", "companyLogo": "https://x.example/logo.png"}),
                json!({"backgroundColor": "red"}),
                json!({"companyLogo": "not a url"}),
                json!({"companyLogo": "  https://x.example/logo.png"}),
                json!({"companyLogo": "http:"}),
                json!({"companyLogo": "https://x y/logo.png"}),
                json!({"companyLogo": "https:///logo.png"}),
                json!({"headerImage": "https://x.example/header.png"}),
                json!({"headerImage": "not a url"}),
                json!({"headerImage": ""}),
            ]
            .into_iter()
            .enumerate()
            .map(|(n, settings)| {
                json!({"externalId": format!("field-{n}"), "expiresIn": 900,
                    "provider": "JohnDeere", "settings": settings})
            })
            .collect(),
        ),
    ];
    for (schema, path, taken, bodies) in leaf_cases {
        let validator = validator_of(schema);
        for body in bodies {
            let reply = app.leaf(Method::POST, path, &token, Some(&body)).await;
            assert_eq!(
                validator.is_valid(&body),
                reply.status == taken,
                "{schema} {body}: {reply:?}"
            );
        }
    }
}

#[tokio::test]
async fn every_control_response_validates_against_its_schema() {
    let app = spawn_app().await;
    let key = test_key(1);
    let receiver = linkbox_tests::receiver::Receiver::start().await;
    let health = app.send(Method::GET, "/_sandbox/health", &[], None).await;
    assert_matches_schema(&health, "sandbox/Health.json");
    assert_matches_schema(
        &app.control(Method::GET, "/clock", Some(&key), None).await,
        "sandbox/ClockView.json",
    );
    assert_matches_schema(
        &app.control(
            Method::POST,
            "/clock",
            Some(&key),
            Some(&json!({"advanceSeconds": 1})),
        )
        .await,
        "sandbox/ClockView.json",
    );
    let created = app
        .create_link(
            &key,
            &json!({"referenceId": "u1", "callbackUrl": receiver.url}),
        )
        .await;
    let link_id = created.data()["linkId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let opened = app
        .control(
            Method::POST,
            &format!("/m2m/links/{link_id}/open"),
            Some(&key),
            Some(&json!({"userAgent": "test", "platform": "web", "language": "es"})),
        )
        .await;
    assert_matches_schema(&opened, "sandbox/OpenedLink.json");
    let operation = app
        .create_operation(&key, &link_id, &json!({"amount": 100}))
        .await;
    assert_eq!(operation.status, 201, "{operation:?}");
    assert_matches_schema(&operation, "sandbox/OperationView.json");
    let cancelled = app
        .control(
            Method::POST,
            &format!("/m2m/links/{link_id}/operation/cancel"),
            Some(&key),
            None,
        )
        .await;
    assert_matches_schema(&cancelled, "sandbox/OperationView.json");

    for (event, schema) in [
        ("link.created", "m2m/LinkCreatedWebhook.json"),
        ("link.opened", "m2m/LinkOpenedWebhook.json"),
        ("user.data_request", "m2m/DataRequestWebhook.json"),
        ("operation.created", "m2m/OperationCreatedWebhook.json"),
        ("operation.cancelled", "m2m/OperationCancelledWebhook.json"),
    ] {
        let received = receiver.wait_for_event(event).await;
        linkbox_tests::assert_json_matches_schema(&received.json, schema);
    }

    let webhooks = app
        .control(Method::GET, "/webhooks", Some(&key), None)
        .await;
    assert_matches_schema(&webhooks, "sandbox/DeliveryPage.json");
    let delivery = webhooks.json["deliveries"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let replayed = app.replay(&key, &delivery).await;
    assert_matches_schema(&replayed, "sandbox/DeliveryView.json");
    assert_matches_schema(
        &app.control(Method::GET, "/requests", Some(&key), None)
            .await,
        "sandbox/JournalPage.json",
    );
    let fault = app
        .control(
            Method::POST,
            "/faults",
            Some(&key),
            Some(&json!({"path": "/partner/nothing", "status": 503, "times": 1})),
        )
        .await;
    assert_matches_schema(&fault, "sandbox/FaultView.json");
    assert_matches_schema(
        &app.control(Method::GET, "/faults", Some(&key), None).await,
        "sandbox/FaultPage.json",
    );
    assert_matches_schema(
        &app.control(
            Method::PUT,
            "/m2m/webhook-config",
            Some(&key),
            Some(&json!({"url": receiver.url})),
        )
        .await,
        "sandbox/WebhookConfig.json",
    );
    let snapshot = app
        .control(Method::GET, "/snapshot", Some(&key), None)
        .await;
    assert_matches_schema(&snapshot, "sandbox/M2mSnapshot.json");
    assert_matches_schema(
        &app.control(Method::POST, "/reset", Some(&key), None).await,
        "sandbox/ResetDone.json",
    );
    let errors = vec![
        app.control(
            Method::GET,
            "/clock",
            Some("m2m_live_0123456789abcdefghijklmnopqrstuv"),
            None,
        )
        .await,
        app.control(Method::POST, "/clock", Some(&key), Some(&json!({})))
            .await,
        app.control(
            Method::POST,
            "/m2m/links/link_x_000000000000/open",
            Some(&key),
            None,
        )
        .await,
    ];
    for reply in &errors {
        assert!(reply.status >= 400, "{reply:?}");
        assert_matches_schema(reply, "sandbox/SandboxErrorBody.json");
    }
}

#[tokio::test]
async fn every_paged_leaf_list_declares_the_paging_headers_it_sends() {
    let app = spawn_app().await;
    let document = app.send(Method::GET, "/openapi.json", &[], None).await.json;
    let token = app.authenticate("paging-headers").await;
    for path in [
        "/services/widgets/api/magic-link/provider",
        "/services/widgets/api/magic-link/authentication",
        "/services/widgets/api/magic-link/file-upload",
        "/services/usermanagement/api/users",
    ] {
        let paged = app
            .leaf(Method::GET, &format!("{path}?page=0&size=1"), &token, None)
            .await;
        assert_eq!(paged.status, 200, "{path}: {paged:?}");
        let declared = &document["paths"][path]["get"]["responses"]["200"]["headers"];
        for header in ["X-Total-Count", "Link"] {
            assert!(
                paged.header(header).is_some(),
                "{path} sent no {header}: {paged:?}"
            );
            assert!(
                declared[header].is_object(),
                "{path} does not declare {header}: {declared}"
            );
        }
    }
}

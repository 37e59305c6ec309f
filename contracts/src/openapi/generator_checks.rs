//! What client generators need from the document, checked on the generated JSON: every
//! operation explained, free-form objects that say so, optional bodies that can be left out,
//! timestamps with a format, the webhooks and the warning header, and text without rustdoc
//! syntax.

use serde_json::Value;

use super::{WARNING_HEADER, WARNING_OPERATIONS, json};
use crate::{leaf, m2m};

fn document() -> Value {
    serde_json::from_str(&json()).unwrap_or_default()
}

/// `(method, path, operation)` of every operation, webhooks included.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for section in ["paths", "webhooks"] {
        for (path, item) in doc[section].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                out.push((method.clone(), path.clone(), operation.clone()));
            }
        }
    }
    out
}

/// Every JSON object in `value`, with its JSON pointer.
fn walk<'a>(value: &'a Value, pointer: String, out: &mut Vec<(String, &'a Value)>) {
    match value {
        Value::Object(map) => {
            out.push((pointer.clone(), value));
            for (key, child) in map {
                walk(child, format!("{pointer}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                walk(child, format!("{pointer}/{index}"), out);
            }
        }
        _ => {}
    }
}

fn has_type(schema: &Value, name: &str) -> bool {
    match &schema["type"] {
        Value::String(text) => text == name,
        Value::Array(types) => types.iter().any(|kind| kind == name),
        _ => false,
    }
}

/// rustdoc's intra-doc links: ``[`Name`]`` and `[Name]` with a type or item path inside.
fn rustdoc_links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('[') {
        let after = &rest[start + 1..];
        let Some(end) = after.find(']') else { break };
        let inner = &after[..end];
        let bare = inner.trim_matches('`');
        let is_path = !bare.is_empty()
            && bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && (inner.starts_with('`') || bare.starts_with(|c: char| c.is_ascii_uppercase()));
        if is_path {
            found.push(format!("[{inner}]"));
        }
        rest = &after[end..];
    }
    found
}

#[test]
fn the_rustdoc_link_finder_finds_links_and_spares_tags() {
    assert_eq!(
        rustdoc_links("see [`Visibility`] and [Problem] or [`crate::m2m::X`]"),
        ["[`Visibility`]", "[Problem]", "[`crate::m2m::X`]"]
    );
    assert!(rustdoc_links("facts [doc]; [design, JHipster]; `[a]`").is_empty());
}

#[test]
fn no_text_of_the_document_has_rustdoc_link_syntax() {
    let mut nodes = Vec::new();
    let doc = document();
    walk(&doc, String::new(), &mut nodes);
    let mut found = Vec::new();
    for (pointer, node) in nodes {
        for (key, value) in node.as_object().into_iter().flatten() {
            // A pattern is a regular expression, whose classes (`[Hh]`) are no links.
            if key == "pattern" {
                continue;
            }
            if let Value::String(text) = value {
                for link in rustdoc_links(text) {
                    found.push(format!("{pointer}/{key}: {link}"));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "rustdoc links in the document:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_operation_has_a_summary_and_a_description() {
    let doc = document();
    let ops = operations(&doc);
    assert!(ops.len() > 50, "{} operations", ops.len());
    for (method, path, operation) in ops {
        for field in ["summary", "description"] {
            let text = operation[field].as_str().unwrap_or_default();
            assert!(text.trim().len() > 5, "{method} {path} has no {field}");
        }
    }
}

#[test]
fn every_object_schema_names_its_members_or_says_what_they_are() {
    let mut nodes = Vec::new();
    let doc = document();
    walk(&doc, String::new(), &mut nodes);
    for (pointer, schema) in nodes {
        if has_type(schema, "object") {
            let members = &schema["additionalProperties"];
            assert!(
                schema.get("properties").is_some() || *members == true || members.is_object(),
                "{pointer}: an object with neither properties nor additionalProperties"
            );
        }
    }
}

#[test]
fn optional_request_bodies_are_a_plain_schema_that_may_be_left_out() {
    let doc = document();
    let mut optional = Vec::new();
    for (method, path, operation) in operations(&doc) {
        let body = &operation["requestBody"];
        if body.is_null() {
            continue;
        }
        let schema = &body["content"]["application/json"]["schema"];
        assert!(
            schema.get("oneOf").is_none() && !has_type(schema, "null"),
            "{method} {path}: the body schema admits null: {schema}"
        );
        if body["required"] == false {
            optional.push(
                operation["operationId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        } else {
            assert_eq!(body["required"], true, "{method} {path}");
        }
    }
    for id in [
        "revokeLink",
        "openLink",
        "createForUserProviderMagicLink",
        "createForUserFileUploadMagicLink",
    ] {
        assert!(
            optional.iter().any(|op| op == id),
            "{id} should have an optional body"
        );
    }
}

/// Property names that hold an instant.
fn is_timestamp_name(name: &str) -> bool {
    name.ends_with("At")
        || name.ends_with("Time")
        || ["timestamp", "now", "time", "setTo"].contains(&name)
}

#[test]
fn every_timestamp_is_a_date_time_that_says_its_fraction_digits() {
    let mut nodes = Vec::new();
    let doc = document();
    walk(&doc, String::new(), &mut nodes);
    let mut checked = 0;
    for (pointer, node) in nodes {
        let Some(properties) = node.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (name, property) in properties
            .iter()
            .filter(|(name, _)| is_timestamp_name(name))
        {
            checked += 1;
            assert_eq!(property["format"], "date-time", "{pointer}/{name}");
            let description = property["description"].as_str().unwrap_or_default();
            assert!(
                description.contains("fraction digits"),
                "{pointer}/{name}: the description does not say the fraction digits"
            );
        }
    }
    assert!(checked > 30, "only {checked} timestamps found");
    let created = &doc["components"]["schemas"]["MagicLinkCreated"]["properties"]["expiresAt"];
    assert!(
        created["description"]
            .as_str()
            .unwrap_or_default()
            .contains("nine")
    );
    let read = &doc["components"]["schemas"]["MagicLink"]["properties"]["expiresAt"];
    assert!(
        read["description"]
            .as_str()
            .unwrap_or_default()
            .contains("three")
    );
}

#[test]
fn the_five_m2m_events_are_webhooks_with_their_headers_and_payloads() {
    let doc = document();
    let names = [
        m2m::events::LINK_CREATED,
        m2m::events::LINK_OPENED,
        m2m::events::USER_DATA_REQUEST,
        m2m::events::OPERATION_CREATED,
        m2m::events::OPERATION_CANCELLED,
    ];
    let webhooks = doc["webhooks"].as_object().cloned().unwrap_or_default();
    assert_eq!(webhooks.len(), names.len());
    for name in names {
        let operation = &webhooks[name]["post"];
        let headers: Vec<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "header" && parameter["required"] == true)
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        let expected = [
            m2m::webhook_headers::EVENT,
            m2m::webhook_headers::TIMESTAMP,
            m2m::webhook_headers::SIGNATURE,
        ];
        assert_eq!(headers.len(), expected.len(), "{name}");
        for (shown, wire) in headers.iter().zip(expected) {
            assert!(
                shown.eq_ignore_ascii_case(wire),
                "{name}: {shown} is not {wire}"
            );
        }
        let payload = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .and_then(|reference| reference.rsplit('/').next())
            .unwrap_or_default();
        let schema = &doc["components"]["schemas"][payload];
        assert_eq!(schema["properties"]["event"]["enum"][0], name, "{payload}");
        let data = schema["properties"]["data"]["$ref"]
            .as_str()
            .unwrap_or_default();
        let data = data.rsplit('/').next().unwrap_or_default();
        assert!(
            doc["components"]["schemas"][data]["properties"].is_object(),
            "{name}: data {data}"
        );
    }
}

#[test]
fn the_warning_header_is_documented_on_every_success_of_the_operations_that_send_it() {
    assert!(WARNING_HEADER.eq_ignore_ascii_case(m2m::WARNING_HEADER));
    let doc = document();
    let ops = operations(&doc);
    for id in WARNING_OPERATIONS {
        let (method, path, operation) = ops
            .iter()
            .find(|(_, _, operation)| operation["operationId"] == id)
            .unwrap_or_else(|| panic!("no operation {id}"));
        let successes: Vec<_> = operation["responses"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(status, _)| status.starts_with('2'))
            .collect();
        assert!(!successes.is_empty(), "{method} {path}");
        for (status, response) in successes {
            let header = &response["headers"][WARNING_HEADER];
            assert_eq!(
                header["schema"]["type"], "string",
                "{method} {path} {status}"
            );
            assert!(
                header["description"].is_string(),
                "{method} {path} {status}"
            );
        }
    }
    // An operation that reads neither a body nor a query sends none.
    let get = &doc["paths"]["/services/widgets/api/magic-link/provider/{magicLinkId}"]["get"]["responses"]
        ["200"];
    assert!(get["headers"].get(WARNING_HEADER).is_none());
}

#[test]
fn texts_that_name_a_constant_show_its_value() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let text = |schema: &str, property: &str| {
        schemas[schema]["properties"][property]["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(text("TokenClaims", "auth").contains(leaf::TOKEN_AUTHORITY));
    assert!(text("LinkSettings", "backgroundColor").contains(leaf::DEFAULT_BACKGROUND_COLOR));
    assert!(text("Problem", "type").contains(leaf::PROBLEM_WITH_MESSAGE));
    assert!(text("Problem", "type").contains(leaf::CONSTRAINT_VIOLATION));
    assert!(text("Problem", "message").contains(leaf::VALIDATION_MESSAGE));
}

/// Every operation but the health check declares the 503 any request may get (with
/// `Retry-After`, in its API's envelope), every one that takes a body its 413, every
/// control operation its 400, 413 and 415 (one that takes no body reads one sent all the
/// same), and every M2M operation its 429 with `Retry-After`.
#[test]
fn every_operation_declares_the_answers_any_request_may_get() {
    let doc: Value = serde_json::from_str(&super::json()).expect("the document");
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let responses = &operation["responses"];
            if path == "/_sandbox/health" {
                assert!(responses.get("503").is_none());
                continue;
            }
            let unavailable = &responses["503"];
            assert!(
                unavailable["headers"]["Retry-After"].is_object(),
                "{method} {path}"
            );
            let schema = unavailable["content"]
                .as_object()
                .and_then(|content| content.values().next())
                .map(|content| content["schema"]["$ref"].clone())
                .unwrap_or_default();
            let expected = if path.starts_with("/partner") {
                "#/components/schemas/ErrorEnvelope"
            } else if path.starts_with("/_sandbox") {
                "#/components/schemas/SandboxErrorBody"
            } else {
                "#/components/schemas/Problem"
            };
            assert_eq!(schema, expected, "{method} {path}");
            if operation.get("requestBody").is_some() || path.starts_with("/_sandbox") {
                assert!(responses["413"].is_object(), "{method} {path}");
            }
            if path.starts_with("/_sandbox") {
                assert!(responses["400"].is_object(), "{method} {path}");
                assert!(responses["415"].is_object(), "{method} {path}");
            }
            // Every M2M operation is rate limited, and its 429 says when to retry.
            if path.starts_with("/partner") {
                assert!(
                    responses["429"]["headers"]["Retry-After"].is_object(),
                    "429 of {method} {path}"
                );
            }
        }
    }
}

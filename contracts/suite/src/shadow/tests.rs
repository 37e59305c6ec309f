//! Unit tests of the shadow comparison: an honest pair of answers of each endpoint (different
//! ids, tokens, timestamps and hosts, the same everything else) gives no difference, and each
//! mutation of one documented fact gives exactly one difference, under the right rule, pointer
//! and fact.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

/// One answer, owned.
#[derive(Clone)]
struct Side {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Side {
    fn json(status: u16, body: &Value) -> Side {
        Side::typed(status, "application/json; charset=utf-8", body)
    }

    fn typed(status: u16, content_type: &str, body: &Value) -> Side {
        Side {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.to_string().into_bytes(),
        }
    }

    fn empty(status: u16) -> Side {
        Side {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> Side {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The answer as a HEAD gets it: the same status and headers, no body.
    fn headless(mut self) -> Side {
        self.body.clear();
        self
    }

    fn without(mut self, name: &str) -> Side {
        self.headers.retain(|(key, _)| key != name);
        self
    }

    fn answer(&self) -> Answer<'_> {
        Answer {
            status: self.status,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// One request, both answers and the ids the server already maps.
struct Case<'a> {
    api: Api,
    method: &'a str,
    path: &'a str,
    query: &'a str,
    request: Option<Value>,
    known: &'a [(&'a str, &'a str)],
}

impl Case<'_> {
    fn with<T>(&self, up: &Side, lb: &Side, f: impl FnOnce(&Exchange<'_>) -> T) -> T {
        let known: HashMap<String, String> = self
            .known
            .iter()
            .map(|(u, l)| ((*u).to_owned(), (*l).to_owned()))
            .collect();
        let shadow_id = move |id: &str| known.get(id).cloned();
        let exchange = Exchange {
            api: self.api,
            method: self.method,
            path: self.path,
            query: self.query,
            body: self.request.as_ref(),
            upstream: up.answer(),
            linkbox: lb.answer(),
            shadow_id: &shadow_id,
        };
        f(&exchange)
    }

    fn compare(&self, up: &Side, lb: &Side) -> Vec<Difference> {
        self.with(up, lb, compare)
    }

    fn pairs(&self, up: &Side, lb: &Side) -> Vec<(String, String)> {
        self.with(up, lb, pairs)
    }
}

fn case<'a>(api: Api, method: &'a str, path: &'a str) -> Case<'a> {
    Case {
        api,
        method,
        path,
        query: "",
        request: None,
        known: &[],
    }
}

/// Sets `pointer` in `value` (creating nothing: the place must exist) or removes it.
fn set(mut value: Value, pointer: &str, new: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    let target = value.pointer_mut(parent).expect("parent");
    match (target, new) {
        (Value::Object(map), Some(new)) => {
            map.insert(key.to_owned(), new);
        }
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Array(items), Some(new)) => {
            items[key.parse::<usize>().expect("index")] = new;
        }
        _ => panic!("cannot set {pointer}"),
    }
    value
}

/// Exactly one difference, with this rule, pointer and fact.
#[track_caller]
fn one(differences: &[Difference], rule: Rule, pointer: &str, fact: Option<&str>) -> Difference {
    assert_eq!(
        differences.len(),
        1,
        "expected one difference, got {differences:#?}"
    );
    let difference = differences[0].clone();
    assert_eq!(difference.rule, rule, "{difference:#?}");
    assert_eq!(difference.pointer, pointer, "{difference:#?}");
    assert_eq!(difference.fact, fact, "{difference:#?}");
    if let Some(fact) = fact {
        let source = crate::facts::find(fact).expect("fact").source;
        assert_eq!(
            difference.doc,
            source == crate::Source::Doc,
            "{difference:#?}"
        );
    } else {
        assert!(!difference.doc);
    }
    difference
}

#[track_caller]
fn none(differences: &[Difference]) {
    assert!(
        differences.is_empty(),
        "expected no difference, got {differences:#?}"
    );
}

// ---------------------------------------------------------------- M2M fixtures

const UP_LINK: &str = "link_acme_0123456789ab";
const LB_LINK: &str = "link_shadow7_fedcba987654";
const UP_USER: &str = "user_acme_A1b2C3";
const LB_USER: &str = "user_shadow7_Zz9Yy8";
const UP_TOKEN: &str = "3f1c2a4e-9b7d-4c1e-8f2a-1b2c3d4e5f60";
const LB_TOKEN: &str = "9a8b7c6d-5e4f-4a3b-9c2d-0e1f2a3b4c5d";

fn m2m_created(link: &str, token: &str, host: &str, created: &str, expires: &str) -> Value {
    json!({
        "success": true,
        "data": {
            "linkId": link,
            "referenceId": "ref-42",
            "status": "created",
            "url": format!("{host}/m2m/{link}/m2m-basic"),
            "token": token,
            "expiresAt": expires,
            "createdAt": created,
        }
    })
}

fn up_created() -> Value {
    m2m_created(
        UP_LINK,
        UP_TOKEN,
        "http://127.0.0.1:4010",
        "2026-12-01T12:00:00.123Z",
        "2026-12-01T13:00:00.123Z",
    )
}

fn lb_created() -> Value {
    m2m_created(
        LB_LINK,
        LB_TOKEN,
        "http://127.0.0.1:4020/pages",
        "2026-12-01T12:00:00.457Z",
        "2026-12-01T13:00:00.457Z",
    )
}

fn m2m_item(link: &str, user: &str, host: &str, created: &str, expires: &str) -> Value {
    json!({
        "linkId": link,
        "referenceId": "ref-42",
        "status": "created",
        "url": format!("{host}/m2m/{link}/m2m-basic"),
        "expiresAt": expires,
        "createdAt": created,
        "openedAt": null,
        "userId": user,
        "operationId": null,
        "userData": {"firstName": "Ana", "paymentMethod": {"type": "cash", "provider": "OXXO", "reference": "r1"}},
    })
}

fn up_item() -> Value {
    m2m_item(
        UP_LINK,
        UP_USER,
        "http://127.0.0.1:4010",
        "2026-12-01T12:00:00.123Z",
        "2026-12-01T13:00:00.123Z",
    )
}

fn lb_item() -> Value {
    m2m_item(
        LB_LINK,
        LB_USER,
        "http://127.0.0.1:4020/pages",
        "2026-12-01T12:00:00.457Z",
        "2026-12-01T13:00:00.457Z",
    )
}

fn detail(item: Value, token: &str) -> Value {
    let mut data = item;
    let extra = json!({
        "token": token,
        "metadata": {"orderId": "o-1"},
        "flow": "m2m-basic",
        "theme": null,
        "language": "en",
        "callbackUrl": "https://partner.example/callback",
        "revokedAt": null,
        "revokeReason": null,
    });
    for (key, value) in extra.as_object().expect("object") {
        data[key] = value.clone();
    }
    json!({"success": true, "data": data})
}

fn m2m_error(code: &str, message: &str) -> Value {
    json!({"success": false, "error": {"code": code, "message": message}})
}

fn create_case() -> Case<'static> {
    Case {
        request: Some(json!({"referenceId": "ref-42"})),
        ..case(Api::M2m, "POST", "/partner/links")
    }
}

fn detail_path() -> String {
    format!("/partner/links/{UP_LINK}")
}

// ---------------------------------------------------------------- M2M

#[test]
fn an_honest_m2m_create_differs_in_nothing() {
    let up = Side::json(201, &up_created()).header("date", "Tue, 01 Dec 2026 12:00:00 GMT");
    let lb = Side::json(201, &lb_created())
        .header("date", "Tue, 01 Dec 2026 12:00:01 GMT")
        .header("x-linkbox-warning", "x");
    none(&create_case().compare(&up, &lb));
}

#[test]
fn a_shorter_default_expiry_is_a_relation_of_the_documented_default() {
    let lb = set(
        lb_created(),
        "/data/expiresAt",
        Some(json!("2026-12-01T12:30:00.457Z")),
    );
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    let difference = one(
        &found,
        Rule::Relation,
        "/data/expiresAt",
        Some("M2M-CREATE-DEFAULT-EXPIRY"),
    );
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!(3600), json!(1800))
    );
    assert!(difference.doc);
}

#[test]
fn an_explicit_expiry_names_the_honoured_fact_and_a_moment_apart_is_no_difference() {
    let with_expiry = Case {
        request: Some(json!({"referenceId": "ref-42", "expiresInMinutes": 30})),
        ..create_case()
    };
    let up = set(
        up_created(),
        "/data/expiresAt",
        Some(json!("2026-12-01T12:30:00.123Z")),
    );
    let lb = set(
        lb_created(),
        "/data/expiresAt",
        Some(json!("2026-12-01T12:30:01.400Z")),
    );
    none(&with_expiry.compare(&Side::json(201, &up), &Side::json(201, &lb)));
    let lb = set(
        lb_created(),
        "/data/expiresAt",
        Some(json!("2026-12-01T12:31:00.457Z")),
    );
    let found = with_expiry.compare(&Side::json(201, &up), &Side::json(201, &lb));
    one(
        &found,
        Rule::Relation,
        "/data/expiresAt",
        Some("M2M-CREATE-EXPIRY-HONOURED"),
    );
}

#[test]
fn a_different_status_is_the_only_difference() {
    let found = create_case().compare(
        &Side::json(200, &up_created()),
        &Side::json(201, &lb_created()),
    );
    let difference = one(&found, Rule::Status, "", Some("M2M-CREATE-STATUS"));
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!(200), json!(201))
    );
}

/// A status that differs on an error linkbox answered names the fact of that error: a
/// create without `referenceId` the vendor accepts drifts from "referenceId is required",
/// not from "a valid create is 201". The vendor's words name nothing linkbox did not answer.
#[test]
fn a_different_status_on_an_error_names_the_fact_of_the_error() {
    let missing = Case {
        request: Some(json!({})),
        ..create_case()
    };
    let refused = Side::json(
        400,
        &m2m_error("INVALID_REQUEST", "The referenceId field is required"),
    );
    let found = missing.compare(&Side::json(201, &up_created()), &refused);
    let difference = one(
        &found,
        Rule::Status,
        "",
        Some("M2M-CREATE-REFERENCE-ID-REQUIRED"),
    );
    assert!(difference.doc);
    let found = missing.compare(&refused, &Side::json(201, &lb_created()));
    one(&found, Rule::Status, "", Some("M2M-CREATE-STATUS"));
}

/// Every 401 turned 403: the status names the fact of the 401 linkbox answered, a missing
/// key's or a bad one's (a missing Leaf token's or a bad one's).
#[test]
fn a_401_answered_otherwise_names_the_missing_or_the_bad_credential() {
    let list = case(Api::M2m, "GET", "/partner/links");
    for (code, message, fact) in [
        (
            "UNAUTHORIZED",
            "Missing authentication. Provide X-API-Key or Bearer token.",
            "M2M-AUTH-NO-KEY-STATUS",
        ),
        (
            "INVALID_API_KEY",
            "Invalid or revoked API key",
            "M2M-AUTH-INVALID-KEY-STATUS",
        ),
    ] {
        let body = m2m_error(code, message);
        let found = list.compare(&Side::json(403, &body), &Side::json(401, &body));
        one(&found, Rule::Status, "", Some(fact));
    }
    let links = case(Api::Leaf, "GET", PROVIDER_LIST);
    for (detail, fact) in [
        (
            "Full authentication is required to access this resource",
            "LEAF-AUTH-NO-TOKEN",
        ),
        (
            "The bearer token is malformed, forged or foreign",
            "LEAF-AUTH-BAD-TOKEN",
        ),
    ] {
        let body = set(
            problem(401, "Unauthorized", PROVIDER_LIST),
            "/detail",
            Some(json!(detail)),
        );
        let found = links.compare(&problem_side(403, &body), &problem_side(401, &body));
        one(&found, Rule::Status, "", Some(fact));
    }
}

#[test]
fn a_different_error_message_names_the_message_fact() {
    let missing = Case {
        request: Some(json!({})),
        ..create_case()
    };
    let up = Side::json(
        400,
        &m2m_error("INVALID_REQUEST", "The referenceId field is required"),
    );
    let lb = Side::json(
        400,
        &m2m_error("INVALID_REQUEST", "referenceId is required"),
    );
    let found = missing.compare(&up, &lb);
    one(
        &found,
        Rule::Value,
        "/error/message",
        Some("M2M-CREATE-REFERENCE-ID-REQUIRED"),
    );
    none(&missing.compare(&up, &up.clone()));
}

/// A changed error code names the documented fact of the code linkbox answered, [doc] ones
/// tagged so: the vendor drifting from its own docs is not "linkbox guessed wrong".
#[test]
fn a_different_error_code_names_the_code_fact() {
    let message = "User already has an active link";
    let up = Side::json(409, &m2m_error("LINK_EXISTS", message));
    let lb = Side::json(409, &m2m_error("ACTIVE_LINK_EXISTS", message));
    let found = create_case().compare(&up, &lb);
    let difference = one(
        &found,
        Rule::Value,
        "/error/code",
        Some("M2M-LINK-ONE-ACTIVE-CODE"),
    );
    assert!(difference.doc, "{difference:?}");
    let revoke = case(Api::M2m, "POST", "/partner/links/link_p1_abc/revoke");
    let message = "Only links with status created or opened can be revoked";
    let found = revoke.compare(
        &Side::json(400, &m2m_error("LINK_REVOKED", message)),
        &Side::json(400, &m2m_error("INVALID_REQUEST", message)),
    );
    one(&found, Rule::Value, "/error/code", Some("M2M-REVOKE-TWICE"));
}

/// A code the vendor renamed names the fact of the situation linkbox's answer words — its
/// message, and the request where one message stands for two situations — whichever code
/// that is; documented situations are `[doc]`.
#[test]
fn a_different_error_code_names_the_fact_of_the_situation() {
    let create = |request: Value| Case {
        request: Some(request),
        ..create_case()
    };
    let situations = [
        (
            create(json!({})),
            400,
            "The referenceId field is required",
            "M2M-CREATE-REFERENCE-ID-REQUIRED",
        ),
        (
            create(json!({"referenceId": " "})),
            400,
            "The referenceId field is required",
            "M2M-CREATE-REFERENCE-ID-EMPTY",
        ),
        (
            create(json!({"referenceId": "r", "expiresInMinutes": 3})),
            400,
            "The expiresInMinutes field must be a number between 5 and 10080",
            "M2M-CREATE-EXPIRY-RANGE",
        ),
        (
            create(json!({"referenceId": "r", "expiresInMinutes": "3"})),
            400,
            "The expiresInMinutes field must be a number between 5 and 10080",
            "M2M-CREATE-EXPIRY-NUMBER",
        ),
        (
            create(json!({"referenceId": "r", "language": "fr"})),
            400,
            "The language field must be one of: en, es",
            "M2M-CREATE-LANGUAGE-INVALID",
        ),
        (
            create(json!({"referenceId": "r", "userData": {}})),
            400,
            "The userData.paymentMethod field is required when userData is provided",
            "M2M-CREATE-PAYMENT-METHOD-REQUIRED",
        ),
        (
            case(Api::M2m, "GET", "/partner/links"),
            400,
            "The limit query parameter must be an integer between 1 and 100",
            "M2M-LIST-BAD-QUERY",
        ),
        (
            case(Api::M2m, "GET", "/partner/links"),
            400,
            "The visibility query parameter must be one of: active, expired",
            "M2M-LIST-BAD-QUERY",
        ),
        (
            case(Api::M2m, "DELETE", "/partner/links"),
            405,
            "Cannot DELETE /partner/links: allowed methods are GET, POST",
            "M2M-ENVELOPE-WRONG-METHOD-ALLOW",
        ),
        (
            case(Api::M2m, "GET", "/partner/nope"),
            404,
            "Cannot GET /partner/nope",
            "M2M-ENVELOPE-UNKNOWN-PATH-CODE",
        ),
        (
            case(Api::M2m, "GET", "/partner/links/link_p1_abc"),
            404,
            "Link not found",
            "M2M-DETAIL-UNKNOWN",
        ),
        (
            case(Api::M2m, "POST", "/partner/links/link_p1_abc/revoke"),
            404,
            "Link not found",
            "M2M-REVOKE-UNKNOWN",
        ),
        (
            Case {
                request: Some(json!({"userData": {"idNumber": "X"}})),
                ..case(Api::M2m, "PUT", "/partner/data-requests/dr_p1_abc")
            },
            400,
            "The referenceId field is required",
            "M2M-DATA-REQUEST-REFERENCE-ID-REQUIRED",
        ),
        (
            create(json!({"referenceId": "r"})),
            400,
            "Request body must be valid JSON",
            "M2M-ENVELOPE-BAD-JSON",
        ),
    ];
    for (request, status, message, fact) in situations {
        let found = request.compare(
            &Side::json(status, &m2m_error("VALIDATION_ERROR", message)),
            &Side::json(status, &m2m_error("INVALID_REQUEST", message)),
        );
        one(&found, Rule::Value, "/error/code", Some(fact));
    }
}

/// An error moved out of its envelope (`code` and `message` at the top) lacks the
/// documented `error`: the documented error shape, not the success envelope's, and the keys
/// more are linkbox's "exactly these keys".
#[test]
fn an_error_out_of_its_envelope_contradicts_the_documented_error_shape() {
    let missing = Case {
        request: Some(json!({})),
        ..create_case()
    };
    let message = "The referenceId field is required";
    let up = json!({"success": false, "code": "INVALID_REQUEST", "message": message});
    let mut found = missing.compare(
        &Side::json(400, &up),
        &Side::json(400, &m2m_error("INVALID_REQUEST", message)),
    );
    found.sort_by(|a, b| a.pointer.cmp(&b.pointer));
    let named: Vec<(Rule, &str, Option<&str>, bool)> = found
        .iter()
        .map(|d| (d.rule, d.pointer.as_str(), d.fact, d.doc))
        .collect();
    assert_eq!(
        named,
        [
            (
                Rule::MissingField,
                "/code",
                Some("M2M-ENVELOPE-ERROR-EXACT"),
                false
            ),
            (
                Rule::UnexpectedField,
                "/error",
                Some("M2M-ENVELOPE-ERROR"),
                true
            ),
            (
                Rule::MissingField,
                "/message",
                Some("M2M-ENVELOPE-ERROR-EXACT"),
                false
            ),
        ]
    );
    let lb = json!({"success": false, "error": {"code": "INVALID_REQUEST"}});
    let found = missing.compare(
        &Side::json(400, &lb),
        &Side::json(400, &m2m_error("INVALID_REQUEST", message)),
    );
    one(
        &found,
        Rule::UnexpectedField,
        "/error/message",
        Some("M2M-ENVELOPE-ERROR"),
    );
    // A success body without its `data` is still the success envelope's.
    let found = create_case().compare(
        &Side::json(201, &json!({"success": true})),
        &Side::json(201, &lb_created()),
    );
    one(
        &found,
        Rule::UnexpectedField,
        "/data",
        Some("M2M-ENVELOPE-SUCCESS"),
    );
}

/// A Leaf problem is compared as a problem on every path: a member it lacks is its shape,
/// not the fields of the endpoint's success body, and a refused create's status names the
/// documented violation.
#[test]
fn a_leaf_problem_names_the_problem_facts_and_its_violation() {
    let path = format!("{PROVIDER_LIST}/{UP_MAGIC}");
    let get = case(Api::Leaf, "GET", &path);
    let body = problem(404, "Magic link not found", &path);
    let found = get.compare(
        &problem_side(404, &set(body.clone(), "/path", None)),
        &problem_side(404, &body),
    );
    one(
        &found,
        Rule::UnexpectedField,
        "/path",
        Some("LEAF-PROBLEM-SHAPE"),
    );
    let users = "/services/usermanagement/api/users";
    let found = case(Api::Leaf, "GET", users).compare(
        &problem_side(400, &json!({"error": "bad size"})),
        &problem_side(400, &problem(400, "Bad Request", users)),
    );
    assert!(
        found
            .iter()
            .all(|d| d.fact == Some("LEAF-PROBLEM-SHAPE") && !d.doc),
        "{found:#?}"
    );

    let create = |request: Value| Case {
        request: Some(request),
        ..case(Api::Leaf, "POST", PROVIDER_LIST)
    };
    let violation = |field: &str, message: &str| {
        json!({
            "type": "https://www.jhipster.tech/problem/constraint-violation",
            "title": "Method argument not valid",
            "status": 400,
            "detail": "Method argument not valid (1 violations)",
            "path": PROVIDER_LIST,
            "message": "error.validation",
            "fieldErrors": [{"objectName": "magicLinkDTO", "field": field, "message": message}],
        })
    };
    let range = "must be an integer between 900 and 31622400";
    for (request, field, message, fact) in [
        (
            json!({"externalId": "e", "expiresIn": 10}),
            "expiresIn",
            range,
            "LEAF-CREATE-EXPIRES-IN-RANGE",
        ),
        (
            json!({"externalId": "e", "expiresIn": "ten"}),
            "expiresIn",
            range,
            "LEAF-CREATE-EXPIRES-IN-INTEGER",
        ),
        (
            json!({}),
            "externalId",
            "must not be null",
            "LEAF-CREATE-EXTERNAL-ID-REQUIRED",
        ),
        (
            json!({"externalId": " "}),
            "externalId",
            "must not be blank",
            "LEAF-CREATE-EXTERNAL-ID-BLANK",
        ),
    ] {
        let found = create(request).compare(
            &Side::json(
                200,
                &leaf_created(
                    UP_MAGIC,
                    UP_LEAF_USER,
                    "https://widget.withleaf.io",
                    "2026-12-01T12:15:00.123456789Z",
                ),
            ),
            &problem_side(400, &violation(field, message)),
        );
        one(&found, Rule::Status, "", Some(fact));
    }
    let found = create(json!({"externalId": "e", "expiresIn": 10})).compare(
        &problem_side(
            400,
            &set(
                violation("expiresIn", range),
                "/type",
                Some(json!("about:blank")),
            ),
        ),
        &problem_side(400, &violation("expiresIn", range)),
    );
    one(
        &found,
        Rule::Value,
        "/type",
        Some("LEAF-PROBLEM-CONSTRAINT-TYPE"),
    );
}

#[test]
fn a_missing_and_an_extra_field_are_named_apart() {
    let up = Side::json(201, &up_created());
    let lb = set(lb_created(), "/data/token", None);
    let found = create_case().compare(&up, &Side::json(201, &lb));
    let difference = one(
        &found,
        Rule::MissingField,
        "/data/token",
        Some("M2M-CREATE-FIELDS"),
    );
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!(UP_TOKEN), Value::Null)
    );

    let lb = set(lb_created(), "/data/flow", Some(json!("m2m-basic")));
    let found = create_case().compare(&up, &Side::json(201, &lb));
    one(
        &found,
        Rule::UnexpectedField,
        "/data/flow",
        Some("M2M-CREATE-FIELDS"),
    );
}

/// A field the vendor adds to `data` that no fact names is linkbox's gap where the docs
/// are silent (no fact, `design`), as the suite's schemas let the vendor add it; a field a
/// fact names keeps its fact, on the create, the detail (the list item's fields too) and
/// the list's pagination.
#[test]
fn a_field_the_vendor_adds_that_no_fact_names_blames_no_fact() {
    let up = set(up_created(), "/data/vendorExtra", Some(json!(1)));
    let found = create_case().compare(&Side::json(201, &up), &Side::json(201, &lb_created()));
    one(&found, Rule::MissingField, "/data/vendorExtra", None);

    let path = detail_path();
    let get = Case {
        known: &[(UP_LINK, LB_LINK)],
        ..case(Api::M2m, "GET", &path)
    };
    let up = Side::json(200, &detail(up_item(), UP_TOKEN));
    for (field, fact) in [
        ("/data/vendorExtra", None),
        ("/data/flow", Some("M2M-DETAIL-FIELDS")),
        ("/data/userId", Some("M2M-DETAIL-FIELDS")),
    ] {
        let lb = set(detail(lb_item(), LB_TOKEN), field, None);
        let up = if fact.is_none() {
            Side::json(
                200,
                &set(detail(up_item(), UP_TOKEN), field, Some(json!(1))),
            )
        } else {
            up.clone()
        };
        let found = get.compare(&up, &Side::json(200, &lb));
        one(&found, Rule::MissingField, field, fact);
    }

    let listing = case(Api::M2m, "GET", "/partner/links");
    let lb = set(list(vec![], 1, 20, 0), "/data/pagination/totalPages", None);
    let found = listing.compare(
        &Side::json(200, &list(vec![], 1, 20, 0)),
        &Side::json(200, &lb),
    );
    one(
        &found,
        Rule::MissingField,
        "/data/pagination/totalPages",
        Some("M2M-LIST-SHAPE"),
    );
}

/// A timestamp of another type is the documented fact that timestamps are ISO 8601
/// strings, on every endpoint, not the create's list of fields nor the detail's nulls;
/// another field of another type, neither side `null`, is no fact the contract has; a
/// `null` against a value keeps the nulls fact.
#[test]
fn a_timestamp_of_another_type_is_the_same_fact_everywhere() {
    let lb = set(lb_created(), "/data/expiresAt", Some(json!(1_234_567_890)));
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    one(
        &found,
        Rule::Type,
        "/data/expiresAt",
        Some("M2M-FORMAT-TIMESTAMP-ISO"),
    );

    let path = detail_path();
    let get = Case {
        known: &[(UP_LINK, LB_LINK)],
        ..case(Api::M2m, "GET", &path)
    };
    let up = Side::json(200, &detail(up_item(), UP_TOKEN));
    let lb = set(
        detail(lb_item(), LB_TOKEN),
        "/data/expiresAt",
        Some(json!(1_234_567_890)),
    );
    let found = get.compare(&up, &Side::json(200, &lb));
    one(
        &found,
        Rule::Type,
        "/data/expiresAt",
        Some("M2M-FORMAT-TIMESTAMP-ISO"),
    );

    let lb = set(
        detail(lb_item(), LB_TOKEN),
        "/data/language",
        Some(json!(7)),
    );
    let found = get.compare(&up, &Side::json(200, &lb));
    one(&found, Rule::Type, "/data/language", None);

    let lb = set(detail(lb_item(), LB_TOKEN), "/data/flow", Some(Value::Null));
    let found = get.compare(&up, &Side::json(200, &lb));
    one(&found, Rule::Type, "/data/flow", Some("M2M-DETAIL-NULLS"));

    // The vendor's timestamp that is none, against linkbox's `null`, and in fields linkbox
    // does not send, at any depth: the suite's case reads every `*At` of an answer.
    for (pointer, vendor, at) in [
        ("/data/openedAt", json!("soon"), "/data/openedAt"),
        ("/data/updatedAt", json!("soon"), "/data/updatedAt"),
        ("/data/user", json!({"createdAt": 5}), "/data/user"),
    ] {
        let up = set(detail(up_item(), UP_TOKEN), pointer, Some(vendor));
        let found = get.compare(
            &Side::json(200, &up),
            &Side::json(200, &detail(lb_item(), LB_TOKEN)),
        );
        let fact = found
            .iter()
            .find(|difference| difference.pointer == at)
            .and_then(|difference| difference.fact);
        assert_eq!(
            fact,
            Some("M2M-FORMAT-TIMESTAMP-ISO"),
            "{pointer}: {found:?}"
        );
    }
    // Any character but `T`, `t` or a space between date and time is no RFC 3339.
    let up = set(
        detail(up_item(), UP_TOKEN),
        "/data/createdAt",
        Some(json!("2026-12-01X12:00:00.000Z")),
    );
    let found = get.compare(
        &Side::json(200, &up),
        &Side::json(200, &detail(lb_item(), LB_TOKEN)),
    );
    let fact = found
        .iter()
        .find(|difference| difference.pointer == "/data/createdAt")
        .and_then(|difference| difference.fact);
    assert_eq!(fact, Some("M2M-FORMAT-TIMESTAMP-ISO"), "{found:?}");

    // A new link's detail that the vendor shows opened, or without `openedAt`: the
    // documented detail of a new link.
    for vendor in [None, Some(json!("2026-12-01T12:30:00.000Z"))] {
        let up = set(
            detail(up_item(), UP_TOKEN),
            "/data/openedAt",
            vendor.clone(),
        );
        let found = get.compare(
            &Side::json(200, &up),
            &Side::json(200, &detail(lb_item(), LB_TOKEN)),
        );
        assert!(
            found
                .iter()
                .any(|difference| difference.pointer == "/data/openedAt"
                    && difference.fact == Some("M2M-READ-STATUS-CREATED")),
            "{vendor:?}: {found:?}"
        );
    }

    // A timestamp of another type in an error body is the envelope's exact members, as
    // the suite's case reads only success answers.
    let up = json!({"success": false, "error": {"code": "VALIDATION_ERROR", "message": "m", "occurredAt": 12}});
    let lb = json!({"success": false, "error": {"code": "VALIDATION_ERROR", "message": "m"}});
    let found = create_case().compare(&Side::json(400, &up), &Side::json(400, &lb));
    one(
        &found,
        Rule::MissingField,
        "/error/occurredAt",
        Some("M2M-ENVELOPE-ERROR-EXACT"),
    );
}

#[test]
fn a_type_change_is_a_type_difference() {
    let lb = set(lb_created(), "/success", Some(json!("true")));
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    one(&found, Rule::Type, "/success", Some("M2M-ENVELOPE-SUCCESS"));
}

#[test]
fn an_id_out_of_its_pattern_is_a_format_difference() {
    let link = "link_shadow7_FEDCBA987654";
    let lb = m2m_created(
        link,
        LB_TOKEN,
        "http://127.0.0.1:4020",
        "2026-12-01T12:00:00.457Z",
        "2026-12-01T13:00:00.457Z",
    );
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    let difference = one(
        &found,
        Rule::Format,
        "/data/linkId",
        Some("M2M-FORMAT-LINK-ID"),
    );
    assert_eq!(difference.linkbox, json!(link));

    let lb = set(lb_created(), "/data/token", Some(json!("not-a-uuid")));
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    one(
        &found,
        Rule::Format,
        "/data/token",
        Some("M2M-FORMAT-TOKEN"),
    );
}

#[test]
fn fraction_digits_and_zone_form_are_format_differences() {
    let lb = m2m_created(
        LB_LINK,
        LB_TOKEN,
        "http://127.0.0.1:4020",
        "2026-12-01T12:00:01Z",
        "2026-12-01T13:00:01.000Z",
    );
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    let difference = one(
        &found,
        Rule::Format,
        "/data/createdAt",
        Some("M2M-FORMAT-TIMESTAMP"),
    );
    assert_eq!(difference.linkbox, json!("2026-12-01T12:00:01Z"));

    let lb = set(
        lb_created(),
        "/data/createdAt",
        Some(json!("2026-12-01T12:00:00.457+00:00")),
    );
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    one(
        &found,
        Rule::Format,
        "/data/createdAt",
        Some("M2M-FORMAT-TIMESTAMP"),
    );

    // RFC 3339's lower-case `t` and `z`, and a space for the `T`: another form of the
    // linkbox one, as the suite's pattern reads it.
    for created in ["2026-12-01t12:00:00.457z", "2026-12-01 12:00:00.457Z"] {
        let lb = set(lb_created(), "/data/createdAt", Some(json!(created)));
        let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
        one(
            &found,
            Rule::Format,
            "/data/createdAt",
            Some("M2M-FORMAT-TIMESTAMP"),
        );
    }

    // Text that is no date-time is not another form of one: it breaks what the docs write.
    let lb = set(lb_created(), "/data/createdAt", Some(json!("yesterday")));
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    one(
        &found,
        Rule::Format,
        "/data/createdAt",
        Some("M2M-FORMAT-TIMESTAMP-ISO"),
    );
    let up = set(up_created(), "/data/expiresAt", Some(json!("1770811200")));
    let found = create_case().compare(&Side::json(201, &up), &Side::json(201, &lb_created()));
    one(
        &found,
        Rule::Format,
        "/data/expiresAt",
        Some("M2M-FORMAT-TIMESTAMP-ISO"),
    );
}

#[test]
fn a_url_of_another_scheme_or_without_its_own_id_is_a_format_difference() {
    let lb = set(
        lb_created(),
        "/data/url",
        Some(json!(format!("ftp://127.0.0.1/m2m/{LB_LINK}/m2m-basic"))),
    );
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    one(&found, Rule::Format, "/data/url", Some("M2M-FORMAT-URL"));

    let lb = set(
        lb_created(),
        "/data/url",
        Some(json!("http://127.0.0.1:4020/m2m/m2m-basic")),
    );
    let found = create_case().compare(&Side::json(201, &up_created()), &Side::json(201, &lb));
    one(&found, Rule::Format, "/data/url", Some("M2M-FORMAT-URL"));

    // The vendor's https page and a loopback linkbox's http one are the same form.
    let up = up_created();
    let mut lb = lb_created();
    let swapped = |value: &Value, to: &str| {
        let url = url::Url::parse(value.as_str().unwrap_or_default()).expect("a URL");
        let rest = &url.as_str()[url.scheme().len()..];
        json!(format!("{to}{rest}"))
    };
    let up = set(
        up.clone(),
        "/data/url",
        Some(swapped(&up["data"]["url"], "https")),
    );
    lb["data"]["url"] = swapped(&lb["data"]["url"], "http");
    none(&create_case().compare(&Side::json(201, &up), &Side::json(201, &lb)));
}

#[test]
fn an_honest_detail_differs_in_nothing_and_a_changed_language_default_is_a_value() {
    let path = detail_path();
    let get = Case {
        known: &[(UP_LINK, LB_LINK)],
        ..case(Api::M2m, "GET", &path)
    };
    let up = Side::json(200, &detail(up_item(), UP_TOKEN));
    none(&get.compare(&up, &Side::json(200, &detail(lb_item(), LB_TOKEN))));

    let lb = set(
        detail(lb_item(), LB_TOKEN),
        "/data/language",
        Some(json!("es")),
    );
    let found = get.compare(&up, &Side::json(200, &lb));
    let difference = one(
        &found,
        Rule::Value,
        "/data/language",
        Some("M2M-CREATE-LANGUAGE"),
    );
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!("en"), json!("es"))
    );
}

#[test]
fn a_revocation_before_creation_on_one_side_is_a_relation() {
    let path = detail_path();
    let get = case(Api::M2m, "GET", &path);
    let revoked = |item: Value, token: &str, at: &str| {
        let mut body = detail(item, token);
        body["data"]["status"] = json!("revoked");
        body["data"]["revokedAt"] = json!(at);
        body
    };
    let up = revoked(up_item(), UP_TOKEN, "2026-12-01T12:10:00.000Z");
    let lb = revoked(lb_item(), LB_TOKEN, "2026-12-01T11:10:00.000Z");
    let found = get.compare(&Side::json(200, &up), &Side::json(200, &lb));
    one(
        &found,
        Rule::Relation,
        "/data/revokedAt",
        Some("M2M-REVOKE-DETAIL"),
    );
}

#[test]
fn an_unknown_link_404_compares_its_envelope() {
    let get = case(Api::M2m, "GET", "/partner/links/link_acme_ffffffffffff");
    let up = Side::json(404, &m2m_error("RESOURCE_NOT_FOUND", "Link not found"));
    none(&get.compare(&up, &up.clone()));
    let lb = Side::json(
        404,
        &json!({"success": false, "error": {"code": "RESOURCE_NOT_FOUND", "message": "Link not found", "hint": "x"}}),
    );
    let found = get.compare(&up, &lb);
    one(
        &found,
        Rule::UnexpectedField,
        "/error/hint",
        Some("M2M-ENVELOPE-ERROR-EXACT"),
    );
    let lb = Side::typed(
        404,
        "text/plain",
        &m2m_error("RESOURCE_NOT_FOUND", "Link not found"),
    );
    let found = get.compare(&up, &lb);
    one(
        &found,
        Rule::MediaType,
        "",
        Some("M2M-ENVELOPE-CONTENT-TYPE"),
    );
}

fn list(items: Vec<Value>, page: u64, limit: u64, total: u64) -> Value {
    json!({
        "success": true,
        "data": {
            "items": items,
            "pagination": {"page": page, "limit": limit, "total": total, "totalPages": total.div_ceil(limit)},
        }
    })
}

fn other_item(n: u32) -> Value {
    m2m_item(
        &format!("link_acme_00000000000{n}"),
        UP_USER,
        "http://127.0.0.1:4010",
        "2026-11-01T12:00:00.000Z",
        "2026-11-01T13:00:00.000Z",
    )
}

#[test]
fn a_list_where_the_upstream_holds_older_items_differs_in_nothing() {
    let get = Case {
        known: &[(UP_LINK, LB_LINK)],
        ..case(Api::M2m, "GET", "/partner/links")
    };
    let up = list(vec![up_item(), other_item(1)], 1, 2, 3);
    let lb = list(vec![lb_item()], 1, 2, 1);
    none(&get.compare(&Side::json(200, &up), &Side::json(200, &lb)));

    // The shared item drifts: one difference, at the item's wildcard pointer.
    let mut lb_changed = lb.clone();
    lb_changed["data"]["items"][0]["status"] = json!("opened");
    let found = get.compare(&Side::json(200, &up), &Side::json(200, &lb_changed));
    one(
        &found,
        Rule::Value,
        "/data/items/*/status",
        Some("M2M-LINK-STATUSES"),
    );

    // Two shared items drifting the same way are still one difference.
    let two = Case {
        known: &[
            (UP_LINK, LB_LINK),
            ("link_acme_000000000001", "link_shadow7_000000000001"),
        ],
        ..case(Api::M2m, "GET", "/partner/links")
    };
    let mut second = lb_item();
    second["linkId"] = json!("link_shadow7_000000000001");
    second["url"] = json!("http://127.0.0.1:4020/m2m/link_shadow7_000000000001/m2m-basic");
    let mut lb_both = list(vec![lb_item(), second], 1, 2, 2);
    lb_both["data"]["items"][0]["status"] = json!("opened");
    lb_both["data"]["items"][1]["status"] = json!("opened");
    let found = two.compare(&Side::json(200, &up), &Side::json(200, &lb_both));
    one(
        &found,
        Rule::Value,
        "/data/items/*/status",
        Some("M2M-LINK-STATUSES"),
    );

    // The echoed page is compared by value.
    let lb_page = list(vec![lb_item()], 1, 20, 1);
    let found = get.compare(&Side::json(200, &up), &Side::json(200, &lb_page));
    one(
        &found,
        Rule::Value,
        "/data/pagination/limit",
        Some("M2M-LIST-DEFAULT-PAGING"),
    );
}

#[test]
fn broken_paging_arithmetic_on_one_side_is_a_paging_difference() {
    let get = Case {
        known: &[(UP_LINK, LB_LINK)],
        ..case(Api::M2m, "GET", "/partner/links")
    };
    let up = list(vec![up_item(), other_item(1)], 1, 2, 7);
    let mut lb = list(vec![lb_item()], 1, 2, 1);
    lb["data"]["pagination"]["totalPages"] = json!(3);
    let found = get.compare(&Side::json(200, &up), &Side::json(200, &lb));
    let difference = one(
        &found,
        Rule::Paging,
        "/data/pagination",
        Some("M2M-LIST-PAGINATION-ARITHMETIC"),
    );
    assert!(difference.doc);
}

#[test]
fn a_revoke_and_a_wrong_method_compare_cleanly() {
    let path = format!("/partner/links/{UP_LINK}/revoke");
    let revoke = Case {
        known: &[(UP_LINK, LB_LINK)],
        ..case(Api::M2m, "POST", &path)
    };
    let body = |link: &str, at: &str| json!({"success": true, "data": {"linkId": link, "status": "revoked", "revokedAt": at}});
    let up = Side::json(200, &body(UP_LINK, "2026-12-01T12:10:00.000Z"));
    none(&revoke.compare(
        &up,
        &Side::json(200, &body(LB_LINK, "2026-12-01T12:10:00.500Z")),
    ));

    let put = case(Api::M2m, "PUT", &path);
    let error = m2m_error("INVALID_REQUEST", "Cannot PUT x: allowed methods are POST");
    let up = Side::json(405, &error).header("allow", "POST");
    none(&put.compare(&up, &Side::json(405, &error).header("allow", "post")));
    let found = put.compare(&up, &Side::json(405, &error).header("allow", "POST, GET"));
    one(
        &found,
        Rule::Header,
        "header:allow",
        Some("M2M-ENVELOPE-WRONG-METHOD-ALLOW"),
    );
}

/// A HEAD answer has no body upstream (the vendor sends none) and linkbox's GET body is
/// not what a client of its HEAD gets: only the status and the headers are compared, by
/// the GET's rules and facts.
#[test]
fn a_head_compares_status_and_headers_and_never_a_body() {
    let path = detail_path();
    let head = Case {
        known: &[(UP_LINK, LB_LINK)],
        ..case(Api::M2m, "HEAD", &path)
    };
    let up = Side::json(200, &detail(up_item(), UP_TOKEN)).headless();
    let lb = Side::json(200, &detail(lb_item(), LB_TOKEN));
    none(&head.compare(&up, &lb));
    none(&head.compare(&up, &lb.clone().headless()));
    // Nothing is learnt from a HEAD, even were a body at hand.
    assert_eq!(head.pairs(&lb, &lb), Vec::new());

    let error = m2m_error("UNAUTHORIZED", "Missing authentication");
    none(&head.compare(
        &Side::json(401, &error).headless(),
        &Side::json(401, &error),
    ));

    // A real difference of a HEAD is still one: its status, under the GET's fact…
    let missing = Side::json(404, &m2m_error("RESOURCE_NOT_FOUND", "Link not found"));
    let found = head.compare(&up, &missing.headless());
    let difference = one(&found, Rule::Status, "", Some("M2M-DETAIL-UNKNOWN"));
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!(200), json!(404))
    );
    // …its media type…
    let found = head.compare(
        &up,
        &Side::typed(200, "text/plain", &detail(lb_item(), LB_TOKEN)),
    );
    one(
        &found,
        Rule::MediaType,
        "",
        Some("M2M-ENVELOPE-CONTENT-TYPE"),
    );
    // …and a documented header.
    let revoke = format!("{path}/revoke");
    let head = case(Api::M2m, "HEAD", &revoke);
    let error = m2m_error("INVALID_REQUEST", "Cannot HEAD x: allowed methods are POST");
    let up = Side::json(405, &error).header("allow", "POST").headless();
    none(&head.compare(&up, &Side::json(405, &error).header("allow", "POST")));
    let found = head.compare(&up, &Side::json(405, &error).header("allow", "POST, GET"));
    one(
        &found,
        Rule::Header,
        "header:allow",
        Some("M2M-ENVELOPE-WRONG-METHOD-ALLOW"),
    );
}

#[test]
fn a_missing_retry_after_is_a_header_difference() {
    let error = m2m_error(
        "RATE_LIMIT_EXCEEDED",
        "Too many requests, please retry later",
    );
    let up = Side::json(429, &error).header("retry-after", "12");
    let found = create_case().compare(&up, &Side::json(429, &error));
    one(
        &found,
        Rule::Header,
        "header:retry-after",
        Some("M2M-RATE-RETRY-AFTER"),
    );
    none(&create_case().compare(&up, &Side::json(429, &error).header("retry-after", "3")));
}

/// A Leaf 401 without `WWW-Authenticate`, or with another scheme, contradicts the fact that
/// names it; its realm and error words are each side's own. The M2M contract has no such
/// fact, so an M2M 401's is not compared.
#[test]
fn a_leaf_401_without_its_bearer_challenge_is_a_header_difference() {
    let links = case(Api::Leaf, "GET", PROVIDER_LIST);
    let body = problem(401, "Unauthorized", PROVIDER_LIST);
    let challenged = |value: &str| problem_side(401, &body).header("www-authenticate", value);
    let found = links.compare(&problem_side(401, &body), &challenged("Bearer"));
    let difference = one(
        &found,
        Rule::Header,
        "header:www-authenticate",
        Some("LEAF-AUTH-WWW-AUTHENTICATE"),
    );
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (Value::Null, json!("Bearer"))
    );
    let found = links.compare(&challenged("Basic realm=\"leaf\""), &challenged("Bearer"));
    one(
        &found,
        Rule::Header,
        "header:www-authenticate",
        Some("LEAF-AUTH-WWW-AUTHENTICATE"),
    );
    none(&links.compare(
        &challenged(
            "bearer realm=\"leaf, \\\"inc\\\"\", error=\"invalid_token\", \
             error_description=\"The token expired\"",
        ),
        &challenged("Bearer"),
    ));
    let head = case(Api::Leaf, "HEAD", PROVIDER_LIST);
    let found = head.compare(&problem_side(401, &body).headless(), &challenged("Bearer"));
    one(
        &found,
        Rule::Header,
        "header:www-authenticate",
        Some("LEAF-AUTH-WWW-AUTHENTICATE"),
    );

    let error = m2m_error(
        "UNAUTHORIZED",
        "Missing authentication. Provide X-API-Key or Bearer token.",
    );
    none(&case(Api::M2m, "GET", "/partner/links").compare(
        &Side::json(401, &error).header("www-authenticate", "ApiKey"),
        &Side::json(401, &error),
    ));
}

#[test]
fn a_regenerated_secret_and_a_fulfilled_data_request_compare_by_format() {
    let regenerate = case(
        Api::M2m,
        "POST",
        "/partner/webhooks/config/regenerate-secret",
    );
    let message = linkbox_contracts::m2m::messages::REGENERATED_SECRET;
    let secret = |value: &str| json!({"webhookSecret": value, "message": message});
    let up = Side::json(200, &secret("whsec_ABCDEFGHIJKLMNOPQRSTUVWX"));
    none(&regenerate.compare(
        &up,
        &Side::json(200, &secret("whsec_0123456789abcdefghijklmn")),
    ));
    assert!(
        regenerate.pairs(&up, &up.clone()).is_empty(),
        "a secret is not an id to map"
    );
    let found = regenerate.compare(&up, &Side::json(200, &secret("whsec_short")));
    one(
        &found,
        Rule::Format,
        "/webhookSecret",
        Some("M2M-SECRET-FORMAT"),
    );

    let path = "/partner/data-requests/dr_acme_0123456789ab";
    let fulfil = Case {
        request: Some(json!({"referenceId": "ref-42", "userData": {"idNumber": "X1"}})),
        ..case(Api::M2m, "PUT", path)
    };
    let body = |request: &str, link: &str, text: &str| {
        json!({"success": true, "data": {
            "dataRequestId": request, "status": "fulfilled", "linkId": link,
            "message": text, "fulfilledAt": "2026-12-01T12:20:00.000Z",
        }})
    };
    let ok = linkbox_contracts::m2m::messages::DATA_REQUEST_FULFILLED_OK;
    let up = Side::json(200, &body("dr_acme_0123456789ab", UP_LINK, ok));
    let lb = Side::json(200, &body("dr_shadow7_aaaaaaaaaaaa", LB_LINK, ok));
    none(&fulfil.compare(&up, &lb));
    let found = fulfil.compare(
        &up,
        &Side::json(200, &body("dr_shadow7_aaaaaaaaaaaa", LB_LINK, "Merged")),
    );
    one(
        &found,
        Rule::Value,
        "/data/message",
        Some("M2M-DATA-REQUEST-FULFIL-MESSAGE"),
    );
}

// ---------------------------------------------------------------- Leaf fixtures

const UP_MAGIC: &str = "M2E5YjZjNzItMGUxZi00YzJhLTk3ZDMtNWY2YTdiOGM5ZDBl";
const LB_MAGIC: &str = "ZjBlMWQyYzMtYjRhNS00Njk3LTg4OTktYWFiYmNjZGRlZWZm";
const UP_LEAF_USER: &str = "0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c";
const LB_LEAF_USER: &str = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
const PROVIDER_LIST: &str = "/services/widgets/api/magic-link/provider";

fn leaf_created(id: &str, user: &str, host: &str, expires: &str) -> Value {
    json!({"id": id, "leafUserId": user, "link": format!("{host}/widget/{id}"), "expiresAt": expires})
}

fn leaf_link(id: &str, user: &str, host: &str, created: &str, expires: &str) -> Value {
    json!({
        "id": id,
        "link": format!("{host}/widget/{id}"),
        "createdAt": created,
        "expiresAt": expires,
        "lastAccessedAt": null,
        "leafUserId": user,
        "maxUsage": 3,
        "usageCount": 0,
        "widget": "PROVIDER",
        "settings": {
            "backgroundColor": "#F5F5F5",
            "companyLogo": null,
            "companyName": null,
            "headerImage": null,
            "showLeafUserName": false,
            "disconnectEnabled": false,
        },
        "allowedProviders": ["All"],
    })
}

fn up_link() -> Value {
    leaf_link(
        UP_MAGIC,
        UP_LEAF_USER,
        "https://widget.withleaf.io",
        "2026-12-01T12:00:00.100Z",
        "2026-12-01T12:15:00.100Z",
    )
}

fn lb_link() -> Value {
    leaf_link(
        LB_MAGIC,
        LB_LEAF_USER,
        "https://sandbox.example",
        "2026-12-01T12:00:00.300Z",
        "2026-12-01T12:15:00.300Z",
    )
}

fn problem(status: u16, title: &str, path: &str) -> Value {
    json!({
        "type": "https://www.jhipster.tech/problem/problem-with-message",
        "title": title,
        "status": status,
        "detail": "No such resource",
        "path": path,
        "message": format!("error.http.{status}"),
    })
}

fn problem_side(status: u16, body: &Value) -> Side {
    Side::typed(status, "application/problem+json", body)
}

// ---------------------------------------------------------------- Leaf

#[test]
fn an_honest_leaf_create_differs_in_nothing_and_a_missing_field_is_named() {
    let create = Case {
        request: Some(json!({"externalId": "farm-1"})),
        ..case(Api::Leaf, "POST", PROVIDER_LIST)
    };
    let up = leaf_created(
        UP_MAGIC,
        UP_LEAF_USER,
        "https://widget.withleaf.io",
        "2026-12-01T12:15:00.100000000Z",
    );
    let lb = leaf_created(
        LB_MAGIC,
        LB_LEAF_USER,
        "https://sandbox.example",
        "2026-12-01T12:15:00.300000000Z",
    );
    none(&create.compare(&Side::json(200, &up), &Side::json(200, &lb)));

    let found = create.compare(
        &Side::json(200, &up),
        &Side::json(200, &set(lb.clone(), "/leafUserId", None)),
    );
    one(
        &found,
        Rule::MissingField,
        "/leafUserId",
        Some("LEAF-CREATE-FIELDS"),
    );

    // No `createdAt` in a create answer: the `Date` header dates it.
    let dated = |side: Side, date: &str| side.header("date", date);
    let up_dated = dated(Side::json(200, &up), "Tue, 01 Dec 2026 12:00:00 GMT");
    let lb_dated = dated(Side::json(200, &lb), "Tue, 01 Dec 2026 12:00:01 GMT");
    none(&create.compare(&up_dated, &lb_dated));
    let lb_long = set(
        lb.clone(),
        "/expiresAt",
        Some(json!("2026-12-01T13:00:00.300000000Z")),
    );
    let found = create.compare(
        &up_dated,
        &dated(Side::json(200, &lb_long), "Tue, 01 Dec 2026 12:00:00 GMT"),
    );
    let difference = one(
        &found,
        Rule::Relation,
        "/expiresAt",
        Some("LEAF-CREATE-EXPIRES-IN-DEFAULT"),
    );
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!(900), json!(3600))
    );
    assert!(difference.doc);

    let lb_short = set(lb, "/expiresAt", Some(json!("2026-12-01T12:15:00.300Z")));
    let found = create.compare(&Side::json(200, &up), &Side::json(200, &lb_short));
    one(
        &found,
        Rule::Format,
        "/expiresAt",
        Some("LEAF-FORMAT-CREATE-TIMESTAMP"),
    );
}

#[test]
fn an_honest_leaf_get_differs_in_nothing_and_changed_defaults_are_named() {
    let path = format!("{PROVIDER_LIST}/{UP_MAGIC}");
    let get = Case {
        known: &[(UP_MAGIC, LB_MAGIC), (UP_LEAF_USER, LB_LEAF_USER)],
        ..case(Api::Leaf, "GET", &path)
    };
    let up = Side::json(200, &up_link());
    none(&get.compare(&up, &Side::json(200, &lb_link())));

    let lb = set(
        lb_link(),
        "/settings/backgroundColor",
        Some(json!("#FFFFFF")),
    );
    let found = get.compare(&up, &Side::json(200, &lb));
    one(
        &found,
        Rule::Value,
        "/settings/backgroundColor",
        Some("LEAF-SETTINGS-DEFAULTS"),
    );

    let lb = set(lb_link(), "/maxUsage", Some(json!(5)));
    let found = get.compare(&up, &Side::json(200, &lb));
    one(
        &found,
        Rule::Value,
        "/maxUsage",
        Some("LEAF-GET-USAGE-DEFAULTS"),
    );

    let lb = set(
        lb_link(),
        "/expiresAt",
        Some(json!("2026-12-01T13:00:00.300Z")),
    );
    let found = get.compare(&up, &Side::json(200, &lb));
    let difference = one(
        &found,
        Rule::Relation,
        "/expiresAt",
        Some("LEAF-CREATE-EXPIRES-IN-DEFAULT"),
    );
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!(900), json!(3600))
    );
}

#[test]
fn a_leaf_404_problem_compares_its_path_with_the_ids_mapped() {
    let path = format!("{PROVIDER_LIST}/{UP_MAGIC}");
    let get = Case {
        known: &[(UP_MAGIC, LB_MAGIC)],
        ..case(Api::Leaf, "GET", &path)
    };
    let lb_path = format!("{PROVIDER_LIST}/{LB_MAGIC}");
    let up = problem_side(404, &problem(404, "Magic link not found", &path));
    none(&get.compare(
        &up,
        &problem_side(404, &problem(404, "Magic link not found", &lb_path)),
    ));

    let found = get.compare(
        &up,
        &problem_side(404, &problem(404, "Not Found", &lb_path)),
    );
    one(
        &found,
        Rule::Value,
        "/title",
        Some("LEAF-PROBLEM-NOT-FOUND-TITLE"),
    );

    // A path that names another link than the shadow's.
    let other = format!("{PROVIDER_LIST}/{UP_MAGIC}x");
    let found = get.compare(
        &up,
        &problem_side(404, &problem(404, "Magic link not found", &other)),
    );
    one(&found, Rule::Value, "/path", Some("LEAF-PROBLEM-PATH"));

    let found = get.compare(
        &up,
        &Side::json(404, &problem(404, "Magic link not found", &lb_path)),
    );
    one(
        &found,
        Rule::MediaType,
        "",
        Some("LEAF-PROBLEM-CONTENT-TYPE"),
    );
}

fn paged(side: Side, total: u64, rels: &[&str], host: &str) -> Side {
    let link = rels
        .iter()
        .map(|rel| format!("<{host}{PROVIDER_LIST}?page=0&size=2>; rel=\"{rel}\""))
        .collect::<Vec<_>>()
        .join(",");
    side.header("x-total-count", &total.to_string())
        .header("link", &link)
}

#[test]
fn a_leaf_page_compares_known_items_and_each_sides_headers() {
    let list = Case {
        query: "page=0&size=2",
        known: &[(UP_MAGIC, LB_MAGIC)],
        ..case(Api::Leaf, "GET", PROVIDER_LIST)
    };
    let older = leaf_link(
        "b2xkZXItbGluay0wMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw",
        UP_LEAF_USER,
        "https://widget.withleaf.io",
        "2026-11-01T12:00:00.000Z",
        "2026-11-01T12:15:00.000Z",
    );
    let up = paged(
        Side::json(200, &json!([up_link(), older])),
        5,
        &["next", "last", "first"],
        "https://api.withleaf.io",
    );
    let lb = paged(
        Side::json(200, &json!([lb_link()])),
        1,
        &["last", "first"],
        "http://127.0.0.1:4020",
    );
    none(&list.compare(&up, &lb));

    let found = list.compare(&up, &lb.clone().without("x-total-count"));
    let difference = one(
        &found,
        Rule::Header,
        "header:x-total-count",
        Some("LEAF-LIST-TOTAL-COUNT-HEADER"),
    );
    assert_eq!(
        (difference.upstream, difference.linkbox),
        (json!("5"), Value::Null)
    );

    let wrong = paged(
        Side::json(200, &json!([lb_link()])),
        1,
        &["next", "last", "first"],
        "http://127.0.0.1:4020",
    );
    let found = list.compare(&up, &wrong);
    one(
        &found,
        Rule::Paging,
        "header:link",
        Some("LEAF-LIST-LINK-HEADER"),
    );

    let wrong = paged(
        Side::json(200, &json!([lb_link()])),
        0,
        &["last", "first"],
        "http://127.0.0.1:4020",
    );
    let found = list.compare(&up, &wrong);
    one(
        &found,
        Rule::Paging,
        "header:x-total-count",
        Some("LEAF-LIST-TOTAL-COUNT-HEADER"),
    );

    let mut drifted = lb_link();
    drifted["widget"] = json!("FILEUPLOAD");
    let lb = paged(
        Side::json(200, &json!([drifted])),
        1,
        &["last", "first"],
        "http://127.0.0.1:4020",
    );
    let found = list.compare(&up, &lb);
    one(&found, Rule::Value, "/*/widget", Some("LEAF-GET-WIDGET"));
}

#[test]
fn a_leaf_head_of_a_page_checks_each_sides_link_against_its_own_total() {
    let head = Case {
        query: "page=0&size=2",
        ..case(Api::Leaf, "HEAD", PROVIDER_LIST)
    };
    let up = paged(
        Side::json(200, &json!([up_link()])),
        5,
        &["next", "last", "first"],
        "https://api.withleaf.io",
    )
    .headless();
    let lb = paged(
        Side::json(200, &json!([lb_link()])),
        1,
        &["last", "first"],
        "http://127.0.0.1:4020",
    );
    none(&head.compare(&up, &lb));
    none(&head.compare(&up, &lb.clone().headless()));
    let wrong = paged(
        Side::json(200, &json!([lb_link()])),
        1,
        &["next", "last", "first"],
        "http://127.0.0.1:4020",
    );
    let found = head.compare(&up, &wrong);
    one(
        &found,
        Rule::Paging,
        "header:link",
        Some("LEAF-LIST-LINK-HEADER"),
    );
}

#[test]
fn a_leaf_user_create_compares_its_location_host_independently() {
    let create = case(Api::Leaf, "POST", "/services/usermanagement/api/users");
    let user = |id: &str| {
        json!({
            "id": id, "name": "Ana", "email": "ana@example.com", "phone": null, "address": null,
            "externalId": "farm-1", "johnDeereCredentials": null, "climateFieldViewCredentials": null,
            "cnhiCredentials": null, "trimbleCredentials": null, "agLeaderCredentials": null,
            "ravenSlingshotCredentials": null, "staraCredentials": null,
        })
    };
    let up = Side::json(201, &user(UP_LEAF_USER)).header(
        "location",
        &format!("https://api.withleaf.io/services/usermanagement/api/users/{UP_LEAF_USER}"),
    );
    let lb = Side::json(201, &user(LB_LEAF_USER)).header(
        "location",
        &format!("/services/usermanagement/api/users/{LB_LEAF_USER}"),
    );
    none(&create.compare(&up, &lb));

    let found = create.compare(&up, &lb.clone().without("location"));
    one(
        &found,
        Rule::Header,
        "header:location",
        Some("LEAF-USERS-CREATE-LOCATION"),
    );

    let lb_bad = Side::json(201, &user("not-a-uuid"))
        .header("location", "/services/usermanagement/api/users/not-a-uuid");
    let found = create.compare(&up, &lb_bad);
    one(&found, Rule::Format, "/id", Some("LEAF-USERS-CREATE"));
}

#[test]
fn an_honest_authenticate_and_delete_differ_in_nothing() {
    let auth = case(Api::Leaf, "POST", "/api/authenticate");
    let up = Side::json(
        200,
        &json!({"id_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"}),
    );
    let lb = Side::json(
        200,
        &json!({"id_token": "eyJhbGciOiJIUzUxMiJ9.eyJzdWIiOiJiIn0.b3RoZXI"}),
    );
    none(&auth.compare(&up, &lb));
    let found = auth.compare(&up, &Side::json(200, &json!({"id_token": "opaque"})));
    one(&found, Rule::Format, "/id_token", Some("LEAF-AUTH-JWT"));

    let path = format!("{PROVIDER_LIST}/{UP_MAGIC}");
    let delete = case(Api::Leaf, "DELETE", &path);
    none(&delete.compare(&Side::empty(204), &Side::empty(204)));
    let found = delete.compare(&Side::empty(204), &Side::empty(200));
    one(&found, Rule::Status, "", Some("LEAF-DELETE-204"));
    let found = delete.compare(&Side::empty(204), &Side::json(204, &json!({})));
    one(&found, Rule::MediaType, "", None);
}

// ---------------------------------------------------------------- endpoint and pairs

#[test]
fn every_route_resolves_to_its_template() {
    let mut seen = 0;
    for api in [Api::M2m, Api::Leaf] {
        for (template, family) in routes::all(api) {
            let (method, path) = template.split_once(' ').expect("method");
            let concrete = path
                .replace("{linkId}", UP_LINK)
                .replace("{dataRequestId}", "dr_acme_0123456789ab")
                .replace("{magicLinkId}", UP_MAGIC)
                .replace("{leafUserId}", UP_LEAF_USER)
                .replace("{id}", UP_LEAF_USER);
            assert_eq!(endpoint(api, method, &concrete), template, "{concrete}");
            assert_eq!(
                endpoint(api, &method.to_lowercase(), &format!("{concrete}/")),
                template
            );
            assert_eq!(routes::resolve(api, method, &concrete).1, family);
            seen += 1;
        }
    }
    // 6 M2M (method, route) pairs; Leaf: authenticate, 3 types x 6, users 6.
    assert_eq!(seen, 6 + 1 + 18 + 6);
    assert_eq!(
        endpoint(Api::M2m, "GET", "/partner/links"),
        "GET /partner/links"
    );
    assert_eq!(
        endpoint(
            Api::Leaf,
            "POST",
            &format!("/services/widgets/api/magic-link/users/{UP_LEAF_USER}/file-upload")
        ),
        "POST /services/widgets/api/magic-link/users/{leafUserId}/file-upload"
    );
}

#[test]
fn the_routes_are_the_openapi_paths_of_both_apis() {
    let document: Value =
        serde_json::from_str(&linkbox_contracts::openapi::json()).expect("openapi");
    let mut documented = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        if path.starts_with("/_sandbox") {
            continue;
        }
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    documented.sort();
    let mut ours: Vec<String> = [Api::M2m, Api::Leaf]
        .into_iter()
        .flat_map(routes::all)
        .map(|(template, _)| template)
        .collect();
    ours.sort();
    assert_eq!(ours, documented);
}

#[test]
fn an_unknown_path_keeps_its_words_and_hides_its_ids() {
    assert_eq!(
        endpoint(Api::M2m, "GET", &format!("/partner/things/{UP_LINK}/more")),
        "GET /partner/things/{id}/more"
    );
    assert_eq!(
        endpoint(
            Api::M2m,
            "DELETE",
            &format!("/partner/links/{UP_LINK}/x/{UP_TOKEN}")
        ),
        "DELETE /partner/links/{id}/x/{id}"
    );
    assert_eq!(
        endpoint(Api::Leaf, "GET", "/services/widgets/api/magic-link"),
        "GET /services/widgets/api/magic-link"
    );
    // A method no route serves keeps the route's template.
    assert_eq!(
        endpoint(Api::M2m, "DELETE", &detail_path()),
        "DELETE /partner/links/{linkId}"
    );
}

#[test]
fn pairs_of_a_created_link_are_its_id_and_token() {
    let found = create_case().pairs(
        &Side::json(201, &up_created()),
        &Side::json(201, &lb_created()),
    );
    assert_eq!(
        found,
        vec![
            (UP_LINK.to_owned(), LB_LINK.to_owned()),
            (UP_TOKEN.to_owned(), LB_TOKEN.to_owned())
        ]
    );
    // No pairs from an error, nor from a list.
    let error = Side::json(400, &m2m_error("INVALID_REQUEST", "x"));
    assert!(create_case().pairs(&error, &error).is_empty());
    let get = case(Api::M2m, "GET", "/partner/links");
    let up = Side::json(200, &list(vec![up_item()], 1, 20, 1));
    let lb = Side::json(200, &list(vec![lb_item()], 1, 20, 1));
    assert!(get.pairs(&up, &lb).is_empty());
}

#[test]
fn pairs_of_a_link_detail_are_its_link_user_and_token() {
    let path = detail_path();
    let get = case(Api::M2m, "GET", &path);
    let mut found = get.pairs(
        &Side::json(200, &detail(up_item(), UP_TOKEN)),
        &Side::json(200, &detail(lb_item(), LB_TOKEN)),
    );
    found.sort();
    let mut wanted = vec![
        (UP_LINK.to_owned(), LB_LINK.to_owned()),
        (UP_USER.to_owned(), LB_USER.to_owned()),
        (UP_TOKEN.to_owned(), LB_TOKEN.to_owned()),
    ];
    wanted.sort();
    assert_eq!(found, wanted);
}

#[test]
fn pairs_of_leaf_authenticate_and_magic_link_create() {
    let auth = case(Api::Leaf, "POST", "/api/authenticate");
    let found = auth.pairs(
        &Side::json(200, &json!({"id_token": "a.b.c"})),
        &Side::json(200, &json!({"id_token": "d.e.f"})),
    );
    assert_eq!(found, vec![("a.b.c".to_owned(), "d.e.f".to_owned())]);

    let create = case(Api::Leaf, "POST", PROVIDER_LIST);
    let mut found = create.pairs(
        &Side::json(
            200,
            &leaf_created(
                UP_MAGIC,
                UP_LEAF_USER,
                "https://a",
                "2026-12-01T12:15:00.100000000Z",
            ),
        ),
        &Side::json(
            200,
            &leaf_created(
                LB_MAGIC,
                LB_LEAF_USER,
                "https://b",
                "2026-12-01T12:15:00.300000000Z",
            ),
        ),
    );
    found.sort();
    let mut wanted = vec![
        (UP_MAGIC.to_owned(), LB_MAGIC.to_owned()),
        (UP_LEAF_USER.to_owned(), LB_LEAF_USER.to_owned()),
    ];
    wanted.sort();
    assert_eq!(found, wanted);
}

#[test]
fn ids_minted_by_the_exchange_itself_map_embedded_strings() {
    // The user's Location names the id the same answer minted: no mapping known beforehand,
    // yet the shadow's Location must name the shadow's new user, not another.
    let create = case(Api::Leaf, "POST", "/services/usermanagement/api/users");
    let location = |id: &str| format!("/services/usermanagement/api/users/{id}");
    let up = Side::json(201, &json!({"id": UP_LEAF_USER, "name": "A"}))
        .header("location", &location(UP_LEAF_USER));
    let lb = Side::json(201, &json!({"id": LB_LEAF_USER, "name": "A"}));
    none(&create.compare(&up, &lb.clone().header("location", &location(LB_LEAF_USER))));
    let lb = lb.header(
        "location",
        &location("11111111-2222-4333-8444-555555555555"),
    );
    let found = create.compare(&up, &lb);
    one(
        &found,
        Rule::Header,
        "header:location",
        Some("LEAF-USERS-CREATE-LOCATION"),
    );
}

#[test]
fn the_fact_table_globs_and_sources() {
    assert!(table::glob("/**/*At", "/data/items/*/createdAt"));
    assert!(table::glob("/**/*At", "/createdAt"));
    assert!(!table::glob("/data/*", "/data/a/b"));
    assert!(table::glob(
        "* /services/widgets/**",
        "GET /services/widgets/api/magic-link/provider"
    ));
    assert!(!table::glob(
        "GET /partner/links",
        "GET /partner/links/{linkId}"
    ));
    assert!(table::is_doc("M2M-CREATE-DEFAULT-EXPIRY"));
    assert!(!table::is_doc("M2M-FORMAT-LINK-ID"));
    assert!(!table::is_doc("NO-SUCH-FACT"));
    assert!(table::rows() > 50);
    assert!(formats::all_compiled());
    assert!(formats::fits(
        formats::IdFormat::OperationId,
        "op_acme_A1b2C3"
    ));
    assert!(!formats::fits(
        formats::IdFormat::OperationId,
        "op_acme_A1b2C"
    ));
}

/// An answer with thousands of fields the other lacks yields at most [`MAX_FOUND`]
/// differences, each once: the report keeps a few hundred kinds, and checking each new one
/// against all found before made such an answer quadratic.
#[test]
fn a_wide_answer_yields_at_most_max_found_differences() {
    let mut up = up_created();
    for n in 0..3 * MAX_FOUND {
        up["data"][format!("extra{n}")] = json!(n);
    }
    let found = create_case().compare(&Side::json(201, &up), &Side::json(201, &lb_created()));
    assert_eq!(found.len(), MAX_FOUND);
    let pointers: std::collections::HashSet<&str> = found
        .iter()
        .map(|difference| difference.pointer.as_str())
        .collect();
    assert_eq!(pointers.len(), MAX_FOUND, "each once");
    assert!(pointers.contains("/data/extra0"), "{pointers:?}");
}

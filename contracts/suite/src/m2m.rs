//! Cases of the M2M partner API, one per behaviour of `m2m.md`. `[doc]` cases cite
//! docs.leapfinancial.com M2M and `api-docs/m2m-partner-create-link.txt`; expectations are the
//! literal values the spec states. Validation cases come in pairs: the documented status and
//! code (`[doc]`), and linkbox's wording of the message (`[design]`).

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Auth, Ctx, Failure, Reply};
use super::{Case, case, local_case};

const LINKS: &str = "/partner/links";
const LINK_ID: &str = "^link_[a-z0-9]+_[0-9a-f]{12}$";
const USER_ID: &str = "^user_[a-z0-9]+_[A-Za-z0-9]{6}$";
const UUID_V4: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$";
const MISSING_AUTH: &str = "Missing authentication. Provide X-API-Key or Bearer token.";
const INVALID_KEY: &str = "Invalid or revoked API key";
const PAGE_MESSAGE: &str = "The page query parameter must be an integer greater than or equal to 1";
const LIMIT_MESSAGE: &str = "The limit query parameter must be an integer between 1 and 100";
const PAYMENT: &str = r#"{"type": "bank_account", "bankAccount": {"country": "MX", "accountNumber": "012345678901234567"}}"#;

fn payment() -> Value {
    serde_json::from_str(PAYMENT).unwrap_or(Value::Null)
}

/// A complete CIP user (no data request on open).
fn complete_user() -> Value {
    json!({
        "name": {"firstName": "Ana", "secondName": "Maria", "lastName": "Lopez", "secondLastName": "Diaz"},
        "idNumber": "LODA900101MDFPZN09",
        "idType": "CURP",
        "dob": "1990-01-01",
        "paymentMethod": payment(),
    })
}

/// `POST /partner/links` with `body`, whatever the answer.
async fn post(cx: &Ctx, body: Value) -> Result<Reply, Failure> {
    cx.m2m(Method::POST, LINKS).json(&body).send().await
}

/// A create whose only difference from a valid one is `field: value`.
async fn post_with(cx: &Ctx, field: &str, value: Value) -> Result<Reply, Failure> {
    let mut body = json!({"referenceId": cx.mark("ref")});
    body[field] = value;
    post(cx, body).await
}

async fn get(cx: &Ctx, link_id: &str) -> Result<Reply, Failure> {
    cx.m2m(Method::GET, &format!("{LINKS}/{link_id}"))
        .send()
        .await
}

/// `value` as a query string's value: a timestamp the target wrote with a `+00:00` offset
/// would otherwise reach it as a space.
fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn list(cx: &Ctx, query: &str) -> Result<Reply, Failure> {
    cx.m2m(Method::GET, &format!("{LINKS}?{query}"))
        .send()
        .await
}

async fn revoke(cx: &Ctx, link_id: &str, body: Option<Value>) -> Result<Reply, Failure> {
    let request = cx.m2m(Method::POST, &format!("{LINKS}/{link_id}/revoke"));
    match body {
        Some(body) => request.json(&body).send().await,
        None => request.send().await,
    }
}

/// `GET /partner/links` with `key` answers 401 `INVALID_API_KEY`.
/// Every member of `reply`'s body named like a timestamp (`…At`) that is not `null` is an
/// RFC 3339 date-time string (the ISO 8601 profile the docs' examples write).
fn every_timestamp_is_a_date_time(reply: &Reply) -> Result<(), Failure> {
    fn walk(value: &Value, pointer: &str, found: &mut Option<(String, Value)>) {
        match value {
            Value::Object(members) => {
                for (name, member) in members {
                    let at = format!("{pointer}/{name}");
                    let stamp = name.len() > 2 && name.ends_with("At") && !member.is_null();
                    let readable = member
                        .as_str()
                        .is_some_and(|text| linkbox_contracts::timefmt::parse(text).is_some());
                    if stamp && !readable && found.is_none() {
                        *found = Some((at.clone(), member.clone()));
                    }
                    walk(member, &at, found);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    walk(item, &format!("{pointer}/{index}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = None;
    walk(&reply.json, "", &mut found);
    match found {
        None => Ok(()),
        Some((pointer, value)) => Err(reply.failure(
            format!("body {pointer}"),
            "an RFC 3339 date-time string",
            value,
        )),
    }
}

async fn key_is_refused(cx: &Ctx, key: String) -> Result<(), Failure> {
    let reply = cx
        .m2m(Method::GET, LINKS)
        .auth(Auth::Key(key))
        .send()
        .await?;
    reply.m2m_error(401, "INVALID_API_KEY", INVALID_KEY)?;
    Ok(())
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_default().to_owned()
}

/// Three links for one `referenceId`, oldest first: two revoked, the last active.
async fn three_links(cx: &Ctx, reference: &str) -> Result<Vec<Value>, Failure> {
    let mut links = Vec::new();
    for n in 0..3 {
        let link = cx.create_link(json!({"referenceId": reference})).await?;
        if n < 2 {
            revoke(cx, &text(&link, "linkId"), None)
                .await?
                .status(200)?;
        }
        links.push(link);
    }
    Ok(links)
}

/// The ids in `data.items`, in order.
fn item_ids(reply: &Reply) -> Vec<String> {
    reply.json["data"]["items"]
        .as_array()
        .map(|items| items.iter().map(|item| text(item, "linkId")).collect())
        .unwrap_or_default()
}

fn expect_ids(reply: &Reply, expected: &[&str]) -> Result<(), Failure> {
    let actual = item_ids(reply);
    if actual == expected {
        Ok(())
    } else {
        Err(reply.failure(
            "body /data/items[].linkId",
            format!("{expected:?}"),
            format!("{actual:?}"),
        ))
    }
}

/// `later - earlier` of two instants in the same reply, in seconds.
fn seconds_between(reply: &Reply, earlier: &str, later: &str) -> Result<i64, Failure> {
    Ok((reply.instant(later)? - reply.instant(earlier)?).whole_seconds())
}

fn expect_seconds(reply: &Reply, check: &str, expected: i64, actual: i64) -> Result<(), Failure> {
    if expected == actual {
        Ok(())
    } else {
        Err(reply.failure(check, format!("{expected} s"), format!("{actual} s")))
    }
}

/// Every M2M case.
pub fn cases() -> Vec<Case> {
    let mut all = auth();
    all.extend(envelopes());
    all.extend(create());
    all.extend(validation());
    all.extend(lifecycle());
    all.extend(listing());
    all.extend(detail());
    all.extend(revoking());
    all.extend(data_requests());
    all.extend(webhook_secret());
    all.extend(webhooks());
    all.extend(rate_limits());
    all.extend(fact_gaps());
    all
}

fn auth() -> Vec<Case> {
    vec![
        case!(
            "m2m.auth.no-key-401",
            Doc,
            [
                "M2M-AUTH-NO-KEY-STATUS",
                "M2M-AUTH-NO-KEY-CODE",
                "M2M-AUTH-NO-KEY-MESSAGE"
            ],
            |cx| async move {
                let reply = cx.m2m(Method::GET, LINKS).no_auth().send().await?;
                reply.m2m_error(401, "UNAUTHORIZED", MISSING_AUTH)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.no-key-on-create-401",
            Doc,
            [
                "M2M-AUTH-NO-KEY-STATUS",
                "M2M-AUTH-NO-KEY-CODE",
                "M2M-AUTH-NO-KEY-MESSAGE"
            ],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, LINKS)
                    .no_auth()
                    .json(&json!({"referenceId": cx.mark("ref")}))
                    .send()
                    .await?;
                reply.m2m_error(401, "UNAUTHORIZED", MISSING_AUTH)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.no-key-on-detail-401",
            Doc,
            [
                "M2M-AUTH-NO-KEY-STATUS",
                "M2M-AUTH-NO-KEY-CODE",
                "M2M-AUTH-NO-KEY-MESSAGE"
            ],
            |cx| async move {
                let reply = cx
                    .m2m(Method::GET, "/partner/links/link_p00000000_000000000000")
                    .no_auth()
                    .send()
                    .await?;
                reply.m2m_error(401, "UNAUTHORIZED", MISSING_AUTH)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.no-key-on-revoke-401",
            Doc,
            [
                "M2M-AUTH-NO-KEY-STATUS",
                "M2M-AUTH-NO-KEY-CODE",
                "M2M-AUTH-NO-KEY-MESSAGE"
            ],
            |cx| async move {
                let reply = cx
                    .m2m(
                        Method::POST,
                        "/partner/links/link_p00000000_000000000000/revoke",
                    )
                    .no_auth()
                    .send()
                    .await?;
                reply.m2m_error(401, "UNAUTHORIZED", MISSING_AUTH)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.no-key-on-fulfil-401",
            Doc,
            [
                "M2M-AUTH-NO-KEY-STATUS",
                "M2M-AUTH-NO-KEY-CODE",
                "M2M-AUTH-NO-KEY-MESSAGE"
            ],
            |cx| async move {
                let reply = cx
                    .m2m(
                        Method::PUT,
                        "/partner/data-requests/dr_p00000000_000000000000",
                    )
                    .no_auth()
                    .json(&json!({"referenceId": cx.mark("ref"), "userData": {"idNumber": "X"}}))
                    .send()
                    .await?;
                reply.m2m_error(401, "UNAUTHORIZED", MISSING_AUTH)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.no-key-on-regenerate-secret-401",
            Doc,
            [
                "M2M-AUTH-NO-KEY-STATUS",
                "M2M-AUTH-NO-KEY-CODE",
                "M2M-AUTH-NO-KEY-MESSAGE"
            ],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, "/partner/webhooks/config/regenerate-secret")
                    .no_auth()
                    .send()
                    .await?;
                reply.m2m_error(401, "UNAUTHORIZED", MISSING_AUTH)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.malformed-key-401",
            Doc,
            [
                "M2M-AUTH-INVALID-KEY-STATUS",
                "M2M-AUTH-INVALID-KEY-CODE",
                "M2M-AUTH-INVALID-KEY-MESSAGE"
            ],
            |cx| async move { key_is_refused(&cx, "not-a-key".into()).await }
        ),
        case!(
            "m2m.auth.short-test-key-401",
            Doc,
            [
                "M2M-AUTH-KEY-FORMAT",
                "M2M-AUTH-INVALID-KEY-STATUS",
                "M2M-AUTH-INVALID-KEY-CODE",
                "M2M-AUTH-INVALID-KEY-MESSAGE"
            ],
            |cx| async move { key_is_refused(&cx, format!("m2m_test_{}", "a".repeat(31))).await }
        ),
        case!(
            "m2m.auth.non-alphanumeric-test-key-401",
            Doc,
            [
                "M2M-AUTH-KEY-FORMAT",
                "M2M-AUTH-INVALID-KEY-STATUS",
                "M2M-AUTH-INVALID-KEY-CODE",
                "M2M-AUTH-INVALID-KEY-MESSAGE"
            ],
            |cx| async move { key_is_refused(&cx, format!("m2m_test_{}-", "a".repeat(31))).await }
        ),
        // Sending any m2m_live_ key, even a made-up one, is for the local sandbox only.
        local_case!(
            "m2m.auth.live-key-401",
            Doc,
            ["M2M-AUTH-LIVE-KEY-REFUSED"],
            |cx| async move { key_is_refused(&cx, format!("m2m_live_{}", "0".repeat(32))).await }
        ),
        case!(
            "m2m.auth.bearer-accepted",
            Design,
            ["M2M-AUTH-BEARER"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::GET, LINKS)
                    .auth(Auth::Bearer(cx.m2m_key()))
                    .send()
                    .await?;
                reply.status(200)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.bad-bearer-401",
            Design,
            ["M2M-AUTH-BAD-BEARER"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::GET, LINKS)
                    .auth(Auth::Bearer("not-a-key".into()))
                    .send()
                    .await?;
                reply.m2m_error(401, "INVALID_API_KEY", INVALID_KEY)?;
                Ok(())
            }
        ),
        case!(
            "m2m.auth.checked-before-validation",
            Doc,
            ["M2M-AUTH-BEFORE-VALIDATION"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, LINKS)
                    .auth(Auth::Key("not-a-key".into()))
                    .json(&json!({}))
                    .send()
                    .await?;
                reply.m2m_code(401, "INVALID_API_KEY")?;
                Ok(())
            }
        ),
    ]
}

fn envelopes() -> Vec<Case> {
    vec![
        case!(
            "m2m.envelope.success-shape",
            Doc,
            [
                "M2M-ENVELOPE-SUCCESS",
                "M2M-ENVELOPE-CONTENT-TYPE",
                "M2M-AUTH-KEY-HEADER"
            ],
            |cx| async move {
                let reply = list(&cx, "limit=1").await?;
                reply.status(200)?.content_type("application/json")?;
                reply.eq("/success", json!(true))?.get("/data")?;
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.error-shape-exact",
            Design,
            ["M2M-ENVELOPE-ERROR", "M2M-ENVELOPE-ERROR-EXACT"],
            |cx| async move {
                let reply = get(&cx, "link_p00000000_000000000000").await?;
                reply.status(404)?;
                let keys = |value: &Value| -> Vec<String> {
                    let mut keys: Vec<String> = value
                        .as_object()
                        .map(|object| object.keys().cloned().collect())
                        .unwrap_or_default();
                    keys.sort();
                    keys
                };
                let (outer, inner) = (keys(&reply.json), keys(&reply.json["error"]));
                if outer != ["error", "success"] || inner != ["code", "message"] {
                    return Err(reply.failure(
                        "envelope keys",
                        r#"["error", "success"] / ["code", "message"]"#,
                        format!("{outer:?} / {inner:?}"),
                    ));
                }
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.unknown-path-404",
            Design,
            ["M2M-ENVELOPE-UNKNOWN-PATH"],
            |cx| async move {
                let reply = cx.m2m(Method::GET, "/partner/no-such-thing").send().await?;
                reply.status(404)?.content_type("application/json")?;
                reply.eq("/success", json!(false))?;
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.wrong-method-enveloped",
            Design,
            ["M2M-ENVELOPE-WRONG-METHOD"],
            |cx| async move {
                let reply = cx.m2m(Method::DELETE, LINKS).send().await?;
                reply
                    .status_in(400..=499)?
                    .content_type("application/json")?;
                reply.eq("/success", json!(false))?;
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.bad-json-400",
            Design,
            ["M2M-ENVELOPE-BAD-JSON"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, LINKS)
                    .header("content-type", "application/json")
                    .raw("{\"referenceId\": ")
                    .send()
                    .await?;
                reply.m2m_error(400, "INVALID_REQUEST", "Request body must be valid JSON")?;
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.content-type-required-400",
            Doc,
            ["M2M-ENVELOPE-CONTENT-TYPE-REQUIRED"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, LINKS)
                    .header("content-type", "text/plain")
                    .raw(json!({"referenceId": cx.mark("ref")}).to_string())
                    .send()
                    .await?;
                reply.m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.content-type-message",
            Design,
            ["M2M-ENVELOPE-CONTENT-TYPE-MESSAGE"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, LINKS)
                    .header("content-type", "text/plain")
                    .raw(json!({"referenceId": cx.mark("ref")}).to_string())
                    .send()
                    .await?;
                reply.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "Content-Type must be application/json",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.body-not-object-400",
            Design,
            ["M2M-ENVELOPE-BODY-NOT-OBJECT"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, LINKS)
                    .json(&json!(["referenceId"]))
                    .send()
                    .await?;
                reply.m2m_error(400, "INVALID_REQUEST", "Request body must be a JSON object")?;
                Ok(())
            }
        ),
    ]
}

fn create() -> Vec<Case> {
    vec![
        case!(
            "m2m.create.status-201",
            Doc,
            ["M2M-CREATE-STATUS"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?.content_type("application/json")?;
                reply.eq("/success", json!(true))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.fields",
            Doc,
            ["M2M-CREATE-FIELDS"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?;
                for field in [
                    "linkId",
                    "referenceId",
                    "status",
                    "url",
                    "token",
                    "expiresAt",
                    "createdAt",
                ] {
                    reply.get(&format!("/data/{field}"))?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.create.status-created",
            Doc,
            ["M2M-CREATE-STATUS-CREATED"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?.eq("/data/status", json!("created"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.reference-id-echoed",
            Doc,
            ["M2M-CREATE-REFERENCE-ID-ECHOED"],
            |cx| async move {
                let reference = cx.mark("ref");
                let reply = post(&cx, json!({"referenceId": reference})).await?;
                reply
                    .status(201)?
                    .eq("/data/referenceId", json!(reference))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.default-expiry-60-minutes",
            Doc,
            ["M2M-CREATE-DEFAULT-EXPIRY"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?;
                let actual = seconds_between(&reply, "/data/createdAt", "/data/expiresAt")?;
                expect_seconds(&reply, "expiresAt - createdAt", 3600, actual)
            }
        ),
        case!(
            "m2m.create.expiry-120-minutes",
            Doc,
            ["M2M-CREATE-EXPIRY-HONOURED"],
            |cx| async move {
                let reply = post_with(&cx, "expiresInMinutes", json!(120)).await?;
                reply.status(201)?;
                let actual = seconds_between(&reply, "/data/createdAt", "/data/expiresAt")?;
                expect_seconds(&reply, "expiresAt - createdAt", 7200, actual)
            }
        ),
        case!(
            "m2m.create.expiry-minimum-5-accepted",
            Doc,
            ["M2M-CREATE-EXPIRY-RANGE"],
            |cx| async move {
                let reply = post_with(&cx, "expiresInMinutes", json!(5)).await?;
                reply.status(201)?;
                let actual = seconds_between(&reply, "/data/createdAt", "/data/expiresAt")?;
                expect_seconds(&reply, "expiresAt - createdAt", 300, actual)
            }
        ),
        case!(
            "m2m.create.expiry-maximum-10080-accepted",
            Doc,
            ["M2M-CREATE-EXPIRY-RANGE"],
            |cx| async move {
                let reply = post_with(&cx, "expiresInMinutes", json!(10080)).await?;
                reply.status(201)?;
                let actual = seconds_between(&reply, "/data/createdAt", "/data/expiresAt")?;
                expect_seconds(&reply, "expiresAt - createdAt", 604_800, actual)
            }
        ),
        case!(
            "m2m.create.link-id-format",
            Design,
            ["M2M-FORMAT-LINK-ID"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?.pattern("/data/linkId", LINK_ID)?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.token-uuid-v4",
            Design,
            ["M2M-FORMAT-TOKEN"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?.pattern("/data/token", UUID_V4)?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.timestamps-are-iso-strings",
            Doc,
            ["M2M-FORMAT-TIMESTAMP-ISO"],
            |cx| async move {
                // Every timestamp a link's answers carry: the create's, the revoke's, the
                // detail's and the list item's.
                let reference = cx.mark("ref");
                let created = post(&cx, json!({"referenceId": reference})).await?;
                created.status(201)?;
                every_timestamp_is_a_date_time(&created)?;
                let link_id = created.string("/data/linkId")?;
                let revoked = revoke(&cx, &link_id, None).await?;
                revoked.status(200)?;
                every_timestamp_is_a_date_time(&revoked)?;
                let detail = get(&cx, &link_id).await?;
                detail.status(200)?;
                every_timestamp_is_a_date_time(&detail)?;
                let listed = list(&cx, &format!("referenceId={}", query_value(&reference))).await?;
                listed.status(200)?;
                every_timestamp_is_a_date_time(&listed)?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.created-at-millis",
            Design,
            ["M2M-FORMAT-TIMESTAMP"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?.timestamp("/data/createdAt", 3)?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.expires-at-millis",
            Design,
            ["M2M-FORMAT-TIMESTAMP"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?.timestamp("/data/expiresAt", 3)?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.url-ends-with-link-and-default-flow",
            Design,
            ["M2M-FORMAT-URL"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?;
                let (url, link_id) = (reply.string("/data/url")?, reply.string("/data/linkId")?);
                let suffix = format!("/{link_id}/m2m-basic");
                if !url.ends_with(&suffix) {
                    return Err(reply.failure("body /data/url", format!("…{suffix}"), url));
                }
                Ok(())
            }
        ),
        case!(
            "m2m.create.default-flow-m2m-basic",
            Doc,
            ["M2M-CREATE-FLOW-DEFAULT"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                get(&cx, &text(&link, "linkId"))
                    .await?
                    .status(200)?
                    .eq("/data/flow", json!("m2m-basic"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.unknown-flow-400",
            Design,
            ["M2M-CREATE-FLOW-UNKNOWN"],
            |cx| async move {
                let reply = post_with(&cx, "flow", json!("contract-no-such-flow")).await?;
                reply.m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.language-en-accepted",
            Doc,
            ["M2M-CREATE-LANGUAGE"],
            |cx| async move {
                let reply = post_with(&cx, "language", json!("en")).await?;
                reply.status(201)?;
                let link_id = reply.string("/data/linkId")?;
                get(&cx, &link_id)
                    .await?
                    .status(200)?
                    .eq("/data/language", json!("en"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.language-es-kept",
            Doc,
            ["M2M-CREATE-LANGUAGE"],
            |cx| async move {
                let reply = post_with(&cx, "language", json!("es")).await?;
                reply.status(201)?;
                let link_id = reply.string("/data/linkId")?;
                get(&cx, &link_id)
                    .await?
                    .status(200)?
                    .eq("/data/language", json!("es"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.theme-kept",
            Doc,
            ["M2M-CREATE-THEME"],
            |cx| async move {
                let reply = post_with(&cx, "theme", json!("dark")).await?;
                reply.status(201)?;
                let link_id = reply.string("/data/linkId")?;
                get(&cx, &link_id)
                    .await?
                    .status(200)?
                    .eq("/data/theme", json!("dark"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.metadata-returned-in-detail",
            Doc,
            ["M2M-CREATE-METADATA"],
            |cx| async move {
                let metadata = json!({"orderId": "ORD-2026-001", "campaign": "february-promo"});
                let reply = post_with(&cx, "metadata", metadata.clone()).await?;
                reply.status(201)?;
                let link_id = reply.string("/data/linkId")?;
                get(&cx, &link_id)
                    .await?
                    .status(200)?
                    .eq("/data/metadata", metadata)?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.https-callback-kept",
            Doc,
            ["M2M-CREATE-CALLBACK-HTTPS"],
            |cx| async move {
                let url = "https://api.example.com/callbacks/m2m";
                let reply = post_with(&cx, "callbackUrl", json!(url)).await?;
                reply.status(201)?;
                let link_id = reply.string("/data/linkId")?;
                get(&cx, &link_id)
                    .await?
                    .status(200)?
                    .eq("/data/callbackUrl", json!(url))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.http-loopback-callback-accepted",
            Design,
            ["M2M-CREATE-CALLBACK-LOOPBACK"],
            |cx| async move {
                for url in [
                    "http://127.0.0.1:9/hook",
                    "http://localhost:9/hook",
                    "http://[::1]:9/hook",
                ] {
                    post_with(&cx, "callbackUrl", json!(url))
                        .await?
                        .status(201)?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.create.user-data-kept",
            Doc,
            ["M2M-CREATE-USER-DATA"],
            |cx| async move {
                let user = complete_user();
                let reply = post_with(&cx, "userData", user.clone()).await?;
                reply.status(201)?;
                let link_id = reply.string("/data/linkId")?;
                let detail = get(&cx, &link_id).await?;
                detail
                    .status(200)?
                    .eq("/data/userData/idNumber", user["idNumber"].clone())?;
                detail.eq("/data/userData/paymentMethod", payment())?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.cash-payment-method-accepted",
            Doc,
            ["M2M-CREATE-PAYMENT-CASH"],
            |cx| async move {
                let user = json!({"paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R-1"}}});
                post_with(&cx, "userData", user).await?.status(201)?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.payment-details-required",
            Design,
            ["M2M-CREATE-PAYMENT-DETAILS-REQUIRED"],
            |cx| async move {
                let user = json!({"paymentMethod": {"type": "bank_account", "bankAccount": {"country": "MX"}}});
                post_with(&cx, "userData", user).await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "The userData.paymentMethod.bankAccount.accountNumber field is required",
                )?;
                let user = json!({"paymentMethod": {"type": "cash"}});
                post_with(&cx, "userData", user).await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "The userData.paymentMethod.cash field is required when userData.paymentMethod.type is cash",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.vendor-example-accepted",
            Doc,
            ["M2M-CREATE-VENDOR-EXAMPLE"],
            |cx| async move {
                let reply = post(
                    &cx,
                    json!({
                        "referenceId": cx.mark("user-12345"),
                        "expiresInMinutes": 120,
                        "metadata": {"orderId": "ORD-2026-001", "campaign": "february-promo"},
                        "flow": "m2m-basic",
                        "theme": "dark",
                        "language": "es",
                        "callbackUrl": "https://api.example.com/callbacks/m2m"
                    }),
                )
                .await?;
                reply.status(201)?.eq("/data/status", json!("created"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.unknown-field-ignored",
            Design,
            ["M2M-CREATE-UNKNOWN-FIELD-IGNORED"],
            |cx| async move {
                let reply = post_with(&cx, "contractUnknownField", json!(1)).await?;
                reply.status(201)?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.create.unknown-field-named-in-warning",
            Design,
            ["M2M-CREATE-UNKNOWN-FIELD-WARNING"],
            |cx| async move {
                let reply = post(
                    &cx,
                    json!({"referenceId": cx.mark("ref"), "expiresInMinute": 30, "langauge": "es"}),
                )
                .await?;
                reply.status(201)?;
                reply
                    .names_ignored_field("expiresInMinute")?
                    .names_ignored_field("langauge")?;
                // Ignored means ignored: the misspelt expiry leaves the default in place.
                let detail = get(&cx, &reply.string("/data/linkId")?).await?;
                detail.status(200)?.null("/data/language")?;
                let actual = seconds_between(&detail, "/data/createdAt", "/data/expiresAt")?;
                expect_seconds(&detail, "expiresAt - createdAt", 3600, actual)
            }
        ),
        local_case!(
            "m2m.create.no-warning-without-unknown-fields",
            Design,
            ["M2M-CREATE-NO-WARNING"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?;
                if let Some(warning) = reply.header("x-linkbox-warning") {
                    return Err(reply.failure("header x-linkbox-warning", "absent", warning));
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.create.url-on-linkbox-widget",
            Design,
            ["M2M-FORMAT-URL-LOCAL"],
            |cx| async move {
                // The widget is linkbox's own hosted page: the URL's path is served here.
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?;
                let link_id = reply.string("/data/linkId")?;
                let url = reply.string("/data/url")?;
                let path = reqwest::Url::parse(&url)
                    .map(|url| url.path().to_owned())
                    .unwrap_or_default();
                let expected = format!("/widget/{link_id}/m2m-basic");
                if path != expected {
                    return Err(reply.failure("body /data/url path", expected, url));
                }
                cx.control(Method::GET, &path)
                    .no_auth()
                    .send()
                    .await?
                    .status(200)?
                    .content_type("text/html")?;
                Ok(())
            }
        ),
        case!(
            "m2m.create.reference-id-255-accepted",
            Design,
            ["M2M-CREATE-REFERENCE-ID-MAX"],
            |cx| async move {
                let mut reference = cx.mark("long");
                while reference.len() < 255 {
                    reference.push('x');
                }
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .status(201)?;
                Ok(())
            }
        ),
    ]
}

/// Request validation: the documented status and code (`[doc]`), and linkbox's wording of the
/// message (`[design]`), as separate cases so drift in one does not hide the other.
fn validation() -> Vec<Case> {
    vec![
        case!(
            "m2m.validate.reference-id-missing",
            Doc,
            ["M2M-CREATE-REFERENCE-ID-REQUIRED"],
            |cx| async move {
                let reply = post(&cx, json!({"expiresInMinutes": 60})).await?;
                reply.m2m_error(400, "INVALID_REQUEST", "The referenceId field is required")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.reference-id-empty",
            Doc,
            ["M2M-CREATE-REFERENCE-ID-EMPTY"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": ""})).await?;
                reply.m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.reference-id-empty-message",
            Design,
            ["M2M-CREATE-REFERENCE-ID-EMPTY-MESSAGE"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": ""})).await?;
                reply.m2m_error(400, "INVALID_REQUEST", "The referenceId field is required")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.reference-id-256-rejected",
            Design,
            ["M2M-CREATE-REFERENCE-ID-MAX"],
            |cx| async move {
                let mut reference = cx.mark("long");
                while reference.len() < 256 {
                    reference.push('x');
                }
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.reference-id-256-message",
            Design,
            ["M2M-CREATE-REFERENCE-ID-MAX-MESSAGE"],
            |cx| async move {
                let mut reference = cx.mark("long");
                while reference.len() < 256 {
                    reference.push('x');
                }
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .m2m_error(
                        400,
                        "INVALID_REQUEST",
                        "The referenceId field must be at most 255 characters",
                    )?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.expiry-4-rejected",
            Doc,
            ["M2M-CREATE-EXPIRY-RANGE"],
            |cx| async move {
                post_with(&cx, "expiresInMinutes", json!(4))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.expiry-10081-rejected",
            Doc,
            ["M2M-CREATE-EXPIRY-RANGE"],
            |cx| async move {
                post_with(&cx, "expiresInMinutes", json!(10081))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.expiry-string-rejected",
            Doc,
            ["M2M-CREATE-EXPIRY-NUMBER"],
            |cx| async move {
                post_with(&cx, "expiresInMinutes", json!("60"))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.expiry-message",
            Design,
            ["M2M-CREATE-EXPIRY-MESSAGE"],
            |cx| async move {
                for minutes in [json!(4), json!(10081), json!("60")] {
                    post_with(&cx, "expiresInMinutes", minutes)
                        .await?
                        .m2m_error(
                            400,
                            "INVALID_REQUEST",
                            "The expiresInMinutes field must be a number between 5 and 10080",
                        )?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.validate.language-fr-rejected",
            Doc,
            ["M2M-CREATE-LANGUAGE-INVALID"],
            |cx| async move {
                post_with(&cx, "language", json!("fr"))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.language-message",
            Design,
            ["M2M-CREATE-LANGUAGE-MESSAGE"],
            |cx| async move {
                post_with(&cx, "language", json!("fr")).await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "The language field must be one of: en, es",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.callback-http-rejected",
            Doc,
            ["M2M-CREATE-CALLBACK-INVALID"],
            |cx| async move {
                post_with(&cx, "callbackUrl", json!("http://api.example.com/hook"))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.callback-not-a-url-rejected",
            Doc,
            ["M2M-CREATE-CALLBACK-INVALID"],
            |cx| async move {
                post_with(&cx, "callbackUrl", json!("not a url"))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.callback-message",
            Design,
            ["M2M-CREATE-CALLBACK-MESSAGE"],
            |cx| async move {
                for url in ["http://api.example.com/hook", "api.example.com/callbacks"] {
                    post_with(&cx, "callbackUrl", json!(url)).await?.m2m_error(
                        400,
                        "INVALID_REQUEST",
                        "The callbackUrl field must be a valid HTTPS URL",
                    )?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.validate.metadata-not-object-rejected",
            Doc,
            ["M2M-CREATE-METADATA-INVALID"],
            |cx| async move {
                post_with(&cx, "metadata", json!("orderId"))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.metadata-message",
            Design,
            ["M2M-CREATE-METADATA-MESSAGE"],
            |cx| async move {
                for metadata in [json!([1]), json!("orderId")] {
                    post_with(&cx, "metadata", metadata).await?.m2m_error(
                        400,
                        "INVALID_REQUEST",
                        "The metadata field must be an object",
                    )?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.validate.flow-message",
            Design,
            ["M2M-CREATE-FLOW-MESSAGE"],
            |cx| async move {
                post_with(&cx, "flow", json!("contract-no-such-flow"))
                    .await?
                    .m2m_error(
                        400,
                        "INVALID_REQUEST",
                        "The flow field must be one of: m2m-basic",
                    )?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.theme-not-string-rejected",
            Doc,
            ["M2M-CREATE-THEME-INVALID"],
            |cx| async move {
                post_with(&cx, "theme", json!(3))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.theme-message",
            Design,
            ["M2M-CREATE-THEME-MESSAGE"],
            |cx| async move {
                post_with(&cx, "theme", json!(3)).await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "The theme field must be a string",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.user-data-not-object-rejected",
            Doc,
            ["M2M-CREATE-USER-DATA-INVALID"],
            |cx| async move {
                post_with(&cx, "userData", json!("Ana"))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.user-data-message",
            Design,
            ["M2M-CREATE-USER-DATA-MESSAGE"],
            |cx| async move {
                post_with(&cx, "userData", json!("Ana")).await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "The userData field must be an object",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.payment-method-required",
            Doc,
            ["M2M-CREATE-PAYMENT-METHOD-REQUIRED"],
            |cx| async move {
                post_with(&cx, "userData", json!({"idNumber": "X1"}))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.payment-method-message",
            Design,
            ["M2M-CREATE-PAYMENT-METHOD-MESSAGE"],
            |cx| async move {
                post_with(&cx, "userData", json!({"idNumber": "X1"}))
                    .await?
                    .m2m_error(
                        400,
                        "INVALID_REQUEST",
                        "The userData.paymentMethod field is required when userData is provided",
                    )?;
                Ok(())
            }
        ),
        case!(
            "m2m.validate.first-violation-only",
            Design,
            ["M2M-ENVELOPE-FIRST-VIOLATION"],
            |cx| async move {
                // Two violations; the envelope carries one message, for the first field checked.
                let reply = post(&cx, json!({"referenceId": "", "language": "fr"})).await?;
                reply.m2m_code(400, "INVALID_REQUEST")?;
                let message = reply.string("/error/message")?;
                if message.contains("referenceId") == message.contains("language") {
                    return Err(reply.failure(
                        "body /error/message",
                        "names exactly one field",
                        message,
                    ));
                }
                Ok(())
            }
        ),
    ]
}

fn lifecycle() -> Vec<Case> {
    vec![
        case!(
            "m2m.lifecycle.second-active-link-409",
            Doc,
            ["M2M-LINK-ONE-ACTIVE", "M2M-LINK-ONE-ACTIVE-CODE"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .m2m_error(409, "ACTIVE_LINK_EXISTS", "User already has an active link")?;
                Ok(())
            }
        ),
        case!(
            "m2m.lifecycle.revoke-frees-the-user",
            Doc,
            ["M2M-LINK-REVOKE-FREES"],
            |cx| async move {
                let reference = cx.mark("ref");
                let first = cx.create_link(json!({"referenceId": reference})).await?;
                revoke(&cx, &text(&first, "linkId"), None)
                    .await?
                    .status(200)?;
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .status(201)?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.expiry-frees-the-user",
            Doc,
            ["M2M-LINK-EXPIRY-FREES"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference, "expiresInMinutes": 5}))
                    .await?;
                cx.advance_clock(6 * 60).await?;
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .status(201)?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.opened-link-still-blocks",
            Doc,
            ["M2M-LINK-OPENED-BLOCKS"],
            |cx| async move {
                let reference = cx.mark("ref");
                let link = cx.create_link(json!({"referenceId": reference})).await?;
                cx.open_link(&text(&link, "linkId")).await?;
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .m2m_code(409, "ACTIVE_LINK_EXISTS")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.expired-at-its-expires-at",
            Design,
            ["M2M-LINK-EXPIRED-AT-EXPIRES-AT"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference, "expiresInMinutes": 5}))
                    .await?;
                cx.advance_clock(4 * 60).await?;
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .m2m_code(409, "ACTIVE_LINK_EXISTS")?;
                cx.advance_clock(60).await?;
                post(&cx, json!({"referenceId": reference}))
                    .await?
                    .status(201)?;
                Ok(())
            }
        ),
        case!(
            "m2m.lifecycle.other-reference-ids-independent",
            Doc,
            ["M2M-LINK-OTHER-REFERENCE"],
            |cx| async move {
                cx.create_plain_link().await?;
                cx.create_plain_link().await?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.reference-ids-are-per-partner",
            Design,
            ["M2M-LINK-REFERENCE-PER-PARTNER"],
            |cx| async move {
                // Another partner's user with the same referenceId is another user: no 409,
                // and the first partner's link is untouched.
                let reference = cx.mark("ref");
                let mine = cx.create_link(json!({"referenceId": reference})).await?;
                cx.m2m(Method::POST, LINKS)
                    .auth(Auth::Key(cx.other_m2m_key()))
                    .json(&json!({"referenceId": reference}))
                    .send()
                    .await?
                    .status(201)?;
                get(&cx, &text(&mine, "linkId"))
                    .await?
                    .status(200)?
                    .eq("/data/status", json!("created"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.lifecycle.returning-user-reused",
            Doc,
            ["M2M-LINK-RETURNING-USER"],
            |cx| async move {
                let reference = cx.mark("ref");
                let first = cx.create_link(json!({"referenceId": reference})).await?;
                revoke(&cx, &text(&first, "linkId"), None)
                    .await?
                    .status(200)?;
                let second = cx.create_link(json!({"referenceId": reference})).await?;
                let a = get(&cx, &text(&first, "linkId")).await?;
                let b = get(&cx, &text(&second, "linkId")).await?;
                let (user_a, user_b) = (a.string("/data/userId")?, b.string("/data/userId")?);
                if user_a != user_b {
                    return Err(b.failure("body /data/userId", user_a, user_b));
                }
                Ok(())
            }
        ),
        case!(
            "m2m.lifecycle.user-data-merged",
            Doc,
            ["M2M-LINK-USER-DATA-MERGED"],
            |cx| async move {
                let reference = cx.mark("ref");
                let first = cx
                .create_link(json!({"referenceId": reference, "userData": {"idNumber": "ID-1", "paymentMethod": payment()}}))
                .await?;
                revoke(&cx, &text(&first, "linkId"), None)
                    .await?
                    .status(200)?;
                let second = cx
                .create_link(json!({"referenceId": reference, "userData": {"dob": "1990-01-01", "paymentMethod": payment()}}))
                .await?;
                let detail = get(&cx, &text(&second, "linkId")).await?;
                detail
                    .status(200)?
                    .eq("/data/userData/idNumber", json!("ID-1"))?;
                detail.eq("/data/userData/dob", json!("1990-01-01"))?;
                Ok(())
            }
        ),
        case!(
            "m2m.lifecycle.user-data-merged-field-by-field",
            Design,
            ["M2M-LINK-USER-DATA-FIELD-BY-FIELD"],
            |cx| async move {
                // Nested objects merge key by key; a new paymentMethod replaces the old one.
                let reference = cx.mark("ref");
                let first = cx
                    .create_link(json!({"referenceId": reference, "userData": {
                        "name": {"firstName": "Ana"}, "paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R-1"}}}}))
                    .await?;
                revoke(&cx, &text(&first, "linkId"), None)
                    .await?
                    .status(200)?;
                let second = cx
                    .create_link(json!({"referenceId": reference, "userData": {
                        "name": {"lastName": "Ruiz"}, "paymentMethod": payment()}}))
                    .await?;
                get(&cx, &text(&second, "linkId"))
                    .await?
                    .status(200)?
                    .eq(
                        "/data/userData",
                        json!({"name": {"firstName": "Ana", "lastName": "Ruiz"}, "paymentMethod": payment()}),
                    )?;
                Ok(())
            }
        ),
        case!(
            "m2m.lifecycle.different-references-different-users",
            Doc,
            ["M2M-LINK-DIFFERENT-USERS"],
            |cx| async move {
                let a = cx.create_plain_link().await?;
                let b = cx.create_plain_link().await?;
                let a = get(&cx, &text(&a, "linkId")).await?;
                let b = get(&cx, &text(&b, "linkId")).await?;
                if a.string("/data/userId")? == b.string("/data/userId")? {
                    return Err(b.failure(
                        "body /data/userId",
                        "a different user",
                        a.string("/data/userId")?,
                    ));
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.expired-is-not-a-status",
            Doc,
            ["M2M-LINK-EXPIRED-NOT-A-STATUS"],
            |cx| async move {
                let link = cx
                    .create_link(json!({"referenceId": cx.mark("ref"), "expiresInMinutes": 5}))
                    .await?;
                cx.advance_clock(6 * 60).await?;
                get(&cx, &text(&link, "linkId"))
                    .await?
                    .status(200)?
                    .eq("/data/status", json!("created"))?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.open-sets-opened",
            Doc,
            ["M2M-LINK-OPEN-SETS-OPENED"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                cx.open_link(&text(&link, "linkId")).await?;
                let detail = get(&cx, &text(&link, "linkId")).await?;
                detail.status(200)?.eq("/data/status", json!("opened"))?;
                detail.timestamp("/data/openedAt", 3)?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.opened-at-set-once",
            Doc,
            ["M2M-LINK-OPENED-AT-ONCE"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                cx.open_link(&link_id).await?;
                let first = get(&cx, &link_id).await?.string("/data/openedAt")?;
                cx.advance_clock(60).await?;
                cx.open_link(&link_id).await?;
                get(&cx, &link_id)
                    .await?
                    .eq("/data/openedAt", json!(first))?;
                Ok(())
            }
        ),
    ]
}

fn listing() -> Vec<Case> {
    vec![
        case!("m2m.list.shape", Doc, ["M2M-LIST-SHAPE"], |cx| async move {
            let reply = list(&cx, "").await?;
            reply.status(200)?;
            if !reply.json["data"]["items"].is_array() {
                return Err(reply.failure(
                    "body /data/items",
                    "an array",
                    &reply.json["data"]["items"],
                ));
            }
            for field in ["page", "limit", "total", "totalPages"] {
                reply.get(&format!("/data/pagination/{field}"))?;
            }
            Ok(())
        }),
        case!(
            "m2m.list.default-page-1-limit-20",
            Doc,
            ["M2M-LIST-DEFAULT-PAGING"],
            |cx| async move {
                let reply = list(&cx, "").await?;
                reply.status(200)?.eq("/data/pagination/page", json!(1))?;
                reply.eq("/data/pagination/limit", json!(20))?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.limit-100-accepted",
            Doc,
            ["M2M-LIST-LIMIT-MAX"],
            |cx| async move {
                list(&cx, "limit=100")
                    .await?
                    .status(200)?
                    .eq("/data/pagination/limit", json!(100))?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.item-fields",
            Doc,
            ["M2M-LIST-ITEM-FIELDS"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply.status(200)?;
                for field in [
                    "linkId",
                    "referenceId",
                    "status",
                    "url",
                    "expiresAt",
                    "createdAt",
                    "openedAt",
                    "userId",
                    "operationId",
                    "userData",
                ] {
                    reply.get(&format!("/data/items/0/{field}"))?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.list.unset-fields-null",
            Design,
            ["M2M-LIST-ITEM-NULLS"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply.status(200)?.null("/data/items/0/openedAt")?;
                reply
                    .null("/data/items/0/operationId")?
                    .null("/data/items/0/userData")?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.item-user-data",
            Doc,
            ["M2M-LIST-ITEM-USER-DATA"],
            |cx| async move {
                let reference = cx.mark("ref");
                let user = complete_user();
                cx.create_link(json!({"referenceId": reference, "userData": user}))
                    .await?;
                list(&cx, &format!("referenceId={reference}"))
                    .await?
                    .status(200)?
                    .eq("/data/items/0/userData", user)?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.user-id-format",
            Design,
            ["M2M-FORMAT-USER-ID"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply
                    .status(200)?
                    .pattern("/data/items/0/userId", USER_ID)?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.filter-reference-id",
            Doc,
            ["M2M-LIST-FILTER-REFERENCE-ID"],
            |cx| async move {
                let reference = cx.mark("ref");
                let link = cx.create_link(json!({"referenceId": reference})).await?;
                cx.create_plain_link().await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply.status(200)?.eq("/data/pagination/total", json!(1))?;
                expect_ids(&reply, &[&text(&link, "linkId")])
            }
        ),
        case!(
            "m2m.list.pagination-arithmetic",
            Doc,
            ["M2M-LIST-PAGINATION-ARITHMETIC"],
            |cx| async move {
                let reference = cx.mark("ref");
                three_links(&cx, &reference).await?;
                let reply = list(&cx, &format!("referenceId={reference}&limit=2")).await?;
                reply.status(200)?.eq("/data/pagination/total", json!(3))?;
                reply.eq("/data/pagination/totalPages", json!(2))?;
                let page2 = list(&cx, &format!("referenceId={reference}&limit=2&page=2")).await?;
                page2.status(200)?.eq("/data/pagination/page", json!(2))?;
                let count = item_ids(&page2).len();
                if count != 1 {
                    return Err(page2.failure("body /data/items length", 1, count));
                }
                Ok(())
            }
        ),
        case!(
            "m2m.list.newest-first",
            Design,
            ["M2M-LIST-NEWEST-FIRST"],
            |cx| async move {
                let reference = cx.mark("ref");
                let links = three_links(&cx, &reference).await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply.status(200)?;
                let ids: Vec<String> = links
                    .iter()
                    .rev()
                    .map(|link| text(link, "linkId"))
                    .collect();
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                expect_ids(&reply, &ids)
            }
        ),
        case!(
            "m2m.list.page-past-the-end-empty",
            Design,
            ["M2M-LIST-PAST-THE-END"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(&cx, &format!("referenceId={reference}&page=5")).await?;
                reply.status(200)?.eq("/data/items", json!([]))?;
                reply.eq("/data/pagination/total", json!(1))?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.no-match-zero-pages",
            Design,
            ["M2M-LIST-NO-MATCH"],
            |cx| async move {
                let reply = list(&cx, &format!("referenceId={}", cx.mark("nobody"))).await?;
                reply.status(200)?.eq("/data/pagination/total", json!(0))?;
                reply.eq("/data/pagination/totalPages", json!(0))?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.filter-status-revoked",
            Doc,
            ["M2M-LIST-FILTER-STATUS"],
            |cx| async move {
                let reference = cx.mark("ref");
                let links = three_links(&cx, &reference).await?;
                let reply = list(&cx, &format!("referenceId={reference}&status=revoked")).await?;
                reply.status(200)?.eq("/data/pagination/total", json!(2))?;
                expect_ids(
                    &reply,
                    &[&text(&links[1], "linkId"), &text(&links[0], "linkId")],
                )
            }
        ),
        case!(
            "m2m.list.filter-status-created",
            Doc,
            ["M2M-LIST-FILTER-STATUS"],
            |cx| async move {
                let reference = cx.mark("ref");
                let links = three_links(&cx, &reference).await?;
                let reply = list(&cx, &format!("referenceId={reference}&status=created")).await?;
                reply.status(200)?;
                expect_ids(&reply, &[&text(&links[2], "linkId")])
            }
        ),
        local_case!(
            "m2m.list.filter-status-opened",
            Doc,
            ["M2M-LIST-FILTER-STATUS"],
            |cx| async move {
                let opened = cx.create_plain_link().await?;
                cx.create_plain_link().await?;
                cx.open_link(&text(&opened, "linkId")).await?;
                let reply = list(&cx, "status=opened").await?;
                reply.status(200)?;
                expect_ids(&reply, &[&text(&opened, "linkId")])
            }
        ),
        case!(
            "m2m.list.visibility-active-excludes-revoked",
            Doc,
            ["M2M-LIST-VISIBILITY-ACTIVE"],
            |cx| async move {
                let reference = cx.mark("ref");
                let links = three_links(&cx, &reference).await?;
                let reply =
                    list(&cx, &format!("referenceId={reference}&visibility=active")).await?;
                reply.status(200)?;
                expect_ids(&reply, &[&text(&links[2], "linkId")])
            }
        ),
        local_case!(
            "m2m.list.visibility-expired",
            Doc,
            ["M2M-LIST-VISIBILITY-EXPIRED"],
            |cx| async move {
                let expired = cx
                    .create_link(json!({"referenceId": cx.mark("ref"), "expiresInMinutes": 5}))
                    .await?;
                let revoked = cx
                    .create_link(json!({"referenceId": cx.mark("ref"), "expiresInMinutes": 5}))
                    .await?;
                revoke(&cx, &text(&revoked, "linkId"), None)
                    .await?
                    .status(200)?;
                cx.advance_clock(6 * 60).await?;
                let active = cx.create_plain_link().await?;
                let reply = list(&cx, "visibility=expired").await?;
                reply.status(200)?;
                expect_ids(&reply, &[&text(&expired, "linkId")])?;
                let reply = list(&cx, "visibility=active").await?;
                expect_ids(&reply, &[&text(&active, "linkId")])
            }
        ),
        case!(
            "m2m.list.from-in-the-future-excludes",
            Doc,
            ["M2M-LIST-FROM-TO"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(
                    &cx,
                    &format!("referenceId={reference}&from=2999-01-01T00:00:00.000Z"),
                )
                .await?;
                reply.status(200)?.eq("/data/pagination/total", json!(0))?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.to-in-the-past-excludes",
            Doc,
            ["M2M-LIST-FROM-TO"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(
                    &cx,
                    &format!("referenceId={reference}&to=2000-01-01T00:00:00.000Z"),
                )
                .await?;
                reply.status(200)?.eq("/data/pagination/total", json!(0))?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.from-to-bounds-inclusive",
            Doc,
            ["M2M-LIST-FROM-TO"],
            |cx| async move {
                let reference = cx.mark("ref");
                let link = cx.create_link(json!({"referenceId": reference})).await?;
                let at = query_value(&text(&link, "createdAt"));
                let reply =
                    list(&cx, &format!("referenceId={reference}&from={at}&to={at}")).await?;
                reply.status(200)?.eq("/data/pagination/total", json!(1))?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.limit-0-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY", "M2M-LIST-LIMIT-MESSAGE"],
            |cx| async move {
                list(&cx, "limit=0")
                    .await?
                    .m2m_error(400, "INVALID_REQUEST", LIMIT_MESSAGE)?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.limit-101-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY", "M2M-LIST-LIMIT-MESSAGE"],
            |cx| async move {
                list(&cx, "limit=101")
                    .await?
                    .m2m_error(400, "INVALID_REQUEST", LIMIT_MESSAGE)?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.page-0-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY", "M2M-LIST-PAGE-MESSAGE"],
            |cx| async move {
                list(&cx, "page=0")
                    .await?
                    .m2m_error(400, "INVALID_REQUEST", PAGE_MESSAGE)?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.page-not-a-number-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY", "M2M-LIST-PAGE-MESSAGE"],
            |cx| async move {
                list(&cx, "page=x")
                    .await?
                    .m2m_error(400, "INVALID_REQUEST", PAGE_MESSAGE)?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.unknown-status-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY"],
            |cx| async move {
                list(&cx, "status=expired").await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "The status query parameter must be one of: created, opened, revoked",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.unknown-visibility-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY"],
            |cx| async move {
                list(&cx, "visibility=revoked").await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "The visibility query parameter must be one of: active, expired",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.bad-from-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY"],
            |cx| async move {
                list(&cx, "from=yesterday").await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    &format!(
                        "The from query parameter {}",
                        linkbox_contracts::m2m::messages::DATE_BOUND
                    ),
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.bad-to-rejected",
            Design,
            ["M2M-LIST-BAD-QUERY"],
            |cx| async move {
                list(&cx, "to=2026-13-01T00:00:00Z").await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    &format!(
                        "The to query parameter {}",
                        linkbox_contracts::m2m::messages::DATE_BOUND
                    ),
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.from-to-any-offset-and-precision",
            Design,
            ["M2M-LIST-FROM-TO-FORMATS"],
            |cx| async move {
                // The bounds are instants: any UTC offset, with or without fraction digits.
                let reference = cx.mark("ref");
                let link = cx.create_link(json!({"referenceId": reference})).await?;
                let created = time::OffsetDateTime::parse(
                    &text(&link, "createdAt"),
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|error| {
                    Failure::new(
                        "POST /partner/links",
                        "body /data/createdAt",
                        "ISO 8601",
                        error,
                    )
                })?;
                let from = created
                    .to_offset(time::macros::offset!(-2))
                    .format(&time::format_description::well_known::Rfc3339)
                    .map_err(|error| Failure::new("format", "from", "ISO 8601", error))?;
                let to = (created + time::Duration::seconds(1))
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
                    ))
                    .map_err(|error| Failure::new("format", "to", "ISO 8601", error))?;
                let (from, to) = (query_value(&from), query_value(&to));
                let reply =
                    list(&cx, &format!("referenceId={reference}&from={from}&to={to}")).await?;
                reply.status(200)?.eq("/data/pagination/total", json!(1))?;
                // ISO 8601 to the minute: the minute it was made in, to the next one.
                let minute =
                    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
                let from = created
                    .format(minute)
                    .map_err(|error| Failure::new("format", "from", "ISO 8601", error))?;
                let to = (created + time::Duration::minutes(1))
                    .format(minute)
                    .map_err(|error| Failure::new("format", "to", "ISO 8601", error))?;
                let reply =
                    list(&cx, &format!("referenceId={reference}&from={from}&to={to}")).await?;
                reply.status(200)?.eq("/data/pagination/total", json!(1))?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.list.unknown-query-parameter-named-in-warning",
            Design,
            ["M2M-LIST-UNKNOWN-PARAMETER-WARNING"],
            |cx| async move {
                let reply = list(&cx, "pageSize=5").await?;
                reply.status(200)?.names_ignored_field("pageSize")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.list.tenant-isolation",
            Design,
            ["M2M-LIST-TENANT"],
            |cx| async move {
                cx.create_plain_link().await?;
                let other = cx.other_m2m_key();
                let reply = cx
                    .m2m(Method::GET, LINKS)
                    .auth(Auth::Key(other))
                    .send()
                    .await?;
                reply.status(200)?.eq("/data/pagination/total", json!(0))?;
                Ok(())
            }
        ),
    ]
}

fn detail() -> Vec<Case> {
    vec![
        case!(
            "m2m.detail.fields",
            Design,
            ["M2M-DETAIL-FIELDS"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let reply = get(&cx, &text(&link, "linkId")).await?;
                reply.status(200)?;
                for field in [
                    "linkId",
                    "referenceId",
                    "status",
                    "url",
                    "expiresAt",
                    "createdAt",
                    "openedAt",
                    "userId",
                    "operationId",
                    "userData",
                    "token",
                    "metadata",
                    "flow",
                    "theme",
                    "language",
                    "callbackUrl",
                    "revokedAt",
                    "revokeReason",
                ] {
                    reply.get(&format!("/data/{field}"))?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.detail.matches-create",
            Design,
            ["M2M-CREATE-SAME-AS-DETAIL", "M2M-CREATE-TOKEN-IN-DETAIL"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let reply = get(&cx, &text(&link, "linkId")).await?;
                reply.status(200)?;
                for field in [
                    "linkId",
                    "referenceId",
                    "url",
                    "token",
                    "expiresAt",
                    "createdAt",
                ] {
                    reply.eq(&format!("/data/{field}"), link[field].clone())?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.detail.unset-fields-null",
            Design,
            ["M2M-DETAIL-NULLS"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let reply = get(&cx, &text(&link, "linkId")).await?;
                reply.status(200)?;
                for field in [
                    "openedAt",
                    "metadata",
                    "theme",
                    "language",
                    "callbackUrl",
                    "revokedAt",
                    "revokeReason",
                ] {
                    reply.null(&format!("/data/{field}"))?;
                }
                Ok(())
            }
        ),
        case!(
            "m2m.detail.unknown-id-404",
            Design,
            ["M2M-DETAIL-UNKNOWN", "M2M-DETAIL-NOT-FOUND-MESSAGE"],
            |cx| async move {
                // A well-formed id nobody has, then ids that could never exist.
                for id in [
                    "link_p00000000_000000000000",
                    "garbage",
                    "link_p00000000_zzzzzzzzzzzz",
                ] {
                    get(&cx, id)
                        .await?
                        .m2m_error(404, "RESOURCE_NOT_FOUND", "Link not found")?;
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.detail.other-partner-404",
            Design,
            ["M2M-DETAIL-OTHER-PARTNER"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let reply = cx
                    .m2m(Method::GET, &format!("{LINKS}/{}", text(&link, "linkId")))
                    .auth(Auth::Key(cx.other_m2m_key()))
                    .send()
                    .await?;
                reply.m2m_error(404, "RESOURCE_NOT_FOUND", "Link not found")?;
                Ok(())
            }
        ),
    ]
}

fn revoking() -> Vec<Case> {
    vec![
        case!(
            "m2m.revoke.200-shape",
            Doc,
            ["M2M-REVOKE-STATUS"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                let reply = revoke(&cx, &link_id, Some(json!({"reason": "contract"}))).await?;
                reply.status(200)?.eq("/success", json!(true))?;
                reply
                    .eq("/data/linkId", json!(link_id))?
                    .eq("/data/status", json!("revoked"))?;
                reply.get("/data/revokedAt")?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.without-body",
            Doc,
            ["M2M-REVOKE-NO-BODY"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                revoke(&cx, &text(&link, "linkId"), None)
                    .await?
                    .status(200)?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.revoked-at-millis",
            Design,
            ["M2M-FORMAT-TIMESTAMP"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                revoke(&cx, &text(&link, "linkId"), None)
                    .await?
                    .timestamp("/data/revokedAt", 3)?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.detail-shows-revoked",
            Doc,
            ["M2M-REVOKE-DETAIL"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                let revoked = revoke(&cx, &link_id, None).await?;
                revoked.status(200)?;
                let detail = get(&cx, &link_id).await?;
                detail.status(200)?.eq("/data/status", json!("revoked"))?;
                // The same `revokedAt` as the revoke answered.
                detail.eq("/data/revokedAt", revoked.json["data"]["revokedAt"].clone())?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.reason-kept",
            Design,
            ["M2M-REVOKE-REASON"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                let revoked =
                    revoke(&cx, &link_id, Some(json!({"reason": "customer asked"}))).await?;
                revoked.status(200)?;
                let detail = get(&cx, &link_id).await?;
                detail
                    .status(200)?
                    .eq("/data/revokeReason", json!("customer asked"))?;
                detail.eq("/data/revokedAt", revoked.json["data"]["revokedAt"].clone())?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.reason-not-string-rejected",
            Design,
            ["M2M-REVOKE-REASON-INVALID"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                revoke(&cx, &text(&link, "linkId"), Some(json!({"reason": 5})))
                    .await?
                    .m2m_error(400, "INVALID_REQUEST", "The reason field must be a string")?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.twice-refused",
            Doc,
            ["M2M-REVOKE-TWICE"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                revoke(&cx, &link_id, None).await?.status(200)?;
                revoke(&cx, &link_id, None).await?.status_in(400..=499)?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.twice-message",
            Design,
            ["M2M-REVOKE-TWICE-MESSAGE"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                revoke(&cx, &link_id, None).await?.status(200)?;
                revoke(&cx, &link_id, None).await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "Only links with status created or opened can be revoked",
                )?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.revoke.opened-link",
            Doc,
            ["M2M-REVOKE-OPENED"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                cx.open_link(&link_id).await?;
                revoke(&cx, &link_id, None)
                    .await?
                    .status(200)?
                    .eq("/data/status", json!("revoked"))?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.revoke.expired-link-400",
            Design,
            ["M2M-REVOKE-EXPIRED"],
            |cx| async move {
                let link = cx
                    .create_link(json!({"referenceId": cx.mark("ref"), "expiresInMinutes": 5}))
                    .await?;
                cx.advance_clock(6 * 60).await?;
                revoke(&cx, &text(&link, "linkId"), None).await?.m2m_error(
                    400,
                    "LINK_EXPIRED",
                    "Magic link has expired",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.revoke.unknown-id-404",
            Design,
            ["M2M-REVOKE-UNKNOWN"],
            |cx| async move {
                revoke(&cx, "link_p00000000_000000000000", None)
                    .await?
                    .m2m_error(404, "RESOURCE_NOT_FOUND", "Link not found")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.revoke.other-partner-404",
            Design,
            ["M2M-REVOKE-OTHER-PARTNER"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let reply = cx
                    .m2m(
                        Method::POST,
                        &format!("{LINKS}/{}/revoke", text(&link, "linkId")),
                    )
                    .auth(Auth::Key(cx.other_m2m_key()))
                    .send()
                    .await?;
                reply.m2m_code(404, "RESOURCE_NOT_FOUND")?;
                get(&cx, &text(&link, "linkId"))
                    .await?
                    .eq("/data/status", json!("created"))?;
                Ok(())
            }
        ),
    ]
}

/// Opens a fresh link for a user without CIP data and returns `(link, dataRequestId)`.
async fn pending_request(cx: &Ctx, reference: &str) -> Result<(Value, String), Failure> {
    let link = cx.create_link(json!({"referenceId": reference})).await?;
    let opened = cx.open_link(&text(&link, "linkId")).await?;
    let id = opened.string("/dataRequest/dataRequestId")?;
    Ok((link, id))
}

async fn fulfil(cx: &Ctx, id: &str, body: Value) -> Result<Reply, Failure> {
    cx.m2m(Method::PUT, &format!("/partner/data-requests/{id}"))
        .json(&body)
        .send()
        .await
}

fn data_requests() -> Vec<Case> {
    vec![
        case!(
            "m2m.data-request.unknown-404",
            Design,
            ["M2M-DATA-REQUEST-UNKNOWN"],
            |cx| async move {
                fulfil(
                    &cx,
                    "dr_p00000000_000000000000",
                    json!({"referenceId": cx.mark("ref"), "userData": {"idNumber": "X"}}),
                )
                .await?
                .m2m_error(404, "RESOURCE_NOT_FOUND", "Data request not found")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.created-when-incomplete",
            Doc,
            ["M2M-DATA-REQUEST-CREATED", "M2M-FORMAT-DATA-REQUEST-ID"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let opened = cx.open_link(&text(&link, "linkId")).await?;
                opened.pattern("/dataRequest/dataRequestId", "^dr_[a-z0-9]+_[0-9a-f]{12}$")?;
                let fields = opened.get("/dataRequest/requiredFields")?.clone();
                let expected = json!([
                    "name.firstName",
                    "name.secondName",
                    "name.lastName",
                    "name.secondLastName",
                    "idNumber",
                    "idType",
                    "dob"
                ]);
                if fields != expected {
                    return Err(opened.failure(
                        "body /dataRequest/requiredFields",
                        expected,
                        fields,
                    ));
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.none-when-complete",
            Doc,
            ["M2M-DATA-REQUEST-NONE-WHEN-COMPLETE"],
            |cx| async move {
                let link = cx
                    .create_link(
                        json!({"referenceId": cx.mark("ref"), "userData": complete_user()}),
                    )
                    .await?;
                cx.open_link(&text(&link, "linkId"))
                    .await?
                    .null("/dataRequest")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.fulfil-200",
            Doc,
            ["M2M-DATA-REQUEST-FULFIL", "M2M-DATA-REQUEST-FULFIL-MESSAGE"],
            |cx| async move {
                let reference = cx.mark("ref");
                let (link, id) = pending_request(&cx, &reference).await?;
                let reply = fulfil(
                    &cx,
                    &id,
                    json!({"referenceId": reference, "userData": {"idNumber": "ID-9"}}),
                )
                .await?;
                reply.status(200)?.eq("/data/dataRequestId", json!(id))?;
                reply
                    .eq("/data/status", json!("fulfilled"))?
                    .eq("/data/linkId", link["linkId"].clone())?;
                reply.eq(
                    "/data/message",
                    json!("User data received and merged successfully"),
                )?;
                reply.timestamp("/data/fulfilledAt", 3)?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.merged-into-user",
            Doc,
            ["M2M-DATA-REQUEST-MERGED"],
            |cx| async move {
                let reference = cx.mark("ref");
                let (link, id) = pending_request(&cx, &reference).await?;
                fulfil(&cx, &id, json!({"referenceId": reference, "userData": {"idNumber": "ID-9", "idType": "CURP"}}))
                .await?
                .status(200)?;
                let detail = get(&cx, &text(&link, "linkId")).await?;
                detail
                    .eq("/data/userData/idNumber", json!("ID-9"))?
                    .eq("/data/userData/idType", json!("CURP"))?;
                // Fulfilling completes the user, not the link: it stays opened.
                detail.eq("/data/status", json!("opened"))?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.reference-mismatch-400",
            Design,
            ["M2M-DATA-REQUEST-MISMATCH"],
            |cx| async move {
                let (_, id) = pending_request(&cx, &cx.mark("ref")).await?;
                fulfil(
                    &cx,
                    &id,
                    json!({"referenceId": cx.mark("other"), "userData": {"idNumber": "X"}}),
                )
                .await?
                .m2m_error(
                    400,
                    "REFERENCE_ID_MISMATCH",
                    "Reference ID doesn't match",
                )?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.already-fulfilled-400",
            Design,
            ["M2M-DATA-REQUEST-FULFILLED-TWICE"],
            |cx| async move {
                let reference = cx.mark("ref");
                let (_, id) = pending_request(&cx, &reference).await?;
                let body = json!({"referenceId": reference, "userData": {"idNumber": "X"}});
                fulfil(&cx, &id, body.clone()).await?.status(200)?;
                fulfil(&cx, &id, body).await?.m2m_error(
                    400,
                    "INVALID_REQUEST",
                    "Data request has already been fulfilled",
                )?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.link-expired-400",
            Design,
            ["M2M-DATA-REQUEST-LINK-EXPIRED"],
            |cx| async move {
                let reference = cx.mark("ref");
                let link = cx
                    .create_link(json!({"referenceId": reference, "expiresInMinutes": 5}))
                    .await?;
                let id = cx
                    .open_link(&text(&link, "linkId"))
                    .await?
                    .string("/dataRequest/dataRequestId")?;
                cx.advance_clock(6 * 60).await?;
                fulfil(
                    &cx,
                    &id,
                    json!({"referenceId": reference, "userData": {"idNumber": "X"}}),
                )
                .await?
                .m2m_error(400, "LINK_EXPIRED", "Magic link has expired")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.user-data-required",
            Doc,
            ["M2M-DATA-REQUEST-USER-DATA-REQUIRED"],
            |cx| async move {
                let reference = cx.mark("ref");
                let (_, id) = pending_request(&cx, &reference).await?;
                fulfil(&cx, &id, json!({"referenceId": reference}))
                    .await?
                    .m2m_code(400, "INVALID_REQUEST")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.reference-id-required",
            Doc,
            ["M2M-DATA-REQUEST-REFERENCE-ID-REQUIRED"],
            |cx| async move {
                let (_, id) = pending_request(&cx, &cx.mark("ref")).await?;
                fulfil(&cx, &id, json!({"userData": {"idNumber": "X"}}))
                    .await?
                    .status_in(400..=499)?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.validation-messages",
            Design,
            ["M2M-DATA-REQUEST-MESSAGES"],
            |cx| async move {
                let reference = cx.mark("ref");
                let (_, id) = pending_request(&cx, &reference).await?;
                for (body, message) in [
                    (json!({"userData": {}}), "The referenceId field is required"),
                    (
                        json!({"referenceId": reference}),
                        "The userData field is required",
                    ),
                    (
                        json!({"referenceId": reference, "userData": "x"}),
                        "The userData field must be an object",
                    ),
                ] {
                    fulfil(&cx, &id, body)
                        .await?
                        .m2m_error(400, "INVALID_REQUEST", message)?;
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.data-request.other-partner-404",
            Design,
            ["M2M-DATA-REQUEST-OTHER-PARTNER"],
            |cx| async move {
                let reference = cx.mark("ref");
                let (_, id) = pending_request(&cx, &reference).await?;
                cx.m2m(Method::PUT, &format!("/partner/data-requests/{id}"))
                    .auth(Auth::Key(cx.other_m2m_key()))
                    .json(&json!({"referenceId": reference, "userData": {"idNumber": "X"}}))
                    .send()
                    .await?
                    .m2m_error(404, "RESOURCE_NOT_FOUND", "Data request not found")?;
                Ok(())
            }
        ),
    ]
}

// Regenerating changes the partner's real signing secret, so these run locally only.
fn webhook_secret() -> Vec<Case> {
    vec![
        local_case!(
            "m2m.webhook-secret.no-envelope",
            Doc,
            ["M2M-SECRET-NO-ENVELOPE", "M2M-SECRET-MESSAGE"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, "/partner/webhooks/config/regenerate-secret")
                    .send()
                    .await?;
                reply.status(200)?.content_type("application/json")?;
                reply.eq(
                    "/message",
                    json!("Copy this secret now. You will not be able to see it again."),
                )?;
                if reply.json.get("success").is_some() || reply.json.get("data").is_some() {
                    return Err(reply.failure("body", "no success/data envelope", &reply.text));
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.webhook-secret.format",
            Design,
            ["M2M-SECRET-FORMAT"],
            |cx| async move {
                let reply = cx
                    .m2m(Method::POST, "/partner/webhooks/config/regenerate-secret")
                    .send()
                    .await?;
                reply
                    .status(200)?
                    .pattern("/webhookSecret", "^whsec_[A-Za-z0-9]{24}$")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.webhook-secret.changes-each-time",
            Doc,
            ["M2M-SECRET-CHANGES"],
            |cx| async move {
                let path = "/partner/webhooks/config/regenerate-secret";
                let first = cx
                    .m2m(Method::POST, path)
                    .send()
                    .await?
                    .string("/webhookSecret")?;
                let second = cx.m2m(Method::POST, path).send().await?;
                if second.string("/webhookSecret")? == first {
                    return Err(second.failure("body /webhookSecret", "a new secret", first));
                }
                Ok(())
            }
        ),
    ]
}

/// The payload of the first `event` delivery for `link_id`, from linkbox's delivery log.
async fn delivered(cx: &Ctx, event: &str, link_id: &str) -> Result<Value, Failure> {
    let reply = cx.control(Method::GET, "/_sandbox/webhooks").send().await?;
    reply.status(200)?;
    reply.json["deliveries"]
        .as_array()
        .and_then(|deliveries| {
            deliveries.iter().find(|delivery| {
                delivery["event"] == event && delivery["payload"]["data"]["linkId"] == link_id
            })
        })
        .map(|delivery| delivery["payload"].clone())
        .ok_or_else(|| {
            reply.failure(
                "body /deliveries",
                format!("a {event} for {link_id}"),
                &reply.text,
            )
        })
}

fn expect_keys(payload: &Value, what: &str, keys: &[&str]) -> Result<(), Failure> {
    for key in keys {
        if payload["data"].get(key).is_none() {
            return Err(Failure::new(
                format!("webhook {what}"),
                format!("data.{key}"),
                "present",
                payload,
            ));
        }
    }
    Ok(())
}

// Webhook payloads are [doc]; linkbox's delivery log is how a local run sees them.
fn webhooks() -> Vec<Case> {
    const HOOK: &str = "http://127.0.0.1:9/contract-hook";
    vec![
        local_case!(
            "m2m.webhooks.link-created-payload",
            Doc,
            ["M2M-WEBHOOK-LINK-CREATED", "M2M-WEBHOOK-BODY"],
            |cx| async move {
                let link = cx
                    .create_link(json!({"referenceId": cx.mark("ref"), "callbackUrl": HOOK}))
                    .await?;
                let payload = delivered(&cx, "link.created", &text(&link, "linkId")).await?;
                expect_keys(
                    &payload,
                    "link.created",
                    &[
                        "linkId",
                        "referenceId",
                        "url",
                        "status",
                        "expiresAt",
                        "createdAt",
                    ],
                )?;
                if payload["event"] != "link.created" || !payload["timestamp"].is_string() {
                    return Err(Failure::new(
                        "webhook link.created",
                        "event and timestamp",
                        "link.created, a string",
                        &payload,
                    ));
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.webhooks.metadata-in-payload",
            Doc,
            ["M2M-WEBHOOK-METADATA"],
            |cx| async move {
                let metadata = json!({"orderId": "ORD-2026-001"});
                let link = cx
                .create_link(json!({"referenceId": cx.mark("ref"), "callbackUrl": HOOK, "metadata": metadata}))
                .await?;
                let payload = delivered(&cx, "link.created", &text(&link, "linkId")).await?;
                if payload["data"]["metadata"] != metadata {
                    return Err(Failure::new(
                        "webhook link.created",
                        "data.metadata",
                        metadata,
                        &payload["data"],
                    ));
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.webhooks.link-opened-payload",
            Doc,
            ["M2M-WEBHOOK-LINK-OPENED"],
            |cx| async move {
                let link = cx
                    .create_link(json!({"referenceId": cx.mark("ref"), "callbackUrl": HOOK}))
                    .await?;
                cx.open_link(&text(&link, "linkId")).await?;
                let payload = delivered(&cx, "link.opened", &text(&link, "linkId")).await?;
                expect_keys(
                    &payload,
                    "link.opened",
                    &["linkId", "referenceId", "openedAt", "deviceInfo"],
                )?;
                let device = &payload["data"]["deviceInfo"];
                if device["userAgent"] != "contract-suite"
                    || device["platform"] != "test"
                    || device["language"] != "en"
                {
                    return Err(Failure::new(
                        "webhook link.opened",
                        "data.deviceInfo",
                        "contract-suite / test / en",
                        device,
                    ));
                }
                Ok(())
            }
        ),
        local_case!(
            "m2m.webhooks.data-request-payload",
            Doc,
            ["M2M-WEBHOOK-DATA-REQUEST"],
            |cx| async move {
                let link = cx
                    .create_link(json!({"referenceId": cx.mark("ref"), "callbackUrl": HOOK}))
                    .await?;
                let link_id = text(&link, "linkId");
                let opened = cx.open_link(&link_id).await?;
                let id = opened.string("/dataRequest/dataRequestId")?;
                let payload = delivered(&cx, "user.data_request", &link_id).await?;
                expect_keys(
                    &payload,
                    "user.data_request",
                    &[
                        "dataRequestId",
                        "referenceId",
                        "linkId",
                        "requiredFields",
                        "replyEndpoint",
                        "expiresAt",
                    ],
                )?;
                let endpoint = payload["data"]["replyEndpoint"]
                    .as_str()
                    .unwrap_or_default();
                if !endpoint.ends_with(&format!("/partner/data-requests/{id}"))
                    || payload["data"]["expiresAt"] != link["expiresAt"]
                {
                    return Err(Failure::new(
                        "webhook user.data_request",
                        "replyEndpoint / expiresAt",
                        format!("…/partner/data-requests/{id} / {}", link["expiresAt"]),
                        &payload["data"],
                    ));
                }
                Ok(())
            }
        ),
    ]
}

/// Runs `body` with the sandbox clock frozen, so a window cannot roll over mid-case (linkbox
/// counts calendar minutes); unfreezes it whatever the outcome.
async fn frozen<F>(cx: &Ctx, body: F) -> Result<(), Failure>
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let freeze = |frozen: bool| {
        cx.control(Method::POST, "/_sandbox/clock")
            .json(&json!({"frozen": frozen}))
            .send()
    };
    freeze(true).await?.status(200)?;
    let outcome = body.await;
    freeze(false).await?.status(200)?;
    outcome
}

// Tripping a limit on purpose is for the local sandbox; a target run paces itself instead.
fn rate_limits() -> Vec<Case> {
    vec![
        local_case!(
            "m2m.rate-limit.create-101st-429",
            Doc,
            ["M2M-RATE-CREATE"],
            |cx| async move {
                frozen(&cx, async {
                    for _ in 0..100 {
                        cx.create_plain_link().await?;
                    }
                    post(&cx, json!({"referenceId": cx.mark("ref")}))
                        .await?
                        .status(429)?;
                    Ok(())
                })
                .await
            }
        ),
        local_case!(
            "m2m.rate-limit.429-body-and-retry-after",
            Design,
            ["M2M-RATE-BODY"],
            |cx| async move {
                frozen(&cx, async {
                    for _ in 0..100 {
                        cx.create_plain_link().await?;
                    }
                    let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                    reply.m2m_error(
                        429,
                        "RATE_LIMIT_EXCEEDED",
                        "Too many requests, please retry later",
                    )?;
                    let retry = reply.header("retry-after").unwrap_or("absent");
                    if retry.parse::<u64>().is_err() {
                        return Err(reply.failure("header retry-after", "whole seconds", retry));
                    }
                    Ok(())
                })
                .await
            }
        ),
        local_case!(
            "m2m.rate-limit.retry-after-until-the-next-minute",
            Design,
            ["M2M-RATE-RETRY-AFTER"],
            |cx| async move {
                // 15 s into a minute, frozen: the window frees in 45 s, and then it does.
                frozen(&cx, async {
                    cx.control(Method::POST, "/_sandbox/clock")
                        .json(&json!({"setTo": "2026-02-10T12:00:15.000Z"}))
                        .send()
                        .await?
                        .status(200)?;
                    for _ in 0..100 {
                        cx.create_plain_link().await?;
                    }
                    let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                    reply.status(429)?.header_eq("retry-after", "45")?;
                    cx.advance_clock(45).await?;
                    post(&cx, json!({"referenceId": cx.mark("ref")}))
                        .await?
                        .status(201)?;
                    Ok(())
                })
                .await
            }
        ),
        local_case!(
            "m2m.rate-limit.reads-retry-after-until-the-next-minute",
            Design,
            ["M2M-RATE-RETRY-AFTER"],
            |cx| async move {
                frozen(&cx, async {
                    cx.control(Method::POST, "/_sandbox/clock")
                        .json(&json!({"setTo": "2026-02-10T12:00:15.000Z"}))
                        .send()
                        .await?
                        .status(200)?;
                    for _ in 0..1000 {
                        list(&cx, "limit=1").await?.status(200)?;
                    }
                    let reply = list(&cx, "limit=1").await?;
                    reply.m2m_error(
                        429,
                        "RATE_LIMIT_EXCEEDED",
                        "Too many requests, please retry later",
                    )?;
                    reply.header_eq("retry-after", "45")?;
                    cx.advance_clock(45).await?;
                    list(&cx, "limit=1").await?.status(200)?;
                    Ok(())
                })
                .await
            }
        ),
        local_case!(
            "m2m.rate-limit.per-partner",
            Doc,
            ["M2M-RATE-PER-PARTNER"],
            |cx| async move {
                frozen(&cx, async {
                    for _ in 0..100 {
                        cx.create_plain_link().await?;
                    }
                    post(&cx, json!({"referenceId": cx.mark("ref")}))
                        .await?
                        .status(429)?;
                    cx.m2m(Method::POST, LINKS)
                        .auth(Auth::Key(cx.other_m2m_key()))
                        .json(&json!({"referenceId": cx.mark("ref")}))
                        .send()
                        .await?
                        .status(201)?;
                    Ok(())
                })
                .await
            }
        ),
        local_case!(
            "m2m.rate-limit.reads-have-their-own-window",
            Doc,
            ["M2M-RATE-SEPARATE-WINDOWS"],
            |cx| async move {
                frozen(&cx, async {
                    for _ in 0..100 {
                        cx.create_plain_link().await?;
                    }
                    post(&cx, json!({"referenceId": cx.mark("ref")}))
                        .await?
                        .status(429)?;
                    list(&cx, "limit=1").await?.status(200)?;
                    Ok(())
                })
                .await
            }
        ),
        local_case!(
            "m2m.rate-limit.other-1001st-429",
            Doc,
            ["M2M-RATE-OTHER"],
            |cx| async move {
                frozen(&cx, async {
                    for _ in 0..1000 {
                        list(&cx, "limit=1").await?.status(200)?;
                    }
                    list(&cx, "limit=1")
                        .await?
                        .m2m_code(429, "RATE_LIMIT_EXCEEDED")?;
                    Ok(())
                })
                .await
            }
        ),
    ]
}

/// Cases written for facts of `docs/contract/m2m.md` no other case checked: headers, what
/// only the create answer carries against later reads, routing errors, webhook headers.
pub(crate) fn fact_gaps() -> Vec<Case> {
    vec![
        case!(
            "m2m.create.content-type-json",
            Doc,
            ["M2M-CREATE-CONTENT-TYPE", "M2M-ENVELOPE-CONTENT-TYPE"],
            |cx| async move {
                let reply = post(&cx, json!({"referenceId": cx.mark("ref")})).await?;
                reply.status(201)?.content_type("application/json")?;
                Ok(())
            }
        ),
        case!(
            "m2m.detail.default-expiry-60-minutes",
            Doc,
            ["M2M-READ-DEFAULT-EXPIRY"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let reply = get(&cx, &text(&link, "linkId")).await?;
                reply.status(200)?;
                let actual = seconds_between(&reply, "/data/createdAt", "/data/expiresAt")?;
                expect_seconds(&reply, "detail expiresAt - createdAt", 3600, actual)
            }
        ),
        case!(
            "m2m.list.default-expiry-60-minutes",
            Doc,
            ["M2M-READ-DEFAULT-EXPIRY"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply.status(200)?;
                let actual =
                    seconds_between(&reply, "/data/items/0/createdAt", "/data/items/0/expiresAt")?;
                expect_seconds(&reply, "item expiresAt - createdAt", 3600, actual)
            }
        ),
        case!(
            "m2m.detail.new-link-created-not-opened",
            Doc,
            ["M2M-READ-STATUS-CREATED", "M2M-LINK-STATUSES"],
            |cx| async move {
                let reference = cx.mark("ref");
                let link = cx.create_link(json!({"referenceId": reference})).await?;
                let detail = get(&cx, &text(&link, "linkId")).await?;
                detail.status(200)?.eq("/data/status", json!("created"))?;
                detail.null("/data/openedAt")?;
                let listed = list(&cx, &format!("referenceId={reference}")).await?;
                listed
                    .status(200)?
                    .eq("/data/items/0/status", json!("created"))?;
                listed.null("/data/items/0/openedAt")?;
                Ok(())
            }
        ),
        case!(
            "m2m.list.statuses-documented",
            Doc,
            ["M2M-LINK-STATUSES"],
            |cx| async move {
                let reference = cx.mark("ref");
                three_links(&cx, &reference).await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply.status(200)?;
                let statuses: Vec<String> = reply.json["data"]["items"]
                    .as_array()
                    .map(|items| items.iter().map(|item| text(item, "status")).collect())
                    .unwrap_or_default();
                let expected = ["created", "revoked", "revoked"];
                if statuses != expected {
                    return Err(reply.failure(
                        "body /data/items[].status",
                        format!("{expected:?}"),
                        format!("{statuses:?}"),
                    ));
                }
                Ok(())
            }
        ),
        case!(
            "m2m.list.item-without-token",
            Design,
            ["M2M-LIST-ITEM-NO-TOKEN"],
            |cx| async move {
                let reference = cx.mark("ref");
                cx.create_link(json!({"referenceId": reference})).await?;
                let reply = list(&cx, &format!("referenceId={reference}")).await?;
                reply.status(200)?;
                let item = &reply.json["data"]["items"][0];
                if !item.is_object() || item.get("token").is_some() {
                    return Err(reply.failure(
                        "body /data/items/0/token",
                        "absent (the token is in the create answer and the detail only)",
                        item,
                    ));
                }
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.unknown-path-names-it",
            Design,
            ["M2M-ENVELOPE-UNKNOWN-PATH-CODE"],
            |cx| async move {
                let reply = cx.m2m(Method::GET, "/partner/no-such-thing").send().await?;
                reply.m2m_error(
                    404,
                    "RESOURCE_NOT_FOUND",
                    "Cannot GET /partner/no-such-thing",
                )?;
                Ok(())
            }
        ),
        case!(
            "m2m.envelope.wrong-method-405-allow",
            Design,
            ["M2M-ENVELOPE-WRONG-METHOD-ALLOW"],
            |cx| async move {
                let reply = cx.m2m(Method::DELETE, LINKS).send().await?;
                reply.m2m_error(
                    405,
                    "INVALID_REQUEST",
                    "Cannot DELETE /partner/links: allowed methods are GET, HEAD, POST",
                )?;
                reply.header_eq("allow", "GET, HEAD, POST")?;
                Ok(())
            }
        ),
        // Ten mebibytes and more is hostile input: in-process only.
        local_case!(
            "m2m.envelope.body-too-large-413",
            Design,
            ["M2M-ENVELOPE-TOO-LARGE"],
            |cx| async move {
                let padding = "x".repeat(10 * 1024 * 1024 + 1);
                let body = json!({"referenceId": cx.mark("ref"), "metadata": {"padding": padding}});
                let reply = cx
                    .m2m(Method::POST, LINKS)
                    .header("content-type", "application/json")
                    .raw(body.to_string())
                    .send()
                    .await?;
                reply
                    .status(413)?
                    .content_type("application/json")?
                    .eq("/success", json!(false))?
                    .eq("/error/code", json!("INVALID_REQUEST"))?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.create.warning-names-the-field",
            Design,
            ["M2M-CREATE-UNKNOWN-FIELD-WARNING"],
            |cx| async move {
                let reply = post_with(&cx, "expiresInMinute", json!(30)).await?;
                reply.status(201)?.header_eq(
                    "x-linkbox-warning",
                    "ignored unknown field \"expiresInMinute\"",
                )?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.lifecycle.operation-id-format",
            Design,
            ["M2M-FORMAT-OPERATION-ID"],
            |cx| async move {
                let link = cx.create_plain_link().await?;
                let link_id = text(&link, "linkId");
                cx.open_link(&link_id).await?;
                cx.control(
                    Method::POST,
                    &format!("/_sandbox/m2m/links/{link_id}/operation"),
                )
                .json(&json!({"amount": 100}))
                .send()
                .await?
                .status_in(200..=201)?;
                get(&cx, &link_id)
                    .await?
                    .status(200)?
                    .pattern("/data/operationId", "^op_[a-z0-9]+_[A-Za-z0-9]{6}$")?;
                Ok(())
            }
        ),
        local_case!(
            "m2m.webhooks.headers-and-signature",
            Doc,
            ["M2M-WEBHOOK-HEADERS", "M2M-WEBHOOK-SIGNATURE"],
            |cx| async move {
                let secret = cx
                    .m2m(Method::POST, "/partner/webhooks/config/regenerate-secret")
                    .send()
                    .await?;
                let secret = secret.status(200)?.string("/webhookSecret")?;
                let (port, received) = receive_one_webhook()?;
                let link = cx
                    .create_link(json!({
                        "referenceId": cx.mark("ref"),
                        "callbackUrl": format!("http://127.0.0.1:{port}/contract-hook"),
                    }))
                    .await?;
                let hook = received.await.map_err(|error| {
                    Failure::new("webhook receiver", "a delivery", "none", error)
                })??;
                check_webhook(&hook, &secret, &text(&link, "linkId"))
            }
        ),
    ]
}

/// One webhook as a receiver saw it: its header lines (names lower-cased) and raw body.
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map_or("absent", |(_, value)| value.as_str())
    }
}

/// A one-shot loopback receiver: its port, and the first request it is sent (answered 200),
/// waited for at most 10 s.
fn receive_one_webhook()
-> Result<(u16, tokio::task::JoinHandle<Result<Received, Failure>>), Failure> {
    let fail =
        |error: std::io::Error| Failure::new("webhook receiver", "a loopback port", "none", error);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(fail)?;
    let port = listener.local_addr().map_err(fail)?.port();
    listener.set_nonblocking(true).map_err(fail)?;
    let task = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return Err(Failure::new(
                            "webhook receiver",
                            "a delivery within 10 s",
                            "none",
                            "",
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(error) => return Err(fail(error)),
            }
        };
        read_request(stream).map_err(fail)
    });
    Ok((port, task))
}

/// Reads one HTTP/1.1 request (headers, then `Content-Length` bytes) and answers 200.
fn read_request(mut stream: std::net::TcpStream) -> std::io::Result<Received> {
    use std::io::{Read, Write};
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            return Err(std::io::Error::other(
                "connection closed before the headers",
            ));
        }
        data.extend_from_slice(&chunk[..read]);
        if let Some(end) = data.windows(4).position(|window| window == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while data.len() < head_end + length {
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        data.extend_from_slice(&chunk[..read]);
    }
    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let end = data.len().min(head_end + length);
    Ok(Received {
        headers,
        body: data[head_end..end].to_vec(),
    })
}

/// The documented webhook headers, and the signature under `secret`.
fn check_webhook(hook: &Received, secret: &str, link_id: &str) -> Result<(), Failure> {
    use hmac::Mac;
    let what = format!("webhook link.created for {link_id}");
    let fail = |check: &str, expected: &str, actual: &str| {
        Err(Failure::new(what.as_str(), check, expected, actual))
    };
    if !hook.header("content-type").starts_with("application/json") {
        return fail(
            "header Content-Type",
            "application/json",
            hook.header("content-type"),
        );
    }
    if hook.header("x-m2m-event") != "link.created" {
        return fail(
            "header X-M2M-Event",
            "link.created",
            hook.header("x-m2m-event"),
        );
    }
    let timestamp = hook.header("x-m2m-timestamp");
    if timestamp.is_empty() || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return fail("header X-M2M-Timestamp", "unix seconds", timestamp);
    }
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return fail("webhook secret", "an HMAC key", secret);
    };
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&hook.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    if hook.header("x-m2m-signature") != expected {
        return fail(
            "header X-M2M-Signature",
            &expected,
            hook.header("x-m2m-signature"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::query_value;

    /// A timestamp with a `+` offset reaches the target as written, not with a space.
    #[test]
    fn a_query_value_keeps_its_plus() {
        let encoded = query_value("2026-12-05T23:15:32+00:00");
        assert_eq!(encoded, "2026-12-05T23%3A15%3A32%2B00%3A00");
        let decoded: Vec<(String, String)> =
            url::form_urlencoded::parse(format!("from={encoded}").as_bytes())
                .into_owned()
                .collect();
        assert_eq!(
            decoded,
            [("from".to_owned(), "2026-12-05T23:15:32+00:00".to_owned())]
        );
    }
}

//! Cases of the Leaf magic-link API, one per behaviour of `leaf.md`. `[doc]` cases cite
//! docs.withleaf.io `Magic_link_endpoints.md` (and its older revision in
//! `api-docs/leaf-magic-link.md`). The five endpoints of each of the three widget types get
//! the same cases, generated per type ([`per_widget`]); what only one type has follows.

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Auth, Ctx, Failure, Reply};
use super::{Case, Source, case, local_case};

const WIDGETS: &str = "/services/widgets/api";
const USERS: &str = "/services/usermanagement/api/users";
const UUID: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
const CONSTRAINT: &str = "https://www.jhipster.tech/problem/constraint-violation";
const ONE_YEAR: i64 = 31_622_400;

/// One of the three widget types.
pub struct Widget {
    /// Path segment: `provider`, `authentication`, `file-upload`.
    segment: &'static str,
    /// The `widget` value: `PROVIDER`, ...
    value: &'static str,
    /// What a valid create body needs besides `externalId`.
    required: fn() -> Value,
}

static PROVIDER: Widget = Widget {
    segment: "provider",
    value: "PROVIDER",
    required: || json!({}),
};
static AUTHENTICATION: Widget = Widget {
    segment: "authentication",
    value: "AUTHENTICATION",
    required: || json!({"provider": "JohnDeere"}),
};
static FILE_UPLOAD: Widget = Widget {
    segment: "file-upload",
    value: "FILEUPLOAD",
    required: || json!({}),
};

impl Widget {
    fn collection(&self) -> String {
        format!("{WIDGETS}/magic-link/{}", self.segment)
    }

    fn one(&self, id: &str) -> String {
        format!("{WIDGETS}/magic-link/{}/{id}", self.segment)
    }

    /// A valid create-with-user body for a fresh marked `externalId`, plus `extra`.
    fn body(&self, cx: &Ctx, extra: Value) -> Value {
        let mut body = (self.required)();
        body["externalId"] = json!(cx.mark("ext"));
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                body.insert(key.clone(), value.clone());
            }
        }
        body
    }

    async fn post(&self, cx: &Ctx, body: Value) -> Result<Reply, Failure> {
        cx.leaf(Method::POST, &self.collection())
            .json(&body)
            .send()
            .await
    }

    /// Creates a link with user creation; expects 200 and returns the reply. The 200 is
    /// `LEAF-CREATE-STATUS` [design]: a `[doc]` case against a target passing through the
    /// create takes any 2xx.
    async fn create(&self, cx: &Ctx, extra: Value) -> Result<Reply, Failure> {
        let reply = self.post(cx, self.body(cx, extra)).await?;
        reply.design_status("LEAF-CREATE-STATUS", 200)?;
        Ok(reply)
    }

    /// Creates a link and fetches it.
    async fn create_and_get(&self, cx: &Ctx, extra: Value) -> Result<Reply, Failure> {
        let created = self.create(cx, extra).await?;
        let id = created.string("/id")?;
        let reply = cx.leaf(Method::GET, &self.one(&id)).send().await?;
        reply.status(200)?;
        Ok(reply)
    }
}

async fn new_user(cx: &Ctx) -> Result<String, Failure> {
    let external = cx.mark("ext");
    let reply = cx
        .leaf(Method::POST, USERS)
        .json(&json!({"name": external, "email": format!("{external}@example.com"), "externalId": external}))
        .send()
        .await?;
    reply.status_in(200..=201)?;
    reply.string("/id")
}

fn expect_seconds(reply: &Reply, check: &str, expected: i64, actual: i64) -> Result<(), Failure> {
    if expected == actual {
        Ok(())
    } else {
        Err(reply.failure(check, format!("{expected} s"), format!("{actual} s")))
    }
}

/// The ids of a bare-array list.
fn ids(reply: &Reply) -> Result<Vec<String>, Failure> {
    let Some(items) = reply.json.as_array() else {
        return Err(reply.failure("body", "a bare JSON array", &reply.text));
    };
    Ok(items
        .iter()
        .map(|item| item["id"].as_str().unwrap_or_default().to_owned())
        .collect())
}

/// Every Leaf case.
pub fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    for widget in [&PROVIDER, &AUTHENTICATION, &FILE_UPLOAD] {
        all.extend(per_widget(widget));
    }
    all.extend(type_specific());
    all.extend(settings());
    all.extend(errors());
    all.extend(listing());
    all.extend(users());
    all.extend(auth());
    all.extend(tenancy());
    all.extend(usage());
    all.extend(create_details());
    all.extend(link_details());
    all.extend(list_details());
    all.extend(user_details());
    all.extend(auth_details());
    all.extend(route_details());
    all.extend(fact_gaps());
    all
}

/// A case per widget type: `leaf.<segment>.<name>`.
macro_rules! widget_case {
    ($widget:ident, $name:literal, $source:ident, [$($fact:literal),+ $(,)?], $body:ident) => {
        Case {
            id: match $widget.segment {
                "provider" => concat!("leaf.provider.", $name),
                "authentication" => concat!("leaf.authentication.", $name),
                _ => concat!("leaf.file-upload.", $name),
            },
            source: Source::$source,
            local: false,
            facts: crate::facts::facts![$($fact),+],
            run: match $widget.segment {
                "provider" => |cx| Box::pin($body(cx, &PROVIDER)),
                "authentication" => |cx| Box::pin($body(cx, &AUTHENTICATION)),
                _ => |cx| Box::pin($body(cx, &FILE_UPLOAD)),
            },
        }
    };
}

/// The cases every widget type shares.
fn per_widget(w: &'static Widget) -> Vec<Case> {
    vec![
        widget_case!(
            w,
            "create-fields",
            Doc,
            ["LEAF-CREATE-FIELDS"],
            create_fields
        ),
        widget_case!(
            w,
            "create-status-200",
            Design,
            ["LEAF-CREATE-STATUS"],
            create_status
        ),
        widget_case!(
            w,
            "create-expires-at-nine-digits",
            Design,
            ["LEAF-FORMAT-CREATE-TIMESTAMP"],
            create_nanos
        ),
        widget_case!(
            w,
            "default-expires-in-900",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-DEFAULT"],
            default_expiry
        ),
        widget_case!(
            w,
            "expires-in-kept",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-KEPT"],
            expiry_kept
        ),
        widget_case!(
            w,
            "expires-in-899-rejected",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-RANGE"],
            expiry_below
        ),
        widget_case!(
            w,
            "expires-in-over-a-year-rejected",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-RANGE"],
            expiry_above
        ),
        widget_case!(
            w,
            "expires-in-one-year-accepted",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-RANGE"],
            expiry_max
        ),
        widget_case!(
            w,
            "expires-in-string-rejected",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-INTEGER"],
            expiry_string
        ),
        widget_case!(
            w,
            "external-id-required",
            Doc,
            ["LEAF-CREATE-EXTERNAL-ID-REQUIRED"],
            external_id_required
        ),
        widget_case!(w, "get-fields", Doc, ["LEAF-GET-FIELDS"], get_fields),
        widget_case!(
            w,
            "get-timestamps-millis",
            Doc,
            ["LEAF-FORMAT-GET-TIMESTAMPS"],
            get_millis
        ),
        widget_case!(w, "widget-value", Doc, ["LEAF-GET-WIDGET"], widget_value),
        widget_case!(
            w,
            "settings-defaults",
            Doc,
            ["LEAF-SETTINGS-DEFAULTS"],
            settings_defaults
        ),
        widget_case!(
            w,
            "settings-kept",
            Doc,
            ["LEAF-SETTINGS-KEPT"],
            settings_kept
        ),
        widget_case!(
            w,
            "usage-defaults",
            Design,
            ["LEAF-GET-USAGE-DEFAULTS"],
            usage_defaults
        ),
        widget_case!(
            w,
            "link-ends-with-id",
            Design,
            ["LEAF-FORMAT-LINK"],
            link_url
        ),
        widget_case!(
            w,
            "id-is-base64-of-a-uuid",
            Design,
            ["LEAF-FORMAT-ID"],
            id_format
        ),
        widget_case!(
            w,
            "leaf-user-id-uuid",
            Doc,
            ["LEAF-FORMAT-LEAF-USER-ID"],
            user_id_format
        ),
        widget_case!(w, "listed", Doc, ["LEAF-LIST-LISTED"], listed),
        widget_case!(
            w,
            "delete-204-empty",
            Design,
            ["LEAF-DELETE-204"],
            delete_204
        ),
        widget_case!(
            w,
            "delete-then-get-404",
            Design,
            ["LEAF-DELETE-THEN-404"],
            delete_then_get
        ),
        widget_case!(
            w,
            "unknown-id-404",
            Design,
            ["LEAF-GET-UNKNOWN"],
            unknown_id
        ),
        widget_case!(
            w,
            "other-type-404",
            Doc,
            ["LEAF-GET-OTHER-TYPE"],
            other_type
        ),
        widget_case!(
            w,
            "create-for-existing-user",
            Doc,
            ["LEAF-CREATE-FOR-USER"],
            for_existing_user
        ),
        widget_case!(
            w,
            "unknown-user-404",
            Design,
            [
                "LEAF-CREATE-UNKNOWN-USER",
                "LEAF-PROBLEM-UNKNOWN-USER-TITLE"
            ],
            unknown_user
        ),
        widget_case!(
            w,
            "legacy-singular-user-path",
            Design,
            ["LEAF-CREATE-SINGULAR-PATH"],
            legacy_path
        ),
        widget_case!(
            w,
            "external-id-reuses-user",
            Doc,
            ["LEAF-CREATE-EXTERNAL-ID-REUSES"],
            reuses_user
        ),
    ]
}

async fn create_fields(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.post(&cx, w.body(&cx, json!({}))).await?;
    reply.status_in(200..=299)?;
    // Exactly these: a field the doc does not show is drift from it too.
    expect_keys(&reply, "", &["expiresAt", "id", "leafUserId", "link"])?;
    Ok(())
}

async fn create_status(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    w.post(&cx, w.body(&cx, json!({}))).await?.status(200)?;
    Ok(())
}

async fn create_nanos(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    w.create(&cx, json!({})).await?.timestamp("/expiresAt", 9)?;
    Ok(())
}

async fn default_expiry(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create_and_get(&cx, json!({})).await?;
    let actual = (reply.instant("/expiresAt")? - reply.instant("/createdAt")?).whole_seconds();
    expect_seconds(&reply, "expiresAt - createdAt", 900, actual)
}

async fn expiry_kept(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create_and_get(&cx, json!({"expiresIn": 3600})).await?;
    let actual = (reply.instant("/expiresAt")? - reply.instant("/createdAt")?).whole_seconds();
    expect_seconds(&reply, "expiresAt - createdAt", 3600, actual)
}

async fn expiry_below(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.post(&cx, w.body(&cx, json!({"expiresIn": 899}))).await?;
    reply.violation("expiresIn")?;
    Ok(())
}

async fn expiry_above(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w
        .post(&cx, w.body(&cx, json!({"expiresIn": ONE_YEAR + 1})))
        .await?;
    reply.violation("expiresIn")?;
    Ok(())
}

async fn expiry_max(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w
        .create_and_get(&cx, json!({"expiresIn": ONE_YEAR}))
        .await?;
    let actual = (reply.instant("/expiresAt")? - reply.instant("/createdAt")?).whole_seconds();
    expect_seconds(&reply, "expiresAt - createdAt", ONE_YEAR, actual)
}

async fn expiry_string(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w
        .post(&cx, w.body(&cx, json!({"expiresIn": "soon"})))
        .await?;
    reply.violation("expiresIn")?;
    Ok(())
}

async fn external_id_required(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.post(&cx, (w.required)()).await?;
    reply.violation("externalId")?;
    Ok(())
}

async fn get_fields(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create_and_get(&cx, json!({})).await?;
    let specific = match w.segment {
        "provider" => Some("allowedProviders"),
        "authentication" => Some("provider"),
        _ => None,
    };
    for field in [
        "id",
        "link",
        "createdAt",
        "expiresAt",
        "lastAccessedAt",
        "leafUserId",
        "maxUsage",
        "usageCount",
        "widget",
        "settings",
    ]
    .into_iter()
    .chain(specific)
    {
        reply.get(&format!("/{field}"))?;
    }
    Ok(())
}

async fn get_millis(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create_and_get(&cx, json!({})).await?;
    reply
        .timestamp("/createdAt", 3)?
        .timestamp("/expiresAt", 3)?;
    Ok(())
}

async fn widget_value(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    w.create_and_get(&cx, json!({}))
        .await?
        .eq("/widget", json!(w.value))?;
    Ok(())
}

async fn settings_defaults(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create_and_get(&cx, json!({})).await?;
    reply.eq("/settings/backgroundColor", json!("#F5F5F5"))?;
    reply.eq("/settings/showLeafUserName", json!(false))?;
    reply.eq("/settings/disconnectEnabled", json!(false))?;
    for field in ["companyLogo", "companyName", "headerImage"] {
        reply.get(&format!("/settings/{field}"))?;
    }
    Ok(())
}

async fn settings_kept(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let settings = json!({
        "backgroundColor": "#1A2B3C",
        "companyLogo": "https://example.com/logo.png",
        "companyName": "Contract Farms",
        "headerImage": "https://example.com/header.png",
        "showLeafUserName": true,
    });
    let reply = w.create_and_get(&cx, json!({"settings": settings})).await?;
    for (field, value) in settings.as_object().into_iter().flatten() {
        reply.eq(&format!("/settings/{field}"), value.clone())?;
    }
    Ok(())
}

async fn usage_defaults(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create_and_get(&cx, json!({})).await?;
    reply
        .eq("/maxUsage", json!(3))?
        .eq("/usageCount", json!(0))?;
    reply.null("/lastAccessedAt")?;
    Ok(())
}

async fn link_url(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create(&cx, json!({})).await?;
    let (link, id) = (reply.string("/link")?, reply.string("/id")?);
    if !link.ends_with(&format!("/{id}")) {
        return Err(reply.failure("body /link", format!("…/{id}"), link));
    }
    Ok(())
}

async fn id_format(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let reply = w.create(&cx, json!({})).await?;
    let id = reply.string("/id")?;
    let decoded = base64_decode(&id).and_then(|bytes| String::from_utf8(bytes).ok());
    match decoded {
        Some(text) if super::client::matches(UUID, &text) => Ok(()),
        _ => Err(reply.failure("body /id", "unpadded base64 of a UUID", id)),
    }
}

async fn user_id_format(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    w.create(&cx, json!({}))
        .await?
        .pattern("/leafUserId", UUID)?;
    Ok(())
}

async fn listed(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let id = w.create(&cx, json!({})).await?.string("/id")?;
    let reply = cx.leaf(Method::GET, &w.collection()).send().await?;
    reply.status(200)?;
    if !ids(&reply)?.contains(&id) {
        return Err(reply.failure("body [].id", format!("contains {id}"), &reply.text));
    }
    Ok(())
}

async fn delete_204(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let id = w.create(&cx, json!({})).await?.string("/id")?;
    let reply = cx.leaf(Method::DELETE, &w.one(&id)).send().await?;
    reply.status(204)?;
    if !reply.text.is_empty() {
        return Err(reply.failure("body", "empty", &reply.text));
    }
    Ok(())
}

async fn delete_then_get(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let id = w.create(&cx, json!({})).await?.string("/id")?;
    cx.leaf(Method::DELETE, &w.one(&id))
        .send()
        .await?
        .status_in(200..=299)?;
    cx.leaf(Method::GET, &w.one(&id))
        .send()
        .await?
        .problem(404)?;
    Ok(())
}

async fn unknown_id(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let id = "Y29udHJhY3Qtbm8tc3VjaC1saW5rLTAwMDAwMDAwMDAwMA";
    cx.leaf(Method::GET, &w.one(id))
        .send()
        .await?
        .problem(404)?;
    Ok(())
}

async fn other_type(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let id = w.create(&cx, json!({})).await?.string("/id")?;
    let other = if w.segment == "file-upload" {
        &PROVIDER
    } else {
        &FILE_UPLOAD
    };
    cx.leaf(Method::GET, &other.one(&id))
        .send()
        .await?
        .problem(404)?;
    Ok(())
}

async fn for_existing_user(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let user = new_user(&cx).await?;
    let path = format!("{WIDGETS}/magic-link/users/{user}/{}", w.segment);
    let reply = cx
        .leaf(Method::POST, &path)
        .json(&(w.required)())
        .send()
        .await?;
    reply.status_in(200..=299)?.eq("/leafUserId", json!(user))?;
    Ok(())
}

async fn unknown_user(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let path = format!(
        "{WIDGETS}/magic-link/users/00000000-0000-4000-8000-000000000000/{}",
        w.segment
    );
    let reply = cx
        .leaf(Method::POST, &path)
        .json(&(w.required)())
        .send()
        .await?;
    reply
        .problem(404)?
        .eq("/title", json!("Leaf user not found"))?;
    Ok(())
}

async fn legacy_path(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let user = new_user(&cx).await?;
    let path = format!("{WIDGETS}/magic-link/user/{user}/{}", w.segment);
    let reply = cx
        .leaf(Method::POST, &path)
        .json(&(w.required)())
        .send()
        .await?;
    reply.status(200)?.eq("/leafUserId", json!(user))?;
    Ok(())
}

async fn reuses_user(cx: Ctx, w: &'static Widget) -> Result<(), Failure> {
    let body = w.body(&cx, json!({}));
    let first = w.post(&cx, body.clone()).await?;
    first.status_in(200..=299)?;
    let second = w.post(&cx, body).await?;
    second.status_in(200..=299)?;
    second.eq("/leafUserId", first.json["leafUserId"].clone())?;
    Ok(())
}

fn type_specific() -> Vec<Case> {
    vec![
        case!(
            "leaf.provider.allowed-providers-default-all",
            Doc,
            ["LEAF-PROVIDER-ALLOWED-DEFAULT"],
            |cx| async move {
                PROVIDER
                    .create_and_get(&cx, json!({}))
                    .await?
                    .eq("/allowedProviders", json!(["All"]))?;
                Ok(())
            }
        ),
        case!(
            "leaf.provider.allowed-providers-kept",
            Doc,
            ["LEAF-PROVIDER-ALLOWED-KEPT"],
            |cx| async move {
                let providers = json!(["JohnDeere", "CNHI", "RavenSlingshot"]);
                let reply = PROVIDER
                    .create_and_get(&cx, json!({"allowedProviders": providers}))
                    .await?;
                reply.eq("/allowedProviders", providers)?;
                Ok(())
            }
        ),
        case!(
            "leaf.provider.every-documented-provider-accepted",
            Doc,
            ["LEAF-PROVIDER-ALLOWED-VALUES"],
            |cx| async move {
                let providers = json!([
                    "JohnDeere",
                    "ClimateFieldView",
                    "CNHI",
                    "AgLeader",
                    "Trimble",
                    "RavenSlingshot",
                    "Stara"
                ]);
                PROVIDER
                    .create(&cx, json!({"allowedProviders": providers}))
                    .await?;
                Ok(())
            }
        ),
        case!(
            "leaf.provider.unknown-provider-rejected",
            Doc,
            ["LEAF-PROVIDER-ALLOWED-UNKNOWN"],
            |cx| async move {
                let reply = PROVIDER
                    .post(
                        &cx,
                        PROVIDER.body(&cx, json!({"allowedProviders": ["Tractorly"]})),
                    )
                    .await?;
                reply.violation("allowedProviders")?;
                Ok(())
            }
        ),
        case!(
            "leaf.provider.disconnect-enabled-kept",
            Doc,
            ["LEAF-SETTINGS-DISCONNECT-KEPT"],
            |cx| async move {
                let reply = PROVIDER
                    .create_and_get(&cx, json!({"settings": {"disconnectEnabled": true}}))
                    .await?;
                reply.eq("/settings/disconnectEnabled", json!(true))?;
                Ok(())
            }
        ),
        case!(
            "leaf.authentication.provider-required",
            Doc,
            ["LEAF-AUTHENTICATION-PROVIDER-REQUIRED"],
            |cx| async move {
                let reply = AUTHENTICATION
                    .post(&cx, json!({"externalId": cx.mark("ext")}))
                    .await?;
                reply.violation("provider")?;
                let reply = AUTHENTICATION
                    .post(&cx, json!({"externalId": cx.mark("ext"), "provider": null}))
                    .await?;
                reply.violation("provider")?;
                Ok(())
            }
        ),
        case!(
            "leaf.authentication.provider-all-rejected",
            Doc,
            ["LEAF-AUTHENTICATION-PROVIDER-NOT-ALL"],
            |cx| async move {
                let reply = AUTHENTICATION
                    .post(
                        &cx,
                        json!({"externalId": cx.mark("ext"), "provider": "All"}),
                    )
                    .await?;
                reply.violation("provider")?;
                Ok(())
            }
        ),
        case!(
            "leaf.authentication.provider-kept",
            Doc,
            ["LEAF-AUTHENTICATION-PROVIDER-VALUES"],
            |cx| async move {
                let reply = AUTHENTICATION
                    .create_and_get(&cx, json!({"provider": "Trimble"}))
                    .await?;
                reply.eq("/provider", json!("Trimble"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.authentication.disconnect-enabled-kept",
            Doc,
            ["LEAF-SETTINGS-DISCONNECT-KEPT"],
            |cx| async move {
                let reply = AUTHENTICATION
                    .create_and_get(&cx, json!({"settings": {"disconnectEnabled": true}}))
                    .await?;
                reply.eq("/settings/disconnectEnabled", json!(true))?;
                Ok(())
            }
        ),
        case!(
            "leaf.file-upload.disconnect-enabled-ignored",
            Design,
            ["LEAF-SETTINGS-DISCONNECT-FILE-UPLOAD"],
            |cx| async move {
                let reply = FILE_UPLOAD
                    .create_and_get(&cx, json!({"settings": {"disconnectEnabled": true}}))
                    .await?;
                reply.eq("/settings/disconnectEnabled", json!(false))?;
                Ok(())
            }
        ),
        case!(
            "leaf.create.name-and-email-default-to-external-id",
            Doc,
            ["LEAF-CREATE-NAME-EMAIL-DEFAULT"],
            |cx| async move {
                let external = cx.mark("ext");
                let created = PROVIDER.post(&cx, json!({"externalId": external})).await?;
                created.status_in(200..=299)?;
                let user = created.string("/leafUserId")?;
                let reply = cx
                    .leaf(Method::GET, &format!("{USERS}/{user}"))
                    .send()
                    .await?;
                reply
                    .status(200)?
                    .eq("/name", json!(external))?
                    .eq("/email", json!(external))?;
                reply.eq("/externalId", json!(external))?;
                Ok(())
            }
        ),
        case!(
            "leaf.create.name-and-email-kept",
            Doc,
            ["LEAF-CREATE-NAME-EMAIL-KEPT"],
            |cx| async move {
                let external = cx.mark("ext");
                let body = json!({"externalId": external, "name": "Contract Farm", "email": "farm@example.com"});
                let created = PROVIDER.post(&cx, body).await?;
                created.status_in(200..=299)?;
                let user = created.string("/leafUserId")?;
                let reply = cx
                    .leaf(Method::GET, &format!("{USERS}/{user}"))
                    .send()
                    .await?;
                reply
                    .status(200)?
                    .eq("/name", json!("Contract Farm"))?
                    .eq("/email", json!("farm@example.com"))?;
                Ok(())
            }
        ),
    ]
}

fn settings() -> Vec<Case> {
    vec![
        case!(
            "leaf.settings.background-color-rgb-accepted",
            Design,
            ["LEAF-SETTINGS-BACKGROUND-COLOR"],
            |cx| async move {
                let reply = PROVIDER
                    .create_and_get(&cx, json!({"settings": {"backgroundColor": "#abc"}}))
                    .await?;
                reply.eq("/settings/backgroundColor", json!("#abc"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.settings.background-color-not-hex-rejected",
            Design,
            ["LEAF-SETTINGS-BACKGROUND-COLOR"],
            |cx| async move {
                let reply = PROVIDER
                    .post(
                        &cx,
                        PROVIDER.body(&cx, json!({"settings": {"backgroundColor": "green"}})),
                    )
                    .await?;
                reply.problem(400)?.eq("/type", json!(CONSTRAINT))?;
                Ok(())
            }
        ),
        case!(
            "leaf.settings.show-leaf-user-name-not-boolean-rejected",
            Design,
            ["LEAF-SETTINGS-BOOLEANS"],
            |cx| async move {
                let reply = PROVIDER
                    .post(
                        &cx,
                        PROVIDER.body(&cx, json!({"settings": {"showLeafUserName": "yes"}})),
                    )
                    .await?;
                reply.problem(400)?.eq("/type", json!(CONSTRAINT))?;
                Ok(())
            }
        ),
        case!(
            "leaf.settings.unknown-field-ignored",
            Design,
            ["LEAF-SETTINGS-UNKNOWN-FIELD"],
            |cx| async move {
                PROVIDER
                    .create(&cx, json!({"settings": {"disconnectedEnabled": true}}))
                    .await?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.settings.misspelled-field-named-in-warning",
            Design,
            ["LEAF-CREATE-UNKNOWN-FIELD-WARNING"],
            |cx| async move {
                let reply = PROVIDER
                    .create(
                        &cx,
                        json!({"colour": "red", "settings": {"disconnectedEnabled": true}}),
                    )
                    .await?;
                reply
                    .names_ignored_field("colour")?
                    .names_ignored_field("settings.disconnectedEnabled")?;
                cx.leaf(Method::GET, &PROVIDER.one(&reply.string("/id")?))
                    .send()
                    .await?
                    .status(200)?
                    .eq("/settings/disconnectEnabled", json!(false))?;
                Ok(())
            }
        ),
    ]
}

fn errors() -> Vec<Case> {
    vec![
        case!(
            "leaf.errors.constraint-violation-shape",
            Design,
            [
                "LEAF-PROBLEM-CONSTRAINT-TYPE",
                "LEAF-PROBLEM-CONSTRAINT-TITLE",
                "LEAF-PROBLEM-CONTENT-TYPE"
            ],
            |cx| async move {
                let reply = PROVIDER.post(&cx, json!({})).await?;
                reply.violation("externalId")?;
                reply.eq("/title", json!("Method argument not valid"))?;
                reply.eq("/message", json!("error.validation"))?;
                reply.get("/fieldErrors/0/objectName")?;
                reply.get("/fieldErrors/0/message")?;
                Ok(())
            }
        ),
        case!(
            "leaf.errors.every-violation-listed",
            Design,
            ["LEAF-PROBLEM-FIELD-ERRORS"],
            |cx| async move {
                let reply = PROVIDER
                    .post(
                        &cx,
                        json!({"expiresIn": 10, "settings": {"backgroundColor": "green"}}),
                    )
                    .await?;
                reply.violation("externalId")?.violation("expiresIn")?;
                let count = reply.json["fieldErrors"].as_array().map_or(0, Vec::len);
                if count < 3 {
                    return Err(reply.failure("body /fieldErrors length", ">= 3", count));
                }
                Ok(())
            }
        ),
        case!(
            "leaf.errors.problem-names-the-path",
            Design,
            ["LEAF-PROBLEM-PATH", "LEAF-PROBLEM-MESSAGE"],
            |cx| async move {
                let path = PROVIDER.one("Y29udHJhY3Qtbm9uZQ");
                let reply = cx.leaf(Method::GET, &path).send().await?;
                reply.problem(404)?.eq("/path", json!(path))?;
                reply.eq(
                    "/type",
                    json!("https://www.jhipster.tech/problem/problem-with-message"),
                )?;
                reply.eq("/message", json!("error.http.404"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.errors.bad-json-problem",
            Design,
            ["LEAF-PROBLEM-BAD-JSON"],
            |cx| async move {
                let reply = cx
                    .leaf(Method::POST, &PROVIDER.collection())
                    .header("content-type", "application/json")
                    .raw("{\"externalId\": ")
                    .send()
                    .await?;
                reply.problem(400)?;
                Ok(())
            }
        ),
        case!(
            "leaf.errors.unknown-path-problem",
            Design,
            ["LEAF-PROBLEM-UNKNOWN-PATH"],
            |cx| async move {
                let reply = cx
                    .leaf(Method::GET, &format!("{WIDGETS}/no-such-thing"))
                    .send()
                    .await?;
                reply.problem(404)?;
                Ok(())
            }
        ),
        case!(
            "leaf.errors.wrong-method-problem",
            Design,
            ["LEAF-PROBLEM-WRONG-METHOD"],
            |cx| async move {
                let reply = cx
                    .leaf(Method::PATCH, &PROVIDER.collection())
                    .send()
                    .await?;
                reply
                    .status_in(400..=499)?
                    .content_type("application/problem+json")?;
                Ok(())
            }
        ),
    ]
}

fn listing() -> Vec<Case> {
    vec![
        case!(
            "leaf.list.bare-array",
            Doc,
            ["LEAF-LIST-BARE-ARRAY"],
            |cx| async move {
                let reply = cx
                    .leaf(Method::GET, &FILE_UPLOAD.collection())
                    .send()
                    .await?;
                reply.status(200)?;
                ids(&reply)?;
                Ok(())
            }
        ),
        case!(
            "leaf.list.newest-first",
            Design,
            ["LEAF-LIST-NEWEST-FIRST"],
            |cx| async move {
                let user = new_user(&cx).await?;
                let path = format!("{WIDGETS}/magic-link/users/{user}/provider");
                let mut created = Vec::new();
                for _ in 0..3 {
                    let reply = cx.leaf(Method::POST, &path).json(&json!({})).send().await?;
                    created.push(reply.string("/id")?);
                }
                let reply = cx
                    .leaf(
                        Method::GET,
                        &format!("{}?leafUserId={user}", PROVIDER.collection()),
                    )
                    .send()
                    .await?;
                reply.status(200)?;
                created.reverse();
                let actual = ids(&reply)?;
                if actual != created {
                    return Err(reply.failure(
                        "body [].id",
                        format!("{created:?}"),
                        format!("{actual:?}"),
                    ));
                }
                Ok(())
            }
        ),
        case!(
            "leaf.list.leaf-user-id-filter",
            Design,
            ["LEAF-LIST-USER-FILTER"],
            |cx| async move {
                let mine = PROVIDER.create(&cx, json!({})).await?;
                PROVIDER.create(&cx, json!({})).await?;
                let user = mine.string("/leafUserId")?;
                let reply = cx
                    .leaf(
                        Method::GET,
                        &format!("{}?leafUserId={user}", PROVIDER.collection()),
                    )
                    .send()
                    .await?;
                reply.status(200)?;
                let actual = ids(&reply)?;
                let id = mine.string("/id")?;
                if actual != [id.clone()] {
                    return Err(reply.failure(
                        "body [].id",
                        format!("[{id:?}]"),
                        format!("{actual:?}"),
                    ));
                }
                Ok(())
            }
        ),
        case!(
            "leaf.list.paged-total-count-and-link",
            Doc,
            [
                "LEAF-LIST-PAGED",
                "LEAF-LIST-TOTAL-COUNT-HEADER",
                "LEAF-LIST-LINK-HEADER"
            ],
            |cx| async move {
                PROVIDER.create(&cx, json!({})).await?;
                PROVIDER.create(&cx, json!({})).await?;
                let reply = cx
                    .leaf(
                        Method::GET,
                        &format!("{}?page=0&size=1", PROVIDER.collection()),
                    )
                    .send()
                    .await?;
                reply.status(200)?;
                let total = reply
                    .header("x-total-count")
                    .and_then(|value| value.parse::<u64>().ok());
                if total.is_none_or(|total| total < 2) {
                    return Err(reply.failure(
                        "header x-total-count",
                        ">= 2",
                        format!("{total:?}"),
                    ));
                }
                if reply.header("link").is_none() {
                    return Err(reply.failure("header link", "present", "absent"));
                }
                let count = ids(&reply)?.len();
                if count != 1 {
                    return Err(reply.failure("body length", 1, count));
                }
                Ok(())
            }
        ),
        case!(
            "leaf.list.size-over-100-rejected",
            Design,
            ["LEAF-LIST-SIZE-MAX"],
            |cx| async move {
                let reply = cx
                    .leaf(
                        Method::GET,
                        &format!("{}?page=0&size=101", PROVIDER.collection()),
                    )
                    .send()
                    .await?;
                reply.problem(400)?;
                Ok(())
            }
        ),
        case!(
            "leaf.list.unpaged-returns-every-link",
            Design,
            ["LEAF-LIST-UNPAGED"],
            |cx| async move {
                let user = new_user(&cx).await?;
                let path = format!("{WIDGETS}/magic-link/users/{user}/file-upload");
                for _ in 0..25 {
                    cx.leaf(Method::POST, &path)
                        .json(&json!({}))
                        .send()
                        .await?
                        .status(200)?;
                }
                let reply = cx
                    .leaf(
                        Method::GET,
                        &format!("{}?leafUserId={user}", FILE_UPLOAD.collection()),
                    )
                    .send()
                    .await?;
                let count = ids(&reply)?.len();
                if count != 25 {
                    return Err(reply.failure("body length", 25, count));
                }
                for header in ["x-total-count", "link"] {
                    if reply.header(header).is_some() {
                        return Err(reply.failure(
                            format!("header {header}"),
                            "absent without page/size",
                            "present",
                        ));
                    }
                }
                Ok(())
            }
        ),
        local_case!(
            "leaf.list.expired-still-listed-and-gettable",
            Design,
            ["LEAF-GET-EXPIRED-KEPT"],
            |cx| async move {
                let id = PROVIDER.create(&cx, json!({})).await?.string("/id")?;
                cx.advance_clock(901).await?;
                let reply = cx.leaf(Method::GET, &PROVIDER.collection()).send().await?;
                if !ids(&reply)?.contains(&id) {
                    return Err(reply.failure("body [].id", format!("contains {id}"), &reply.text));
                }
                cx.leaf(Method::GET, &PROVIDER.one(&id))
                    .send()
                    .await?
                    .status(200)?;
                Ok(())
            }
        ),
    ]
}

fn users() -> Vec<Case> {
    vec![
        case!(
            "leaf.users.create",
            Doc,
            ["LEAF-USERS-CREATE"],
            |cx| async move {
                let external = cx.mark("ext");
                let body = json!({"name": "Contract Farm", "email": "farm@example.com", "phone": "+1 555 0100", "address": "1 Field Rd", "externalId": external});
                let reply = cx.leaf(Method::POST, USERS).json(&body).send().await?;
                reply.status_in(200..=201)?.pattern("/id", UUID)?;
                reply
                    .eq("/externalId", json!(external))?
                    .eq("/name", json!("Contract Farm"))?;
                Ok(())
            }
        ),
        case!("leaf.users.get", Doc, ["LEAF-USERS-GET"], |cx| async move {
            let id = new_user(&cx).await?;
            cx.leaf(Method::GET, &format!("{USERS}/{id}"))
                .send()
                .await?
                .status(200)?
                .eq("/id", json!(id))?;
            Ok(())
        }),
        case!(
            "leaf.users.list-bare-array",
            Doc,
            ["LEAF-USERS-LIST"],
            |cx| async move {
                new_user(&cx).await?;
                let reply = cx.leaf(Method::GET, USERS).send().await?;
                reply.status(200)?;
                ids(&reply)?;
                Ok(())
            }
        ),
        case!(
            "leaf.users.filter-external-id",
            Doc,
            ["LEAF-USERS-FILTERS"],
            |cx| async move {
                let id = new_user(&cx).await?;
                new_user(&cx).await?;
                let external = cx
                    .leaf(Method::GET, &format!("{USERS}/{id}"))
                    .send()
                    .await?
                    .string("/externalId")?;
                let reply = cx
                    .leaf(Method::GET, &format!("{USERS}?externalId={external}"))
                    .send()
                    .await?;
                reply.status(200)?;
                let actual = ids(&reply)?;
                if actual != [id.clone()] {
                    return Err(reply.failure(
                        "body [].id",
                        format!("[{id:?}]"),
                        format!("{actual:?}"),
                    ));
                }
                Ok(())
            }
        ),
        case!(
            "leaf.users.put-replaces",
            Doc,
            ["LEAF-USERS-PUT"],
            |cx| async move {
                let id = new_user(&cx).await?;
                let external = cx.mark("ext");
                let body = json!({"id": id, "name": "Renamed Farm", "email": "renamed@example.com", "externalId": external});
                cx.leaf(Method::PUT, USERS)
                    .json(&body)
                    .send()
                    .await?
                    .status(200)?;
                let reply = cx
                    .leaf(Method::GET, &format!("{USERS}/{id}"))
                    .send()
                    .await?;
                reply
                    .eq("/name", json!("Renamed Farm"))?
                    .eq("/externalId", json!(external))?;
                Ok(())
            }
        ),
        case!(
            "leaf.users.delete-then-get-404",
            Design,
            ["LEAF-USERS-DELETE"],
            |cx| async move {
                let id = new_user(&cx).await?;
                cx.leaf(Method::DELETE, &format!("{USERS}/{id}"))
                    .send()
                    .await?
                    .status(204)?;
                cx.leaf(Method::GET, &format!("{USERS}/{id}"))
                    .send()
                    .await?
                    .problem(404)?
                    .eq("/title", json!("Leaf user not found"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.users.size-over-100-rejected",
            Design,
            ["LEAF-USERS-SIZE-MAX"],
            |cx| async move {
                cx.leaf(Method::GET, &format!("{USERS}?page=0&size=101"))
                    .send()
                    .await?
                    .problem(400)?;
                Ok(())
            }
        ),
    ]
}

/// Authenticates `username`; returns the reply.
async fn authenticate(cx: &Ctx, body: Value) -> Result<Reply, Failure> {
    cx.leaf(Method::POST, "/api/authenticate")
        .no_auth()
        .json(&body)
        .send()
        .await
}

/// Whether `token` still opens the magic-link list.
async fn token_works(cx: &Ctx, token: &str) -> Result<u16, Failure> {
    let reply = cx
        .leaf(Method::GET, &PROVIDER.collection())
        .auth(Auth::Bearer(token.to_owned()))
        .send()
        .await?;
    Ok(reply.status)
}

async fn expect_token_status(
    cx: &Ctx,
    token: &str,
    expected: u16,
    when: &str,
) -> Result<(), Failure> {
    let actual = token_works(cx, token).await?;
    if actual == expected {
        Ok(())
    } else {
        Err(Failure::new(
            format!("GET {} ({when})", PROVIDER.collection()),
            "status",
            expected,
            actual,
        ))
    }
}

fn auth() -> Vec<Case> {
    vec![
        case!(
            "leaf.auth.no-token-401",
            Design,
            ["LEAF-AUTH-NO-TOKEN"],
            |cx| async move {
                cx.leaf(Method::GET, &PROVIDER.collection())
                    .no_auth()
                    .send()
                    .await?
                    .problem(401)?;
                Ok(())
            }
        ),
        case!(
            "leaf.auth.malformed-token-401",
            Design,
            ["LEAF-AUTH-BAD-TOKEN"],
            |cx| async move {
                let reply = cx
                    .leaf(Method::GET, &PROVIDER.collection())
                    .auth(Auth::Bearer("not-a-jwt".into()))
                    .send()
                    .await?;
                reply.problem(401)?;
                Ok(())
            }
        ),
        case!(
            "leaf.auth.forged-token-401",
            Design,
            ["LEAF-AUTH-BAD-TOKEN"],
            |cx| async move {
                let token = format!(
                    "{}.{}.{}",
                    base64url(br#"{"alg":"HS256","typ":"JWT"}"#),
                    base64url(br#"{"sub":"contract-forged","exp":4102444800}"#),
                    base64url(b"not the signature")
                );
                let reply = cx
                    .leaf(Method::GET, &PROVIDER.collection())
                    .auth(Auth::Bearer(token))
                    .send()
                    .await?;
                reply.problem(401)?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.auth.authenticate-200",
            Doc,
            ["LEAF-AUTH-AUTHENTICATE"],
            |cx| async move {
                let reply = authenticate(
                    &cx,
                    json!({"username": cx.mark("user"), "password": "x", "rememberMe": false}),
                )
                .await?;
                reply.status(200)?;
                let token = reply.string("/id_token")?;
                if token.split('.').count() != 3 {
                    return Err(reply.failure("body /id_token", "a JWT", token));
                }
                Ok(())
            }
        ),
        local_case!(
            "leaf.auth.jwt-hs256-sub-username",
            Design,
            ["LEAF-AUTH-JWT"],
            |cx| async move {
                let username = cx.mark("user");
                let reply = authenticate(
                    &cx,
                    json!({"username": username, "password": "x", "rememberMe": true}),
                )
                .await?;
                let token = reply.string("/id_token")?;
                let part = |n: usize| -> Value {
                    token
                        .split('.')
                        .nth(n)
                        .and_then(base64_decode)
                        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                        .unwrap_or(Value::Null)
                };
                let (header, claims) = (part(0), part(1));
                if header["alg"] != "HS256" || claims["sub"] != json!(username) {
                    return Err(reply.failure(
                        "token header.alg / claims.sub",
                        format!("HS256 / {username}"),
                        format!("{} / {}", header["alg"], claims["sub"]),
                    ));
                }
                Ok(())
            }
        ),
        local_case!(
            "leaf.auth.remember-me-false-24-hours",
            Doc,
            ["LEAF-AUTH-REMEMBER-ME-FALSE"],
            |cx| async move {
                let reply = authenticate(
                    &cx,
                    json!({"username": cx.mark("user"), "password": "x", "rememberMe": false}),
                )
                .await?;
                let token = reply.string("/id_token")?;
                cx.advance_clock(24 * 3600 - 60).await?;
                expect_token_status(&cx, &token, 200, "after 23 h 59 min").await?;
                cx.advance_clock(120).await?;
                expect_token_status(&cx, &token, 401, "after 24 h 1 min").await
            }
        ),
        local_case!(
            "leaf.auth.remember-me-true-30-days",
            Doc,
            ["LEAF-AUTH-REMEMBER-ME-TRUE"],
            |cx| async move {
                let reply = authenticate(
                    &cx,
                    json!({"username": cx.mark("user"), "password": "x", "rememberMe": true}),
                )
                .await?;
                let token = reply.string("/id_token")?;
                cx.advance_clock(30 * 24 * 3600 - 60).await?;
                expect_token_status(&cx, &token, 200, "after 29 days 23 h 59 min").await?;
                cx.advance_clock(120).await?;
                expect_token_status(&cx, &token, 401, "after 30 days 1 min").await
            }
        ),
        local_case!(
            "leaf.auth.remember-me-as-string",
            Doc,
            ["LEAF-AUTH-REMEMBER-ME-STRING"],
            |cx| async move {
                let reply = authenticate(
                    &cx,
                    json!({"username": cx.mark("user"), "password": "x", "rememberMe": "true"}),
                )
                .await?;
                let token = reply.string("/id_token")?;
                cx.advance_clock(25 * 3600).await?;
                expect_token_status(&cx, &token, 200, "after 25 h").await?;
                authenticate(
                    &cx,
                    json!({"username": cx.mark("user"), "password": "x", "rememberMe": "false"}),
                )
                .await?
                .status(200)?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.auth.bad-remember-me-400",
            Design,
            ["LEAF-AUTH-REMEMBER-ME-INVALID"],
            |cx| async move {
                let reply = authenticate(
                    &cx,
                    json!({"username": cx.mark("user"), "password": "x", "rememberMe": "yes"}),
                )
                .await?;
                reply.violation("rememberMe")?;
                Ok(())
            }
        ),
        // leaf.md accepts "any non-empty" credentials and calls bad credentials 401, but does
        // not say whether an empty one is bad credentials or an invalid body: either refusal.
        local_case!(
            "leaf.auth.empty-credentials-refused",
            Design,
            ["LEAF-AUTH-CREDENTIALS-REQUIRED"],
            |cx| async move {
                let reply = authenticate(
                    &cx,
                    json!({"username": "", "password": "", "rememberMe": false}),
                )
                .await?;
                reply
                    .status_in(400..=401)?
                    .content_type("application/problem+json")?;
                Ok(())
            }
        ),
    ]
}

fn tenancy() -> Vec<Case> {
    vec![
        local_case!(
            "leaf.tenancy.other-account-link-404",
            Design,
            ["LEAF-TENANT-LINKS"],
            |cx| async move {
                let id = PROVIDER.create(&cx, json!({})).await?.string("/id")?;
                let other = cx.new_leaf_account().await?;
                let reply = cx
                    .leaf(Method::GET, &PROVIDER.one(&id))
                    .auth(Auth::Bearer(other.clone()))
                    .send()
                    .await?;
                reply.problem(404)?;
                let reply = cx
                    .leaf(Method::DELETE, &PROVIDER.one(&id))
                    .auth(Auth::Bearer(other))
                    .send()
                    .await?;
                reply.problem(404)?;
                cx.leaf(Method::GET, &PROVIDER.one(&id))
                    .send()
                    .await?
                    .status(200)?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.tenancy.other-account-user-404",
            Design,
            ["LEAF-TENANT-USERS"],
            |cx| async move {
                let user = new_user(&cx).await?;
                let other = cx.new_leaf_account().await?;
                let path = format!("{WIDGETS}/magic-link/users/{user}/provider");
                let reply = cx
                    .leaf(Method::POST, &path)
                    .auth(Auth::Bearer(other))
                    .json(&json!({}))
                    .send()
                    .await?;
                reply
                    .problem(404)?
                    .eq("/title", json!("Leaf user not found"))?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.tenancy.lists-are-per-account",
            Design,
            ["LEAF-TENANT-LISTS"],
            |cx| async move {
                PROVIDER.create(&cx, json!({})).await?;
                let other = cx.new_leaf_account().await?;
                for path in [PROVIDER.collection(), USERS.to_owned()] {
                    cx.leaf(Method::GET, &path)
                        .auth(Auth::Bearer(other.clone()))
                        .send()
                        .await?
                        .status(200)?
                        .body(json!([]))?;
                }
                Ok(())
            }
        ),
    ]
}

/// Plays the end user on a Leaf link through the control API, as the link's account.
async fn as_end_user(cx: &Ctx, id: &str, action: &str, body: Value) -> Result<Reply, Failure> {
    let token = cx.leaf_token().await?;
    let reply = cx
        .control(
            Method::POST,
            &format!("/_sandbox/leaf/magic-links/{id}/{action}"),
        )
        .auth(Auth::Bearer(token))
        .json(&body)
        .send()
        .await?;
    reply.status(200)?;
    Ok(reply)
}

fn usage() -> Vec<Case> {
    vec![
        local_case!(
            "leaf.usage.access-counts",
            Design,
            ["LEAF-USAGE-ACCESS-COUNTS"],
            |cx| async move {
                let id = PROVIDER.create(&cx, json!({})).await?.string("/id")?;
                as_end_user(&cx, &id, "access", json!({})).await?;
                as_end_user(&cx, &id, "access", json!({})).await?;
                let reply = cx.leaf(Method::GET, &PROVIDER.one(&id)).send().await?;
                reply.status(200)?.eq("/usageCount", json!(2))?;
                reply.timestamp("/lastAccessedAt", 3)?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.usage.connect-fills-the-user-credentials",
            Design,
            ["LEAF-USAGE-CONNECT"],
            |cx| async move {
                let created = PROVIDER
                    .create(&cx, json!({"allowedProviders": ["JohnDeere"]}))
                    .await?;
                let (id, user) = (created.string("/id")?, created.string("/leafUserId")?);
                as_end_user(&cx, &id, "access", json!({})).await?;
                as_end_user(&cx, &id, "connect", json!({"provider": "JohnDeere"})).await?;
                let reply = cx
                    .leaf(Method::GET, &format!("{USERS}/{user}"))
                    .send()
                    .await?;
                let credentials = reply.status(200)?.get("/johnDeereCredentials")?;
                if !credentials.is_object() {
                    return Err(reply.failure(
                        "body /johnDeereCredentials",
                        "an object",
                        credentials,
                    ));
                }
                Ok(())
            }
        ),
    ]
}

/// Standard or URL-safe base64, padded or not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Unpadded URL-safe base64, for hand-made tokens.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .fold(0u32, |n, byte| (n << 8) | u32::from(*byte))
            << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

const PROVIDERS: [&str; 7] = [
    "JohnDeere",
    "ClimateFieldView",
    "CNHI",
    "AgLeader",
    "Trimble",
    "RavenSlingshot",
    "Stara",
];

/// The `field` of every `fieldErrors` entry, in order.
fn violation_fields(reply: &Reply) -> Vec<String> {
    reply.json["fieldErrors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| error["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A constraint violation listing exactly `fields`, in this order.
fn expect_violations(reply: &Reply, fields: &[&str]) -> Result<(), Failure> {
    reply.problem(400)?;
    let actual = violation_fields(reply);
    if actual == fields {
        Ok(())
    } else {
        Err(reply.failure(
            "body /fieldErrors[].field",
            format!("{fields:?}"),
            format!("{actual:?}"),
        ))
    }
}

/// The sorted keys of the object at `pointer` (`""` for the body).
fn expect_keys(reply: &Reply, pointer: &str, expected: &[&str]) -> Result<(), Failure> {
    let mut keys: Vec<String> = reply
        .json
        .pointer(pointer)
        .and_then(Value::as_object)
        .map(|object| object.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    let mut expected: Vec<&str> = expected.to_vec();
    expected.sort_unstable();
    if keys == expected {
        Ok(())
    } else {
        Err(reply.failure(
            format!("keys of body {pointer}"),
            format!("{expected:?}"),
            format!("{keys:?}"),
        ))
    }
}

/// The docs' example `settings`, with real values in place of the placeholders.
fn doc_settings() -> Value {
    json!({
        "backgroundColor": "#27ae60",
        "headerImage": "https://example.com/header.png",
        "companyLogo": "https://example.com/logo.png",
        "companyName": "Example Farms",
        "showLeafUserName": true,
        "disconnectEnabled": true
    })
}

/// What creating a link accepts beyond the per-type cases.
fn create_details() -> Vec<Case> {
    vec![
        case!(
            "leaf.create.expires-in-900-accepted",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-RANGE"],
            |cx| async move {
                let reply = FILE_UPLOAD
                    .create_and_get(&cx, json!({"expiresIn": 900}))
                    .await?;
                let actual =
                    (reply.instant("/expiresAt")? - reply.instant("/createdAt")?).whole_seconds();
                expect_seconds(&reply, "expiresAt - createdAt", 900, actual)
            }
        ),
        case!(
            "leaf.create.expires-in-fraction-rejected",
            Doc,
            ["LEAF-CREATE-EXPIRES-IN-INTEGER"],
            |cx| async move {
                let reply = FILE_UPLOAD
                    .post(&cx, FILE_UPLOAD.body(&cx, json!({"expiresIn": 1200.5})))
                    .await?;
                reply.violation("expiresIn")?;
                Ok(())
            }
        ),
        case!(
            "leaf.provider.each-provider-kept",
            Doc,
            ["LEAF-PROVIDER-ALLOWED-KEPT", "LEAF-PROVIDER-ALLOWED-VALUES"],
            |cx| async move {
                for provider in PROVIDERS.iter().chain(["All"].iter()) {
                    PROVIDER
                        .create_and_get(&cx, json!({"allowedProviders": [provider]}))
                        .await?
                        .eq("/allowedProviders", json!([provider]))?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.authentication.every-documented-provider-accepted",
            Doc,
            ["LEAF-AUTHENTICATION-PROVIDER-VALUES"],
            |cx| async move {
                for provider in PROVIDERS {
                    AUTHENTICATION
                        .create_and_get(&cx, json!({"provider": provider}))
                        .await?
                        .eq("/provider", json!(provider))?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.authentication.unknown-provider-rejected",
            Doc,
            ["LEAF-AUTHENTICATION-PROVIDER-NOT-ALL"],
            |cx| async move {
                let reply = AUTHENTICATION
                    .post(
                        &cx,
                        json!({"externalId": cx.mark("ext"), "provider": "johndeere"}),
                    )
                    .await?;
                reply.violation("provider")?;
                Ok(())
            }
        ),
        case!(
            "leaf.create.external-id-reuses-user-across-types",
            Doc,
            ["LEAF-CREATE-EXTERNAL-ID-REUSES"],
            |cx| async move {
                let external = cx.mark("ext");
                let first = PROVIDER.post(&cx, json!({"externalId": external})).await?;
                first.design_status("LEAF-CREATE-STATUS", 200)?;
                let second = FILE_UPLOAD
                    .post(&cx, json!({"externalId": external}))
                    .await?;
                second
                    .design_status("LEAF-CREATE-STATUS", 200)?
                    .eq("/leafUserId", first.json["leafUserId"].clone())?;
                let other = PROVIDER.create(&cx, json!({})).await?;
                if other.json["leafUserId"] == first.json["leafUserId"] {
                    return Err(other.failure(
                        "body /leafUserId",
                        "another user for another externalId",
                        &other.json["leafUserId"],
                    ));
                }
                Ok(())
            }
        ),
        case!(
            "leaf.create.blank-external-id-rejected",
            Design,
            ["LEAF-CREATE-EXTERNAL-ID-BLANK"],
            |cx| async move {
                let reply = PROVIDER.post(&cx, json!({"externalId": ""})).await?;
                expect_violations(&reply, &["externalId"])
            }
        ),
        case!(
            "leaf.errors.violations-in-field-order",
            Design,
            ["LEAF-PROBLEM-FIELD-ORDER"],
            |cx| async move {
                let reply = PROVIDER
                    .post(
                        &cx,
                        json!({"expiresIn": 5, "name": 1, "settings": {"backgroundColor": "blue"}}),
                    )
                    .await?;
                expect_violations(
                    &reply,
                    &[
                        "expiresIn",
                        "settings.backgroundColor",
                        "externalId",
                        "name",
                    ],
                )?;
                reply.eq("/fieldErrors/0/objectName", json!("providerMagicLinkDTO"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.create.expires-at-same-instant-as-get",
            Design,
            ["LEAF-CREATE-SAME-AS-GET"],
            |cx| async move {
                let created = PROVIDER.create(&cx, json!({})).await?;
                let nanos = created.string("/expiresAt")?;
                let got = cx
                    .leaf(Method::GET, &PROVIDER.one(&created.string("/id")?))
                    .send()
                    .await?;
                let millis = got.status(200)?.string("/expiresAt")?;
                // 2010-10-10T10:10:10.000 is the same in both; only the digits after differ.
                if nanos.get(..23) != millis.get(..23) {
                    return Err(got.failure("body /expiresAt", nanos, millis));
                }
                Ok(())
            }
        ),
        local_case!(
            "leaf.create.link-on-linkbox-page",
            Design,
            ["LEAF-FORMAT-LINK-LOCAL"],
            |cx| async move {
                // The link is linkbox's own hosted page: the URL's path is served here.
                let reply = PROVIDER.create(&cx, json!({})).await?;
                let link = reply.string("/link")?;
                let path = reqwest::Url::parse(&link)
                    .map(|url| url.path().to_owned())
                    .unwrap_or_default();
                let expected = format!("/magic-link/{}", reply.string("/id")?);
                if path != expected {
                    return Err(reply.failure("body /link path", expected, link));
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
            "leaf.create.only-documented-fields",
            Design,
            ["LEAF-CREATE-FIELDS"],
            |cx| async move {
                for w in [&PROVIDER, &AUTHENTICATION, &FILE_UPLOAD] {
                    let created = w.create(&cx, json!({})).await?;
                    expect_keys(&created, "", &["expiresAt", "id", "leafUserId", "link"])?;
                    let mut fields = vec![
                        "createdAt",
                        "expiresAt",
                        "id",
                        "lastAccessedAt",
                        "leafUserId",
                        "link",
                        "maxUsage",
                        "settings",
                        "usageCount",
                        "widget",
                    ];
                    match w.segment {
                        "provider" => fields.push("allowedProviders"),
                        "authentication" => fields.push("provider"),
                        _ => {}
                    }
                    let got = cx
                        .leaf(Method::GET, &w.one(&created.string("/id")?))
                        .send()
                        .await?;
                    expect_keys(got.status(200)?, "", &fields)?;
                    expect_keys(
                        &got,
                        "/settings",
                        &[
                            "backgroundColor",
                            "companyLogo",
                            "companyName",
                            "disconnectEnabled",
                            "headerImage",
                            "showLeafUserName",
                        ],
                    )?;
                    let listed = cx.leaf(Method::GET, &w.collection()).send().await?;
                    expect_keys(listed.status(200)?, "/0", &fields)?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.create.doc-examples-as-curl-sends-them",
            Design,
            ["LEAF-CREATE-DOC-EXAMPLES"],
            |cx| async move {
                // The docs' curl examples send JSON with `-d` and no content type of their own,
                // so curl says application/x-www-form-urlencoded; linkbox reads them as JSON.
                for (w, extra) in [
                    (&PROVIDER, json!({"allowedProviders": ["JohnDeere"]})),
                    (&AUTHENTICATION, json!({"provider": "ClimateFieldView"})),
                    (&FILE_UPLOAD, json!({})),
                ] {
                    let mut body = json!({"name": "user_name", "email": "user_email",
                        "externalId": cx.mark("ext"), "expiresIn": 900, "settings": doc_settings()});
                    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                        body.extend(extra.clone());
                    }
                    let reply = cx
                        .leaf(Method::POST, &w.collection())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .raw(body.to_string())
                        .send()
                        .await?;
                    reply.status(200)?;
                    if let Some(warning) = reply.header("x-linkbox-warning") {
                        return Err(reply.failure("header x-linkbox-warning", "absent", warning));
                    }
                    let id = reply.string("/id")?;
                    cx.leaf(Method::GET, &w.one(&id))
                        .send()
                        .await?
                        .status(200)?
                        .eq("/widget", json!(w.value))?;
                    cx.leaf(Method::DELETE, &w.one(&id))
                        .send()
                        .await?
                        .status(204)?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.create.doc-for-user-examples-on-the-singular-path",
            Design,
            ["LEAF-CREATE-DOC-EXAMPLES", "LEAF-CREATE-SINGULAR-PATH"],
            |cx| async move {
                let user = new_user(&cx).await?;
                for (w, extra) in [
                    (
                        &PROVIDER,
                        json!({"allowedProviders": ["AgLeader", "Trimble"]}),
                    ),
                    (&AUTHENTICATION, json!({"provider": "CNHI"})),
                    (&FILE_UPLOAD, json!({})),
                ] {
                    let mut body = json!({"expiresIn": 3600, "settings": doc_settings()});
                    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                        body.extend(extra.clone());
                    }
                    let reply = cx
                        .leaf(
                            Method::POST,
                            &format!("{WIDGETS}/magic-link/user/{user}/{}", w.segment),
                        )
                        .header("content-type", "application/x-www-form-urlencoded")
                        .raw(body.to_string())
                        .send()
                        .await?;
                    reply.status(200)?.eq("/leafUserId", json!(user))?;
                    cx.leaf(Method::GET, &w.one(&reply.string("/id")?))
                        .send()
                        .await?
                        .status(200)?
                        .eq("/settings/companyName", json!("Example Farms"))?;
                }
                Ok(())
            }
        ),
    ]
}

/// Reading and deleting links beyond the per-type cases.
fn link_details() -> Vec<Case> {
    vec![
        case!(
            "leaf.links.delete-twice-404",
            Design,
            ["LEAF-DELETE-THEN-404", "LEAF-PROBLEM-NOT-FOUND-TITLE"],
            |cx| async move {
                for w in [&PROVIDER, &AUTHENTICATION, &FILE_UPLOAD] {
                    let id = w.create(&cx, json!({})).await?.string("/id")?;
                    cx.leaf(Method::DELETE, &w.one(&id))
                        .send()
                        .await?
                        .status(204)?;
                    for method in [Method::GET, Method::DELETE] {
                        cx.leaf(method, &w.one(&id))
                            .send()
                            .await?
                            .problem(404)?
                            .eq("/title", json!("Magic link not found"))?;
                    }
                }
                Ok(())
            }
        ),
        case!(
            "leaf.links.other-type-delete-404",
            Design,
            ["LEAF-GET-OTHER-TYPE", "LEAF-PROBLEM-NOT-FOUND-TITLE"],
            |cx| async move {
                let id = FILE_UPLOAD.create(&cx, json!({})).await?.string("/id")?;
                for w in [&PROVIDER, &AUTHENTICATION] {
                    for method in [Method::GET, Method::DELETE] {
                        cx.leaf(method, &w.one(&id))
                            .send()
                            .await?
                            .problem(404)?
                            .eq("/title", json!("Magic link not found"))?;
                    }
                }
                cx.leaf(Method::GET, &FILE_UPLOAD.one(&id))
                    .send()
                    .await?
                    .status(200)?;
                Ok(())
            }
        ),
        case!(
            "leaf.links.malformed-user-id-404",
            Design,
            [
                "LEAF-CREATE-UNKNOWN-USER",
                "LEAF-PROBLEM-UNKNOWN-USER-TITLE"
            ],
            |cx| async move {
                let path = format!("{WIDGETS}/magic-link/users/not-a-uuid/provider");
                cx.leaf(Method::POST, &path)
                    .json(&json!({}))
                    .send()
                    .await?
                    .problem(404)?
                    .eq("/title", json!("Leaf user not found"))?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.usage.used-up-after-max-usage",
            Design,
            ["LEAF-USAGE-USED-UP"],
            |cx| async move {
                let id = PROVIDER.create(&cx, json!({})).await?.string("/id")?;
                for _ in 0..3 {
                    as_end_user(&cx, &id, "access", json!({})).await?;
                }
                let path = format!("/_sandbox/leaf/magic-links/{id}/access");
                let token = cx.leaf_token().await?;
                cx.control(Method::POST, &path)
                    .auth(Auth::Bearer(token))
                    .json(&json!({}))
                    .send()
                    .await?
                    .status_in(400..=499)?;
                let other = cx.new_leaf_account().await?;
                cx.control(Method::POST, &path)
                    .auth(Auth::Bearer(other))
                    .json(&json!({}))
                    .send()
                    .await?
                    .status_in(400..=499)?;
                Ok(())
            }
        ),
        local_case!(
            "leaf.tenancy.external-ids-are-per-account",
            Design,
            ["LEAF-TENANT-EXTERNAL-IDS"],
            |cx| async move {
                let external = cx.mark("ext");
                let mine = PROVIDER.post(&cx, json!({"externalId": external})).await?;
                mine.status(200)?;
                let other = cx.new_leaf_account().await?;
                let theirs = cx
                    .leaf(Method::POST, &PROVIDER.collection())
                    .auth(Auth::Bearer(other.clone()))
                    .json(&json!({"externalId": external}))
                    .send()
                    .await?;
                if theirs.status(200)?.json["leafUserId"] == mine.json["leafUserId"] {
                    return Err(theirs.failure(
                        "body /leafUserId",
                        "each account its own user",
                        &theirs.json["leafUserId"],
                    ));
                }
                cx.leaf(Method::GET, USERS)
                    .auth(Auth::Bearer(other))
                    .send()
                    .await?
                    .status(200)?;
                Ok(())
            }
        ),
    ]
}

/// Paging of the magic-link lists: Leaf's list convention, exactly.
fn list_details() -> Vec<Case> {
    vec![
        local_case!(
            "leaf.list.paging-headers",
            Design,
            ["LEAF-LIST-TOTAL-COUNT-HEADER", "LEAF-LIST-LINK-HEADER"],
            |cx| async move {
                let user = new_user(&cx).await?;
                let path = format!("{WIDGETS}/magic-link/users/{user}/authentication");
                let mut origin = String::new();
                for _ in 0..5 {
                    let created = cx
                        .leaf(Method::POST, &path)
                        .json(&json!({"provider": "JohnDeere"}))
                        .send()
                        .await?;
                    // linkbox's own address, which it also puts in the paging links.
                    origin = reqwest::Url::parse(&created.status(200)?.string("/link")?)
                        .map(|url| url.origin().ascii_serialization())
                        .unwrap_or_default();
                }
                let list = AUTHENTICATION.collection();
                let page = cx
                    .leaf(Method::GET, &format!("{list}?page=1&size=2"))
                    .send()
                    .await?;
                page.status(200)?.header_eq("x-total-count", "5")?;
                let base = format!("{origin}{list}");
                page.header_eq(
                    "link",
                    &format!(
                        "<{base}?page=2&size=2>; rel=\"next\",<{base}?page=0&size=2>; rel=\"prev\",\
                     <{base}?page=2&size=2>; rel=\"last\",<{base}?page=0&size=2>; rel=\"first\""
                    ),
                )?;
                for (query, count) in [("page=1&size=2", 2), ("size=3", 3), ("page=0", 5)] {
                    let reply = cx
                        .leaf(Method::GET, &format!("{list}?{query}"))
                        .send()
                        .await?;
                    reply.header_eq("x-total-count", "5")?;
                    let actual = ids(&reply)?.len();
                    if actual != count {
                        return Err(reply.failure("body length", count, actual));
                    }
                }
                Ok(())
            }
        ),
        case!(
            "leaf.list.bad-paging-400",
            Design,
            ["LEAF-LIST-BAD-PAGING", "LEAF-PROBLEM-TITLE-REASON"],
            |cx| async move {
                for query in ["size=0", "page=-1", "page=x"] {
                    cx.leaf(
                        Method::GET,
                        &format!("{}?{query}", AUTHENTICATION.collection()),
                    )
                    .send()
                    .await?
                    .problem(400)?
                    .eq("/title", json!("Bad Request"))?;
                }
                Ok(())
            }
        ),
    ]
}

/// Leaf users beyond create, read, replace and delete.
fn user_details() -> Vec<Case> {
    vec![
        case!(
            "leaf.users.created-201-with-location",
            Design,
            ["LEAF-USERS-CREATE-STATUS", "LEAF-USERS-CREATE-LOCATION"],
            |cx| async move {
                let external = cx.mark("ext");
                let reply = cx
                    .leaf(Method::POST, USERS)
                    .json(&json!({"name": "Ana", "email": "ana@farm.example", "externalId": external}))
                    .send()
                    .await?;
                let id = reply.status(201)?.string("/id")?;
                reply.header_eq("location", &format!("{USERS}/{id}"))?;
                cx.leaf(Method::GET, &format!("{USERS}/{id}"))
                    .send()
                    .await?
                    .status(200)?
                    .body(reply.json.clone())?;
                Ok(())
            }
        ),
        case!(
            "leaf.users.credentials-null-until-connected",
            Doc,
            ["LEAF-USERS-CREDENTIALS-NULL"],
            |cx| async move {
                let id = new_user(&cx).await?;
                let reply = cx
                    .leaf(Method::GET, &format!("{USERS}/{id}"))
                    .send()
                    .await?;
                reply.status(200)?;
                for field in [
                    "johnDeereCredentials",
                    "climateFieldViewCredentials",
                    "cnhiCredentials",
                    "agLeaderCredentials",
                    "trimbleCredentials",
                    "ravenSlingshotCredentials",
                    "staraCredentials",
                ] {
                    reply.null(&format!("/{field}"))?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.users.put-is-a-full-replace",
            Design,
            ["LEAF-USERS-PUT-FULL"],
            |cx| async move {
                let id = new_user(&cx).await?;
                let path = format!("{USERS}/{id}");
                let mut user = cx.leaf(Method::GET, &path).send().await?.json;
                user["name"] = json!("Ana Maria");
                user["phone"] = Value::Null;
                let replaced = cx.leaf(Method::PUT, &path).json(&user).send().await?;
                replaced.status(200)?.eq("/name", json!("Ana Maria"))?;
                replaced.null("/phone")?;
                // Read-only fields sent back as they came are known, not warned about.
                if let Some(warning) = replaced.header("x-linkbox-warning") {
                    return Err(replaced.failure("header x-linkbox-warning", "absent", warning));
                }
                let by_body = cx
                    .leaf(Method::PUT, USERS)
                    .json(&json!({"id": id, "name": "Ana B", "email": "ana@farm.example"}))
                    .send()
                    .await?;
                by_body.status(200)?.null("/externalId")?;
                let mismatched = cx
                    .leaf(Method::PUT, &path)
                    .json(&json!({"id": "00000000-0000-4000-8000-000000000000", "name": "x", "email": "y"}))
                    .send()
                    .await?;
                expect_violations(&mismatched, &["id"])
            }
        ),
        case!(
            "leaf.users.filter-email-and-name",
            Doc,
            ["LEAF-USERS-FILTERS"],
            |cx| async move {
                let id = new_user(&cx).await?;
                new_user(&cx).await?;
                let user = cx
                    .leaf(Method::GET, &format!("{USERS}/{id}"))
                    .send()
                    .await?;
                let (name, email) = (user.string("/name")?, user.string("/email")?);
                for query in [format!("email={email}"), format!("name={name}")] {
                    let reply = cx
                        .leaf(Method::GET, &format!("{USERS}?{query}"))
                        .send()
                        .await?;
                    reply.status(200)?;
                    let actual = ids(&reply)?;
                    if actual != [id.clone()] {
                        return Err(reply.failure(
                            "body [].id",
                            format!("[{id:?}]"),
                            format!("{actual:?}"),
                        ));
                    }
                }
                Ok(())
            }
        ),
        local_case!(
            "leaf.users.paged-total-count-and-link",
            Doc,
            ["LEAF-USERS-PAGED"],
            |cx| async move {
                for _ in 0..3 {
                    new_user(&cx).await?;
                }
                let reply = cx
                    .leaf(Method::GET, &format!("{USERS}?page=1&size=2"))
                    .send()
                    .await?;
                reply.status(200)?.header_eq("x-total-count", "3")?;
                let count = ids(&reply)?.len();
                if count != 1 {
                    return Err(reply.failure("body length", 1, count));
                }
                let link = reply.header("link").unwrap_or("absent");
                if !link.contains("rel=\"prev\"") {
                    return Err(reply.failure("header link", "a rel=\"prev\" entry", link));
                }
                Ok(())
            }
        ),
        local_case!(
            "leaf.users.unpaged-is-the-first-page-of-20",
            Design,
            ["LEAF-USERS-UNPAGED"],
            |cx| async move {
                for _ in 0..21 {
                    new_user(&cx).await?;
                }
                let reply = cx.leaf(Method::GET, USERS).send().await?;
                reply.status(200)?.header_eq("x-total-count", "21")?;
                let count = ids(&reply)?.len();
                if count != 20 {
                    return Err(reply.failure("body length", 20, count));
                }
                let link = reply.header("link").unwrap_or("absent");
                if !link.contains("rel=\"next\"") {
                    return Err(reply.failure("header link", "a rel=\"next\" entry", link));
                }
                Ok(())
            }
        ),
        case!(
            "leaf.users.name-and-email-required",
            Design,
            ["LEAF-USERS-CREATE-REQUIRED"],
            |cx| async move {
                let reply = cx
                    .leaf(Method::POST, USERS)
                    .json(&json!({"phone": 5}))
                    .send()
                    .await?;
                expect_violations(&reply, &["name", "email", "phone"])?;
                reply.eq("/fieldErrors/0/objectName", json!("leafUserDTO"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.users.external-id-unique",
            Design,
            ["LEAF-USERS-EXTERNAL-ID-UNIQUE"],
            |cx| async move {
                let id = new_user(&cx).await?;
                let external = cx
                    .leaf(Method::GET, &format!("{USERS}/{id}"))
                    .send()
                    .await?
                    .string("/externalId")?;
                let reply = cx
                    .leaf(Method::POST, USERS)
                    .json(&json!({"name": "b", "email": "b", "externalId": external}))
                    .send()
                    .await?;
                expect_violations(&reply, &["externalId"])
            }
        ),
    ]
}

/// Authentication beyond the token lifetimes.
fn auth_details() -> Vec<Case> {
    vec![
        local_case!(
            "leaf.auth.every-credential-violation-listed",
            Design,
            ["LEAF-AUTH-CREDENTIALS-REQUIRED"],
            |cx| async move {
                let reply =
                    authenticate(&cx, json!({"password": 7, "rememberMe": "maybe"})).await?;
                expect_violations(&reply, &["username", "password", "rememberMe"])?;
                reply.eq("/fieldErrors/0/objectName", json!("loginVM"))?;
                let blank = authenticate(&cx, json!({"username": " ", "password": "pw"})).await?;
                expect_violations(&blank, &["username"])
            }
        ),
        local_case!(
            "leaf.auth.remember-me-absent-24-hours",
            Doc,
            ["LEAF-AUTH-REMEMBER-ME-FALSE"],
            |cx| async move {
                let token =
                    authenticate(&cx, json!({"username": cx.mark("user"), "password": "x"}))
                        .await?
                        .string("/id_token")?;
                cx.advance_clock(24 * 3600 - 60).await?;
                expect_token_status(&cx, &token, 200, "after 23 h 59 min").await?;
                cx.advance_clock(120).await?;
                expect_token_status(&cx, &token, 401, "after 24 h 1 min").await
            }
        ),
        local_case!(
            "leaf.auth.expired-token-detail",
            Design,
            ["LEAF-AUTH-EXPIRED-TOKEN", "LEAF-PROBLEM-TITLE-REASON"],
            |cx| async move {
                let token = authenticate(
                    &cx,
                    json!({"username": cx.mark("user"), "password": "x", "rememberMe": false}),
                )
                .await?
                .string("/id_token")?;
                cx.advance_clock(25 * 3600).await?;
                let reply = cx
                    .leaf(Method::GET, &FILE_UPLOAD.collection())
                    .auth(Auth::Bearer(token))
                    .send()
                    .await?;
                reply.problem(401)?.eq("/title", json!("Unauthorized"))?;
                reply.eq("/detail", json!("The bearer token has expired"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.auth.basic-scheme-401",
            Design,
            ["LEAF-AUTH-BASIC-SCHEME"],
            |cx| async move {
                cx.leaf(Method::GET, &PROVIDER.collection())
                    .no_auth()
                    .header("authorization", "Basic dTpw")
                    .send()
                    .await?
                    .problem(401)?;
                Ok(())
            }
        ),
    ]
}

/// Routing errors: every unknown path a 404 problem, every wrong method a 405 with `Allow`.
fn route_details() -> Vec<Case> {
    vec![
        case!(
            "leaf.errors.unknown-paths-404",
            Design,
            [
                "LEAF-PROBLEM-UNKNOWN-PATH",
                "LEAF-PROBLEM-TITLE-REASON",
                "LEAF-PROBLEM-PATH"
            ],
            |cx| async move {
                for path in [
                    "/api/nothing",
                    "/api",
                    "/services/widgets/api/magic-link/widgets",
                    "/services/widgets/api/magic-link/unknown/abc",
                    "/services/widgets/api/magic-link/people/u/provider",
                    "/services/widgets/api/magic-link/users/u/unknown",
                    "/services/usermanagement/api/users/a/b",
                    "/services/other",
                ] {
                    let reply = cx.leaf(Method::GET, path).send().await?;
                    reply.problem(404)?.eq("/title", json!("Not Found"))?;
                    reply.eq("/path", json!(path))?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.errors.wrong-method-405-allow",
            Design,
            [
                "LEAF-PROBLEM-WRONG-METHOD",
                "LEAF-PROBLEM-ALLOW-HEADER",
                "LEAF-PROBLEM-TITLE-REASON"
            ],
            |cx| async move {
                let link = format!("{WIDGETS}/magic-link/provider/abc");
                for (method, path, allow) in [
                    (Method::GET, "/api/authenticate".to_owned(), "POST"),
                    (Method::PUT, PROVIDER.collection(), "GET, HEAD, POST"),
                    (Method::POST, link.clone(), "GET, HEAD, DELETE"),
                    (Method::PATCH, link, "GET, HEAD, DELETE"),
                    (
                        Method::GET,
                        format!("{WIDGETS}/magic-link/users/u/provider"),
                        "POST",
                    ),
                    (Method::DELETE, USERS.to_owned(), "GET, HEAD, POST, PUT"),
                    (Method::POST, format!("{USERS}/u"), "GET, HEAD, PUT, DELETE"),
                ] {
                    let reply = cx.leaf(method, &path).send().await?;
                    reply
                        .problem(405)?
                        .eq("/title", json!("Method Not Allowed"))?;
                    reply.header_eq("allow", allow)?;
                }
                Ok(())
            }
        ),
    ]
}

/// Cases written for facts of `docs/contract/leaf.md` no other case checked: headers, problem
/// titles and shapes, defaults on later reads as well as on the create answer.
fn fact_gaps() -> Vec<Case> {
    vec![
        case!(
            "leaf.auth.bearer-token-accepted",
            Doc,
            ["LEAF-AUTH-BEARER"],
            |cx| async move {
                cx.leaf(Method::GET, &PROVIDER.collection())
                    .send()
                    .await?
                    .status(200)?
                    .content_type("application/json")?;
                Ok(())
            }
        ),
        case!(
            "leaf.auth.www-authenticate-bearer",
            Design,
            ["LEAF-AUTH-WWW-AUTHENTICATE"],
            |cx| async move {
                for auth in [None, Some("Bearer not-a-token")] {
                    let mut request = cx.leaf(Method::GET, &PROVIDER.collection()).no_auth();
                    if let Some(value) = auth {
                        request = request.header("authorization", value);
                    }
                    let reply = request.send().await?;
                    reply.problem(401)?;
                    let header = reply.header("www-authenticate").unwrap_or("absent");
                    if !header.starts_with("Bearer") {
                        return Err(reply.failure("header www-authenticate", "Bearer …", header));
                    }
                }
                Ok(())
            }
        ),
        case!(
            "leaf.errors.problem-has-every-member",
            Design,
            ["LEAF-PROBLEM-SHAPE", "LEAF-PROBLEM-NOT-FOUND-TITLE"],
            |cx| async move {
                let path = AUTHENTICATION.one("Y29udHJhY3Qtbm8tc3VjaC1saW5r");
                let reply = cx.leaf(Method::GET, &path).send().await?;
                reply.problem(404)?;
                for member in ["/type", "/title", "/detail", "/path", "/message"] {
                    if !reply.get(member)?.is_string() {
                        return Err(reply.failure(
                            format!("body {member}"),
                            "a string",
                            &reply.text,
                        ));
                    }
                }
                reply.eq("/title", json!("Magic link not found"))?;
                Ok(())
            }
        ),
        case!(
            "leaf.errors.bad-json-title",
            Design,
            ["LEAF-PROBLEM-BAD-JSON-TITLE"],
            |cx| async move {
                for body in ["{\"externalId\": ", "[1, 2]"] {
                    cx.leaf(Method::POST, &FILE_UPLOAD.collection())
                        .header("content-type", "application/json")
                        .raw(body)
                        .send()
                        .await?
                        .problem(400)?
                        .eq("/title", json!("Bad Request"))?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.errors.unsupported-content-type-415",
            Design,
            ["LEAF-PROBLEM-UNSUPPORTED-TYPE"],
            |cx| async move {
                cx.leaf(Method::POST, &PROVIDER.collection())
                    .header("content-type", "text/plain")
                    .raw(json!({"externalId": cx.mark("ext")}).to_string())
                    .send()
                    .await?
                    .problem(415)?;
                Ok(())
            }
        ),
        case!(
            "leaf.create.content-type-json",
            Design,
            ["LEAF-CREATE-CONTENT-TYPE"],
            |cx| async move {
                for w in [&PROVIDER, &AUTHENTICATION, &FILE_UPLOAD] {
                    w.create(&cx, json!({}))
                        .await?
                        .content_type("application/json")?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.create.unknown-field-ignored",
            Design,
            ["LEAF-CREATE-UNKNOWN-FIELD-IGNORED"],
            |cx| async move {
                for w in [&PROVIDER, &AUTHENTICATION, &FILE_UPLOAD] {
                    w.create(&cx, json!({"contractUnknownField": 1})).await?;
                }
                Ok(())
            }
        ),
        case!(
            "leaf.create.answer-matches-get",
            Design,
            ["LEAF-CREATE-SAME-AS-GET"],
            |cx| async move {
                for w in [&PROVIDER, &AUTHENTICATION, &FILE_UPLOAD] {
                    let created = w.create(&cx, json!({})).await?;
                    let id = created.string("/id")?;
                    let got = cx.leaf(Method::GET, &w.one(&id)).send().await?;
                    got.status(200)?;
                    for field in ["/id", "/leafUserId", "/link"] {
                        got.eq(field, created.get(field)?.clone())?;
                    }
                }
                Ok(())
            }
        ),
        case!(
            "leaf.list.default-expires-in-900",
            Doc,
            ["LEAF-READ-DEFAULT-EXPIRES-IN"],
            |cx| async move {
                for w in [&PROVIDER, &AUTHENTICATION, &FILE_UPLOAD] {
                    let created = w.create(&cx, json!({})).await?;
                    let user = created.string("/leafUserId")?;
                    let id = created.string("/id")?;
                    let reply = cx
                        .leaf(
                            Method::GET,
                            &format!("{}?leafUserId={user}", w.collection()),
                        )
                        .send()
                        .await?;
                    reply.status(200)?;
                    let index = ids(&reply)?
                        .iter()
                        .position(|listed| *listed == id)
                        .ok_or_else(|| {
                            reply.failure("body []", format!("lists {id}"), &reply.text)
                        })?;
                    let actual = (reply.instant(&format!("/{index}/expiresAt"))?
                        - reply.instant(&format!("/{index}/createdAt"))?)
                    .whole_seconds();
                    expect_seconds(&reply, "listed expiresAt - createdAt", 900, actual)?;
                }
                Ok(())
            }
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        let text = b"{\"alg\":\"HS256\"}";
        assert_eq!(base64_decode(&base64url(text)).as_deref(), Some(&text[..]));
        assert_eq!(base64_decode("TWE").as_deref(), Some(&b"Ma"[..]));
    }

    #[test]
    fn every_widget_type_gets_every_shared_case() {
        let all = cases();
        for segment in ["provider", "authentication", "file-upload"] {
            let prefix = format!("leaf.{segment}.");
            let count = all
                .iter()
                .filter(|case| case.id.starts_with(&prefix))
                .count();
            assert!(count >= per_widget(&PROVIDER).len(), "{segment}: {count}");
        }
    }
}

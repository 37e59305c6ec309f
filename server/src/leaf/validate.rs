//! Validation of Leaf request bodies and queries.
//!
//! Bodies are read as JSON values and checked field by field; like a Spring `@Valid` body,
//! a failure lists *every* violation (`fieldErrors`), not just the first. Fields a body
//! carries that the API does not know are ignored, as Leaf's services do, but named (for
//! the `X-Linkbox-Warning` header) — including unknown keys inside `settings`, where the
//! vendor's own docs misspell `disconnectEnabled`.

use bytes::Bytes;
use http::{HeaderMap, header};
use linkbox_contracts::leaf::{
    self as wire, AllowedProvider, FieldError, LinkSettings, Provider, Widget, messages, objects,
};
use serde_json::{Map, Value};
use time::Duration;

use super::error::ApiError;
use crate::ops::writes_host;
use crate::store::leaf::{LinkKind, LinkOwner, NewMagicLink, UserFields, UserFilter};
use crate::wire::{BodyError, first_seen, is_json, query_pairs};

/// The six fields of `settings`.
const SETTINGS_FIELDS: [&str; 6] = [
    "backgroundColor",
    "companyLogo",
    "companyName",
    "headerImage",
    "showLeafUserName",
    "disconnectEnabled",
];
/// Read-only fields of the user resource: a `PUT` of what a `GET` returned carries them.
const USER_READ_ONLY: [&str; 7] = [
    "johnDeereCredentials",
    "climateFieldViewCredentials",
    "cnhiCredentials",
    "trimbleCredentials",
    "agLeaderCredentials",
    "ravenSlingshotCredentials",
    "staraCredentials",
];

/// A request body as a JSON object; an empty body counts as `{}`.
///
/// The body must say it is JSON, or say nothing, or be `application/x-www-form-urlencoded`:
/// that is what `curl -d` sends, and the vendor's own curl examples send no content type.
pub fn json_object(
    headers: &HeaderMap,
    body: Result<Bytes, BodyError>,
) -> Result<Map<String, Value>, ApiError> {
    let body = body?;
    if crate::wire::is_json_blank(&body) {
        return Ok(Map::new());
    }
    if let Some(content_type) = headers.get(header::CONTENT_TYPE)
        && !is_json(headers)
    {
        let text = String::from_utf8_lossy(content_type.as_bytes()).into_owned();
        let mime = text.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            // As sent, but for control characters: the detail is JSON text, which escapes
            // the rest; a byte that is not UTF-8 reads as U+FFFD.
            return Err(ApiError::UnsupportedMediaType(
                text.chars().filter(|c| !c.is_control()).collect(),
            ));
        }
    }
    if crate::wire::nests_deeper_than(&body, crate::wire::MAX_JSON_DEPTH) {
        return Err(ApiError::bad_request(crate::wire::too_deep(
            crate::wire::MAX_JSON_DEPTH,
        )));
    }
    if crate::wire::holds_more_values_than(&body, crate::wire::MAX_JSON_VALUES) {
        return Err(ApiError::bad_request(crate::wire::too_many_values(
            crate::wire::MAX_JSON_VALUES,
        )));
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(messages::UNREADABLE_BODY)),
        Err(error) => Err(ApiError::bad_request(format!(
            "Failed to read request: {error}"
        ))),
    }
}

/// The value of an optional field; `null` counts as absent.
fn optional<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|value| !value.is_null())
}

/// Names of the fields `body` carries that are not in `known`, prefixed with `prefix`.
fn unknown_fields(body: &Map<String, Value>, known: &[&str], prefix: &str) -> Vec<String> {
    body.keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(|key| format!("{prefix}{key}"))
        .collect()
}

/// Collects the violations of one body.
struct Checker {
    object: &'static str,
    errors: Vec<FieldError>,
}

impl Checker {
    fn new(object: &'static str) -> Checker {
        Checker {
            object,
            errors: Vec::new(),
        }
    }

    fn violation(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            object_name: self.object.to_owned(),
            field: field.to_owned(),
            message: message.to_owned(),
        });
    }

    /// `value` when nothing was violated, else every violation.
    fn finish<T>(self, value: T) -> Result<T, ApiError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::Invalid(self.errors))
        }
    }

    fn optional_string(
        &mut self,
        body: &Map<String, Value>,
        field: &str,
        label: &str,
    ) -> Option<String> {
        match optional(body, field) {
            None => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.violation(label, messages::STRING);
                None
            }
        }
    }

    /// An optional string that, when given, must not be blank: a Leaf user's `name` or
    /// `email` given on a magic link's create, held to the users API's rule.
    fn optional_non_blank(&mut self, body: &Map<String, Value>, field: &str) -> Option<String> {
        optional(body, field)?;
        self.required_string(body, field)
    }

    fn required_string(&mut self, body: &Map<String, Value>, field: &str) -> Option<String> {
        match optional(body, field) {
            None => {
                self.violation(field, messages::NOT_NULL);
                None
            }
            Some(Value::String(text)) if text.trim().is_empty() => {
                self.violation(field, messages::NOT_BLANK);
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.violation(field, messages::STRING);
                None
            }
        }
    }

    fn optional_bool(&mut self, body: &Map<String, Value>, field: &str, label: &str) -> bool {
        match optional(body, field) {
            None => false,
            Some(Value::Bool(flag)) => *flag,
            Some(_) => {
                self.violation(label, messages::BOOLEAN);
                false
            }
        }
    }
}

/// A validated `POST /api/authenticate` body.
#[derive(Debug, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
    pub remember_me: bool,
    pub ignored: Vec<String>,
}

/// Validates a `POST /api/authenticate` body.
pub fn login(body: Map<String, Value>) -> Result<Login, ApiError> {
    let mut check = Checker::new(objects::LOGIN);
    let username = check.required_string(&body, "username").filter(|username| {
        let fits = username.chars().count() <= linkbox_contracts::leaf::USERNAME_MAX_CHARS;
        if !fits {
            check.violation("username", messages::USERNAME_SIZE);
        }
        fits
    });
    let password = check.required_string(&body, "password");
    let remember_me = match optional(&body, "rememberMe") {
        None => false,
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) if text == "true" => true,
        Some(Value::String(text)) if text == "false" => false,
        Some(_) => {
            check.violation("rememberMe", messages::REMEMBER_ME);
            false
        }
    };
    check.finish(())?;
    Ok(Login {
        username: username.unwrap_or_default(),
        password: password.unwrap_or_default(),
        remember_me,
        ignored: unknown_fields(&body, &["username", "password", "rememberMe"], ""),
    })
}

/// A validated magic-link create body.
#[derive(Debug)]
pub struct CreateLink {
    pub link: NewMagicLink,
    pub owner: LinkOwner,
    pub ignored: Vec<String>,
}

/// Validates the body of a `widget` create for the existing user `leaf_user_id`, or, without
/// one (`POST /magic-link/{type}`), for the user the body's `externalId` names.
pub fn create_link(
    widget: Widget,
    body: Map<String, Value>,
    leaf_user_id: Option<&str>,
) -> Result<CreateLink, ApiError> {
    let mut check = Checker::new(widget.object_name());
    let mut known = vec!["expiresIn", "settings"];
    let expires_in = match optional(&body, "expiresIn") {
        None => wire::DEFAULT_EXPIRES_IN,
        Some(value) => value
            .as_u64()
            .filter(|seconds| {
                (u64::from(wire::EXPIRES_IN_MIN)..=u64::from(wire::EXPIRES_IN_MAX))
                    .contains(seconds)
            })
            .map(|seconds| seconds as u32)
            .unwrap_or_else(|| {
                check.violation("expiresIn", messages::EXPIRES_IN);
                wire::DEFAULT_EXPIRES_IN
            }),
    };
    let kind = match widget {
        Widget::Provider => {
            known.push("allowedProviders");
            LinkKind::Provider(allowed_providers(&mut check, &body))
        }
        Widget::Authentication => {
            known.push("provider");
            let provider = match optional(&body, "provider") {
                None => {
                    check.violation("provider", messages::NOT_NULL);
                    None
                }
                Some(value) => {
                    let provider = value.as_str().and_then(Provider::parse);
                    if provider.is_none() {
                        check.violation("provider", messages::PROVIDER);
                    }
                    provider
                }
            };
            LinkKind::Authentication(provider.unwrap_or(Provider::JohnDeere))
        }
        Widget::FileUpload => LinkKind::FileUpload,
    };
    let mut ignored = Vec::new();
    let settings = match optional(&body, "settings") {
        None => LinkSettings::default(),
        Some(Value::Object(settings)) => {
            ignored.extend(unknown_fields(settings, &SETTINGS_FIELDS, "settings."));
            link_settings(&mut check, settings)
        }
        Some(_) => {
            check.violation("settings", messages::OBJECT);
            LinkSettings::default()
        }
    };
    let owner = match leaf_user_id {
        Some(id) => LinkOwner::Existing(id.to_owned()),
        None => {
            known.extend(["externalId", "name", "email"]);
            let external_id = check.required_string(&body, "externalId");
            let name = check.optional_non_blank(&body, "name");
            let email = check.optional_non_blank(&body, "email");
            LinkOwner::ByExternalId {
                external_id: external_id.unwrap_or_default(),
                name,
                email,
            }
        }
    };
    check.finish(())?;
    let mut all_ignored = unknown_fields(&body, &known, "");
    all_ignored.extend(ignored);
    Ok(CreateLink {
        link: NewMagicLink {
            kind,
            expires_in: Duration::seconds(i64::from(expires_in)),
            settings,
        },
        owner,
        ignored: all_ignored,
    })
}

fn allowed_providers(check: &mut Checker, body: &Map<String, Value>) -> Vec<AllowedProvider> {
    let Some(value) = optional(body, "allowedProviders") else {
        return vec![AllowedProvider::All];
    };
    let parsed: Option<Vec<AllowedProvider>> = value.as_array().and_then(|items| {
        items
            .iter()
            .map(|item| item.as_str().and_then(AllowedProvider::parse))
            .collect()
    });
    match parsed {
        Some(providers) => {
            let mut unique = Vec::with_capacity(providers.len());
            for provider in providers {
                if !unique.contains(&provider) {
                    unique.push(provider);
                }
            }
            if unique.is_empty() {
                vec![AllowedProvider::All]
            } else {
                unique
            }
        }
        None => {
            check.violation("allowedProviders", messages::ALLOWED_PROVIDERS);
            vec![AllowedProvider::All]
        }
    }
}

fn link_settings(check: &mut Checker, settings: &Map<String, Value>) -> LinkSettings {
    let mut out = LinkSettings::default();
    match optional(settings, "backgroundColor") {
        None => {}
        Some(Value::String(color)) if is_hex_color(color) => out.background_color = color.clone(),
        Some(_) => check.violation("settings.backgroundColor", messages::BACKGROUND_COLOR),
    }
    for (field, slot) in [
        ("companyLogo", &mut out.company_logo),
        ("headerImage", &mut out.header_image),
    ] {
        match optional(settings, field) {
            None => {}
            Some(Value::String(url)) if is_web_url(url) => *slot = Some(url.clone()),
            Some(_) => check.violation(&format!("settings.{field}"), messages::URL),
        }
    }
    out.company_name = check.optional_string(settings, "companyName", "settings.companyName");
    out.show_leaf_user_name =
        check.optional_bool(settings, "showLeafUserName", "settings.showLeafUserName");
    out.disconnect_enabled =
        check.optional_bool(settings, "disconnectEnabled", "settings.disconnectEnabled");
    out
}

/// `#RGB` or `#RRGGBB`, any case.
pub fn is_hex_color(text: &str) -> bool {
    text.strip_prefix('#').is_some_and(|digits| {
        matches!(digits.len(), 3 | 6) && digits.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// An absolute `http` or `https` URL with a host, written in it.
pub fn is_web_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        && writes_host(text)
}

/// A validated user body.
#[derive(Debug)]
pub struct UserBody {
    pub id: Option<String>,
    pub fields: UserFields,
    pub ignored: Vec<String>,
}

/// Validates a `POST` or `PUT` user body. On `PUT` (`path_id` given, or `put` without one)
/// the body must hold the user's `id`, equal to the path's when the path has one.
pub fn user(
    body: Map<String, Value>,
    put: bool,
    path_id: Option<&str>,
) -> Result<UserBody, ApiError> {
    let mut check = Checker::new(objects::LEAF_USER);
    let id = if put {
        match optional(&body, "id") {
            None => {
                check.violation("id", messages::NOT_NULL);
                None
            }
            Some(Value::String(id)) => {
                if path_id.is_some_and(|path_id| path_id != id) {
                    check.violation("id", messages::ID_MISMATCH);
                }
                Some(id.clone())
            }
            Some(_) => {
                check.violation("id", messages::STRING);
                None
            }
        }
    } else {
        // The user's id is minted: a create that carries one is refused, as a JHipster
        // resource refuses it ("A new leafUser cannot already have an ID"); one that is not
        // even a string is as malformed as it would be on a replace.
        match optional(&body, "id") {
            None => {}
            Some(Value::String(_)) => return Err(ApiError::IdExists),
            Some(_) => check.violation("id", messages::STRING),
        }
        None
    };
    let name = check.required_string(&body, "name");
    let email = check.required_string(&body, "email");
    let phone = check.optional_string(&body, "phone", "phone");
    let address = check.optional_string(&body, "address", "address");
    let external_id = check.optional_string(&body, "externalId", "externalId");
    check.finish(())?;
    let mut known = vec!["id", "name", "email", "phone", "address", "externalId"];
    known.extend(USER_READ_ONLY);
    Ok(UserBody {
        id,
        fields: UserFields {
            name: name.unwrap_or_default(),
            email: email.unwrap_or_default(),
            phone,
            address,
            external_id,
        },
        ignored: unknown_fields(&body, &known, ""),
    })
}

/// A page request: 0-based page and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: u32,
    pub size: u32,
}

/// A validated list query: paging (when asked for), filters, and unknown parameters.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub page: Option<Page>,
    /// Every pair, in order (the `Link` header keeps the ones it does not replace).
    pub pairs: Vec<(String, String)>,
    pub leaf_user_id: Option<String>,
    pub users: UserFilter,
    pub ignored: Vec<String>,
}

/// Parses a list query; `filters` are the parameters this list knows besides `page` and
/// `size`. When a parameter repeats, the last wins.
pub fn list_query(raw: &str, filters: &[&str]) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        pairs: query_pairs(raw),
        ..ListQuery::default()
    };
    let (mut page, mut size) = (None, None);
    for (name, value) in &query.pairs {
        match name.as_str() {
            "page" => {
                page = Some(value.parse::<u32>().map_err(|_| {
                    if crate::wire::page_too_large(value) {
                        ApiError::bad_request(format!(
                            "The page query parameter must be at most {}",
                            u32::MAX
                        ))
                    } else {
                        ApiError::bad_request(
                            "The page query parameter must be a non-negative integer",
                        )
                    }
                })?);
            }
            "size" => {
                size = Some(
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|size| (1..=wire::MAX_PAGE_SIZE).contains(size))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "The size query parameter must be an integer between 1 and {}",
                                wire::MAX_PAGE_SIZE
                            ))
                        })?,
                );
            }
            known if filters.contains(&known) => {
                let value = Some(value.clone());
                match known {
                    "leafUserId" => query.leaf_user_id = value,
                    "email" => query.users.email = value,
                    "name" => query.users.name = value,
                    "externalId" => query.users.external_id = value,
                    _ => {}
                }
            }
            _ => query.ignored.push(name.clone()),
        }
    }
    query.ignored = first_seen(std::mem::take(&mut query.ignored));
    if page.is_some() || size.is_some() {
        query.page = Some(Page {
            page: page.unwrap_or(0),
            size: size.unwrap_or(wire::DEFAULT_PAGE_SIZE),
        });
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn fields(result: Result<CreateLink, ApiError>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(ApiError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn an_unsupported_content_type_is_named_as_sent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_bytes(b"text/caf\xc3\xa9").expect("value"),
        );
        let refused = json_object(&headers, Ok(Bytes::from_static(b"{}"))).expect_err("415");
        assert_eq!(
            refused.to_string(),
            "Content type 'text/café' not supported"
        );
    }

    #[test]
    fn a_create_refuses_an_id() {
        let body = |id: Value| object(json!({"id": id, "name": "Ann", "email": "a@x.io"}));
        assert_eq!(
            user(body(json!("mine")), false, None).err(),
            Some(ApiError::IdExists)
        );
        assert!(user(body(Value::Null), false, None).is_ok());
        for id in [json!([]), json!(5), json!({})] {
            match user(body(id.clone()), false, None) {
                Err(ApiError::Invalid(errors)) => {
                    assert_eq!(errors[0].field, "id", "{id}");
                }
                other => panic!("{id}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_new_users_name_and_email_may_be_left_out_but_not_blank() {
        let create = |body: Value| create_link(Widget::Provider, object(body), None);
        let created = create(json!({"externalId": "farm-1"})).expect("defaults");
        assert!(matches!(
            created.owner,
            LinkOwner::ByExternalId {
                name: None,
                email: None,
                ..
            }
        ));
        assert!(create(json!({"externalId": "farm-1", "name": null})).is_ok());
        assert_eq!(
            fields(create(
                json!({"externalId": "f", "name": "", "email": "  "})
            )),
            ["name", "email"]
        );
    }

    #[test]
    fn expires_in_bounds_are_inclusive_and_integer_only() {
        for (value, ok) in [
            (json!(899), false),
            (json!(900), true),
            (json!(31_622_400), true),
            (json!(31_622_401), false),
            (json!(900.5), false),
            (json!(900.0), false),
            (json!("900"), false),
            (json!(-1), false),
            // `-0` (serde_json's -0.0) is refused as 0 is, in the same words.
            (json!(0), false),
            (serde_json::from_str("-0").expect("-0"), false),
        ] {
            let result = create_link(
                Widget::FileUpload,
                object(json!({"expiresIn": value})),
                Some("u"),
            );
            assert_eq!(result.is_ok(), ok, "{value}");
        }
    }

    #[test]
    fn defaults_fill_an_empty_provider_body() {
        let created = create_link(Widget::Provider, Map::new(), Some("u")).expect("valid");
        assert_eq!(created.link.expires_in, Duration::seconds(900));
        assert_eq!(
            created.link.kind,
            LinkKind::Provider(vec![AllowedProvider::All])
        );
        assert_eq!(created.link.settings, LinkSettings::default());
        assert!(matches!(created.owner, LinkOwner::Existing(ref id) if id == "u"));
    }

    #[test]
    fn every_violation_is_listed_at_once() {
        let result = create_link(
            Widget::Authentication,
            object(json!({
                "expiresIn": "soon", "provider": "All",
                "settings": {"backgroundColor": "red", "companyLogo": "logo",
                             "headerImage": 3, "companyName": false,
                             "showLeafUserName": "yes", "disconnectEnabled": 1}
            })),
            None,
        );
        assert_eq!(
            fields(result),
            [
                "expiresIn",
                "provider",
                "settings.backgroundColor",
                "settings.companyLogo",
                "settings.headerImage",
                "settings.companyName",
                "settings.showLeafUserName",
                "settings.disconnectEnabled",
                "externalId",
            ]
        );
    }

    #[test]
    fn authentication_links_need_one_real_provider() {
        for provider in Provider::ALL {
            let body = object(json!({"provider": provider.as_str()}));
            let created = create_link(Widget::Authentication, body, Some("u")).expect("valid");
            assert_eq!(created.link.kind, LinkKind::Authentication(provider));
        }
        assert_eq!(
            fields(create_link(Widget::Authentication, Map::new(), Some("u"))),
            ["provider"]
        );
        let all = object(json!({"provider": "All"}));
        assert_eq!(
            fields(create_link(Widget::Authentication, all, Some("u"))),
            ["provider"]
        );
    }

    #[test]
    fn allowed_providers_take_the_seven_and_all() {
        let body = object(json!({"allowedProviders": ["JohnDeere", "Stara", "All"]}));
        assert!(create_link(Widget::Provider, body, Some("u")).is_ok());
        for bad in [json!(["Other"]), json!("All"), json!([1])] {
            let body = object(json!({ "allowedProviders": bad }));
            assert_eq!(
                fields(create_link(Widget::Provider, body, Some("u"))),
                ["allowedProviders"]
            );
        }
    }

    #[test]
    fn unknown_fields_and_settings_keys_are_named() {
        let body = object(json!({
            "provider": "CNHI", "colour": 1,
            "settings": {"disconnectedEnabled": true}
        }));
        let created = create_link(Widget::Provider, body, Some("u")).expect("valid");
        assert_eq!(
            created.ignored,
            ["colour", "provider", "settings.disconnectedEnabled"]
        );
    }

    #[test]
    fn hex_colors_and_urls_are_checked() {
        for (color, ok) in [
            ("#fff", true),
            ("#F5F5F5", true),
            ("F5F5F5", false),
            ("#F5F5F", false),
            ("#GGG", false),
        ] {
            assert_eq!(is_hex_color(color), ok, "{color}");
        }
        assert!(is_web_url("https://example.com/logo.png"));
        assert!(!is_web_url("ftp://example.com/logo.png"));
        assert!(!is_web_url("logo.png"));
        // The parser mends each of these into a URL with a host; none is written with one.
        for url in [
            "https:///x",
            "https:x",
            "http:/x",
            "https://\\x",
            "https://\n/x",
            " https://x/y.png ",
            "https://x/y.png\n",
            "https://x/a b.png",
            "https://x/\ty.png",
        ] {
            assert!(!is_web_url(url), "{url:?}");
        }
    }

    #[test]
    fn remember_me_takes_booleans_and_their_text() {
        for (value, remember) in [
            (json!(true), Some(true)),
            (json!("true"), Some(true)),
            (json!("false"), Some(false)),
            (json!(false), Some(false)),
            (json!("yes"), None),
            (json!("TRUE"), None),
            (json!("True"), None),
            (json!("tRuE"), None),
            (json!("False"), None),
            (json!(1), None),
        ] {
            let body = object(json!({"username": "u", "password": "p", "rememberMe": value}));
            assert_eq!(
                login(body).ok().map(|login| login.remember_me),
                remember,
                "{value}"
            );
        }
    }

    #[test]
    fn unknown_parameters_are_named_once_each_in_the_order_sent() {
        let query = list_query("b=1&leafUserId=u&a=2&b=3", &["leafUserId"]).expect("valid");
        assert_eq!(query.ignored, ["b", "a"]);
        let names: Vec<String> = (0..15_000).map(|n| format!("{n:03x}")).collect();
        let raw: Vec<String> = names.iter().map(|name| format!("{name}=1")).collect();
        let raw = format!("{}&size=5&{}", raw.join("&"), raw.join("&"));
        let many = list_query(&raw, &[]).expect("valid");
        assert_eq!(many.page, Some(Page { page: 0, size: 5 }));
        assert_eq!(many.pairs.len(), 30_001);
        assert_eq!(many.ignored, names);
    }

    #[test]
    fn paging_applies_only_when_asked_for() {
        let query = list_query("leafUserId=u", &["leafUserId"]).expect("valid");
        assert_eq!(query.page, None);
        assert_eq!(query.leaf_user_id.as_deref(), Some("u"));
        let query = list_query("size=5", &[]).expect("valid");
        assert_eq!(query.page, Some(Page { page: 0, size: 5 }));
        assert!(list_query("size=101", &[]).is_err());
        let detail = |raw: &str| match list_query(raw, &[]) {
            Err(ApiError::BadRequest(detail)) => detail.into_owned(),
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(
            detail("page=-1"),
            "The page query parameter must be a non-negative integer"
        );
        assert_eq!(
            list_query("page=4294967295", &[])
                .expect("the last page")
                .page,
            Some(Page {
                page: u32::MAX,
                size: 20
            })
        );
        // A whole number past the last page is told the bound, not that it is no number.
        for past in ["page=4294967296", "page=18446744073709551616"] {
            assert_eq!(
                detail(past),
                "The page query parameter must be at most 4294967295",
                "{past}"
            );
        }
    }
}

//! Leaf Agriculture's magic-link API: constants and wire types of the authentication,
//! widgets (`/services/widgets/api`) and user-management (`/services/usermanagement/api`)
//! services.
//!
//! Facts tagged `[doc]` in `leaf.md` are the vendor's; the rest (`[design]`) are linkbox's
//! decisions where the vendor is silent. The server checks request bodies field by field (to
//! report every violation at once, as a Spring `@Valid` body does), so the request types here
//! describe the accepted shape for schemas and clients rather than drive deserialization.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use crate::m2m::WARNING_HEADER;

/// Lower bound of `expiresIn`, in seconds. [doc]
pub const EXPIRES_IN_MIN: u32 = 900;
/// Upper bound of `expiresIn`, in seconds (366 days). [doc]
pub const EXPIRES_IN_MAX: u32 = 31_622_400;
/// `expiresIn` when the request sets none. [doc]
pub const DEFAULT_EXPIRES_IN: u32 = 900;
/// Accesses a magic link allows unless the account is configured otherwise. [ex]
pub const DEFAULT_MAX_USAGE: u32 = 3;
/// `settings.backgroundColor` when the request sets none. [doc]
pub const DEFAULT_BACKGROUND_COLOR: &str = "#F5F5F5";
/// `#RGB` or `#RRGGBB`. [design]
pub const BACKGROUND_COLOR_PATTERN: &str = "^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$";
/// `allowedProviders` of a provider link that names none. [doc]
pub const ALL_PROVIDERS: &str = "All";

/// Default page size of Leaf's lists. [doc]
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Largest page size of Leaf's lists. [doc]
pub const MAX_PAGE_SIZE: u32 = 100;
/// Header with the number of items a paged list holds in all. [doc]
pub const TOTAL_COUNT_HEADER: &str = "x-total-count";

/// Lifetime of a token from `POST /api/authenticate` without `rememberMe`, in seconds. [doc]
pub const TOKEN_LIFETIME_SECS: i64 = 24 * 60 * 60;
/// Lifetime of a token with `rememberMe`, in seconds. [doc]
pub const REMEMBER_ME_LIFETIME_SECS: i64 = 30 * 24 * 60 * 60;
/// The authority every token carries, as JHipster's do. [design]
pub const TOKEN_AUTHORITY: &str = "ROLE_USER";

/// The longest username `POST /api/authenticate` takes, in characters: an email address's
/// longest (254) and a little more. The token carries the username, and one made from a
/// username of tens of thousands of characters would not fit in the request heads that must
/// send it back (431). [design]
pub const USERNAME_MAX_CHARS: usize = 256;

/// Largest request body accepted, in bytes; larger bodies get 413. [design]
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Base path of the widgets service. [doc]
pub const WIDGETS_BASE: &str = "/services/widgets/api";
/// Base path of the user-management service. [doc]
pub const USERS_BASE: &str = "/services/usermanagement/api";

/// `Content-Type` of every error body. [design]
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
/// `type` of an error with a message. [design, JHipster]
pub const PROBLEM_WITH_MESSAGE: &str = "https://www.jhipster.tech/problem/problem-with-message";
/// `type` of a body validation failure. [design, JHipster]
pub const CONSTRAINT_VIOLATION: &str = "https://www.jhipster.tech/problem/constraint-violation";
/// `message` of a body validation failure. [design, JHipster]
pub const VALIDATION_MESSAGE: &str = "error.validation";

/// `message` of any other error: `error.http.<status>`. [design, JHipster]
pub fn http_message(status: u16) -> String {
    format!("error.http.{status}")
}

/// Titles and details of Leaf errors, and the field messages of validation failures.
pub mod messages {
    pub const METHOD_ARGUMENT_NOT_VALID: &str = "Method argument not valid";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const FORBIDDEN: &str = "Forbidden";
    pub const FULL_AUTH_REQUIRED: &str = "Full authentication is required to access this resource";
    pub const INVALID_TOKEN: &str = "The bearer token is malformed, forged or foreign";
    pub const EXPIRED_TOKEN: &str = "The bearer token has expired";
    pub const BAD_CREDENTIALS: &str = "Bad credentials";
    pub const BAD_REQUEST: &str = "Bad Request";
    pub const UNREADABLE_BODY: &str = "Failed to read request: the body is not a JSON object";
    pub const NOT_FOUND: &str = "Not Found";
    pub const METHOD_NOT_ALLOWED: &str = "Method Not Allowed";
    pub const PAYLOAD_TOO_LARGE: &str = "Payload Too Large";
    pub const BODY_TOO_LARGE: &str = "Request body must not exceed 10 MiB";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "Unsupported Media Type";
    pub const LEAF_USER_NOT_FOUND: &str = "Leaf user not found";
    pub const MAGIC_LINK_NOT_FOUND: &str = "Magic link not found";
    /// A user create that carries an `id`: JHipster's `BadRequestAlertException` title.
    pub const ID_EXISTS: &str = "A new leafUser cannot already have an ID";
    /// Its message key.
    pub const ID_EXISTS_KEY: &str = "error.idexists";

    pub const NOT_NULL: &str = "must not be null";
    pub const NOT_BLANK: &str = "must not be blank";
    /// A username past [`super::USERNAME_MAX_CHARS`], worded as Bean Validation's `@Size`.
    pub const USERNAME_SIZE: &str = "size must be between 1 and 256";
    pub const STRING: &str = "must be a string";
    pub const BOOLEAN: &str = "must be a boolean";
    pub const OBJECT: &str = "must be an object";
    pub const EXPIRES_IN: &str = "must be an integer between 900 and 31622400";
    pub const ALLOWED_PROVIDERS: &str = "must be an array of: JohnDeere, ClimateFieldView, CNHI, AgLeader, Trimble, RavenSlingshot, Stara, All";
    pub const PROVIDER: &str = "must be one of: JohnDeere, ClimateFieldView, CNHI, AgLeader, Trimble, RavenSlingshot, Stara";
    pub const BACKGROUND_COLOR: &str = "must be a hex color: #RGB or #RRGGBB";
    pub const URL: &str = "must be an http or https URL";
    pub const REMEMBER_ME: &str = "must be true, false, \"true\" or \"false\"";
    pub const EXTERNAL_ID_TAKEN: &str = "is already used by another Leaf user";
    pub const ID_MISMATCH: &str = "must match the id in the path";
}

/// The `objectName` of each validated body in `fieldErrors`. [design, after Leaf's DTOs]
pub mod objects {
    pub const LOGIN: &str = "loginVM";
    pub const LEAF_USER: &str = "leafUserDTO";
    pub const PROVIDER_LINK: &str = "providerMagicLinkDTO";
    pub const AUTHENTICATION_LINK: &str = "authenticationMagicLinkDTO";
    pub const FILE_UPLOAD_LINK: &str = "fileUploadMagicLinkDTO";
}

/// A provider a Leaf user can connect. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, ToSchema)]
pub enum Provider {
    JohnDeere,
    ClimateFieldView,
    #[serde(rename = "CNHI")]
    Cnhi,
    AgLeader,
    Trimble,
    RavenSlingshot,
    Stara,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::JohnDeere,
        Provider::ClimateFieldView,
        Provider::Cnhi,
        Provider::AgLeader,
        Provider::Trimble,
        Provider::RavenSlingshot,
        Provider::Stara,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::JohnDeere => "JohnDeere",
            Provider::ClimateFieldView => "ClimateFieldView",
            Provider::Cnhi => "CNHI",
            Provider::AgLeader => "AgLeader",
            Provider::Trimble => "Trimble",
            Provider::RavenSlingshot => "RavenSlingshot",
            Provider::Stara => "Stara",
        }
    }

    pub fn parse(text: &str) -> Option<Provider> {
        Provider::ALL
            .into_iter()
            .find(|provider| provider.as_str() == text)
    }

    /// The field of the Leaf user resource holding this provider's credentials. [doc]
    pub fn credentials_field(self) -> &'static str {
        match self {
            Provider::JohnDeere => "johnDeereCredentials",
            Provider::ClimateFieldView => "climateFieldViewCredentials",
            Provider::Cnhi => "cnhiCredentials",
            Provider::AgLeader => "agLeaderCredentials",
            Provider::Trimble => "trimbleCredentials",
            Provider::RavenSlingshot => "ravenSlingshotCredentials",
            Provider::Stara => "staraCredentials",
        }
    }
}

/// An entry of `allowedProviders`: a provider, or `All` of them. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub enum AllowedProvider {
    JohnDeere,
    ClimateFieldView,
    #[serde(rename = "CNHI")]
    Cnhi,
    AgLeader,
    Trimble,
    RavenSlingshot,
    Stara,
    All,
}

impl AllowedProvider {
    pub fn parse(text: &str) -> Option<AllowedProvider> {
        if text == ALL_PROVIDERS {
            return Some(AllowedProvider::All);
        }
        Provider::parse(text).map(AllowedProvider::from)
    }
}

impl From<Provider> for AllowedProvider {
    fn from(provider: Provider) -> AllowedProvider {
        match provider {
            Provider::JohnDeere => AllowedProvider::JohnDeere,
            Provider::ClimateFieldView => AllowedProvider::ClimateFieldView,
            Provider::Cnhi => AllowedProvider::Cnhi,
            Provider::AgLeader => AllowedProvider::AgLeader,
            Provider::Trimble => AllowedProvider::Trimble,
            Provider::RavenSlingshot => AllowedProvider::RavenSlingshot,
            Provider::Stara => AllowedProvider::Stara,
        }
    }
}

/// The three kinds of magic link. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Widget {
    /// Connects the user to any of several providers.
    Provider,
    /// Connects the user to one provider.
    Authentication,
    /// Lets the user upload files.
    FileUpload,
}

impl Widget {
    pub const ALL: [Widget; 3] = [Widget::Provider, Widget::Authentication, Widget::FileUpload];

    /// The path segment of this widget's endpoints: `/magic-link/{segment}`. [doc]
    pub fn path_segment(self) -> &'static str {
        match self {
            Widget::Provider => "provider",
            Widget::Authentication => "authentication",
            Widget::FileUpload => "file-upload",
        }
    }

    pub fn from_path_segment(segment: &str) -> Option<Widget> {
        Widget::ALL
            .into_iter()
            .find(|widget| widget.path_segment() == segment)
    }

    /// The `objectName` of this widget's create body in `fieldErrors`.
    pub fn object_name(self) -> &'static str {
        match self {
            Widget::Provider => objects::PROVIDER_LINK,
            Widget::Authentication => objects::AUTHENTICATION_LINK,
            Widget::FileUpload => objects::FILE_UPLOAD_LINK,
        }
    }
}

/// `POST /api/authenticate` request body. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateRequest {
    /// The account (any non-blank name in open mode), at most 256 characters. [design]
    #[schemars(length(min = 1, max = USERNAME_MAX_CHARS), regex(pattern = NOT_BLANK))]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub username: String,
    /// Not blank.
    #[schemars(regex(pattern = NOT_BLANK))]
    #[schema(
        pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub password: String,
    /// `true` for a 30-day token, else 24 hours; the strings `"true"`/`"false"` work too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remember_me: Option<RememberMe>,
}

/// `rememberMe`: a boolean or its text. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(untagged)]
pub enum RememberMe {
    Flag(bool),
    Text(RememberMeText),
}

/// `rememberMe` as text: `"true"` or `"false"`, nothing else. [doc]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RememberMeText {
    True,
    False,
}

/// A pattern a string matches when it is not blank, as Leaf's `@NotBlank` fields must be
/// ([`crate::patterns::NOT_BLANK`]).
pub use crate::patterns::NOT_BLANK;

/// `POST /api/authenticate` response body. [doc]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct AuthenticateResponse {
    /// A JWT to send as `Authorization: Bearer <id_token>`.
    pub id_token: String,
}

/// The claims of a linkbox Leaf token. [design]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct TokenClaims {
    /// The account's username.
    pub sub: String,
    /// Always `ROLE_USER`.
    pub auth: String,
    /// Expiry, in seconds since the epoch, on the sandbox clock.
    pub exp: i64,
    /// Issue time, in seconds since the epoch, on the sandbox clock.
    pub iat: i64,
}

/// The look of a magic link's page. [doc]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkSettings {
    /// `#RGB` or `#RRGGBB`; `#F5F5F5` unless set.
    #[schema(example = "#F5F5F5")]
    #[schemars(regex(pattern = BACKGROUND_COLOR_PATTERN))]
    pub background_color: String,
    /// URL of the company logo.
    pub company_logo: Option<String>,
    pub company_name: Option<String>,
    /// URL of the header image.
    pub header_image: Option<String>,
    pub show_leaf_user_name: bool,
    /// Provider and authentication links only; always `false` on file-upload links.
    pub disconnect_enabled: bool,
}

impl Default for LinkSettings {
    fn default() -> LinkSettings {
        LinkSettings {
            background_color: DEFAULT_BACKGROUND_COLOR.to_owned(),
            company_logo: None,
            company_name: None,
            header_image: None,
            show_leaf_user_name: false,
            disconnect_enabled: false,
        }
    }
}

/// Body of the magic-link create endpoints. [doc]
///
/// `allowedProviders` is read on provider links only, `provider` (required) on authentication
/// links only; `externalId` (required), `name` and `email` on the create-with-user paths only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateMagicLinkRequest {
    /// Seconds; 900 (the default) to 31622400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 900, max = 31_622_400))]
    #[schema(minimum = 900, maximum = 31_622_400, example = 900)]
    pub expires_in: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_providers: Option<Vec<AllowedProvider>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<LinkSettingsRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// `settings` in a create body: every field optional. [doc]
/// Documentation of each create body, per widget type and path: what each one reads. The
/// server parses all of them through `CreateMagicLinkRequest`; fields a body's type does not
/// list are ignored (and named in `X-Linkbox-Warning`).
pub mod requests {
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use utoipa::ToSchema;

    use super::{AllowedProvider, LinkSettingsRequest, Provider};

    /// `POST /magic-link/users/{leafUserId}/provider`. [doc]
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ProviderLinkRequest {
        /// Seconds; default 900.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = super::EXPIRES_IN_MIN, max = super::EXPIRES_IN_MAX))]
        #[schema(minimum = 900, maximum = 31622400)]
        pub expires_in: Option<u32>,
        /// Default `["All"]`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub allowed_providers: Option<Vec<AllowedProvider>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub settings: Option<LinkSettingsRequest>,
    }

    /// `POST /magic-link/users/{leafUserId}/authentication`. [doc]
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct AuthenticationLinkRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = super::EXPIRES_IN_MIN, max = super::EXPIRES_IN_MAX))]
        #[schema(minimum = 900, maximum = 31622400)]
        pub expires_in: Option<u32>,
        /// The one provider; never `All`.
        pub provider: Provider,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub settings: Option<LinkSettingsRequest>,
    }

    /// `POST /magic-link/users/{leafUserId}/file-upload`. [doc]
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct FileUploadLinkRequest {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = super::EXPIRES_IN_MIN, max = super::EXPIRES_IN_MAX))]
        #[schema(minimum = 900, maximum = 31622400)]
        pub expires_in: Option<u32>,
        /// `disconnectEnabled` is ignored and stays false on file-upload links.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub settings: Option<LinkSettingsRequest>,
    }

    /// The Leaf user a create-with-user body creates or reuses. [doc]
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct NewLeafUser {
        /// Required: creates the Leaf user, or reuses the account's user with it; not blank.
        #[schemars(length(min = 1), regex(pattern = super::NOT_BLANK))]
        #[schema(
            min_length = 1,
            pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
        )]
        pub external_id: String,
        /// Defaults to `externalId`; not blank when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = super::NOT_BLANK))]
        #[schema(
            pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
        )]
        pub name: Option<String>,
        /// Defaults to `externalId`; not blank when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(regex(pattern = super::NOT_BLANK))]
        #[schema(
            pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
        )]
        pub email: Option<String>,
    }

    /// `POST /magic-link/provider`. [doc]
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct ProviderLinkWithUserRequest {
        #[serde(flatten)]
        pub link: ProviderLinkRequest,
        #[serde(flatten)]
        pub user: NewLeafUser,
    }

    /// `POST /magic-link/authentication`. [doc]
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct AuthenticationLinkWithUserRequest {
        #[serde(flatten)]
        pub link: AuthenticationLinkRequest,
        #[serde(flatten)]
        pub user: NewLeafUser,
    }

    /// `POST /magic-link/file-upload`. [doc]
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
    #[serde(rename_all = "camelCase")]
    pub struct FileUploadLinkWithUserRequest {
        #[serde(flatten)]
        pub link: FileUploadLinkRequest,
        #[serde(flatten)]
        pub user: NewLeafUser,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkSettingsRequest {
    /// `#RGB` or `#RRGGBB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$")]
    #[schemars(regex(pattern = "^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$"))]
    pub background_color: Option<String>,
    /// An `http` or `https` URL that writes its host, with no white space or control
    /// character in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[^/\\\\?#:@\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$"
    )]
    #[schemars(regex(pattern = crate::patterns::WEB_URL))]
    pub company_logo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    /// An `http` or `https` URL that writes its host, as `companyLogo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^[Hh][Tt][Tt][Pp][Ss]?://[^/\\\\?#:@\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000][^\\x00-\\x20\\x7F-\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$"
    )]
    #[schemars(regex(pattern = crate::patterns::WEB_URL))]
    pub header_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_leaf_user_name: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disconnect_enabled: Option<bool>,
}

/// Response of the magic-link create endpoints; `expiresAt` has nine fraction digits. [doc]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MagicLinkCreated {
    pub id: String,
    #[schema(format = "uuid")]
    #[schemars(extend("format" = "uuid"))]
    pub leaf_user_id: String,
    #[schema(format = "uri")]
    #[schemars(url)]
    pub link: String,
    /// When the link stops working: ISO 8601 UTC with exactly nine fraction digits, as the vendor's create responses show them (`2010-10-10T10:10:10.000000000Z`).
    #[schema(format = DateTime, example = "2010-10-10T10:10:10.000000000Z")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
}

/// A magic link as the get and list endpoints show it; times have three fraction digits. [doc]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MagicLink {
    pub id: String,
    #[schema(format = "uri")]
    #[schemars(url)]
    pub link: String,
    /// When the link was created: ISO 8601 UTC with exactly three fraction digits, as the vendor's reads show them (`2010-10-10T10:10:10.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// When the link stops working: ISO 8601 UTC with exactly three fraction digits, as the vendor's reads show them (`2010-10-10T10:10:10.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// When the link's page was last opened, `null` until it is: ISO 8601 UTC with exactly three fraction digits, as the vendor's reads show them (`2010-10-10T10:10:10.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub last_accessed_at: Option<String>,
    #[schema(format = "uuid")]
    #[schemars(extend("format" = "uuid"))]
    pub leaf_user_id: String,
    pub max_usage: u32,
    pub usage_count: u32,
    pub widget: Widget,
    pub settings: LinkSettings,
    /// Provider links only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_providers: Option<Vec<AllowedProvider>>,
    /// Authentication links only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<Provider>,
}

/// Body of `POST` and `PUT /services/usermanagement/api/users`. [doc]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeafUserRequest {
    /// Required on `PUT` (and equal to the path's id, the `id` a read gave); a `POST` that
    /// carries one is refused (`error.idexists`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "uuid")]
    #[schemars(extend("format" = "uuid"))]
    pub id: Option<String>,
    /// Not blank.
    #[schemars(regex(pattern = NOT_BLANK))]
    #[schema(
        pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub name: String,
    /// Not blank.
    #[schemars(regex(pattern = NOT_BLANK))]
    #[schema(
        pattern = "[^\\t\\n\\x0B\\x0C\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]"
    )]
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A provider connection of a Leaf user. [design: the shape the hosted page fills]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProviderCredentials {
    pub id: String,
    /// Always `VALID` in the sandbox.
    pub status: String,
    /// When the provider was connected: ISO 8601 UTC with exactly three fraction digits, as the vendor's reads show them (`2010-10-10T10:10:10.000Z`).
    #[schema(format = DateTime)]
    #[schemars(extend("format" = "date-time"))]
    pub created_time: String,
}

/// A Leaf user. Credentials are `null` until the user connects that provider. [doc]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeafUser {
    #[schema(format = "uuid")]
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub external_id: Option<String>,
    pub john_deere_credentials: Option<ProviderCredentials>,
    pub climate_field_view_credentials: Option<ProviderCredentials>,
    pub cnhi_credentials: Option<ProviderCredentials>,
    pub trimble_credentials: Option<ProviderCredentials>,
    pub ag_leader_credentials: Option<ProviderCredentials>,
    pub raven_slingshot_credentials: Option<ProviderCredentials>,
    pub stara_credentials: Option<ProviderCredentials>,
}

/// The body of every Leaf error response. [design, JHipster's problem format]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// `https://www.jhipster.tech/problem/problem-with-message`, or
    /// `https://www.jhipster.tech/problem/constraint-violation` for a body validation failure.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request's path, without its query.
    pub path: String,
    /// `error.http.<status>`, or `error.validation` for a body validation failure.
    pub message: String,
    /// Every violation of a body validation failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_errors: Option<Vec<FieldError>>,
}

/// One violation in a problem's `fieldErrors`. [design, JHipster]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    pub object_name: String,
    /// Dotted for nested fields: `settings.backgroundColor`.
    pub field: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_round_trips_through_its_wire_name() {
        for provider in Provider::ALL {
            assert_eq!(Provider::parse(provider.as_str()), Some(provider));
            let json = serde_json::to_value(provider).expect("serializes");
            assert_eq!(json, provider.as_str());
            assert_eq!(
                serde_json::to_value(AllowedProvider::from(provider)).expect("serializes"),
                json
            );
        }
        assert_eq!(Provider::parse(ALL_PROVIDERS), None);
        assert_eq!(AllowedProvider::parse("All"), Some(AllowedProvider::All));
        assert_eq!(AllowedProvider::parse("Other"), None);
    }

    #[test]
    fn widgets_show_their_documented_names() {
        let names: Vec<_> = Widget::ALL
            .iter()
            .map(|widget| serde_json::to_value(widget).expect("serializes"))
            .collect();
        assert_eq!(names, ["PROVIDER", "AUTHENTICATION", "FILEUPLOAD"]);
        for widget in Widget::ALL {
            assert_eq!(
                Widget::from_path_segment(widget.path_segment()),
                Some(widget)
            );
        }
    }

    #[test]
    fn the_http_message_names_the_status() {
        assert_eq!(http_message(404), "error.http.404");
    }
}

//! Documentation items of the Leaf operations: `/api/authenticate`, the Leaf users of
//! `/services/usermanagement/api`, and the fifteen magic-link endpoints (plus the legacy
//! singular create paths) of `/services/widgets/api`.

#![allow(dead_code)]

use crate::leaf::*;

/// Authenticate
///
/// Exchanges a username and password for a bearer token (`id_token`) that every other Leaf
/// call takes. It is valid 24 hours, or 30 days with `rememberMe`, on the sandbox clock.
#[utoipa::path(
    post,
    path = "/api/authenticate",
    tag = "Leaf",
    operation_id = "authenticate",
    request_body(content = AuthenticateRequest, content_type = "application/json",
        example = json!({"username": "you@example.com", "password": "secret", "rememberMe": true})),
    responses(
        (status = 200, description = "A bearer token", body = AuthenticateResponse),
        (status = 400, description = "Missing or malformed credentials", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "Bad credentials", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "A new account past --max-tenants", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Body over 10 MiB", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub fn authenticate() {}

/// List Leaf users
///
/// The account's Leaf users, one page at a time (0-based `page`, `size` up to 100). The
/// filters match exactly; the total is in `X-Total-Count`.
#[utoipa::path(
    get,
    path = "/services/usermanagement/api/users",
    tag = "Leaf",
    operation_id = "listLeafUsers",
    params(
        ("email" = Option<String>, Query, description = "Only users with this email"),
        ("name" = Option<String>, Query, description = "Only users with this name"),
        ("externalId" = Option<String>, Query, description = "Only the user with this externalId"),
        ("page" = Option<i64>, Query, description = "0-based page", minimum = 0, maximum = 4294967295_u64),
        ("size" = Option<u32>, Query, description = "Page size", minimum = 1, maximum = 100),
    ),
    responses(
        (status = 200, description = "The users", body = Vec<LeafUser>,
            headers(("X-Total-Count" = u64, description = "Users matching"),
                ("Link" = String, description = "next/prev/last/first pages"))),
        (status = 400, description = "Bad paging", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem,
            content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub fn list_users() {}

/// Get a Leaf user
///
/// One Leaf user, with a credentials object for each provider they connected (`null` for the
/// others).
#[utoipa::path(
    get,
    path = "/services/usermanagement/api/users/{id}",
    tag = "Leaf",
    operation_id = "getLeafUser",
    params(("id" = String, Path, description = "The Leaf user's UUID")),
    responses(
        (status = 200, description = "The user", body = LeafUser),
        (status = 401, description = "Missing, invalid or expired token", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown user, or another account's", body = Problem,
            content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub fn get_user() {}

/// Create a Leaf user
///
/// Creates a Leaf user in the account; `name` and `email` are required, and an `externalId`
/// may be used by one user only. The new user's URL is in `Location`.
#[utoipa::path(
    post,
    path = "/services/usermanagement/api/users",
    tag = "Leaf",
    operation_id = "createLeafUser",
    request_body(content = LeafUserRequest, content_type = "application/json",
        example = json!({"name": "Ana Ruiz", "email": "ana@example.com", "externalId": "farm-42"})),
    responses(
        (status = 201, description = "Created", body = LeafUser,
            headers(("Location" = String, description = "The new user's URL"))),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The account's or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) is full, or a new \
            account past --max-tenants", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 10 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub fn create_user() {}

/// Replace a Leaf user
///
/// A full replace of the user's fields: send all of them. The body's `id`, when given, must
/// equal the path's.
#[utoipa::path(
    put,
    path = "/services/usermanagement/api/users/{id}",
    tag = "Leaf",
    operation_id = "replaceLeafUser",
    params(("id" = String, Path, description = "The Leaf user's UUID")),
    request_body(content = LeafUserRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = LeafUser),
        (status = 400, description = "Invalid body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The account's or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) is full, or a new \
            account past --max-tenants", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown user", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 10 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub fn replace_user() {}

/// Replace a Leaf user named by the body's `id`
///
/// The same as replacing through the user's own path, for clients that send the `id` in the
/// body only.
#[utoipa::path(
    put,
    path = "/services/usermanagement/api/users",
    tag = "Leaf",
    operation_id = "replaceLeafUserById",
    request_body(content = LeafUserRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Replaced", body = LeafUser),
        (status = 400, description = "Invalid body, or no id", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "The account's or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) is full, or a new \
            account past --max-tenants", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown user", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 10 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub fn replace_user_by_body() {}

/// Delete a Leaf user
///
/// Removes the user from the account; getting it afterwards is 404.
#[utoipa::path(
    delete,
    path = "/services/usermanagement/api/users/{id}",
    tag = "Leaf",
    operation_id = "deleteLeafUser",
    params(("id" = String, Path, description = "The Leaf user's UUID")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, invalid or expired token", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown user", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub fn delete_user() {}

/// The five endpoints of one widget type, and its legacy singular create path.
macro_rules! magic_link_paths {
    (
        $module:ident, $label:literal, $id:literal, what: $what:literal,
        for_user_body: $for_user_body:ty,
        with_user_body: $with_user_body:ty,
        list: $list:literal, one: $one:literal, for_user: $for_user:literal,
        legacy: $legacy:literal, with_user: $with_user:literal,
        example: $example:tt
    ) => {
        pub mod $module {
            #![allow(dead_code, deprecated)]

            use crate::leaf::requests::*;
            use crate::leaf::*;

            #[utoipa::path(
                get,
                path = $list,
                summary = concat!("List ", $label, " magic links"),
                description = concat!("The account's ", $label, " magic links (a ", $label,
                    " link ", $what, "), newest first, optionally for one Leaf user. A bare \
                    array; paged, with X-Total-Count and Link headers, only when page or size \
                    is given."),
                tag = "Leaf",
                operation_id = concat!("list", $id, "MagicLink"),
                params(
                    ("leafUserId" = Option<String>, Query, description = "Only this user's links"),
                    ("page" = Option<i64>, Query, description = "0-based page", minimum = 0, maximum = 4294967295_u64),
                    ("size" = Option<u32>, Query, description = "Page size", minimum = 1, maximum = 100),
                ),
                responses(
                    (status = 200, description = "The links", body = Vec<MagicLink>,
                        headers(("X-Total-Count" = u64,
                                description = "Links matching; only when page or size is given"),
                            ("Link" = String,
                                description = "next/prev/last/first pages; only when page or size is given"))),
                    (status = 400, description = "Bad paging", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 401, description = "Missing, invalid or expired token", body = Problem,
                        content_type = "application/problem+json"),
                ),
                security(("bearer" = []))
            )]
            pub fn list() {}

            #[utoipa::path(
                get,
                path = $one,
                summary = concat!("Get a ", $label, " magic link"),
                description = concat!("One ", $label, " magic link, with its usage count and \
                    when its page was last opened. A link of another type, or of another \
                    account, is answered as unknown."),
                tag = "Leaf",
                operation_id = concat!("get", $id, "MagicLink"),
                params(("magicLinkId" = String, Path, description = "The link's id")),
                responses(
                    (status = 200, description = "The link (timestamps with 3 fraction digits)",
                        body = MagicLink),
                    (status = 401, description = "Missing, invalid or expired token", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 404, description = "Unknown link, another type's, or another account's",
                        body = Problem, content_type = "application/problem+json"),
                ),
                security(("bearer" = []))
            )]
            pub fn get() {}

            #[utoipa::path(
                delete,
                path = $one,
                summary = concat!("Delete a ", $label, " magic link"),
                description = concat!("Deletes a ", $label, " magic link; its page stops \
                    working at once."),
                tag = "Leaf",
                operation_id = concat!("delete", $id, "MagicLink"),
                params(("magicLinkId" = String, Path, description = "The link's id")),
                responses(
                    (status = 204, description = "Deleted"),
                    (status = 401, description = "Missing, invalid or expired token", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 404, description = "Unknown link", body = Problem,
                        content_type = "application/problem+json"),
                ),
                security(("bearer" = []))
            )]
            pub fn delete() {}

            #[utoipa::path(
                post,
                path = $for_user,
                summary = concat!("Create a ", $label, " magic link for an existing Leaf user"),
                description = concat!("Creates a link that ", $what, ", for the Leaf user \
                    in the path. It works until it expires (expiresIn seconds, 900 by default) \
                    or has been opened as often as the account allows."),
                tag = "Leaf",
                operation_id = concat!("createForUser", $id, "MagicLink"),
                params(("leafUserId" = String, Path, description = "The Leaf user's UUID")),
                request_body(content = $for_user_body, content_type = "application/json",
                    description = "The link's settings",
                    example = json!($example)),
                responses(
                    (status = 200, description = "Created (expiresAt with 9 fraction digits)",
                        body = MagicLinkCreated),
                    (status = 400, description = "Every violation, in fieldErrors", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 401, description = "Missing, invalid or expired token", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 403, description = "The account's or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) is full, or a new \
                        account past --max-tenants", body = Problem, content_type = "application/problem+json"),
                    (status = 404, description = "Leaf user not found", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 413, description = "Body over 10 MiB", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 415, description = "Not JSON", body = Problem,
                        content_type = "application/problem+json"),
                ),
                security(("bearer" = []))
            )]
            pub fn create_for_user() {}

            #[utoipa::path(
                post,
                path = $legacy,
                summary = concat!("Create a ", $label, " magic link (legacy singular path)"),
                description = concat!("The same as creating a ", $label, " magic link \
                    through /magic-link/users/{leafUserId}/..., on the path the vendor used \
                    until November 2023; still accepted."),
                tag = "Leaf",
                operation_id = concat!("createLegacy", $id, "MagicLink"),
                params(("leafUserId" = String, Path, description = "The Leaf user's UUID")),
                request_body(content = $for_user_body, content_type = "application/json",
                    description = "The link's settings"),
                responses(
                    (status = 200, description = "Created", body = MagicLinkCreated),
                    (status = 400, description = "Every violation, in fieldErrors", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 401, description = "Missing, invalid or expired token", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 403, description = "The account's or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) is full, or a new \
                        account past --max-tenants", body = Problem, content_type = "application/problem+json"),
                    (status = 404, description = "Leaf user not found", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 413, description = "Body over 10 MiB", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 415, description = "Not JSON", body = Problem,
                        content_type = "application/problem+json"),
                ),
                security(("bearer" = []))
            )]
            #[deprecated = "the vendor renamed this path to /magic-link/users/{leafUserId}/... in November 2023"]
            pub fn create_legacy() {}

            #[utoipa::path(
                post,
                path = $with_user,
                summary = concat!("Create a ", $label, " magic link and its Leaf user"),
                description = concat!("Creates a link that ", $what, ". The externalId is \
                    required: it creates the Leaf user, or reuses the account's user with \
                    that externalId (name and email default to it)."),
                tag = "Leaf",
                operation_id = concat!("createWithUser", $id, "MagicLink"),
                request_body(content = $with_user_body, content_type = "application/json"),
                responses(
                    (status = 200, description = "Created", body = MagicLinkCreated),
                    (status = 400, description = "Every violation, in fieldErrors", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 401, description = "Missing, invalid or expired token", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 403, description = "The account's or the sandbox's storage budget (--max-tenant-mib, --max-stored-mib) is full, or a new \
                        account past --max-tenants", body = Problem, content_type = "application/problem+json"),
                    (status = 413, description = "Body over 10 MiB", body = Problem,
                        content_type = "application/problem+json"),
                    (status = 415, description = "Not JSON", body = Problem,
                        content_type = "application/problem+json"),
                ),
                security(("bearer" = []))
            )]
            pub fn create_with_user() {}
        }
    };
}

magic_link_paths!(
    provider, "provider", "Provider",
    what: "lets the user connect any of the allowed providers",
    for_user_body: Option<ProviderLinkRequest>,
    with_user_body: ProviderLinkWithUserRequest,
    list: "/services/widgets/api/magic-link/provider",
    one: "/services/widgets/api/magic-link/provider/{magicLinkId}",
    for_user: "/services/widgets/api/magic-link/users/{leafUserId}/provider",
    legacy: "/services/widgets/api/magic-link/user/{leafUserId}/provider",
    with_user: "/services/widgets/api/magic-link/provider",
    example: {"expiresIn": 900, "allowedProviders": ["JohnDeere", "ClimateFieldView"],
        "settings": {"backgroundColor": "#F5F5F5", "companyName": "Acme Farms",
            "showLeafUserName": true, "disconnectEnabled": false}}
);

magic_link_paths!(
    authentication, "authentication", "Authentication",
    what: "lets the user connect one provider",
    for_user_body: AuthenticationLinkRequest,
    with_user_body: AuthenticationLinkWithUserRequest,
    list: "/services/widgets/api/magic-link/authentication",
    one: "/services/widgets/api/magic-link/authentication/{magicLinkId}",
    for_user: "/services/widgets/api/magic-link/users/{leafUserId}/authentication",
    legacy: "/services/widgets/api/magic-link/user/{leafUserId}/authentication",
    with_user: "/services/widgets/api/magic-link/authentication",
    example: {"expiresIn": 900, "provider": "JohnDeere"}
);

magic_link_paths!(
    file_upload, "file upload", "FileUpload",
    what: "lets the user upload files",
    for_user_body: Option<FileUploadLinkRequest>,
    with_user_body: FileUploadLinkWithUserRequest,
    list: "/services/widgets/api/magic-link/file-upload",
    one: "/services/widgets/api/magic-link/file-upload/{magicLinkId}",
    for_user: "/services/widgets/api/magic-link/users/{leafUserId}/file-upload",
    legacy: "/services/widgets/api/magic-link/user/{leafUserId}/file-upload",
    with_user: "/services/widgets/api/magic-link/file-upload",
    example: {"expiresIn": 3600, "settings": {"companyName": "Acme Farms"}}
);

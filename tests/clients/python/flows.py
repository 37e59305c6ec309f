"""The vendors' documented flows, run against a linkbox with a client that
openapi-python-client generated from its own /openapi.json.

Usage: python flows.py http://127.0.0.1:PORT   (run by `cargo xtask clients`, with the
generated `linkbox_client` package on PYTHONPATH). It checks the typed results, not just the
statuses, and exits non-zero on the first answer that is not what the document promises.
"""

from __future__ import annotations

import datetime
import re
import secrets
import string
import sys
import time
from http import HTTPStatus
from typing import Any, TypeVar

from linkbox_client import AuthenticatedClient, Client
from linkbox_client.api.leaf import (
    authenticate,
    create_for_user_authentication_magic_link,
    create_for_user_provider_magic_link,
    create_leaf_user,
    create_with_user_file_upload_magic_link,
    create_with_user_provider_magic_link,
    delete_leaf_user,
    delete_provider_magic_link,
    get_authentication_magic_link,
    get_leaf_user,
    get_provider_magic_link,
    list_file_upload_magic_link,
    list_leaf_users,
    list_provider_magic_link,
    replace_leaf_user,
    replace_leaf_user_by_id,
)
from linkbox_client.api.m2m import (
    create_link,
    fulfil_data_request,
    get_link,
    list_links,
    regenerate_webhook_secret,
    revoke_link,
)
from linkbox_client.api.sandbox import add_fault, get_drift, get_drift_junit, list_webhooks, open_link
from linkbox_client.models import (
    AllowedProvider,
    AuthenticateRequest,
    AuthenticationLinkRequest,
    BankAccount,
    CreateLinkRequest,
    CreateLinkResponse,
    ErrorEnvelope,
    FaultRequest,
    FileUploadLinkWithUserRequest,
    FulfilDataRequest,
    Language,
    LeafUser,
    LeafUserRequest,
    LinkDetailResponse,
    LinkSettingsRequest,
    LinkStatus,
    MagicLink,
    MagicLinkCreated,
    Metadata,
    OpenLinkRequest,
    PaymentKind,
    PaymentMethod,
    PersonName,
    Problem,
    Provider,
    ProviderLinkWithUserRequest,
    RegeneratedSecret,
    RevokeRequest,
    UserData,
    Visibility,
    Widget,
)
from linkbox_client.types import Response

T = TypeVar("T")
checks = 0


class Mismatch(Exception):
    """An answer that is not what the document promises."""


def check(condition: bool, what: str, seen: Any = None) -> None:
    global checks
    checks += 1
    if not condition:
        raise Mismatch(what if seen is None else f"{what}: got {seen!r}")


def ok(response: Response[Any], status: int, kind: type[T], what: str) -> T:
    """The typed body of an answer with the expected status."""
    check(response.status_code == status, f"{what}: status {status}",
          (response.status_code, response.content[:300]))
    check(isinstance(response.parsed, kind), f"{what}: a {kind.__name__}", response.parsed)
    return response.parsed  # type: ignore[return-value]


def utc(value: Any, what: str) -> datetime.datetime:
    check(isinstance(value, datetime.datetime), f"{what} is a datetime", value)
    check(value.utcoffset() == datetime.timedelta(0), f"{what} is in UTC", value)
    return value


def m2m(base_url: str) -> None:
    key = "m2m_test_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    client = AuthenticatedClient(base_url=base_url, token=key, prefix="", auth_header_name="X-API-Key")
    reference_id = f"py-{time.time_ns()}"

    # The vendor's create example; metadata from a plain dict, userData missing CIP fields.
    request = CreateLinkRequest(
        reference_id=reference_id,
        expires_in_minutes=120,
        metadata=Metadata.from_dict({"orderId": "ORD-2026-001", "campaign": "february-promo"}),
        user_data=UserData(
            name=PersonName(first_name="Gonzalo", last_name="Díaz"),
            payment_method=PaymentMethod(
                type_=PaymentKind.BANK_ACCOUNT,
                bank_account=BankAccount(country="MX", account_number="012180001234567891"),
            ),
        ),
        flow="m2m-basic",
        theme="dark",
        language=Language.ES,
        callback_url="https://api.example.com/callbacks/m2m",
    )
    created = ok(create_link.sync_detailed(client=client, body=request), 201, CreateLinkResponse, "create").data
    check(created.status == LinkStatus.CREATED, "a new link is created", created.status)
    expires_at = utc(created.expires_at, "expiresAt")
    created_at = utc(created.created_at, "createdAt")
    check(expires_at - created_at == datetime.timedelta(minutes=120), "the link lives 120 minutes",
          expires_at - created_at)
    link_id = created.link_id

    # The same request built from plain dicts, as a caller holding JSON would.
    from_json = CreateLinkRequest.from_dict({
        "referenceId": f"{reference_id}-json",
        "metadata": {"orderId": "ORD-2026-002"},
        "userData": {"paymentMethod": {"type": "cash", "cash": {"provider": "OXXO", "reference": "R-1"}}},
    })
    check(from_json.to_dict()["metadata"] == {"orderId": "ORD-2026-002"}, "metadata round-trips a dict",
          from_json.to_dict())
    json_link = ok(create_link.sync_detailed(client=client, body=from_json), 201, CreateLinkResponse,
                   "create from a dict").data

    detail = ok(get_link.sync_detailed(link_id, client=client), 200, LinkDetailResponse, "detail").data
    check(isinstance(detail.metadata, Metadata) and detail.metadata["orderId"] == "ORD-2026-001",
          "metadata comes back", detail.metadata)
    check(detail.user_data is not None and detail.user_data["paymentMethod"]["type"] == "bank_account",
          "userData comes back", detail.user_data)
    check(detail.language == Language.ES and detail.theme == "dark", "the settings come back", detail)
    check(str(detail.token) == str(created.token), "the detail shows the token", detail.token)

    page = list_links.sync(client=client, status=LinkStatus.CREATED, visibility=Visibility.ACTIVE,
                           reference_id=reference_id, from_=created_at, page=1, limit=5)
    check(page is not None and hasattr(page, "data"), "the list answers a page", page)
    check([item.link_id for item in page.data.items] == [link_id], "the filters find the link", page.data.items)
    check(page.data.pagination.total == 1, "the pagination counts it", page.data.pagination)

    # The end user opens the link; a data request asks for the missing CIP fields.
    opened = open_link.sync(link_id, client=client,
                            body=OpenLinkRequest(user_agent="Mozilla/5.0", platform="web", language="es"))
    check(opened is not None and getattr(opened, "first_open", False), "the first open opens the link", opened)
    data_request = opened.data_request
    check(data_request is not None and "idNumber" in data_request.required_fields,
          "opening asks for idNumber", data_request)
    utc(data_request.expires_at, "the data request's expiresAt")
    bare_open = open_link.sync_detailed(json_link.link_id, client=client)
    check(bare_open.status_code == HTTPStatus.OK, "a link opens without a body", bare_open.content)

    fulfilled = fulfil_data_request.sync(
        data_request.data_request_id,
        client=client,
        body=FulfilDataRequest(
            reference_id=reference_id,
            user_data=UserData(
                name=PersonName(second_name="Luis", second_last_name="Ruiz"),
                id_number="GODE561231HDFRRN09",
                id_type="CURP",
                dob=datetime.date(1956, 12, 31),
            ),
        ),
    )
    check(fulfilled is not None and getattr(fulfilled, "success", False), "the request is fulfilled", fulfilled)
    check(fulfilled.data.status.value == "fulfilled", "its status says so", fulfilled.data.status)
    utc(fulfilled.data.fulfilled_at, "fulfilledAt")
    merged = ok(get_link.sync_detailed(link_id, client=client), 200, LinkDetailResponse, "detail after fulfil").data
    check(merged.user_data["idNumber"] == "GODE561231HDFRRN09", "the data is merged", merged.user_data)
    check(merged.status == LinkStatus.OPENED, "the link is opened", merged.status)
    utc(merged.opened_at, "openedAt")

    # Revoke with a reason, and another link with no body at all.
    revoked = revoke_link.sync(link_id, client=client, body=RevokeRequest(reason="User requested"))
    check(revoked is not None and revoked.data.status == LinkStatus.REVOKED, "the link is revoked", revoked)
    utc(revoked.data.revoked_at, "revokedAt")
    after = ok(get_link.sync_detailed(link_id, client=client), 200, LinkDetailResponse, "detail after revoke").data
    check(after.revoke_reason == "User requested", "the reason is kept", after.revoke_reason)
    bare = revoke_link.sync(client=client, link_id=json_link.link_id)
    check(bare is not None and bare.data.status == LinkStatus.REVOKED, "a bare revoke revokes", bare)
    twice = revoke_link.sync_detailed(client=client, link_id=json_link.link_id)
    check(twice.status_code == HTTPStatus.BAD_REQUEST and twice.parsed.error.code.value == "INVALID_REQUEST",
          "a revoked link cannot be revoked", twice.content)

    # The vendor's documented 500, as a fault injects it, is an ErrorEnvelope too.
    fault = add_fault.sync_detailed(client=client, body=FaultRequest(
        method="POST", path="/partner/links", status=500, times=1))
    check(fault.status_code == HTTPStatus.CREATED, "a fault is set", fault.content)
    failed = create_link.sync_detailed(client=client, body=CreateLinkRequest(reference_id=f"{reference_id}-500"))
    check(failed.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
          and isinstance(failed.parsed, ErrorEnvelope)
          and failed.parsed.error.code.value == "INTERNAL_ERROR",
          "an injected 500 is a typed ErrorEnvelope", (failed.status_code, failed.content))

    secret = regenerate_webhook_secret.sync(client=client)
    check(isinstance(secret, RegeneratedSecret) and re.fullmatch(r"whsec_[A-Za-z0-9]{24}", secret.webhook_secret),
          "a new secret", secret)

    deliveries = list_webhooks.sync(client=client)
    check(deliveries is not None and hasattr(deliveries, "deliveries"), "the deliveries", deliveries)
    events = {delivery.event for delivery in deliveries.deliveries}
    check({"link.created", "link.opened", "user.data_request"} <= events, "the webhooks were queued", events)
    hook = next(d for d in deliveries.deliveries
                if d.event == "link.created" and d.payload["data"]["linkId"] == link_id)
    check(hook.payload["data"]["metadata"]["campaign"] == "february-promo", "webhooks carry the metadata",
          hook.payload.to_dict())
    utc(hook.created_at, "a delivery's createdAt")

    drift = get_drift.sync(client=client)
    check(drift is not None and drift.compared == 0, "the drift report, as JSON", drift)
    junit = get_drift_junit.sync(client=client)
    check(isinstance(junit, str) and junit.startswith("<?xml") and "<testsuites" in junit,
          "the drift report as JUnit XML, read as text", junit)


def leaf(base_url: str) -> None:
    token = authenticate.sync(
        client=Client(base_url=base_url),
        body=AuthenticateRequest(username=f"py-{time.time_ns()}@example.com", password="secret", remember_me=True),
    )
    check(token is not None and hasattr(token, "id_token"), "a token", token)
    client = AuthenticatedClient(base_url=base_url, token=token.id_token)

    email = f"ana-{time.time_ns()}@example.com"
    user = ok(create_leaf_user.sync_detailed(client=client, body=LeafUserRequest(
        name="Ana Ruiz", email=email, external_id="farm-42")), 201, LeafUser, "create a user")
    check(user.john_deere_credentials is None, "no provider is connected yet", user)
    user_id = str(user.id)
    got = ok(get_leaf_user.sync_detailed(user_id, client=client), 200, LeafUser, "get the user")
    check(got.email == email, "the user reads back", got)
    listed = list_leaf_users.sync(client=client, email=email, page=0, size=10)
    check(isinstance(listed, list) and [str(u.id) for u in listed] == [user_id], "the email filter finds the user",
          listed)
    # The id as read (a UUID) goes back in the body as it is.
    replaced = ok(replace_leaf_user.sync_detailed(user_id, client=client, body=LeafUserRequest(
        id=user.id, name="Ana María Ruiz", email=email, external_id="farm-42", phone="+52 55 1234 5678")),
        200, LeafUser, "replace the user")
    check(replaced.name == "Ana María Ruiz" and replaced.phone == "+52 55 1234 5678", "the user is replaced", replaced)
    by_body = ok(replace_leaf_user_by_id.sync_detailed(client=client, body=LeafUserRequest(
        id=user.id, name="Ana M. Ruiz", email=email)), 200, LeafUser, "replace the user by body")
    check(by_body.name == "Ana M. Ruiz", "the user is replaced by body", by_body)

    provider = ok(create_with_user_provider_magic_link.sync_detailed(client=client, body=ProviderLinkWithUserRequest(
        external_id="farm-7",
        expires_in=900,
        allowed_providers=[AllowedProvider.JOHNDEERE, AllowedProvider.CLIMATEFIELDVIEW],
        settings=LinkSettingsRequest(company_name="Acme Farms", show_leaf_user_name=True),
    )), 200, MagicLinkCreated, "create a provider link with its user")
    utc(provider.expires_at, "a create's nine-digit expiresAt")
    for_user = ok(create_for_user_provider_magic_link.sync_detailed(user_id, client=client), 200, MagicLinkCreated,
                  "create a provider link without a body")
    check(str(for_user.leaf_user_id) == user_id, "the link is the user's", for_user)
    link = ok(get_provider_magic_link.sync_detailed(provider.id, client=client), 200, MagicLink,
              "get the provider link")
    check(link.widget == Widget.PROVIDER and link.usage_count == 0, "a provider link", link)
    check(link.allowed_providers == [AllowedProvider.JOHNDEERE, AllowedProvider.CLIMATEFIELDVIEW], "its providers",
          link.allowed_providers)
    check(link.settings.company_name == "Acme Farms", "its settings", link.settings)
    check(link.last_accessed_at is None, "never opened", link.last_accessed_at)
    check(utc(link.expires_at, "expiresAt") - utc(link.created_at, "createdAt") == datetime.timedelta(seconds=900),
          "it lives 900 seconds", link)
    mine = list_provider_magic_link.sync(client=client, leaf_user_id=user_id)
    check(isinstance(mine, list) and [m.id for m in mine] == [for_user.id], "the list filters by user", mine)
    deleted = delete_provider_magic_link.sync_detailed(for_user.id, client=client)
    check(deleted.status_code == HTTPStatus.NO_CONTENT, "the provider link is deleted", deleted.status_code)
    gone = get_provider_magic_link.sync_detailed(for_user.id, client=client)
    check(gone.status_code == HTTPStatus.NOT_FOUND and isinstance(gone.parsed, Problem), "a deleted link is 404",
          gone.parsed)

    authentication = ok(create_for_user_authentication_magic_link.sync_detailed(
        user_id, client=client, body=AuthenticationLinkRequest(provider=Provider.JOHNDEERE, expires_in=900)),
        200, MagicLinkCreated, "create an authentication link")
    auth_link = ok(get_authentication_magic_link.sync_detailed(authentication.id, client=client), 200, MagicLink,
                   "get the authentication link")
    check(auth_link.widget == Widget.AUTHENTICATION and auth_link.provider == Provider.JOHNDEERE,
          "an authentication link", auth_link)

    upload = ok(create_with_user_file_upload_magic_link.sync_detailed(client=client, body=FileUploadLinkWithUserRequest(
        external_id="farm-9", expires_in=3600, settings=LinkSettingsRequest(company_name="Acme Farms"))),
        200, MagicLinkCreated, "create a file-upload link with its user")
    uploads = list_file_upload_magic_link.sync(client=client)
    found = [u for u in uploads or [] if u.id == upload.id]
    check(len(found) == 1 and found[0].widget == Widget.FILEUPLOAD and found[0].settings.disconnect_enabled is False,
          "a file-upload link", found)

    removed = delete_leaf_user.sync_detailed(user_id, client=client)
    check(removed.status_code == HTTPStatus.NO_CONTENT, "the user is deleted", removed.status_code)
    after = get_leaf_user.sync_detailed(user_id, client=client)
    check(after.status_code == HTTPStatus.NOT_FOUND, "a deleted user is 404", after.status_code)


def main() -> int:
    if len(sys.argv) != 2 or not sys.argv[1].startswith("http"):
        print("usage: python flows.py http://127.0.0.1:PORT", file=sys.stderr)
        return 2
    try:
        m2m(sys.argv[1])
        leaf(sys.argv[1])
    except Mismatch as error:
        print(f"python client: FAILED after {checks} checks: {error}", file=sys.stderr)
        return 1
    print(f"python client: {checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

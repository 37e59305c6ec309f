// The vendors' documented flows, run against a linkbox with a client generated from its own
// /openapi.json: openapi-typescript writes ../generated/linkbox.ts, openapi-fetch sends the
// requests. It compiles only if the document types what the vendors' examples send, and it
// exits non-zero on the first answer that is not what the document promises.
//
// Usage: node build/src/flows.js http://127.0.0.1:PORT   (run by `cargo xtask clients`)

import createClient from "openapi-fetch";
import type { components, paths } from "../generated/linkbox.js";

type Schemas = components["schemas"];

const baseUrl = process.argv[2] ?? process.env.LINKBOX_URL ?? "";
if (!baseUrl.startsWith("http")) {
  console.error("usage: node build/src/flows.js http://127.0.0.1:PORT");
  process.exit(2);
}

let checks = 0;

/** Fails the run, naming what was expected, when `condition` does not hold. */
function check(condition: boolean, what: string, seen?: unknown): asserts condition {
  checks += 1;
  if (!condition) {
    throw new Error(`${what}${seen === undefined ? "" : `: got ${JSON.stringify(seen)}`}`);
  }
}

/** The body of a successful answer with the expected status. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }, status: number, what: string): T {
  check(result.response.status === status, `${what}: status ${status}`, {
    status: result.response.status,
    error: result.error,
  });
  check(result.data !== undefined, `${what}: a body`);
  return result.data;
}

function randomKey(): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let secret = "";
  for (let i = 0; i < 32; i++) {
    secret += alphabet[Math.floor(Math.random() * alphabet.length)];
  }
  return `m2m_test_${secret}`;
}

const MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const NANOS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/;

/** A member of a free-form object, read without casting the object. */
function member(object: { [key: string]: unknown } | null | undefined, ...path: string[]): unknown {
  let value: unknown = object;
  for (const key of path) {
    if (typeof value !== "object" || value === null) {
      return undefined;
    }
    value = (value as { [key: string]: unknown })[key];
  }
  return value;
}

async function m2m(): Promise<void> {
  const key = randomKey();
  const client = createClient<paths>({ baseUrl, headers: { "X-API-Key": key } });
  const referenceId = `ts-${Date.now()}`;

  // The vendor's create example, with userData missing CIP fields so that opening the link
  // asks for them.
  const request: Schemas["CreateLinkRequest"] = {
    referenceId,
    expiresInMinutes: 120,
    metadata: { orderId: "ORD-2026-001", campaign: "february-promo" },
    userData: {
      name: { firstName: "Gonzalo", lastName: "Díaz" },
      paymentMethod: {
        type: "bank_account",
        bankAccount: { country: "MX", accountNumber: "012180001234567891" },
      },
    },
    flow: "m2m-basic",
    theme: "dark",
    language: "es",
    callbackUrl: "https://api.example.com/callbacks/m2m",
  };
  const created = ok(await client.POST("/partner/links", { body: request }), 201, "create").data;
  check(created.status === "created", "a new link is created", created.status);
  check(created.referenceId === referenceId, "the link keeps the referenceId", created.referenceId);
  check(MILLIS.test(created.expiresAt), "expiresAt has three fraction digits", created.expiresAt);
  const lifetime = Date.parse(created.expiresAt) - Date.parse(created.createdAt);
  check(lifetime === 120 * 60_000, "the link lives 120 minutes", lifetime);
  const linkId = created.linkId;

  const detail = ok(
    await client.GET("/partner/links/{linkId}", { params: { path: { linkId } } }),
    200,
    "detail",
  ).data;
  check(member(detail.metadata, "orderId") === "ORD-2026-001", "metadata comes back", detail.metadata);
  check(member(detail.userData, "paymentMethod", "type") === "bank_account", "userData comes back", detail.userData);
  check(detail.language === "es" && detail.theme === "dark" && detail.flow === "m2m-basic", "the settings come back", detail);
  check(detail.token === created.token, "the detail shows the token");

  const page = ok(
    await client.GET("/partner/links", {
      params: {
        query: {
          status: "created",
          visibility: "active",
          referenceId,
          from: created.createdAt,
          page: 1,
          limit: 5,
        },
      },
    }),
    200,
    "list with filters",
  ).data;
  check(page.items.length === 1 && page.items[0]?.linkId === linkId, "the filters find the link", page.items);
  check(page.pagination.total === 1 && page.pagination.limit === 5, "the pagination counts it", page.pagination);
  const none = ok(
    await client.GET("/partner/links", { params: { query: { status: "revoked", referenceId } } }),
    200,
    "list revoked",
  ).data;
  check(none.items.length === 0, "no revoked link yet", none.items);

  // The end user opens the link; their data lacks CIP fields, so a data request is made.
  const opened = ok(
    await client.POST("/_sandbox/m2m/links/{linkId}/open", {
      params: { path: { linkId } },
      body: { userAgent: "Mozilla/5.0", platform: "web", language: "es" },
    }),
    200,
    "open",
  );
  check(opened.firstOpen && opened.status === "opened", "the first open opens the link", opened);
  const dataRequest = opened.dataRequest;
  check(dataRequest !== null && dataRequest !== undefined, "opening asks for the missing data", opened);
  check(dataRequest.requiredFields.includes("idNumber"), "idNumber is asked for", dataRequest.requiredFields);

  const fulfilled = ok(
    await client.PUT("/partner/data-requests/{dataRequestId}", {
      params: { path: { dataRequestId: dataRequest.dataRequestId } },
      body: {
        referenceId,
        userData: {
          name: { secondName: "Luis", secondLastName: "Ruiz" },
          idNumber: "GODE561231HDFRRN09",
          idType: "CURP",
          dob: "1956-12-31",
        },
      },
    }),
    200,
    "fulfil",
  ).data;
  check(fulfilled.status === "fulfilled" && fulfilled.linkId === linkId, "the request is fulfilled", fulfilled);
  const again = await client.PUT("/partner/data-requests/{dataRequestId}", {
    params: { path: { dataRequestId: dataRequest.dataRequestId } },
    body: { referenceId, userData: { idNumber: "X" } },
  });
  check(again.response.status === 400 && again.error?.error.code === "INVALID_REQUEST", "a second fulfil is refused", again.error);
  const merged = ok(
    await client.GET("/partner/links/{linkId}", { params: { path: { linkId } } }),
    200,
    "detail after fulfil",
  ).data;
  check(member(merged.userData, "idNumber") === "GODE561231HDFRRN09", "the data is merged", merged.userData);
  check(member(merged.userData, "name", "firstName") === "Gonzalo", "the first data is kept", merged.userData);
  check(merged.openedAt !== null && merged.openedAt !== undefined && MILLIS.test(merged.openedAt), "openedAt is set", merged.openedAt);

  // Revoke with a reason, then another link without a body.
  const revoked = ok(
    await client.POST("/partner/links/{linkId}/revoke", {
      params: { path: { linkId } },
      body: { reason: "User requested" },
    }),
    200,
    "revoke with a reason",
  ).data;
  check(revoked.status === "revoked" && revoked.linkId === linkId, "the link is revoked", revoked);
  const afterRevoke = ok(
    await client.GET("/partner/links/{linkId}", { params: { path: { linkId } } }),
    200,
    "detail after revoke",
  ).data;
  check(afterRevoke.revokeReason === "User requested", "the reason is kept", afterRevoke.revokeReason);

  const second = ok(
    await client.POST("/partner/links", { body: { referenceId: `${referenceId}-2` } }),
    201,
    "create without options",
  ).data;
  const bare = ok(
    await client.POST("/partner/links/{linkId}/revoke", { params: { path: { linkId: second.linkId } } }),
    200,
    "revoke without a body",
  ).data;
  check(bare.status === "revoked", "a bare revoke revokes", bare);
  const twice = await client.POST("/partner/links/{linkId}/revoke", {
    params: { path: { linkId: second.linkId } },
  });
  check(twice.response.status === 400 && twice.error?.success === false, "a revoked link cannot be revoked", twice.error);

  const secret = ok(
    await client.POST("/partner/webhooks/config/regenerate-secret"),
    200,
    "regenerate the secret",
  );
  check(/^whsec_[A-Za-z0-9]{24}$/.test(secret.webhookSecret), "a new secret", secret.webhookSecret);

  const deliveries = ok(await client.GET("/_sandbox/webhooks"), 200, "webhook deliveries").deliveries;
  const events = new Set(deliveries.map((delivery) => delivery.event));
  for (const event of ["link.created", "link.opened", "user.data_request"]) {
    check(events.has(event), `a ${event} webhook was queued`, [...events]);
  }
  const createdHook = deliveries.find(
    (delivery) => delivery.event === "link.created" && member(delivery.payload, "data", "linkId") === linkId,
  );
  check(member(createdHook?.payload, "data", "metadata", "campaign") === "february-promo", "webhooks carry the metadata", createdHook?.payload);

  const drift = ok(await client.GET("/_sandbox/drift"), 200, "the drift report");
  check(drift.compared === 0, "the drift report, as JSON", drift);
  const junit = ok(await client.GET("/_sandbox/drift/junit", { parseAs: "text" }), 200, "the drift report as JUnit");
  check(junit.startsWith("<?xml") && junit.includes("<testsuites"), "the drift report as JUnit XML, read as text", junit);

  const unknown = await client.GET("/partner/links/{linkId}", {
    params: { path: { linkId: "link_nobody_000000000000" } },
  });
  check(unknown.response.status === 404 && unknown.error?.error.code === "RESOURCE_NOT_FOUND", "an unknown link is 404", unknown.error);
}

async function leaf(): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl });
  const auth = ok(
    await anonymous.POST("/api/authenticate", {
      body: { username: `ts-${Date.now()}@example.com`, password: "secret", rememberMe: true },
    }),
    200,
    "authenticate",
  );
  const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${auth.id_token}` } });

  // Users: create, get, list with a filter, replace by path and by body, delete.
  const email = `ana-${Date.now()}@example.com`;
  const user = ok(
    await client.POST("/services/usermanagement/api/users", {
      body: { name: "Ana Ruiz", email, externalId: "farm-42" },
    }),
    201,
    "create a user",
  );
  check(user.name === "Ana Ruiz" && user.johnDeereCredentials === null, "the user is created", user);
  const got = ok(
    await client.GET("/services/usermanagement/api/users/{id}", { params: { path: { id: user.id } } }),
    200,
    "get the user",
  );
  check(got.email === email, "the user reads back", got);
  const listed = ok(
    await client.GET("/services/usermanagement/api/users", { params: { query: { email, page: 0, size: 10 } } }),
    200,
    "list users by email",
  );
  check(listed.length === 1 && listed[0]?.id === user.id, "the email filter finds the user", listed);
  const replaced = ok(
    await client.PUT("/services/usermanagement/api/users/{id}", {
      params: { path: { id: user.id } },
      body: { id: user.id, name: "Ana María Ruiz", email, externalId: "farm-42", phone: "+52 55 1234 5678" },
    }),
    200,
    "replace the user",
  );
  check(replaced.name === "Ana María Ruiz" && replaced.phone === "+52 55 1234 5678", "the user is replaced", replaced);
  const byBody = ok(
    await client.PUT("/services/usermanagement/api/users", {
      body: { id: user.id, name: "Ana M. Ruiz", email, externalId: "farm-42" },
    }),
    200,
    "replace the user by body",
  );
  check(byBody.name === "Ana M. Ruiz", "the user is replaced by body", byBody);

  // Provider links: with user creation, for an existing user without a body, get, list, delete.
  const provider = ok(
    await client.POST("/services/widgets/api/magic-link/provider", {
      body: {
        externalId: "farm-7",
        expiresIn: 900,
        allowedProviders: ["JohnDeere", "ClimateFieldView"],
        settings: { backgroundColor: "#F5F5F5", companyName: "Acme Farms", showLeafUserName: true, disconnectEnabled: false },
      },
    }),
    200,
    "create a provider link with its user",
  );
  check(NANOS.test(provider.expiresAt), "a create answers nine fraction digits", provider.expiresAt);
  const forUser = ok(
    await client.POST("/services/widgets/api/magic-link/users/{leafUserId}/provider", {
      params: { path: { leafUserId: user.id } },
    }),
    200,
    "create a provider link without a body",
  );
  check(forUser.leafUserId === user.id, "the link is the user's", forUser);
  const providerLink = ok(
    await client.GET("/services/widgets/api/magic-link/provider/{magicLinkId}", {
      params: { path: { magicLinkId: provider.id } },
    }),
    200,
    "get the provider link",
  );
  check(providerLink.widget === "PROVIDER" && providerLink.usageCount === 0, "a provider link", providerLink);
  check(JSON.stringify(providerLink.allowedProviders) === '["JohnDeere","ClimateFieldView"]', "its providers", providerLink.allowedProviders);
  check(providerLink.settings.companyName === "Acme Farms" && MILLIS.test(providerLink.createdAt), "its settings and times", providerLink);
  const defaults = ok(
    await client.GET("/services/widgets/api/magic-link/provider/{magicLinkId}", {
      params: { path: { magicLinkId: forUser.id } },
    }),
    200,
    "get the default provider link",
  );
  check(JSON.stringify(defaults.allowedProviders) === '["All"]', "a bare link allows every provider", defaults.allowedProviders);
  const mine = ok(
    await client.GET("/services/widgets/api/magic-link/provider", { params: { query: { leafUserId: user.id } } }),
    200,
    "list the user's provider links",
  );
  check(mine.length === 1 && mine[0]?.id === forUser.id, "the list filters by user", mine);
  const deleted = await client.DELETE("/services/widgets/api/magic-link/provider/{magicLinkId}", {
    params: { path: { magicLinkId: forUser.id } },
  });
  check(deleted.response.status === 204, "the provider link is deleted", deleted.response.status);
  const gone = await client.GET("/services/widgets/api/magic-link/provider/{magicLinkId}", {
    params: { path: { magicLinkId: forUser.id } },
  });
  check(gone.response.status === 404 && gone.error?.status === 404, "a deleted link is 404", gone.error);

  // An authentication link and a file-upload link.
  const authentication = ok(
    await client.POST("/services/widgets/api/magic-link/users/{leafUserId}/authentication", {
      params: { path: { leafUserId: user.id } },
      body: { expiresIn: 900, provider: "JohnDeere" },
    }),
    200,
    "create an authentication link",
  );
  const authLink = ok(
    await client.GET("/services/widgets/api/magic-link/authentication/{magicLinkId}", {
      params: { path: { magicLinkId: authentication.id } },
    }),
    200,
    "get the authentication link",
  );
  check(authLink.widget === "AUTHENTICATION" && authLink.provider === "JohnDeere", "an authentication link", authLink);
  const missing = await client.POST("/services/widgets/api/magic-link/users/{leafUserId}/authentication", {
    params: { path: { leafUserId: user.id } },
    body: {} as Schemas["AuthenticationLinkRequest"],
  });
  check(missing.response.status === 400 && (missing.error?.fieldErrors?.length ?? 0) > 0, "provider is required", missing.error);

  const upload = ok(
    await client.POST("/services/widgets/api/magic-link/file-upload", {
      body: { externalId: "farm-9", expiresIn: 3600, settings: { companyName: "Acme Farms" } },
    }),
    200,
    "create a file-upload link with its user",
  );
  const uploads = ok(await client.GET("/services/widgets/api/magic-link/file-upload"), 200, "list file-upload links");
  const uploadLink = uploads.find((link) => link.id === upload.id);
  check(uploadLink?.widget === "FILEUPLOAD" && uploadLink.settings.disconnectEnabled === false, "a file-upload link", uploadLink);

  const removed = await client.DELETE("/services/usermanagement/api/users/{id}", { params: { path: { id: user.id } } });
  check(removed.response.status === 204, "the user is deleted", removed.response.status);
  const after = await client.GET("/services/usermanagement/api/users/{id}", { params: { path: { id: user.id } } });
  check(after.response.status === 404, "a deleted user is 404", after.response.status);
}

try {
  await m2m();
  await leaf();
  console.log(`typescript client: ${checks} checks passed`);
} catch (error) {
  console.error(`typescript client: FAILED after ${checks} checks: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

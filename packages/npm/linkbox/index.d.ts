/// <reference lib="esnext.disposable" />
// Types of the linkbox package: startLinkbox() and the control API wrappers it returns.

/** How to start linkbox; every field is optional. */
export interface LinkboxOptions {
  /** A TOML config file of partners, Leaf accounts and flows (`--config`). Default: open mode. */
  config?: string;
  /** A SQLite file that keeps every change (`--state`). Default: in memory. */
  state?: string;
  /** Start with this many demo links per API (`--seed`). */
  seed?: number;
  /** More `linkbox serve` flags. */
  args?: readonly string[];
  /** Where to listen. Default `127.0.0.1:0` (a free port). */
  addr?: string;
  /**
   * The linkbox binary. Default: `LINKBOX_BINARY` of `env` when that sets it, else
   * `$LINKBOX_BINARY` of this process, else this platform's package's.
   */
  binary?: string;
  /**
   * `--admin-token`; the wrappers then present it for calls without a `key`. Default: an
   * `--admin-token` among `args`, else the `LINKBOX_ADMIN_TOKEN` of the process's
   * environment (`env`), which linkbox reads too.
   */
  adminToken?: string;
  /** The environment of the process (its `LINKBOX_BINARY` chooses the binary). Default: this process's. */
  env?: Record<string, string | undefined>;
  /** How long linkbox may take to print its address. Default 10000. */
  startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before SIGKILL. Default 5000. */
  stopTimeoutMs?: number;
  /** The timeout of each control call. Default 30000. */
  requestTimeoutMs?: number;
}

/** Whom a control call acts for: an M2M key or a Leaf id_token; none acts for every tenant. */
export interface Credential {
  key?: string;
}

/** `GET /_sandbox/clock`. */
export interface ClockView {
  now: string;
  offsetSeconds: number;
  frozen: boolean;
}

/** One request of the journal. */
export interface JournalEntry {
  seq: number;
  method: string;
  path: string;
  query: string | null;
  status: number;
  dropped: boolean;
  time: string;
  tenant: string | null;
  durationMs: number;
  [field: string]: unknown;
}

/** `GET /_sandbox/requests` filters; other filters the server knows pass through by name. */
export interface JournalFilter extends Credential {
  method?: string;
  /** Exact, or a prefix ending in `*`. */
  path?: string;
  /** `404`, or a class like `4xx`. */
  status?: number | string;
  [filter: string]: string | number | undefined;
}

/** A Tenant's journal filters: its M2M calls, or its Leaf calls with `leaf: true`. */
export interface TenantJournalFilter {
  leaf?: boolean;
  method?: string;
  path?: string;
  status?: number | string;
  [filter: string]: string | number | boolean | undefined;
}

export interface DeliveryAttempt {
  at: string;
  url: string | null;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/** A webhook delivery and its attempts. */
export interface Delivery {
  id: string;
  event: string;
  url: string | null;
  status: 'pending' | 'delivered' | 'failed';
  attempts: DeliveryAttempt[];
  nextAttemptAt: string | null;
  createdAt: string;
  tenant: string;
  payload: { event: string; timestamp: string; data: Record<string, unknown> };
}

/** How many matching requests `verify()` expects (at least one when absent). */
export type VerifyCount = number | { exactly?: number; atLeast?: number; atMost?: number };

/** What `verify()` looks for. */
export interface VerifySpec extends Credential {
  method?: string;
  path?: string;
  bodyContains?: string;
  /** A JSON subset the request body must contain. */
  bodyJson?: Record<string, unknown>;
  /** A number means exactly that many. */
  count?: VerifyCount;
}

/** One running linkbox. */
export declare class Linkbox {
  /** `http://127.0.0.1:PORT`, the base URL of every API. */
  readonly url: string;
  readonly pid: number;
  readonly running: boolean;
  /** The newest 64 KiB of linkbox's log on stderr. */
  readonly stderr: string;
  /** What linkbox printed on stdout after its address (the `seed` demo credentials). */
  readonly stdoutLines: string[];
  /** Stops linkbox (SIGTERM, then SIGKILL) and resolves once it has exited. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** A fresh M2M key: in open mode, a partner of its own. */
  m2mKey(): string;
  /** A Leaf id_token; without `username`, a fresh account. */
  leafToken(options?: { username?: string; password?: string; rememberMe?: boolean }): Promise<string>;
  /** A fresh M2M key and Leaf account. */
  tenant(): Promise<Tenant>;
  /** `POST /_sandbox/reset`: that tenant's data, or everything (and the clock) without a key. */
  reset(credential?: Credential): Promise<{ scope: 'tenant' | 'all' }>;
  /** Moves the sandbox clock (shared by every tenant) by whole seconds. */
  advance(seconds: number, credential?: Credential): Promise<ClockView>;
  clock(credential?: Credential): Promise<ClockView>;
  freeze(frozen?: boolean, credential?: Credential): Promise<ClockView>;
  /** The deliveries the caller may see, newest first: every page `GET /_sandbox/webhooks` answers. */
  webhooks(credential?: Credential): Promise<Delivery[]>;
  /** The journal of calls to the vendor APIs, newest first. */
  requests(filter?: JournalFilter): Promise<JournalEntry[]>;
  /** `POST /_sandbox/requests/verify`: resolves to the number matched, or rejects with a VerificationError. */
  verify(spec?: VerifySpec): Promise<number>;
  /** The partner's webhook URL (`null` clears it). */
  setWebhookUrl(url: string | null, credential: Required<Credential>): Promise<void>;
}

/** A fresh M2M partner and Leaf account on a linkbox. */
export declare class Tenant {
  readonly linkbox: Linkbox;
  /** The M2M `X-API-Key`. */
  readonly key: string;
  /** The Leaf id_token (valid 30 days on the sandbox clock). */
  token: string;
  readonly username: string;
  readonly password: string;
  readonly url: string;
  readonly m2mHeaders: { 'X-API-Key': string };
  readonly leafHeaders: { Authorization: string };
  reset(): Promise<void>;
  advance(seconds: number): Promise<ClockView>;
  webhooks(): Promise<Delivery[]>;
  requests(filter?: TenantJournalFilter): Promise<JournalEntry[]>;
  verify(spec?: Omit<VerifySpec, 'key'> & { leaf?: boolean }): Promise<number>;
  setWebhookUrl(url: string | null): Promise<void>;
  /** A new webhook signing secret (the vendor API's regenerate-secret). */
  regenerateWebhookSecret(): Promise<string>;
}

/**
 * Starts linkbox on a free loopback port; rejects with a StartError carrying its stderr, or
 * naming what is missing when there is no binary to run (no platform package, no `LINKBOX_BINARY`).
 */
export declare function startLinkbox(options?: LinkboxOptions): Promise<Linkbox>;

/** A fresh, well-formed M2M sandbox key. */
export declare function newM2mKey(): string;

/** The path of the linkbox binary for this machine (or the platform and arch given). */
export declare function binaryPath(where?: {
  platform?: string;
  arch?: string;
  env?: Record<string, string | undefined>;
}): string;

export declare class LinkboxError extends Error {}

export declare class StartError extends LinkboxError {
  /** What linkbox wrote on stderr (its newest 64 KiB). */
  readonly stderr: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** The id the process had, if it started at all (it is gone by now). */
  readonly pid: number | null;
}

export declare class ControlError extends LinkboxError {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** linkbox's error code (`NOT_FOUND`, `INVALID_REQUEST`, ...), when it sent one. */
  readonly code: string | undefined;
  readonly body: unknown;
}

export declare class VerificationError extends LinkboxError {
  readonly body: unknown;
}

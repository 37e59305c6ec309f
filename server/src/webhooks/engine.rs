//! The background task that delivers webhooks, off every request path.
//!
//! It wakes when a delivery is queued or replayed, when the sandbox clock is moved (so
//! `POST /_sandbox/clock` fires due retries at once), when an attempt finishes, and at least
//! once a second for the clock's own passage. Each attempt runs in its own task, so a slow
//! receiver holds up nothing but itself; all of them are aborted on shutdown. At most
//! [`MAX_CONCURRENT_ATTEMPTS`] attempts are in flight at once, across every tenant (a global
//! semaphore), so hanging receivers cannot pin an unbounded number of sockets; the others
//! wait their turn. One partner's are at most [`MAX_ATTEMPTS_PER_PARTNER`] of them (a
//! semaphore per partner, taken first): a partner whose receiver hangs, with a thousand
//! deliveries due, holds a quarter of the line until they time out. Four such partners
//! (made-up keys cost nothing in open mode) would hold all of it; so an attempt waiting for
//! the line also waits for a reserve of [`RESERVED_ATTEMPTS`] more, one attempt of each
//! partner at a time, and goes by whichever frees first: every other partner's webhooks
//! still go out at once, one after another, unless that many partners each hold one
//! attempt from the reserve at the same time. The engine runs
//! on a serving thread: a body of 64 KiB or more is signed off it ([`crate::offload`]).
//!
//! # Leaving the machine
//! Without `--external-webhooks` only loopback receivers are called. With it, https
//! receivers are reached over rustls, and the receiver's host is resolved first: an address
//! that is private, link-local, shared, unspecified, multicast or a cloud metadata endpoint
//! ([`is_denied`]) is refused without a connection, and the address checked is the one the
//! attempt connects to (pinned in the attempt's client), so a name cannot resolve to a
//! public address for the check and to a private one for the request.
//!
//! An attempt that cannot be sent at all — no URL, or a URL off this machine while
//! external webhooks are off, or any URL in shadow mode (`--shadow-m2m`, where the vendor
//! delivers the real events) — is recorded and fails the delivery at once (replayable),
//! since no retry would fare differently.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header;
use linkbox_contracts::m2m::webhook_headers;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{Attempt, Job, Webhooks, sign};
use crate::clock::Clock;
use crate::config::Settings;
use crate::offload;

/// Attempts in flight at once, across every tenant. [design]
pub const MAX_CONCURRENT_ATTEMPTS: usize = 64;
/// Attempts in flight at once besides [`MAX_CONCURRENT_ATTEMPTS`]: at most one of each
/// partner, for an attempt that would otherwise wait for the line. [design]
pub const RESERVED_ATTEMPTS: usize = 16;
/// Attempts in flight at once for one partner: a quarter of [`MAX_CONCURRENT_ATTEMPTS`].
/// [design]
pub const MAX_ATTEMPTS_PER_PARTNER: usize = MAX_CONCURRENT_ATTEMPTS / 4;

/// How long a replica's claim on an attempt lasts unless renewed: the claim is renewed
/// every third of it while the attempt runs, so a replica that dies mid-attempt lets the
/// others make it within this long.
pub const LEASE: Duration = Duration::from_secs(5);
/// How long a claim is held once its attempt is recorded: long enough for every other
/// replica to have read the outcome back (they do at least once a second).
const HELD_AFTER: Duration = Duration::from_secs(600);

/// Longest the engine sleeps without looking at the clock.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// How attempts are made.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// How long an attempt waits for an answer.
    pub timeout: Duration,
    /// Whether webhooks may leave this machine (`--external-webhooks`).
    pub external: bool,
    /// Shadow mode for M2M: the vendor delivers the real events, so linkbox records its own
    /// and sends none (doubling every event at the receiver).
    pub shadow: bool,
    /// `--webhook-ca-cert`: the CAs an https receiver's certificate may chain to besides
    /// the public roots, read once.
    pub roots: Arc<[reqwest::Certificate]>,
}

impl Delivery {
    pub fn of(settings: &Settings) -> Delivery {
        Delivery {
            timeout: settings.webhook_timeout,
            external: settings.external_webhooks,
            shadow: settings.shadow.m2m.is_some(),
            // Checked when the flag was read; a bundle that no longer parses here is one
            // of no CA, and said so.
            roots: settings
                .webhook_ca_cert
                .as_deref()
                .map(|pem| {
                    reqwest::Certificate::from_pem_bundle(pem).unwrap_or_else(|error| {
                        tracing::error!(%error, "--webhook-ca-cert is not a PEM bundle; ignored");
                        Vec::new()
                    })
                })
                .unwrap_or_default()
                .into(),
        }
    }

    /// A client for attempts: no proxy, no redirects followed, the attempt's timeout, and
    /// the extra roots.
    fn client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none());
        self.roots
            .iter()
            .cloned()
            .fold(builder, |builder, root| builder.add_root_certificate(root))
    }
}

/// Delivers `webhooks`' due deliveries, on `clock`, until `shutdown` completes.
pub async fn run(
    webhooks: Webhooks,
    clock: Clock,
    delivery: Delivery,
    shutdown: impl Future<Output = ()>,
) {
    // The client for loopback receivers resolves `localhost` names itself, to loopback.
    let client = match delivery
        .client()
        .dns_resolver(Arc::new(LoopbackNames))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(
                %error,
                "webhook client could not be built (the CAs of --webhook-ca-cert?); no webhooks will be sent"
            );
            return;
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut attempts = JoinSet::new();
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_ATTEMPTS));
    let reserve = Arc::new(Semaphore::new(RESERVED_ATTEMPTS));
    let mut shares = Shares::default();
    loop {
        let now = clock.now();
        let (jobs, next_due) = webhooks.take_due_and_next(now);
        for job in jobs {
            let (client, webhooks, clock) = (client.clone(), webhooks.clone(), clock.clone());
            let delivery = delivery.clone();
            let (share, line, reserve) = (
                shares.of(&job.partner.slug),
                permits.clone(),
                reserve.clone(),
            );
            attempts.spawn(async move {
                // The partner's share first: its attempts past it wait without holding any
                // of the line's.
                let Ok(_share) = share.limit.clone().acquire_owned().await else {
                    return;
                };
                // Then the line, or, while none of the partner's attempts holds one, the
                // reserve: whatever holds the line, each partner makes one attempt at a time.
                let by_reserve = async {
                    let lane = share.lane.clone().acquire_owned().await.ok()?;
                    Some((lane, reserve.acquire_owned().await.ok()?))
                };
                tokio::select! {
                    biased;
                    Ok(_permit) = line.acquire_owned() => {
                        attempt(client, webhooks, clock, delivery, job).await;
                    }
                    Some(_reserved) = by_reserve => {
                        attempt(client, webhooks, clock, delivery, job).await;
                    }
                    else => {}
                }
            });
        }
        let idle = next_due
            .map(|due| (due - clock.now()).clamp(time::Duration::ZERO, time::Duration::SECOND))
            .and_then(|wait| Duration::try_from(wait).ok())
            .unwrap_or(MAX_IDLE)
            .max(Duration::from_millis(5));
        tokio::select! {
            () = &mut shutdown => break,
            () = webhooks.woken() => {}
            () = clock.moved() => {}
            Some(_) = attempts.join_next() => {
                // Every attempt already finished, before one walk of the queue for them all.
                while attempts.try_join_next().is_some() {}
                shares.forget_idle();
            }
            () = tokio::time::sleep(idle) => {}
        }
    }
    attempts.abort_all();
}

/// Each partner's share of the attempts in flight ([`MAX_ATTEMPTS_PER_PARTNER`]) and its lane
/// to the reserve (one attempt at a time), made when one of its deliveries is first due and
/// forgotten once none of its attempts holds or awaits them.
#[derive(Default)]
struct Shares(HashMap<Arc<str>, Arc<Share>>);

struct Share {
    limit: Arc<Semaphore>,
    lane: Arc<Semaphore>,
}

impl Shares {
    fn of(&mut self, slug: &Arc<str>) -> Arc<Share> {
        self.0
            .entry(slug.clone())
            .or_insert_with(|| {
                Arc::new(Share {
                    limit: Arc::new(Semaphore::new(MAX_ATTEMPTS_PER_PARTNER)),
                    lane: Arc::new(Semaphore::new(1)),
                })
            })
            .clone()
    }

    /// Forgets the shares no attempt holds a handle to.
    fn forget_idle(&mut self) {
        self.0.retain(|_, share| Arc::strong_count(share) > 1);
    }
}

/// Makes one attempt and records it. In a sandbox shared by replicas, one of them makes
/// each attempt: the one that claims it, renewing the claim while the attempt runs and
/// holding it a while after. The others put the delivery back until the claim lapses; by
/// then they have read the attempt's outcome back, or its holder died and the attempt is
/// made again.
async fn attempt(
    client: reqwest::Client,
    webhooks: Webhooks,
    clock: Clock,
    delivery: Delivery,
    job: Job,
) {
    let Some(database) = webhooks.database().cloned() else {
        return send(client, webhooks, clock, delivery, job).await;
    };
    let wait = match database.claim(&job.id.text(), job.attempt, LEASE).await {
        Ok(None) => None,
        Ok(Some(wait)) => Some(wait),
        Err(error) => {
            tracing::warn!(%error, delivery = %job.id, "could not claim a webhook attempt; trying again");
            Some(MAX_IDLE)
        }
    };
    if let Some(wait) = wait {
        let wait = time::Duration::try_from(wait).unwrap_or(time::Duration::SECOND);
        webhooks.defer(job.id, job.attempt, clock.now() + wait);
        return;
    }
    let (id, number) = (job.id.text(), job.attempt);
    let renew = async {
        loop {
            tokio::time::sleep(LEASE / 3).await;
            if let Err(error) = database.renew(&id, number, LEASE).await {
                tracing::warn!(%error, delivery = %id, "could not renew the claim on a webhook attempt");
            }
        }
    };
    tokio::select! {
        () = send(client, webhooks, clock, delivery, job) => {}
        () = renew => {}
    }
    if let Err(error) = database.renew(&id, number, HELD_AFTER).await {
        tracing::warn!(%error, delivery = %id, "could not hold the claim on a webhook attempt made");
    }
}

/// Makes one attempt and records it, reading the URL and the secret now.
async fn send(
    client: reqwest::Client,
    webhooks: Webhooks,
    clock: Clock,
    delivery: Delivery,
    job: Job,
) {
    let at = clock.now();
    let url = job
        .callback_url
        .clone()
        .or_else(|| job.partner.webhook_url());
    let started = Instant::now();
    let sendable = !delivery.shadow
        && url
            .as_deref()
            .is_some_and(|url| delivery.external || is_loopback_url(url));
    let (status_code, error) = match &url {
        None => (None, Some(super::NO_URL.to_owned())),
        Some(url) if delivery.shadow => (
            None,
            Some(format!(
                "not sent: shadow mode (--shadow-m2m) records linkbox's own webhooks without \
                 sending them, since the vendor already delivers the real ones to {url}"
            )),
        ),
        Some(url) if !delivery.external && !is_loopback_url(url) => (
            None,
            Some(format!(
                "not sent: {url} is not on this machine, and external webhooks are off \
                 (start linkbox with --external-webhooks to send to it)"
            )),
        ),
        Some(url) => {
            let client = if is_loopback_url(url) {
                Ok(client)
            } else {
                pinned_client(url, &delivery).await
            };
            let client = match client {
                Ok(client) => client,
                Err(error) => {
                    webhooks.record_attempt(
                        job.id,
                        Attempt {
                            at,
                            url: Some(url.clone()),
                            status_code: None,
                            error: Some(error.into()),
                            duration_ms: u64::try_from(started.elapsed().as_millis())
                                .unwrap_or(u64::MAX),
                        },
                    );
                    return;
                }
            };
            let timestamp = at.unix_timestamp();
            let secret = job.partner.webhook_secret();
            // The engine shares a serving thread: a body of megabytes is signed off it.
            let body = job.body.clone();
            let turn = offload::Turn::of(offload::is_heavy(body.len()), Some(&job.partner.slug));
            let signature =
                offload::answer(turn, move || sign::signature(&secret, timestamp, &body)).await;
            let sent = client
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(webhook_headers::EVENT, job.event)
                .header(webhook_headers::TIMESTAMP, timestamp.to_string())
                .header(webhook_headers::SIGNATURE, signature)
                .body(job.body.clone())
                .send()
                .await;
            match sent {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(error) => (None, Some(describe(&error, &delivery))),
            }
        }
    };
    let outcome = Attempt {
        at,
        url,
        status_code,
        error: error.map(Into::into),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    tracing::debug!(delivery = %job.id, event = job.event, status = ?outcome.status_code, error = ?outcome.error, "webhook attempt");
    if sendable {
        webhooks.record_attempt(job.id, outcome);
    } else {
        webhooks.record_unsendable(job.id, outcome);
    }
}

/// A client for one attempt to a non-loopback `url`: its host resolved now, every address
/// checked against [`is_denied`], and the first allowed one pinned. `Err` says why not.
async fn pinned_client(url: &str, delivery: &Delivery) -> Result<reqwest::Client, String> {
    let parsed = url::Url::parse(url).map_err(|error| format!("not sent: {url}: {error}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("not sent: {url} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|error| format!("could not resolve {host}: {error}"))?
        .collect();
    let allowed = addrs
        .iter()
        .find(|addr| !is_denied(addr.ip()))
        .copied()
        .ok_or_else(|| {
            let list: Vec<String> = addrs.iter().map(|addr| addr.ip().to_string()).collect();
            format!(
                "not sent: {host} resolves to {} — private, link-local or metadata addresses \
                 are never called",
                list.join(", ")
            )
        })?;
    delivery
        .client()
        .resolve(&host, allowed)
        .build()
        .map_err(|error| format!("not sent: {error}"))
}

/// Whether a webhook must never be sent to `ip`: private (10/8, 172.16/12, 192.168/16,
/// fc00::/7), link-local (169.254/16 — cloud metadata included — and fe80::/10), shared
/// (100.64/10), loopback reached by a name other than localhost, unspecified, broadcast,
/// multicast, documentation and benchmarking ranges, and IPv4 reached through IPv6
/// (mapped or NAT64 forms are checked as the IPv4 address they carry).
pub fn is_denied(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_denied(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return is_denied(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00
                || (segments[0] & 0xffc0) == 0xfe80
                || segments[0] == 0x2001 && segments[1] == 0x0db8
        }
    }
}

/// The resolver of the client for loopback receivers, whose only names are `localhost` and
/// those under it: each is this machine (RFC 6761 §6.3), without asking the system's
/// resolver, which may pass `foo.localhost` to a DNS server off the machine and connect
/// wherever its answer points.
struct LoopbackNames;

impl reqwest::dns::Resolve for LoopbackNames {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let local = is_localhost_name(name.as_str());
        Box::pin(async move {
            if !local {
                return Err("not a loopback name: only localhost names are resolved here".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(
                [
                    std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
                    std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0)),
                ]
                .into_iter(),
            );
            Ok(addrs)
        })
    }
}

/// Whether `domain` is `localhost` or a name under it.
fn is_localhost_name(domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    domain == "localhost" || domain.ends_with(".localhost")
}

/// Whether `url` points at this machine: 127.0.0.0/8, ::1, or `localhost` and the names
/// under it, which [`LoopbackNames`] resolves to loopback.
pub fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => is_localhost_name(domain),
        None => false,
    }
}

fn describe(error: &reqwest::Error, delivery: &Delivery) -> String {
    if error.is_timeout() {
        return format!(
            "timed out after {} ms without an answer",
            delivery.timeout.as_millis()
        );
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(hint) = certificate_hint(&text, !delivery.roots.is_empty()) {
        text.push_str(&hint);
    }
    text
}

/// What the receiver's owner can do about a certificate refused, read from rustls's words
/// in `error` (its typed error is not reachable through reqwest's), where the words alone
/// do not say: a certificate no root vouches for, or a CA's own certificate served as the
/// receiver's. An expired certificate, or one for another name, says all there is to say.
fn certificate_hint(error: &str, has_roots: bool) -> Option<String> {
    if error.contains("CaUsedAsEndEntity") {
        Some(format!(": {}", linkbox_contracts::sandbox::CA_AS_SERVER))
    } else if error.contains("UnknownIssuer") {
        Some(
            if has_roots {
                " (no public root and no CA in --webhook-ca-cert issued it, or the receiver does \
             not send the certificates between them)"
            } else {
                " (a receiver whose certificate a private CA issued is trusted with \
             --webhook-ca-cert FILE)"
            }
            .to_owned(),
        )
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_ATTEMPTS_PER_PARTNER, Shares, certificate_hint, is_denied, is_loopback_url};

    /// The hint follows the cause: the flag for an unknown issuer while it is unset, the
    /// missing link once it is set, the CA's certificate served as a receiver's explained,
    /// and nothing added where rustls's words say it all.
    #[test]
    fn a_refused_certificate_is_explained_by_its_cause() {
        let unknown = "could not connect: invalid peer certificate: UnknownIssuer";
        let hint = certificate_hint(unknown, false).unwrap_or_default();
        assert!(
            hint.contains("trusted with --webhook-ca-cert FILE"),
            "{hint}"
        );
        let hint = certificate_hint(unknown, true).unwrap_or_default();
        assert!(
            hint.contains("no CA in --webhook-ca-cert issued it"),
            "{hint}"
        );
        let ca = "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))";
        for has_roots in [false, true] {
            let hint = certificate_hint(ca, has_roots).unwrap_or_default();
            assert!(
                hint.contains("basicConstraints=critical,CA:FALSE"),
                "{hint}"
            );
        }
        for said in [
            "invalid peer certificate: certificate expired: verification time 1, but \
             certificate is not valid after 0",
            "invalid peer certificate: certificate not valid for name \"127.0.0.1\"",
            "could not connect: Connection refused",
        ] {
            assert_eq!(certificate_hint(said, true), None, "{said}");
            assert_eq!(certificate_hint(said, false), None, "{said}");
        }
    }
    use std::sync::Arc;

    /// A partner's attempts share one semaphore of its size, another partner's is its own,
    /// and a share no attempt holds is forgotten.
    #[test]
    fn each_partner_has_one_share_forgotten_once_no_attempt_holds_it() {
        let (one, two): (Arc<str>, Arc<str>) = ("one".into(), "two".into());
        let mut shares = Shares::default();
        let (first, again, other) = (shares.of(&one), shares.of(&one), shares.of(&two));
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(first.limit.available_permits(), MAX_ATTEMPTS_PER_PARTNER);
        assert_eq!(first.lane.available_permits(), 1);
        drop(other);
        shares.forget_idle();
        assert_eq!(shares.0.len(), 1, "the second partner's share is forgotten");
        drop((first, again));
        shares.forget_idle();
        assert!(shares.0.is_empty());
    }

    #[test]
    fn private_link_local_and_metadata_addresses_are_denied() {
        for ip in [
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_denied(ip.parse().expect("ip")), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_denied(ip.parse().expect("ip")), "{ip}");
        }
    }

    #[test]
    fn only_loopback_urls_count_as_this_machine() {
        for url in [
            "http://127.0.0.1:9000/hooks",
            "http://127.8.9.10/x",
            "http://[::1]:9000/x",
            "https://localhost/x",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "https://api.example.com/callbacks/m2m",
            "http://10.0.0.1/x",
            "http://192.168.1.1/x",
            "not a url",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }
}

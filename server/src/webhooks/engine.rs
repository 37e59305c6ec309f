//! The background task that delivers webhooks, off every request path.
//!
//! It wakes when a delivery is queued or replayed, when the sandbox clock is moved (so
//! `POST /_sandbox/clock` fires due retries at once), when an attempt finishes, and at least
//! once a second for the clock's own passage. Each attempt runs in its own task, so a slow
//! receiver holds up nothing but itself; all of them are aborted on shutdown.
//!
//! An attempt that cannot be sent at all — no URL, or a URL off this machine while
//! external webhooks are off — is recorded and fails the delivery at once (replayable),
//! since no retry would fare differently.

use std::future::Future;
use std::time::{Duration, Instant};

use http::header;
use linkbox_contracts::m2m::webhook_headers;
use tokio::task::JoinSet;

use super::{Attempt, Job, Webhooks, sign};
use crate::clock::Clock;
use crate::config::Settings;

/// Longest the engine sleeps without looking at the clock.
const MAX_IDLE: Duration = Duration::from_secs(1);

/// How attempts are made.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// How long an attempt waits for an answer.
    pub timeout: Duration,
    /// Whether webhooks may leave this machine (`--external-webhooks`).
    pub external: bool,
}

impl Delivery {
    pub fn of(settings: &Settings) -> Delivery {
        Delivery {
            timeout: settings.webhook_timeout,
            external: settings.external_webhooks,
        }
    }
}

/// Delivers `webhooks`' due deliveries, on `clock`, until `shutdown` completes.
pub async fn run(
    webhooks: Webhooks,
    clock: Clock,
    delivery: Delivery,
    shutdown: impl Future<Output = ()>,
) {
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(delivery.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook client could not be built; no webhooks will be sent");
            return;
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut attempts = JoinSet::new();
    loop {
        let now = clock.now();
        for job in webhooks.take_due(now) {
            attempts.spawn(attempt(
                client.clone(),
                webhooks.clone(),
                clock.clone(),
                delivery,
                job,
            ));
        }
        let idle = webhooks
            .next_due()
            .map(|due| (due - clock.now()).clamp(time::Duration::ZERO, time::Duration::SECOND))
            .and_then(|wait| Duration::try_from(wait).ok())
            .unwrap_or(MAX_IDLE)
            .max(Duration::from_millis(5));
        tokio::select! {
            () = &mut shutdown => break,
            () = webhooks.woken() => {}
            () = clock.moved() => {}
            Some(_) = attempts.join_next() => {}
            () = tokio::time::sleep(idle) => {}
        }
    }
    attempts.abort_all();
}

/// Makes one attempt and records it, reading the URL and the secret now.
async fn attempt(
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
    let sendable = url
        .as_deref()
        .is_some_and(|url| delivery.external || is_loopback_url(url));
    let (status_code, error) = match &url {
        None => (None, Some(super::NO_URL.to_owned())),
        Some(url) if !delivery.external && !is_loopback_url(url) => (
            None,
            Some(format!(
                "not sent: {url} is not on this machine, and external webhooks are off \
                 (start linkbox with --external-webhooks to send to it)"
            )),
        ),
        Some(url) => {
            let timestamp = at.unix_timestamp();
            let secret = job.partner.webhook_secret();
            let sent = client
                .post(url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(webhook_headers::EVENT, job.event)
                .header(webhook_headers::TIMESTAMP, timestamp.to_string())
                .header(
                    webhook_headers::SIGNATURE,
                    sign::signature(&secret, timestamp, &job.body),
                )
                .body(job.body.clone())
                .send()
                .await;
            match sent {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(error) => (None, Some(describe(&error, delivery))),
            }
        }
    };
    let outcome = Attempt {
        at,
        url,
        status_code,
        error,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    tracing::debug!(delivery = %job.id, event = job.event, status = ?outcome.status_code, error = ?outcome.error, "webhook attempt");
    if sendable {
        webhooks.record_attempt(&job.id, outcome);
    } else {
        webhooks.record_unsendable(&job.id, outcome);
    }
}

/// Whether `url` points at this machine: 127.0.0.0/8, ::1 or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(domain)) => {
            domain.eq_ignore_ascii_case("localhost")
                || domain.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

fn describe(error: &reqwest::Error, delivery: Delivery) -> String {
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
    text
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

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

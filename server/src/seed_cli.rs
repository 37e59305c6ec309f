//! `linkbox seed`: seeds a running sandbox through `POST /_sandbox/seed`, in batches, with a
//! progress bar on stderr and the created ids on stdout, one per line. Batch `b` uses the
//! seed `rngSeed + b`, so a run is reproducible as a whole.
//!
//! Errors are one line in the terms of the command line: the flag at fault, the URL that
//! could not be reached and why, or what the sandbox answered (its status and message),
//! never the HTTP client's own wording. A sandbox behind a private certificate authority is
//! reached with `--ca-cert FILE`, as `linkbox contract` does.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};
use linkbox_contracts::sandbox::{SeedRequest, SeedResult};

use crate::cli::SeedArgs;

/// Links per request.
pub const BATCH: u32 = 100;

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    match args.api.as_str() {
        "m2m" if args.key.is_none() => {
            anyhow::bail!("--api m2m needs --key, the partner's API key (or LINKBOX_KEY)")
        }
        "leaf" if args.token.is_none() => {
            anyhow::bail!("--api leaf needs --token, a Leaf id_token (or LINKBOX_TOKEN)")
        }
        _ => {}
    }
    let rng_seed = args.rng_seed.unwrap_or_else(crate::ops::seed::random_seed);
    if args.rng_seed.is_none() {
        eprintln!("rng seed: {rng_seed}");
    }
    let mut client = reqwest::Client::builder().no_proxy();
    if let Some(path) = &args.ca_cert {
        for certificate in ca_certificates(path)? {
            client = client.add_root_certificate(certificate);
        }
    }
    let client = client.build()?;
    let url = format!("{}/_sandbox/seed", args.target.trim_end_matches('/'));
    let progress = if args.count > BATCH {
        let bar = ProgressBar::new(u64::from(args.count));
        bar.set_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} links {eta}",
        )?);
        bar
    } else {
        ProgressBar::hidden()
    };
    // Where the bar cannot be drawn (a CI log, a redirect), a line a batch instead.
    let lines = args.count > BATCH && !std::io::stderr().is_terminal();
    let mut stdout = std::io::stdout().lock();
    let mut done = 0;
    let mut batch = 0u64;
    while done < args.count {
        let count = BATCH.min(args.count - done);
        let mut request = client.post(&url).json(&SeedRequest {
            api: args.api.clone(),
            count,
            rng_seed: Some(rng_seed.wrapping_add(batch)),
            mix: None,
        });
        if let Some(key) = &args.key {
            request = request.header("x-api-key", key);
        }
        if let Some(token) = &args.token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                progress.abandon();
                anyhow::bail!(
                    "cannot reach the sandbox at {} (--target): {}",
                    args.target,
                    root_cause(&error)
                );
            }
        };
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            progress.abandon();
            // The sandbox speaks of this batch; the batches before it were kept.
            let before = if done > 0 {
                format!(
                    " (that was batch {} of this seed: the {done} links of the batches before it were stored, their ids printed above)",
                    batch + 1
                )
            } else {
                String::new()
            };
            anyhow::bail!("{}{before}", refusal(&url, status, &text, &args.api));
        }
        let Ok(seeded) = response.json::<SeedResult>().await else {
            progress.abandon();
            anyhow::bail!(
                "{url} answered {status} but not with a seed result: is --target a linkbox sandbox?"
            );
        };
        for id in &seeded.created {
            writeln!(stdout, "{id}")?;
        }
        if seeded.created.len() != count as usize {
            progress.abandon();
            anyhow::bail!(
                "{url} made {} of the {count} links asked for: the seed is incomplete",
                seeded.created.len()
            );
        }
        done += count;
        batch += 1;
        progress.inc(u64::from(count));
        if lines {
            eprintln!("seeded {done}/{} links", args.count);
        }
    }
    stdout.flush()?;
    progress.finish_and_clear();
    Ok(())
}

/// The innermost cause of `error`: "Connection refused (os error 111)", not the client's
/// wrapping.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// One line saying what the sandbox answered, with the flag to check when it refused the
/// credential.
fn refusal(url: &str, status: reqwest::StatusCode, body: &str, api: &str) -> String {
    let json = serde_json::from_str::<serde_json::Value>(body).ok();
    let message = json
        .as_ref()
        .and_then(|json| {
            ["/error/message", "/message", "/detail"]
                .iter()
                .find_map(|pointer| json.pointer(pointer)?.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| body.chars().take(200).collect());
    // A tenant out of room (`--max-tenant-mib`) was let in: its credential is fine.
    let full = json
        .as_ref()
        .and_then(|json| json.pointer("/error/code")?.as_str())
        == Some(linkbox_contracts::sandbox::codes::STORAGE_FULL);
    let hint = match (status.as_u16(), api) {
        (403, _) if full => "",
        (401 | 403, "m2m") => " (check --key)",
        (401 | 403, _) => " (check --token)",
        (404, _) => " (is --target a linkbox sandbox?)",
        _ => "",
    };
    format!("the sandbox at {url} refused the seed: {status}: {message}{hint}")
}

/// The certificates of `--ca-cert`'s PEM file, or an error naming the flag and the file.
fn ca_certificates(path: &std::path::Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let named = |why: String| anyhow::anyhow!("--ca-cert {}: {why}", path.display());
    let pem = std::fs::read(path).map_err(|error| named(format!("cannot read it: {error}")))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|error| named(format!("not PEM certificates ({error})")))?;
    if certificates.is_empty() {
        return Err(named("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_message_and_the_flag_to_check() {
        let line = refusal(
            "http://127.0.0.1:1/_sandbox/seed",
            reqwest::StatusCode::UNAUTHORIZED,
            r#"{"error":{"code":"INVALID_API_KEY","message":"The API key is not valid"}}"#,
            "m2m",
        );
        assert_eq!(
            line,
            "the sandbox at http://127.0.0.1:1/_sandbox/seed refused the seed: 401 Unauthorized: \
             The API key is not valid (check --key)"
        );
    }

    #[test]
    fn a_tenant_out_of_room_is_not_sent_to_check_its_key() {
        let line = refusal(
            "http://127.0.0.1:1/_sandbox/seed",
            reqwest::StatusCode::FORBIDDEN,
            r#"{"error":{"code":"STORAGE_FULL","message":"This partner would hold more"}}"#,
            "m2m",
        );
        assert!(
            line.ends_with("403 Forbidden: This partner would hold more"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_target_is_named_with_its_flag() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let error = run(SeedArgs {
            target: format!("http://127.0.0.1:{port}"),
            api: "m2m".into(),
            count: 1,
            key: Some("m2m_test_x".into()),
            token: None,
            rng_seed: Some(1),
            ca_cert: None,
        })
        .await
        .expect_err("nothing listens");
        let line = error.to_string();
        assert!(
            line.starts_with("cannot reach the sandbox at http://127.0.0.1:"),
            "{line}"
        );
        assert!(
            line.contains("--target") && !line.contains("builder error"),
            "{line}"
        );
    }

    /// A `--ca-cert` that cannot be read, or holds no certificate, is named with its flag
    /// before anything is sent.
    #[tokio::test]
    async fn a_ca_cert_that_is_not_a_pem_certificate_is_named() {
        let file = tempfile::NamedTempFile::new().expect("a temporary file");
        std::fs::write(file.path(), "not a certificate").expect("write");
        for path in [
            file.path().to_path_buf(),
            file.path().with_extension("missing"),
        ] {
            let error = run(SeedArgs {
                target: "https://127.0.0.1:1".into(),
                api: "m2m".into(),
                count: 1,
                key: Some("m2m_test_x".into()),
                token: None,
                rng_seed: Some(1),
                ca_cert: Some(path.clone()),
            })
            .await
            .expect_err("refused");
            let line = error.to_string();
            assert!(
                line.starts_with(&format!("--ca-cert {}", path.display())),
                "{line}"
            );
        }
    }

    #[tokio::test]
    async fn a_missing_key_is_named() {
        let error = run(SeedArgs {
            target: "http://127.0.0.1:1".into(),
            api: "m2m".into(),
            count: 1,
            key: None,
            token: None,
            rng_seed: Some(1),
            ca_cert: None,
        })
        .await
        .expect_err("no key");
        assert!(error.to_string().contains("--key"));
    }
}

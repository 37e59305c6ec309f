//! `linkbox seed`: seeds a running sandbox through `POST /_sandbox/seed`, in batches, with a
//! progress bar on stderr and the created ids on stdout, one per line. Batch `b` uses the
//! seed `rngSeed + b`, so a run is reproducible as a whole.

use std::io::Write;

use indicatif::{ProgressBar, ProgressStyle};
use linkbox_contracts::sandbox::{SeedRequest, SeedResult};

use crate::cli::SeedArgs;

/// Links per request.
pub const BATCH: u32 = 100;

pub async fn run(args: SeedArgs) -> anyhow::Result<()> {
    let rng_seed = args.rng_seed.unwrap_or_else(rand::random);
    if args.rng_seed.is_none() {
        eprintln!("rng seed: {rng_seed}");
    }
    let client = reqwest::Client::builder().no_proxy().build()?;
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
        let response = request.send().await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            progress.abandon();
            anyhow::bail!("{url} answered {status}: {text}");
        }
        let seeded: SeedResult = response.json().await?;
        for id in &seeded.created {
            writeln!(stdout, "{id}")?;
        }
        done += count;
        batch += 1;
        progress.inc(u64::from(count));
    }
    stdout.flush()?;
    progress.finish_and_clear();
    Ok(())
}

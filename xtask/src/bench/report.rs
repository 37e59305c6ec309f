//! The benchmark's findings: a table for the terminal, JSON for tools, and a small SVG bar
//! chart of requests per second.

use std::time::Duration;

use serde_json::{Value, json};

use super::cpu::Share;
use super::load::Outcome;

/// The name of the bare reference row, the divisor of every row's `× bare` ratio.
pub const REFERENCE: &str = "bare warp: GET / (reference)";

/// The name of the create-link row, which the peers and the create rounds' reference are
/// compared with.
pub const CREATE: &str = "POST /partner/links";

/// What one run of a load generator measured, whichever generator it was.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub requests: u64,
    pub errors: u64,
}

impl From<&Outcome> for Sample {
    fn from(outcome: &Outcome) -> Sample {
        Sample {
            per_second: outcome.per_second(),
            p50_ms: outcome.quantile_ms(0.5),
            p99_ms: outcome.quantile_ms(0.99),
            max_ms: outcome.max_ms(),
            requests: outcome.requests,
            errors: outcome.errors,
        }
    }
}

impl From<&Sample> for Sample {
    fn from(sample: &Sample) -> Sample {
        sample.clone()
    }
}

/// One measured scenario.
#[derive(Debug, Clone)]
struct Row {
    name: String,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    requests: u64,
    errors: u64,
    /// Name of the row this one is compared with.
    versus: Option<String>,
    /// How the ratio column names that row.
    versus_label: &'static str,
}

/// Everything one `cargo xtask bench` run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Which load generator measured the throughput rows.
    generator: String,
    startup: Duration,
    idle_rss_kib: u64,
    rows: Vec<Row>,
    memory: Vec<(String, Value)>,
    /// Why a peer was not measured.
    skipped: Vec<String>,
    /// The server's CPU per request of some rows, by thread ([`super::cpu`]).
    cpu: Vec<(String, Vec<Share>)>,
    /// The bare reference's `GET /` rate in the create rows' own rounds, when it ran there.
    create_rounds_reference: Option<f64>,
}

impl Report {
    pub fn new(generator: &str, startup: Duration, idle_rss_kib: u64) -> Report {
        Report {
            generator: generator.to_owned(),
            startup,
            idle_rss_kib,
            rows: Vec::new(),
            memory: Vec::new(),
            skipped: Vec::new(),
            cpu: Vec::new(),
            create_rounds_reference: None,
        }
    }

    /// The bare reference's `GET /` rate measured in the create rows' own rounds: the
    /// create-link rate over it is a ratio of runs seconds apart, where the reference row
    /// ran in the health check's rounds, a minute or more before.
    pub fn note_create_rounds_reference(&mut self, per_second: f64) {
        self.create_rounds_reference = Some(per_second);
    }

    /// The create-link rate over [`Report::note_create_rounds_reference`]'s.
    fn create_in_its_rounds(&self) -> Option<(f64, f64)> {
        let reference = self.create_rounds_reference.filter(|rate| *rate > 0.0)?;
        let create = self.rows.iter().find(|row| row.name == CREATE)?;
        Some((create.per_second / reference, reference))
    }

    /// The server's CPU per request of row `name`, by thread; nothing where it was not read.
    pub fn note_cpu(&mut self, name: &str, shares: Vec<Share>) {
        if !shares.is_empty() {
            self.cpu.push((name.to_owned(), shares));
        }
    }

    pub fn add(&mut self, name: &str, outcome: impl Into<Sample>, versus: Option<&str>) {
        self.push(name, outcome.into(), versus, "health");
    }

    /// A row whose ratio is its rate over the `versus` row's, labelled `label`.
    pub fn add_compared(
        &mut self,
        name: &str,
        outcome: impl Into<Sample>,
        versus: &str,
        label: &'static str,
    ) {
        self.push(name, outcome.into(), Some(versus), label);
    }

    fn push(
        &mut self,
        name: &str,
        sample: Sample,
        versus: Option<&str>,
        versus_label: &'static str,
    ) {
        self.rows.push(Row {
            name: name.to_owned(),
            per_second: sample.per_second,
            p50_ms: sample.p50_ms,
            p99_ms: sample.p99_ms,
            max_ms: sample.max_ms,
            requests: sample.requests,
            errors: sample.errors,
            versus: versus.map(str::to_owned),
            versus_label,
        });
    }

    /// A peer's create-link run; its ratio is linkbox's create over the peer's.
    pub fn add_peer(&mut self, name: &str, outcome: impl Into<Sample>) {
        self.add(&format!("{name}: POST /partner/links"), outcome, None);
    }

    pub fn skip_peers(&mut self, why: &str) {
        self.skipped.push(why.to_owned());
    }

    /// Resident memory added by `links` stored links, under `name`.
    pub fn note_memory(&mut self, name: &str, links: u64, before_kib: u64, after_kib: u64) {
        self.memory
            .push((name.to_owned(), per_link(links, before_kib, after_kib)));
    }

    /// Each row's rate over the bare reference's, measured in this run.
    fn versus_bare(&self, row: &Row) -> Option<f64> {
        let bare = self.rows.iter().find(|other| other.name == REFERENCE)?;
        Some(row.per_second / bare.per_second)
    }

    fn ratio(&self, row: &Row) -> Option<f64> {
        let versus = row.versus.as_deref()?;
        let base = self.rows.iter().find(|other| other.name == versus)?;
        Some(row.per_second / base.per_second)
    }

    /// The create-link rate with a state file over the in-memory one, in this run.
    fn state_file_ratio(&self) -> Option<f64> {
        self.rows
            .iter()
            .find(|row| row.versus_label == "in memory")
            .and_then(|row| self.ratio(row))
    }

    /// linkbox's create-link rate over each peer's, measured in this run.
    fn peer_ratios(&self) -> Vec<(String, f64)> {
        let Some(ours) = self.rows.iter().find(|row| row.name == CREATE) else {
            return Vec::new();
        };
        self.rows
            .iter()
            .filter_map(|row| {
                let peer = row.name.strip_suffix(": POST /partner/links")?;
                Some((peer.to_owned(), ours.per_second / row.per_second))
            })
            .collect()
    }

    pub fn table(&self) -> String {
        let mut out = format!("load generator: {}\n", self.generator);
        out.push_str(&format!(
            "{:<44} {:>10} {:>8} {:>8} {:>9} {:>7} {:>7} {:>16}\n",
            "scenario", "req/s", "p50 ms", "p99 ms", "max ms", "errors", "x bare", "ratio"
        ));
        for row in &self.rows {
            let ratio = self
                .ratio(row)
                .map(|ratio| format!("{ratio:.2}x {}", row.versus_label))
                .unwrap_or_default();
            let bare = self
                .versus_bare(row)
                .map(|ratio| format!("{ratio:.2}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<44} {:>10.0} {:>8.2} {:>8.2} {:>9.2} {:>7} {:>7} {:>16}\n",
                row.name,
                row.per_second,
                row.p50_ms,
                row.p99_ms,
                row.max_ms,
                row.errors,
                bare,
                ratio
            ));
        }
        out.push_str(&format!(
            "\nstart to first answer: {:.1} ms; idle RSS: {:.1} MiB\n",
            self.startup.as_secs_f64() * 1000.0,
            self.idle_rss_kib as f64 / 1024.0
        ));
        if let Some((ratio, reference)) = self.create_in_its_rounds() {
            out.push_str(&format!(
                "create-link: {ratio:.2} of the bare GET / run in its own rounds ({reference:.0}/s)\n"
            ));
        }
        if let Some(ratio) = self.state_file_ratio() {
            out.push_str(&format!(
                "create-link with --state: {ratio:.2} of the in-memory rate\n"
            ));
        }
        for (peer, ratio) in self.peer_ratios() {
            out.push_str(&format!("linkbox create-link vs {peer}: {ratio:.1}x\n"));
        }
        for why in &self.skipped {
            out.push_str(&format!("peer not measured: {why}\n"));
        }
        for (name, memory) in &self.memory {
            out.push_str(&format!(
                "memory per stored link ({name}): {} bytes over {} links\n",
                memory["bytesPerLink"], memory["links"]
            ));
        }
        if !self.cpu.is_empty() {
            out.push_str("\nserver CPU per request, by thread (µs user + system, all rounds):\n");
        }
        for (name, shares) in &self.cpu {
            let total: f64 = shares
                .iter()
                .map(|share| share.user_us + share.sys_us)
                .sum();
            let threads: Vec<String> = shares
                .iter()
                .map(|share| {
                    format!(
                        "{} {:.1} + {:.1}",
                        share.thread, share.user_us, share.sys_us
                    )
                })
                .collect();
            out.push_str(&format!("  {name}: {total:.1} ({})\n", threads.join(", ")));
        }
        out
    }

    pub fn json(&self) -> anyhow::Result<String> {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                json!({
                    "scenario": row.name,
                    "requestsPerSecond": row.per_second.round(),
                    "p50Ms": row.p50_ms,
                    "p99Ms": row.p99_ms,
                    "maxMs": row.max_ms,
                    "requests": row.requests,
                    "errors": row.errors,
                    "ratio": self.ratio(row),
                    "versus": row.versus,
                    "versusBare": self.versus_bare(row),
                })
            })
            .collect();
        let memory: serde_json::Map<String, Value> = self.memory.iter().cloned().collect();
        Ok(serde_json::to_string_pretty(&json!({
            "generator": self.generator,
            "startupMs": self.startup.as_secs_f64() * 1000.0,
            "idleRssKib": self.idle_rss_kib,
            "scenarios": rows,
            "memory": memory,
            "stateFileVsInMemory": self.state_file_ratio(),
            "createVsBareInItsRounds": self.create_in_its_rounds().map(|(ratio, _)| ratio),
            "versusPeers": self.peer_ratios().into_iter().map(|(peer, ratio)| (peer, json!(ratio))).collect::<serde_json::Map<String, Value>>(),
            "peersNotMeasured": self.skipped,
            "cpuPerRequestUs": self.cpu.iter().map(|(name, shares)| {
                let threads: Vec<Value> = shares.iter().map(|share| json!({
                    "thread": share.thread,
                    "user": share.user_us,
                    "system": share.sys_us,
                })).collect();
                (name.clone(), Value::from(threads))
            }).collect::<serde_json::Map<String, Value>>(),
        }))?)
    }

    /// Horizontal bars of requests per second.
    pub fn svg(&self) -> String {
        let width = 720.0;
        let bar_area = 360.0;
        let row_height = 28.0;
        let height = 20.0 + row_height * self.rows.len() as f64;
        let top = self
            .rows
            .iter()
            .map(|row| row.per_second)
            .fold(1.0, f64::max);
        let mut out = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n"
        );
        for (i, row) in self.rows.iter().enumerate() {
            let y = 10.0 + row_height * i as f64;
            let bar = bar_area * row.per_second / top;
            out.push_str(&format!(
                "  <text x=\"0\" y=\"{:.0}\">{}</text>\n  <rect x=\"300\" y=\"{y:.0}\" width=\"{bar:.0}\" \
                 height=\"18\" fill=\"#3b7dd8\"/>\n  <text x=\"{:.0}\" y=\"{:.0}\">{:.0} req/s</text>\n",
                y + 13.0,
                escape(&row.name),
                305.0 + bar,
                y + 13.0,
                row.per_second
            ));
        }
        out.push_str("</svg>\n");
        out
    }
}

fn per_link(links: u64, before_kib: u64, after_kib: u64) -> Value {
    let bytes = after_kib.saturating_sub(before_kib) * 1024;
    json!({
        "links": links,
        "rssBeforeKib": before_kib,
        "rssAfterKib": after_kib,
        "bytesPerLink": bytes.checked_div(links).unwrap_or(0),
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(per_second: f64) -> Sample {
        Sample {
            per_second,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
            requests: 100,
            errors: 0,
        }
    }

    #[test]
    fn every_row_is_divided_by_the_bare_reference() {
        let mut report = Report::new("wrk", Duration::from_millis(5), 1024);
        report.add(REFERENCE, sample(50_000.0), None);
        report.add("GET /_sandbox/health", sample(40_000.0), None);
        report.add(
            "POST /partner/links",
            sample(20_000.0),
            Some("GET /_sandbox/health"),
        );
        let json: Value = serde_json::from_str(&report.json().expect("json")).expect("parse");
        let rows = json["scenarios"].as_array().expect("rows");
        assert_eq!(rows[0]["versusBare"], 1.0);
        assert_eq!(rows[1]["versusBare"], 0.8);
        assert_eq!(rows[2]["versusBare"], 0.4);
        assert_eq!(rows[2]["ratio"], 0.5);
        assert!(report.table().contains("load generator: wrk"));
    }

    #[test]
    fn create_is_also_divided_by_the_reference_run_in_its_rounds() {
        let mut report = Report::new("wrk", Duration::from_millis(5), 1024);
        report.add(REFERENCE, sample(50_000.0), None);
        report.add("POST /partner/links", sample(20_000.0), None);
        let json = |report: &Report| -> Value {
            serde_json::from_str(&report.json().expect("json")).expect("parse")
        };
        assert_eq!(json(&report)["createVsBareInItsRounds"], Value::Null);
        assert!(!report.table().contains("in its own rounds"));
        report.note_create_rounds_reference(40_000.0);
        assert_eq!(json(&report)["createVsBareInItsRounds"], 0.5);
        assert_eq!(json(&report)["scenarios"][1]["versusBare"], 0.4);
        assert!(
            report
                .table()
                .contains("create-link: 0.50 of the bare GET / run in its own rounds (40000/s)"),
            "{}",
            report.table()
        );
    }

    #[test]
    fn the_cpu_split_is_shown_by_row_and_thread() {
        let mut report = Report::new("wrk", Duration::from_millis(5), 1024);
        report.note_cpu(
            "POST /partner/links --state FILE",
            vec![
                Share {
                    thread: "tokio-rt-worker".into(),
                    user_us: 19.25,
                    sys_us: 9.5,
                },
                Share {
                    thread: "linkbox-state".into(),
                    user_us: 9.0,
                    sys_us: 7.0,
                },
            ],
        );
        report.note_cpu("a row whose server could not be read", Vec::new());
        let table = report.table();
        assert!(
            table.contains(
                "  POST /partner/links --state FILE: 44.8 (tokio-rt-worker 19.2 + 9.5, linkbox-state 9.0 + 7.0)"
            ),
            "{table}"
        );
        assert!(!table.contains("could not be read"), "{table}");
        let json: Value = serde_json::from_str(&report.json().expect("json")).expect("parse");
        let split = &json["cpuPerRequestUs"]["POST /partner/links --state FILE"];
        assert_eq!(split[1]["thread"], "linkbox-state");
        assert_eq!(split[1]["system"], 7.0);
        assert_eq!(
            json["cpuPerRequestUs"].as_object().map(|rows| rows.len()),
            Some(1)
        );
    }
}

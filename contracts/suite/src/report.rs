//! What a run tells people and CI: a progress line per case, a failure block (the request,
//! then expected and actual side by side), the drift report against a target, the summary
//! line `N passed, N failed, N errored`, JUnit XML and JSON. A `fail` is drift (the target
//! answered against the contract); an `error` is weather (the target could not be asked), and
//! every output keeps the two apart: JUnit `<failure>` and `<error>`, JSON `"outcome"`, exit
//! code 1 and 3.

use std::io::Write;
use std::time::Duration;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Value, json};

use super::console::{Colour, paint};
use super::{Api, Failure, Source, UsageError};

/// How one case ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Pass,
    /// Drift: the target answered, and the answer contradicts the contract.
    Fail(Failure),
    /// Weather: the target could not be asked (refused or reset connection, timeout, 5xx,
    /// 429), even after the retries.
    Error(Failure),
}

impl Outcome {
    /// `pass`, `fail` or `error`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail(_) => "fail",
            Outcome::Error(_) => "error",
        }
    }
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub id: &'static str,
    pub api: Api,
    pub source: Source,
    pub outcome: Outcome,
    pub duration: Duration,
    /// The ids of the facts of `docs/contract/` the case checks.
    pub facts: &'static [&'static str],
}

impl CaseResult {
    /// The drift, when the case failed.
    pub fn failure(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Fail(failure) => Some(failure),
            Outcome::Pass | Outcome::Error(_) => None,
        }
    }

    /// The weather, when the case could not be run to its end.
    pub fn error(&self) -> Option<&Failure> {
        match &self.outcome {
            Outcome::Error(failure) => Some(failure),
            Outcome::Pass | Outcome::Fail(_) => None,
        }
    }

    /// What went wrong, drift or weather.
    pub fn problem(&self) -> Option<&Failure> {
        self.failure().or_else(|| self.error())
    }
}

/// An answer against a `[design]` fact, met by a `[doc]` case against a target that is not
/// held to it (it passes through the step the guess is about): not drift of that case, but
/// worth saying — the fact's own `[design]` case checks it when `[design]` cases run.
#[derive(Debug, Clone, PartialEq)]
pub struct DesignDifference {
    /// The `[design]` fact the answer contradicts.
    pub fact: &'static str,
    /// The case that met it first.
    pub case: &'static str,
    /// The check that would have failed, as it would have.
    pub failure: Failure,
}

/// Failed cases that must meet one answer for [`Report::shared_causes`] to name it.
pub const SHARED_CAUSE: usize = 3;

/// A whole run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The deployment's base URL; `None` for an in-process run.
    pub target: Option<String>,
    pub results: Vec<CaseResult>,
    /// Ctrl-C stopped the run early.
    pub interrupted: bool,
    /// The first answer against each `[design]` fact that a case not held to it met.
    pub design_differences: Vec<DesignDifference>,
}

impl Report {
    pub fn new(target: Option<String>) -> Report {
        Report {
            target,
            results: Vec::new(),
            interrupted: false,
            design_differences: Vec::new(),
        }
    }

    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|result| result.outcome == Outcome::Pass)
            .count()
    }

    /// Cases that failed: drift.
    pub fn failed(&self) -> usize {
        self.results
            .iter()
            .filter(|result| result.failure().is_some())
            .count()
    }

    /// Cases that ended in an error: weather.
    pub fn errored(&self) -> usize {
        self.results
            .iter()
            .filter(|result| result.error().is_some())
            .count()
    }

    /// Ids of the cases that ended in an error, in run order.
    pub fn errored_ids(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|result| result.error().is_some())
            .map(|result| result.id)
            .collect()
    }

    /// Ids of the failing cases, in run order.
    pub fn failed_ids(&self) -> Vec<&'static str> {
        self.results
            .iter()
            .filter(|result| result.failure().is_some())
            .map(|result| result.id)
            .collect()
    }

    /// 0 all passed; 1 a case failed (drift, whatever else happened); 2 the run stopped
    /// before its first case on a usage error ([`Report::stopped`]); 3 cases errored and none
    /// failed (weather only); 130 interrupted.
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            130
        } else if self.failed() > 0 {
            1
        } else if self
            .results
            .iter()
            .any(|result| result.error().is_some_and(|error| !error.weather))
        {
            2
        } else if self.errored() > 0 {
            3
        } else {
            0
        }
    }

    /// `N passed, N failed, N errored`: CI parsers reading `N passed, N failed` still can.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed, {} errored",
            self.passed(),
            self.failed(),
            self.errored()
        )
    }

    /// The errored cases and why, whether in-process or against a target: they are not
    /// drift. Empty when none errored.
    pub fn weather(&self) -> String {
        let errored: Vec<&CaseResult> = self
            .results
            .iter()
            .filter(|result| result.error().is_some_and(|error| error.weather))
            .collect();
        if errored.is_empty() {
            return String::new();
        }
        let mut out = format!(
            "weather: the target could not be asked — not drift, rerun later: {}\n",
            errored.len()
        );
        for result in errored {
            if let Some(error) = result.error() {
                out.push_str(&format!(
                    "  {}: {} {}\n",
                    result.id,
                    error.check,
                    one_line(&error.actual, 120)
                ));
            }
        }
        out
    }

    /// The report of a run that stopped before its first case, `error` saying why: one
    /// case, so the files a CI step uploads parse and say what happened. A target that could
    /// not be asked at all is `preflight.target-reachable`, errored as weather (exit 3); a
    /// credential the target refused is `preflight.credential-accepted`, a certificate that
    /// failed `preflight.certificate-verified` and anything else `preflight.usage`, each
    /// errored as a usage error, not weather (exit 2, as [`Report::exit_code`] says too). The
    /// case is the refused credential's API's, else `api`'s (`--api`), else M2M's.
    pub fn stopped(target: Option<String>, api: Option<Api>, error: &UsageError) -> Report {
        let (id, check, expected) = match error {
            UsageError::Connection(_) => ("preflight.target-reachable", "reachable", "an answer"),
            UsageError::Refused { .. } => (
                "preflight.credential-accepted",
                "credential",
                "the credential accepted",
            ),
            UsageError::Certificate(_) => (
                "preflight.certificate-verified",
                "certificate",
                "a certificate that verifies",
            ),
            UsageError::LiveKey | UsageError::Usage(_) => {
                ("preflight.usage", "usage", "options the suite can run")
            }
        };
        let failure = Failure {
            weather: matches!(error, UsageError::Connection(_)),
            ..Failure::new("the run before its first case", check, expected, error)
        };
        let api = match error {
            UsageError::Refused { api, .. } => *api,
            _ => api.unwrap_or(Api::M2m),
        };
        let mut report = Report::new(target);
        report.results.push(CaseResult {
            id,
            api,
            source: Source::Doc,
            outcome: Outcome::Error(failure),
            duration: Duration::ZERO,
            facts: &[],
        });
        report
    }

    /// Against a target: the failures grouped by what they mean. Empty in-process.
    pub fn drift(&self) -> String {
        if self.target.is_none() {
            return String::new();
        }
        let mut out = String::new();
        let groups = [
            (
                Source::Doc,
                "the vendor differs from its docs ([doc] cases failed)",
            ),
            (
                Source::Design,
                "linkbox guessed wrong — update the spec ([design] cases failed)",
            ),
        ];
        for (source, title) in groups {
            let failed: Vec<&CaseResult> = self
                .results
                .iter()
                .filter(|result| result.source == source && result.failure().is_some())
                .collect();
            if failed.is_empty() {
                continue;
            }
            out.push_str(&format!("drift: {title}: {}\n", failed.len()));
            for result in failed {
                if let Some(failure) = result.failure() {
                    out.push_str(&format!(
                        "  {}: {} expected {}, got {} ({})\n",
                        super::facts::describe(result.facts),
                        failure.check,
                        one_line(&failure.expected, 80),
                        one_line(&failure.actual, 80),
                        result.id
                    ));
                }
            }
        }
        out.push_str(&self.shared_causes());
        let differences = self.unreported_differences();
        if out.is_empty() {
            let errored = self
                .results
                .iter()
                .filter(|result| result.error().is_some())
                .count();
            if self.interrupted {
                // A run stopped part way checked only what ran: no claim for the rest.
                out.push_str(&format!(
                    "drift: none among the {} cases that ran before the run was interrupted: \
                     run it whole before taking the target to match the spec\n",
                    self.results.len()
                ));
            } else if errored == 0 && differences.is_empty() {
                out.push_str("drift: none — the target matches the spec\n");
            } else if errored == 0 {
                // The facts the cases check hold; not every guess they passed by does.
                out.push_str(
                    "drift: none in the facts the cases check — but the target answers \
                     against [design] guesses they passed by (below)\n",
                );
            } else {
                // Cases that could not ask the target checked nothing: no claim for them.
                out.push_str(&format!(
                    "drift: none among the cases that ran — {errored} of {} could not ask the \
                     target (weather, below): rerun them before taking the target to match \
                     the spec\n",
                    self.results.len()
                ));
            }
        }
        if !differences.is_empty() {
            out.push_str(&format!(
                "design: answers against [design] guesses met by [doc] cases, which are not \
                 held to them — linkbox may have guessed wrong (--only all runs the cases that \
                 check them): {}\n",
                differences.len()
            ));
            for difference in differences {
                out.push_str(&format!(
                    "  {}: {} expected {}, got {} ({})\n",
                    super::facts::describe(&[difference.fact]),
                    difference.failure.check,
                    one_line(&difference.failure.expected, 80),
                    one_line(&difference.failure.actual, 80),
                    difference.case
                ));
            }
        }
        out
    }

    /// The `[design]` differences no failed case of the run already reports: those whose fact
    /// no failed case names.
    fn unreported_differences(&self) -> Vec<&DesignDifference> {
        self.design_differences
            .iter()
            .filter(|difference| {
                !self.results.iter().any(|result| {
                    result.failure().is_some() && result.facts.contains(&difference.fact)
                })
            })
            .collect()
    }

    /// Writes the drift report (against a target), the weather report and the summary line.
    /// One line per answer that [`SHARED_CAUSE`] or more failed cases met alike — the same
    /// check of the same endpoint, expecting and getting the same: one drift that many
    /// cases run into (a create answered 200 fails every case that creates), with the facts
    /// all of them check, the likely one broken. Most shared first.
    pub fn shared_causes(&self) -> String {
        // (the answer met, the fact a status names, the cases that met it)
        let mut causes: Vec<(String, Option<&'static str>, Vec<&CaseResult>)> = Vec::new();
        for result in &self.results {
            let Some(failure) = result.failure() else {
                continue;
            };
            let mut words = failure.request.splitn(3, ' ');
            let method = words.next().unwrap_or_default();
            let path = words.next().unwrap_or_default();
            let path = path.split('?').next().unwrap_or_default();
            let request = words.next().and_then(leading_json);
            let endpoint = super::shadow::endpoint(result.api, method, path);
            // A status's answer is told with the start of its body, which differs case by
            // case (each its own link): the status and the error it names (an M2M code, a
            // Leaf problem's title) are the answer met, and the situation the body words (no
            // key or a bad one) the fact it contradicts — cases whose answers name other
            // situations met other answers.
            let (actual, named) = if failure.check == "status" {
                let (status, body) = failure
                    .actual
                    .split_once(' ')
                    .unwrap_or((failure.actual.as_str(), ""));
                let body = leading_json(body);
                let named = failure
                    .expected
                    .parse()
                    .ok()
                    .zip(status.parse().ok())
                    .and_then(|(expected, got)| {
                        super::shadow::status_fact(
                            result.api,
                            &endpoint,
                            expected,
                            got,
                            body.as_ref(),
                            request.as_ref(),
                        )
                    });
                let error = body
                    .as_ref()
                    .and_then(|body| body.pointer("/error/code").or_else(|| body.get("title")))
                    .and_then(Value::as_str);
                let actual = match error {
                    Some(error) => format!("{status} {}", one_line(error, 40)),
                    None => status.to_owned(),
                };
                (actual, named)
            } else if failure.check.starts_with("schema ") {
                // The ways the body fails its schema, without the body after them: its ids
                // and times differ from case to case, the way it fails does not.
                let ways = failure.actual.split(" — ").next().unwrap_or_default();
                (one_line(ways, 80), None)
            } else {
                (one_line(&failure.actual, 80), None)
            };
            let cause = format!(
                "{endpoint}: {} expected {}, got {actual}",
                failure.check,
                one_line(&failure.expected, 80),
            );
            match causes
                .iter_mut()
                .find(|(known, fact, _)| *known == cause && *fact == named)
            {
                Some((_, _, cases)) => cases.push(result),
                None => causes.push((cause, named, vec![result])),
            }
        }
        // A case whose own words did not tell its situation (its request cut short in the
        // failure's text) met the same answer as those that did: it joins theirs when they
        // all name one fact.
        let mut unnamed = Vec::new();
        causes.retain_mut(|(cause, fact, cases)| {
            if fact.is_some() {
                return true;
            }
            unnamed.push((std::mem::take(cause), std::mem::take(cases)));
            false
        });
        for (cause, cases) in unnamed {
            let mut named = causes.iter_mut().filter(|(known, _, _)| *known == cause);
            match (named.next(), named.next()) {
                (Some((_, _, joined)), None) => joined.extend(cases),
                _ => causes.push((cause, None, cases)),
            }
        }
        causes.retain(|(_, _, cases)| cases.len() >= SHARED_CAUSE);
        causes.sort_by_key(|(_, _, cases)| std::cmp::Reverse(cases.len()));
        let mut out = String::new();
        for (cause, named, cases) in causes {
            let common: Vec<&str> = cases[0]
                .facts
                .iter()
                .copied()
                .filter(|fact| cases.iter().all(|case| case.facts.contains(fact)))
                .collect();
            let blame = match named {
                Some(fact) => format!(
                    "the fact it contradicts: {}",
                    super::facts::describe(&[fact])
                ),
                None if common.is_empty() => String::from("no one fact is checked by all of them"),
                None => format!(
                    "the fact all of them check: {}",
                    super::facts::describe(&common)
                ),
            };
            out.push_str(&format!(
                "drift: {} failed cases met one answer — {cause} — {blame}\n",
                cases.len()
            ));
        }
        out
    }

    pub fn write_end(&self, out: &mut dyn Write) -> std::io::Result<()> {
        for section in [self.drift(), self.weather()] {
            if !section.is_empty() {
                writeln!(out)?;
                write!(out, "{section}")?;
            }
        }
        writeln!(out)?;
        writeln!(out, "{}", self.summary())
    }

    /// JUnit XML: one `testsuite` per API, one `testcase` per case.
    pub fn junit(&self) -> String {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing into a Vec cannot fail; each result is still checked.
        let _ = self.write_junit(&mut writer);
        String::from_utf8_lossy(&writer.into_inner()).into_owned()
    }

    fn write_junit(&self, writer: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let total_time: f64 = self
            .results
            .iter()
            .map(|result| result.duration.as_secs_f64())
            .sum();
        let mut suites = BytesStart::new("testsuites");
        suites.push_attribute(("name", "linkbox contract suite"));
        suites.push_attribute(("tests", self.results.len().to_string().as_str()));
        suites.push_attribute(("failures", self.failed().to_string().as_str()));
        suites.push_attribute(("errors", self.errored().to_string().as_str()));
        suites.push_attribute(("time", format!("{total_time:.3}").as_str()));
        writer.write_event(Event::Start(suites))?;
        for api in [Api::M2m, Api::Leaf, Api::Sandbox] {
            let results: Vec<&CaseResult> = self
                .results
                .iter()
                .filter(|result| result.api == api)
                .collect();
            if results.is_empty() {
                continue;
            }
            let failures = results
                .iter()
                .filter(|result| result.failure().is_some())
                .count();
            let errors = results
                .iter()
                .filter(|result| result.error().is_some())
                .count();
            let mut suite = BytesStart::new("testsuite");
            suite.push_attribute(("name", api.name()));
            suite.push_attribute(("tests", results.len().to_string().as_str()));
            suite.push_attribute(("failures", failures.to_string().as_str()));
            suite.push_attribute(("errors", errors.to_string().as_str()));
            writer.write_event(Event::Start(suite))?;
            for result in results {
                let mut case = BytesStart::new("testcase");
                case.push_attribute(("classname", format!("contract.{}", api.name()).as_str()));
                case.push_attribute(("name", result.id));
                case.push_attribute((
                    "time",
                    format!("{:.3}", result.duration.as_secs_f64()).as_str(),
                ));
                writer.write_event(Event::Start(case))?;
                writer.write_event(Event::Start(BytesStart::new("properties")))?;
                let mut property = BytesStart::new("property");
                property.push_attribute(("name", "source"));
                property.push_attribute(("value", result.source.name()));
                writer.write_event(Event::Empty(property))?;
                let mut facts = BytesStart::new("property");
                facts.push_attribute(("name", "facts"));
                facts.push_attribute(("value", result.facts.join(",").as_str()));
                writer.write_event(Event::Empty(facts))?;
                writer.write_event(Event::End(BytesEnd::new("properties")))?;
                // Drift is a <failure> typed by its source; weather an <error>.
                let problem = match &result.outcome {
                    Outcome::Pass => None,
                    Outcome::Fail(failure) => Some(("failure", result.source.name(), failure)),
                    Outcome::Error(failure) => Some(("error", error_kind(failure), failure)),
                };
                if let Some((tag, kind, failure)) = problem {
                    let mut element = BytesStart::new(tag);
                    element.push_attribute((
                        "message",
                        format!(
                            "{}{}: expected {}, got {}",
                            // Drift names the facts it contradicts; weather contradicts none.
                            if tag == "failure" {
                                format!("{}: ", super::facts::describe(result.facts))
                            } else {
                                String::new()
                            },
                            failure.check,
                            one_line(&failure.expected, 200),
                            one_line(&failure.actual, 200)
                        )
                        .as_str(),
                    ));
                    element.push_attribute(("type", kind));
                    writer.write_event(Event::Start(element))?;
                    writer.write_event(Event::Text(BytesText::new(&failure_block(failure))))?;
                    writer.write_event(Event::End(BytesEnd::new(tag)))?;
                }
                writer.write_event(Event::End(BytesEnd::new("testcase")))?;
            }
            writer.write_event(Event::End(BytesEnd::new("testsuite")))?;
        }
        writer.write_event(Event::End(BytesEnd::new("testsuites")))?;
        Ok(())
    }

    /// The run as JSON: summary counts and every case with its outcome.
    pub fn json(&self) -> Value {
        let cases: Vec<Value> = self
            .results
            .iter()
            .map(|result| {
                let mut case = json!({
                    "id": result.id,
                    "api": result.api.name(),
                    "source": result.source.name(),
                    "outcome": result.outcome.name(),
                    "durationMs": result.duration.as_millis() as u64,
                    "facts": result.facts,
                });
                // `failure` for drift, `error` for weather: the same fields.
                let problem = match &result.outcome {
                    Outcome::Pass => None,
                    Outcome::Fail(failure) => Some(("failure", failure)),
                    Outcome::Error(failure) => Some(("error", failure)),
                };
                if let Some((key, failure)) = problem {
                    case[key] = json!({
                        "request": failure.request,
                        "check": failure.check,
                        "expected": failure.expected,
                        "actual": failure.actual,
                    });
                    if key == "error" {
                        case[key]["kind"] = json!(error_kind(failure));
                    }
                }
                case
            })
            .collect();
        let differences: Vec<Value> = self
            .design_differences
            .iter()
            .map(|difference| {
                json!({
                    "fact": difference.fact,
                    "case": difference.case,
                    "request": difference.failure.request,
                    "check": difference.failure.check,
                    "expected": difference.failure.expected,
                    "actual": difference.failure.actual,
                })
            })
            .collect();
        json!({
            "target": self.target,
            "exitCode": self.exit_code(),
            "passed": self.passed(),
            "failed": self.failed(),
            "errored": self.errored(),
            "interrupted": self.interrupted,
            "cases": cases,
            "designDifferences": differences,
        })
    }
}

/// What an errored case's error is: `weather` (the target could not be asked), or `usage`
/// (the run stopped before its first case on a usage error: a refused credential, a failing
/// certificate).
fn error_kind(failure: &Failure) -> &'static str {
    if failure.weather { "weather" } else { "usage" }
}

/// `[ 12/140] PASS m2m.create.default-expiry [doc]` (or `FAIL`, `ERROR`), and the failure
/// block under a failure or an error; the verdict in colour when `colour`.
pub fn write_progress(
    out: &mut (dyn Write + Send),
    index: usize,
    total: usize,
    result: &CaseResult,
    colour: bool,
) -> std::io::Result<()> {
    let width = total.to_string().len();
    let verdict = match &result.outcome {
        Outcome::Pass => paint(colour, Colour::Green, "PASS"),
        Outcome::Fail(_) => paint(colour, Colour::Red, "FAIL"),
        Outcome::Error(_) => paint(colour, Colour::Yellow, "ERROR"),
    };
    writeln!(
        out,
        "[{index:>width$}/{total}] {verdict} {} {}",
        result.id,
        result.source.tag()
    )?;
    if let Some(failure) = result.problem() {
        write!(out, "{}", failure_block(failure))?;
    }
    if result.failure().is_some() {
        writeln!(
            out,
            "      facts:    {}",
            super::facts::describe(result.facts)
        )?;
    }
    out.flush()
}

/// The request, what was checked, and expected beside actual.
pub fn failure_block(failure: &Failure) -> String {
    let expected = one_line(&failure.expected, 300);
    let actual = one_line(&failure.actual, 300);
    let mut text = format!(
        "      request:  {}\n      check:    {}\n",
        one_line(&failure.request, 300),
        failure.check
    );
    let column = expected.chars().count().max("expected".len());
    if column <= 48 && actual.chars().count() <= 72 {
        text.push_str(&format!(
            "      {:<column$} | {}\n      {:<column$} | {}\n",
            "expected", "actual", expected, actual
        ));
    } else {
        text.push_str(&format!(
            "      expected: {expected}\n      actual:   {actual}\n"
        ));
    }
    text
}

/// The JSON value `text` opens with (a body quoted in a failure, perhaps followed by a note),
/// if it is whole.
fn leading_json(text: &str) -> Option<Value> {
    serde_json::Deserializer::from_str(text.trim_start())
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// `text` on one line, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut report = Report::new(Some("http://127.0.0.1:1".into()));
        report.results.push(CaseResult {
            id: "m2m.create.default-expiry",
            api: Api::M2m,
            source: Source::Doc,
            outcome: Outcome::Pass,
            duration: Duration::from_millis(3),
            facts: &["M2M-CREATE-DEFAULT-EXPIRY"],
        });
        report.results.push(CaseResult {
            id: "m2m.create.status-201",
            api: Api::M2m,
            source: Source::Design,
            outcome: Outcome::Fail(Failure::new(
                "POST /partner/links {\"a\":\"<&>\"}",
                "status",
                201,
                "200 <oops> & \"quotes\"",
            )),
            duration: Duration::from_millis(4),
            facts: &["M2M-CREATE-STATUS"],
        });
        report
    }

    /// A create answered 200 fails every case that creates, each naming its own facts; the
    /// report also names the one answer they met and the fact all of them check.
    #[test]
    fn one_answer_many_cases_failed_on_is_named_once_with_the_fact_they_share() {
        let mut report = Report::new(Some("http://127.0.0.1:1".into()));
        let facts: [&'static [&'static str]; 4] = [
            &["M2M-CREATE-STATUS", "M2M-CREATE-DEFAULT-EXPIRY"],
            &["M2M-LINK-STATUSES", "M2M-CREATE-STATUS"],
            &["M2M-CREATE-STATUS"],
            &["M2M-CREATE-STATUS", "M2M-REVOKE-TWICE"],
        ];
        let ids = ["a", "b", "c", "d"];
        for (id, facts) in ids.into_iter().zip(facts) {
            report.results.push(CaseResult {
                id,
                api: Api::M2m,
                source: Source::Doc,
                outcome: Outcome::Fail(Failure::new(
                    format!("POST /partner/links {{\"referenceId\":\"{id}\"}}"),
                    "status",
                    201,
                    format!("200 {{\"data\":{{\"linkId\":\"link_{id}\"}}}}"),
                )),
                duration: Duration::from_millis(1),
                facts,
            });
        }
        report.results.push(CaseResult {
            id: "e",
            api: Api::M2m,
            source: Source::Doc,
            outcome: Outcome::Fail(Failure::new(
                "GET /partner/links/link_p1_abc",
                "status",
                200,
                404,
            )),
            duration: Duration::from_millis(1),
            facts: &["M2M-DETAIL-FIELDS"],
        });
        let causes = report.shared_causes();
        assert_eq!(causes.lines().count(), 1, "{causes}");
        assert!(
            causes.contains("4 failed cases met one answer — POST /partner/links: status"),
            "{causes}"
        );
        assert!(
            causes.contains("the fact it contradicts: `M2M-CREATE-STATUS`"),
            "{causes}"
        );
        assert!(report.drift().contains(&causes), "{}", report.drift());
    }

    /// Every 401 answered 403: a missing key's 403 and a bad key's are two answers, each
    /// blamed on its own fact, not one answer blamed on the bad key's.
    #[test]
    fn a_status_met_with_other_errors_is_other_answers_each_naming_its_fact() {
        let mut report = Report::new(Some("http://127.0.0.1:1".into()));
        let cases: [(&'static str, &str, &str, &'static [&'static str]); 6] = [
            (
                "m2m.auth.no-key-401",
                "UNAUTHORIZED",
                "Missing authentication. Provide X-API-Key or Bearer token.",
                &["M2M-AUTH-NO-KEY-STATUS", "M2M-AUTH-NO-KEY-CODE"],
            ),
            (
                "m2m.auth.malformed-key-401",
                "INVALID_API_KEY",
                "Invalid or revoked API key",
                &["M2M-AUTH-INVALID-KEY-STATUS"],
            ),
            (
                "m2m.auth.short-test-key-401",
                "INVALID_API_KEY",
                "Invalid or revoked API key",
                &["M2M-AUTH-KEY-FORMAT", "M2M-AUTH-INVALID-KEY-STATUS"],
            ),
            (
                "m2m.auth.non-alphanumeric-test-key-401",
                "INVALID_API_KEY",
                "Invalid or revoked API key",
                &["M2M-AUTH-KEY-FORMAT", "M2M-AUTH-INVALID-KEY-STATUS"],
            ),
            (
                "m2m.auth.no-key-again-401",
                "UNAUTHORIZED",
                "Missing authentication. Provide X-API-Key or Bearer token.",
                &["M2M-AUTH-NO-KEY-STATUS"],
            ),
            (
                "m2m.auth.no-key-once-more-401",
                "UNAUTHORIZED",
                "Missing authentication. Provide X-API-Key or Bearer token.",
                &["M2M-AUTH-NO-KEY-STATUS"],
            ),
        ];
        for (id, code, message, facts) in cases {
            let body = json!({"success": false, "error": {"code": code, "message": message}});
            report.results.push(CaseResult {
                id,
                api: Api::M2m,
                source: Source::Doc,
                outcome: Outcome::Fail(Failure::new(
                    "GET /partner/links",
                    "status",
                    401,
                    format!("403 {body}"),
                )),
                duration: Duration::from_millis(1),
                facts,
            });
        }
        let causes = report.shared_causes();
        assert_eq!(causes.lines().count(), 2, "{causes}");
        assert!(
            causes.contains(
                "3 failed cases met one answer — GET /partner/links: status expected 401, got \
                 403 INVALID_API_KEY — the fact it contradicts: `M2M-AUTH-INVALID-KEY-STATUS`"
            ),
            "{causes}"
        );
        assert!(
            causes.contains(
                "3 failed cases met one answer — GET /partner/links: status expected 401, got \
                 403 UNAUTHORIZED — the fact it contradicts: `M2M-AUTH-NO-KEY-STATUS`"
            ),
            "{causes}"
        );
    }

    #[test]
    fn the_summary_and_exit_code_count_failures() {
        let report = sample();
        assert_eq!(report.summary(), "1 passed, 1 failed, 0 errored");
        assert_eq!(report.exit_code(), 1);
        assert!(
            report
                .drift()
                .contains("linkbox guessed wrong — update the spec")
        );
        assert!(!report.drift().contains("vendor differs"));
    }

    #[test]
    fn drift_junit_and_json_name_the_facts() {
        let report = sample();
        assert!(
            report.drift().contains(
                "  `M2M-CREATE-STATUS` [doc]: status expected 201, got 200 <oops> & \"quotes\" \
                 (m2m.create.status-201)"
            ),
            "{}",
            report.drift()
        );
        let xml = report.junit();
        assert!(
            xml.contains(r#"<property name="facts" value="M2M-CREATE-DEFAULT-EXPIRY"/>"#),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"`M2M-CREATE-STATUS` [doc]: status: expected 201"),
            "{xml}"
        );
        assert_eq!(
            report.json()["cases"][1]["facts"],
            json!(["M2M-CREATE-STATUS"])
        );
        let mut out = Vec::new();
        write_progress(&mut out, 2, 2, &report.results[1], false).expect("write");
        assert!(
            String::from_utf8_lossy(&out).contains("      facts:    `M2M-CREATE-STATUS` [doc]\n")
        );
    }

    #[test]
    fn junit_escapes_what_it_quotes() {
        let xml = sample().junit();
        assert!(xml.contains("&lt;oops&gt; &amp; "), "{xml}");
        assert!(xml.contains("tests=\"2\""));
        assert!(!xml.contains("<oops>"));
    }

    #[test]
    fn progress_lines_pad_the_index_to_the_total() {
        let report = sample();
        let mut out = Vec::new();
        write_progress(&mut out, 1, 140, &report.results[0], false).expect("write");
        assert_eq!(
            String::from_utf8_lossy(&out),
            "[  1/140] PASS m2m.create.default-expiry [doc]\n"
        );
    }

    /// With no failure, the drift section claims a match only when every case ran: cases
    /// that could not ask the target checked nothing.
    #[test]
    fn no_drift_is_claimed_for_cases_that_could_not_run() {
        let mut report = Report::new(Some("http://127.0.0.1:1".into()));
        let case = |id, outcome| CaseResult {
            id,
            api: Api::M2m,
            source: Source::Doc,
            outcome,
            duration: Duration::from_millis(1),
            facts: &["M2M-CREATE-STATUS"],
        };
        report.results.push(case("m2m.a", Outcome::Pass));
        assert!(report.drift().contains("the target matches the spec"));
        report.results.push(case(
            "m2m.b",
            Outcome::Error(Failure::weather("GET /x", "timeout", "an answer", "none")),
        ));
        let drift = report.drift();
        assert!(!drift.contains("the target matches the spec"), "{drift}");
        assert!(drift.contains("1 of 2 could not ask the target"), "{drift}");
        let mut stopped = Report::new(Some("http://127.0.0.1:1".into()));
        stopped.results.push(case("m2m.a", Outcome::Pass));
        stopped.interrupted = true;
        let drift = stopped.drift();
        assert!(!drift.contains("the target matches the spec"), "{drift}");
        assert!(
            drift.contains("the 1 cases that ran before the run was interrupted"),
            "{drift}"
        );
    }

    /// A `[design]` difference a `[doc]` case passed by is no drift, but the report says it
    /// rather than claiming a match, unless a failed case already names its fact.
    #[test]
    fn a_design_difference_is_said_apart_from_drift() {
        let mut report = Report::new(Some("http://127.0.0.1:1".into()));
        report.results.push(CaseResult {
            id: "leaf.provider.default-expires-in-900",
            api: Api::Leaf,
            source: Source::Doc,
            outcome: Outcome::Pass,
            duration: Duration::from_millis(1),
            facts: &["LEAF-CREATE-EXPIRES-IN-DEFAULT"],
        });
        report.design_differences.push(DesignDifference {
            fact: "LEAF-CREATE-STATUS",
            case: "leaf.provider.default-expires-in-900",
            failure: Failure::new(
                "POST /services/widgets/api/magic-link/provider",
                "status",
                200,
                201,
            ),
        });
        assert_eq!(report.exit_code(), 0, "no drift");
        let drift = report.drift();
        assert!(!drift.contains("matches the spec"), "{drift}");
        assert!(
            drift.contains(
                "  `LEAF-CREATE-STATUS` [design]: status expected 200, got 201 \
                 (leaf.provider.default-expires-in-900)\n"
            ),
            "{drift}"
        );
        assert_eq!(
            report.json()["designDifferences"][0]["fact"],
            "LEAF-CREATE-STATUS"
        );
        report.results.push(CaseResult {
            id: "leaf.provider.create-status-200",
            api: Api::Leaf,
            source: Source::Design,
            outcome: Outcome::Fail(Failure::new("POST /x", "status", 200, 201)),
            duration: Duration::from_millis(1),
            facts: &["LEAF-CREATE-STATUS"],
        });
        let drift = report.drift();
        assert!(
            !drift.contains("design: answers against"),
            "said once: {drift}"
        );
    }

    #[test]
    fn weather_alone_exits_3_and_drift_wins_over_it() {
        let mut report = sample();
        report.results.push(CaseResult {
            id: "m2m.list.default-limit",
            api: Api::M2m,
            source: Source::Doc,
            outcome: Outcome::Error(Failure::weather(
                "GET /partner/links",
                "server error",
                "an answer from the target",
                "503 (after 4 attempts)",
            )),
            duration: Duration::from_millis(5),
            facts: &["M2M-LIST-DEFAULT-PAGING"],
        });
        assert_eq!(report.summary(), "1 passed, 1 failed, 1 errored");
        assert_eq!(report.exit_code(), 1, "drift wins");
        assert!(
            report
                .weather()
                .contains("m2m.list.default-limit: server error 503")
        );
        let xml = report.junit();
        assert!(
            xml.contains("<error message=\"server error: expected an answer"),
            "{xml}"
        );
        assert!(
            xml.contains("errors=\"1\"") && xml.contains("<failure "),
            "{xml}"
        );
        let json = report.json();
        assert_eq!(json["errored"], 1);
        assert_eq!(json["cases"][2]["outcome"], "error");
        assert_eq!(json["cases"][1]["outcome"], "fail");
        report.results.remove(1);
        assert_eq!(report.exit_code(), 3, "weather only");
    }
}

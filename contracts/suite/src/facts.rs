//! The fact catalogue: every checkable fact of the contract, read from
//! `docs/contract/{m2m,leaf,sandbox}.md` at build time, and what the cases cover of it.
//!
//! A fact is a list item of those pages of the form
//! `- **M2M-CREATE-DEFAULT-EXPIRY** [doc] (local) text`: a stable id, its source (`[doc]`,
//! `[design]`, `[sandbox]`), `(local)` when only an in-process linkbox can check it, and the
//! fact in words. Every case names the facts it checks (`case!(id, Source, [FACT, ...], ...)`);
//! an id that is not a fact of these pages is a compile error ([`known`] runs in a `const`),
//! and so is a case with no fact at all (the macros need at least one).
//!
//! [`coverage`] compares the catalogue with the cases: per API, facts covered and total, and
//! every fact no case names. `linkbox contract --coverage` prints it; a unit test of this crate
//! fails when a `[doc]` fact has no case and warns about `[design]` ones.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::{Api, Case, Source};

/// `docs/contract/m2m.md`.
pub const M2M_DOC: &str = include_str!("../../../docs/contract/m2m.md");
/// `docs/contract/leaf.md`.
pub const LEAF_DOC: &str = include_str!("../../../docs/contract/leaf.md");
/// `docs/contract/sandbox.md`.
pub const SANDBOX_DOC: &str = include_str!("../../../docs/contract/sandbox.md");

/// What opens a fact line, before its id.
const OPENING: &[u8] = b"- **";
/// What closes a fact id.
const CLOSING: &[u8] = b"** [";

/// Whether `id` is the id of a fact on one of the three pages. A `const fn`, so that the case
/// macros check every id they are given at compile time.
pub const fn known(id: &str) -> bool {
    in_page(M2M_DOC.as_bytes(), id.as_bytes())
        || in_page(LEAF_DOC.as_bytes(), id.as_bytes())
        || in_page(SANDBOX_DOC.as_bytes(), id.as_bytes())
}

/// Whether `page` has a line `- **{id}** [...`.
const fn in_page(page: &[u8], id: &[u8]) -> bool {
    let mut start = 0;
    while start < page.len() {
        if starts_fact(page, start, id) {
            return true;
        }
        // On to the next line.
        while start < page.len() && page[start] != b'\n' {
            start += 1;
        }
        start += 1;
    }
    false
}

/// Whether `page[at..]` is `- **{id}** [`.
const fn starts_fact(page: &[u8], at: usize, id: &[u8]) -> bool {
    let end = at + OPENING.len() + id.len() + CLOSING.len();
    if end > page.len() || id.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < OPENING.len() {
        if page[at + i] != OPENING[i] {
            return false;
        }
        i += 1;
    }
    let mut i = 0;
    while i < id.len() {
        if page[at + OPENING.len() + i] != id[i] {
            return false;
        }
        i += 1;
    }
    let mut i = 0;
    while i < CLOSING.len() {
        if page[at + OPENING.len() + id.len() + i] != CLOSING[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The ids of `facts`, checked at compile time: `facts!["M2M-CREATE-STATUS", ...]` is a
/// `&'static [&'static str]`, and an id that is not a fact of `docs/contract/` fails the build.
macro_rules! facts {
    ($($fact:literal),+ $(,)?) => {{
        $(
            const _: () = assert!(
                $crate::facts::known($fact),
                concat!("unknown fact id `", $fact, "`: not a fact of docs/contract/*.md")
            );
        )+
        &[$($fact),+]
    }};
}
pub(crate) use facts;

/// One fact of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub id: &'static str,
    pub api: Api,
    pub source: Source,
    /// Checked against an in-process linkbox only.
    pub local: bool,
    /// The fact in words, as the page says it.
    pub text: &'static str,
}

/// Every fact of the three pages, in page order.
pub fn catalogue() -> Vec<Fact> {
    let mut all = parse(Api::M2m, M2M_DOC);
    all.extend(parse(Api::Leaf, LEAF_DOC));
    all.extend(parse(Api::Sandbox, SANDBOX_DOC));
    all
}

/// The fact with this id.
pub fn find(id: &str) -> Option<Fact> {
    catalogue().into_iter().find(|fact| fact.id == id)
}

/// The fact lines of one page. A line that opens like a fact but does not parse is skipped here
/// and reported by [`malformed`].
fn parse(api: Api, page: &'static str) -> Vec<Fact> {
    page.lines()
        .filter_map(|line| parse_line(api, line))
        .collect()
}

fn parse_line(api: Api, line: &'static str) -> Option<Fact> {
    let rest = line.strip_prefix("- **")?;
    let (id, rest) = rest.split_once("** ")?;
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
    {
        return None;
    }
    let (tag, rest) = rest.split_once(' ')?;
    let source = match tag {
        "[doc]" => Source::Doc,
        "[design]" => Source::Design,
        "[sandbox]" => Source::Sandbox,
        _ => return None,
    };
    let (local, text) = match rest.strip_prefix("(local) ") {
        Some(text) => (true, text),
        None => (false, rest),
    };
    Some(Fact {
        id,
        api,
        source,
        local,
        text: text.trim(),
    })
}

/// Lines of the pages that open like a fact (`- **`) but are not one: a typo in an id or tag.
pub fn malformed() -> Vec<&'static str> {
    [
        (Api::M2m, M2M_DOC),
        (Api::Leaf, LEAF_DOC),
        (Api::Sandbox, SANDBOX_DOC),
    ]
    .into_iter()
    .flat_map(|(api, page)| {
        page.lines()
            .filter(move |line| line.starts_with("- **") && parse_line(api, line).is_none())
    })
    .collect()
}

/// What the cases cover of one API's facts.
#[derive(Debug, Clone, Default)]
pub struct ApiCoverage {
    pub total: usize,
    pub covered: usize,
    /// Facts no case names, in page order.
    pub uncovered: Vec<Fact>,
}

/// What the cases cover of the catalogue.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Per API, in the order m2m, leaf, sandbox.
    pub apis: Vec<(Api, ApiCoverage)>,
    /// Case ids per fact id.
    pub cases: BTreeMap<&'static str, Vec<&'static str>>,
}

impl Coverage {
    /// Uncovered facts with this source.
    pub fn uncovered(&self, source: Source) -> Vec<&Fact> {
        self.apis
            .iter()
            .flat_map(|(_, api)| api.uncovered.iter())
            .filter(|fact| fact.source == source)
            .collect()
    }

    /// The report `--coverage` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (api, coverage) in &self.apis {
            let _ = writeln!(
                out,
                "{:<8} {:>3}/{:<3} facts covered",
                api.name(),
                coverage.covered,
                coverage.total
            );
        }
        let uncovered: Vec<&Fact> = self
            .apis
            .iter()
            .flat_map(|(_, api)| api.uncovered.iter())
            .collect();
        if uncovered.is_empty() {
            let _ = writeln!(out, "every fact has a case");
        } else {
            let _ = writeln!(out, "\nfacts without a case:");
            for fact in uncovered {
                let _ = writeln!(
                    out,
                    "  {} {}{}  {}",
                    fact.id,
                    fact.source.tag(),
                    if fact.local { " (local)" } else { "" },
                    fact.text
                );
            }
        }
        out
    }
}

/// Compares the catalogue with `cases`.
pub fn coverage(cases: &[Case]) -> Coverage {
    let mut named: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for case in cases {
        for fact in case.facts {
            named.entry(fact).or_default().push(case.id);
        }
    }
    let catalogue = catalogue();
    let apis = [Api::M2m, Api::Leaf, Api::Sandbox]
        .into_iter()
        .map(|api| {
            let facts: Vec<&Fact> = catalogue.iter().filter(|fact| fact.api == api).collect();
            let uncovered: Vec<Fact> = facts
                .iter()
                .filter(|fact| !named.contains_key(fact.id))
                .map(|fact| (*fact).clone())
                .collect();
            let coverage = ApiCoverage {
                total: facts.len(),
                covered: facts.len() - uncovered.len(),
                uncovered,
            };
            (api, coverage)
        })
        .collect();
    Coverage { apis, cases: named }
}

/// The facts of a case, with their sources, as a report shows them:
/// `` `M2M-CREATE-STATUS` [doc], `M2M-CREATE-FIELDS` [doc] ``.
pub fn describe(ids: &[&str]) -> String {
    let catalogue = catalogue();
    ids.iter()
        .map(|id| {
            let tag = catalogue
                .iter()
                .find(|fact| fact.id == *id)
                .map_or("", |fact| fact.source.tag());
            format!("`{id}` {tag}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fact ids that appear on more than one line.
pub fn duplicates() -> Vec<&'static str> {
    let mut seen = BTreeSet::new();
    catalogue()
        .into_iter()
        .filter(|fact| !seen.insert(fact.id))
        .map(|fact| fact.id)
        .collect()
}

/// `--coverage`: the coverage of the cases `options` selects (every case in-process; against a
/// target, the ones that target runs), per API (only `--api`'s when given). Sends nothing.
pub fn write_coverage(
    options: &crate::Options,
    out: &mut (dyn std::io::Write + Send),
) -> std::io::Result<()> {
    let mut coverage = coverage(&crate::select(options));
    if let Some(only) = options.api {
        coverage.apis.retain(|(api, _)| *api == only);
    }
    if options.target.is_some() {
        writeln!(
            out,
            "the cases a run against {} makes; (local) facts are checked in-process only",
            options.base
        )?;
    }
    write!(out, "{}", coverage.render())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fact_line_parses_and_ids_are_unique() {
        assert_eq!(
            malformed(),
            Vec::<&str>::new(),
            "fact lines that do not parse"
        );
        assert_eq!(duplicates(), Vec::<&str>::new(), "fact ids used twice");
        let all = catalogue();
        assert!(all.len() > 100, "only {} facts read", all.len());
        for fact in &all {
            let prefix = match fact.api {
                Api::M2m => "M2M-",
                Api::Leaf => "LEAF-",
                Api::Sandbox => "SANDBOX-",
            };
            assert!(
                fact.id.starts_with(prefix),
                "{} is on the wrong page",
                fact.id
            );
            assert!(!fact.text.is_empty(), "{} says nothing", fact.id);
            assert_eq!(
                fact.source == Source::Sandbox,
                fact.api == Api::Sandbox,
                "{}: control-API facts and only they are [sandbox]",
                fact.id
            );
        }
    }

    #[test]
    fn known_agrees_with_the_catalogue() {
        for fact in catalogue() {
            assert!(known(fact.id), "{}", fact.id);
        }
        assert!(!known("M2M-NO-SUCH-FACT"));
        assert!(!known("M2M-CREATE"), "a prefix of an id is not an id");
        assert!(!known(""));
    }

    #[test]
    fn a_fact_line_reads_id_source_locality_and_text() {
        let fact = parse_line(Api::M2m, "- **M2M-X-Y** [design] (local) The thing.");
        assert_eq!(
            fact,
            Some(Fact {
                id: "M2M-X-Y",
                api: Api::M2m,
                source: Source::Design,
                local: true,
                text: "The thing.",
            })
        );
        assert_eq!(parse_line(Api::M2m, "- **M2M-X** [maybe] text"), None);
        assert_eq!(parse_line(Api::M2m, "- **m2m-x** [doc] text"), None);
    }

    #[test]
    fn every_case_names_facts_of_its_own_api() {
        let catalogue = catalogue();
        for case in crate::cases() {
            assert!(!case.facts.is_empty(), "{} names no fact", case.id);
            for id in case.facts {
                let fact = catalogue.iter().find(|fact| fact.id == *id);
                let Some(fact) = fact else {
                    panic!("{}: unknown fact {id}", case.id);
                };
                assert_eq!(
                    fact.api,
                    case.api(),
                    "{}: {id} is another API's fact",
                    case.id
                );
                assert!(
                    !fact.local || case.local,
                    "{}: {id} is (local) but the case runs against a target; mark the fact \
                     (local) only if no target can check it",
                    case.id
                );
            }
        }
    }

    #[tokio::test]
    async fn the_coverage_flag_reports_per_api_and_sends_nothing() {
        async fn never_started() -> std::io::Result<crate::cli::Started> {
            Err(std::io::Error::other("--coverage starts nothing"))
        }
        let mut out = Vec::new();
        let args: Vec<String> = ["--coverage", "--api", "sandbox"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        let code = crate::cli::run(&args, never_started, std::future::pending(), &mut out).await;
        assert_eq!(code, 0);
        let text = String::from_utf8_lossy(&out);
        let total = catalogue()
            .iter()
            .filter(|fact| fact.api == Api::Sandbox)
            .count();
        assert!(
            text.starts_with(&format!("sandbox  {total:>3}/{total:<3} facts covered\n")),
            "{text}"
        );
        assert!(!text.contains("m2m") && !text.contains("leaf"), "{text}");
    }

    #[test]
    fn the_report_lists_each_fact_without_a_case() {
        let coverage = coverage(&[]);
        let text = coverage.render();
        assert!(text.contains("facts without a case:"), "{text}");
        assert!(
            text.contains("  M2M-CREATE-DEFAULT-EXPIRY [doc]  Without `expiresInMinutes`"),
            "{text}"
        );
        assert!(text.contains("M2M-RATE-BODY [design] (local)"), "{text}");
        assert_eq!(
            coverage.uncovered(Source::Doc).len(),
            catalogue()
                .iter()
                .filter(|fact| fact.source == Source::Doc)
                .count()
        );
    }

    /// The gate `cargo xtask ci` holds: every `[doc]` fact has a case; `[design]` facts without
    /// one are printed as warnings.
    #[test]
    fn every_documented_fact_has_a_case() {
        let coverage = coverage(&crate::cases());
        for fact in coverage.uncovered(Source::Design) {
            eprintln!(
                "warning: [design] fact without a case: {} {}",
                fact.id, fact.text
            );
        }
        let missing: Vec<String> = coverage
            .uncovered(Source::Doc)
            .iter()
            .map(|fact| format!("{} {}", fact.id, fact.text))
            .collect();
        assert!(
            missing.is_empty(),
            "[doc] facts without a case:\n{}",
            missing.join("\n")
        );
    }
}

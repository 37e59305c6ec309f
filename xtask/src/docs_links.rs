//! The documentation's relative links resolve: every `[text](target)` in `README.md` and
//! `docs/*.md` that is not an absolute URL names an existing file, and a `#fragment` names a
//! heading of its page (GitHub's slugs). Run by `cargo test`, so a moved or renamed page fails
//! the build with the file, the line and the link.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The Markdown files whose links are checked: `README.md`, then `docs/*.md` and
/// `docs/*/*.md` (the contract, fact by fact, is `docs/contract/`) by name.
fn documentation(root: &Path) -> Vec<PathBuf> {
    let list = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut pages: Vec<PathBuf> = list(&root.join("docs"))
        .into_iter()
        .flat_map(|path| {
            if path.is_dir() {
                list(&path)
            } else {
                vec![path]
            }
        })
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages.insert(0, root.join("README.md"));
    pages
}

/// The lines of `text` outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter_map(move |(index, line)| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return None;
        }
        (!fenced).then_some((index + 1, line))
    })
}

/// `line` without its inline code spans (a `](` inside backticks is not a link).
fn without_code(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// Every link target of `text` with its line: the part between `](` and the closing `)`,
/// without an optional `"title"`.
fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(start) = rest.find("](") {
            rest = &rest[start + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split_whitespace().next().unwrap_or_default();
            found.push((number, target.to_owned()));
            rest = &rest[end..];
        }
    }
    found
}

/// GitHub's anchor for a heading: lower case, punctuation other than `-` and `_` dropped,
/// spaces turned into `-`.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of `text`'s headings; a repeated heading gets `-1`, `-2`... as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, line) in prose(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while !seen.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    seen
}

/// `file:line: target (why)` for every relative link of `page` that does not resolve.
fn broken(root: &Path, page: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(page) else {
        return vec![format!("{}: unreadable", page.display())];
    };
    let dir = page.parent().unwrap_or(root);
    let shown = page.strip_prefix(root).unwrap_or(page).display();
    let mut problems = Vec::new();
    for (line, target) in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (target.as_str(), None),
        };
        let file = if path.is_empty() {
            page.to_path_buf()
        } else {
            dir.join(path)
        };
        if !file.exists() {
            problems.push(format!("{shown}:{line}: {target} (no such file)"));
            continue;
        }
        let Some(fragment) = fragment else { continue };
        if file.extension().is_some_and(|ext| ext == "md") {
            let headings = std::fs::read_to_string(&file)
                .map(|text| anchors(&text))
                .unwrap_or_default();
            if !headings.contains(fragment) {
                problems.push(format!("{shown}:{line}: {target} (no such heading)"));
            }
        }
    }
    problems
}

#[test]
fn every_relative_link_in_the_documentation_resolves() {
    let root = crate::workspace_root();
    let pages = documentation(&root);
    assert!(
        pages.len() > 1,
        "no docs/*.md pages under {}",
        root.display()
    );
    let problems: Vec<String> = pages.iter().flat_map(|page| broken(&root, page)).collect();
    assert!(
        problems.is_empty(),
        "broken links:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let root = crate::workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let targets: HashSet<String> = links(&readme)
        .into_iter()
        .map(|(_, target)| target.split('#').next().unwrap_or_default().to_owned())
        .collect();
    for page in documentation(&root).iter().skip(1) {
        let relative = page.strip_prefix(&root).expect("under the root");
        let relative = relative.to_string_lossy().replace('\\', "/");
        assert!(
            targets.contains(&relative),
            "README.md does not link to {relative}"
        );
    }
}

#[test]
fn links_are_found_outside_code_and_anchors_follow_github() {
    let text = "# The control API — `/_sandbox`\n\
                see [a](docs/a.md#x) and ![b](b.png \"title\")\n\
                `[not](a link)` and\n\
                ```sh\n[also](not)\n```\n\
                ## Keeping state: `--state FILE`\n\
                ## Keeping state: `--state FILE`\n";
    assert_eq!(
        links(text),
        vec![(2, "docs/a.md#x".to_owned()), (2, "b.png".to_owned())]
    );
    let expected: HashSet<String> = [
        "the-control-api--_sandbox",
        "keeping-state---state-file",
        "keeping-state---state-file-1",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(anchors(text), expected);
}

#[test]
fn a_missing_page_or_heading_is_reported_with_its_line() {
    let temp = tempfile::Builder::new()
        .prefix("linkbox-docs-links-")
        .tempdir()
        .expect("temp dir");
    let dir = temp.path();
    std::fs::create_dir(dir.join("docs")).expect("temp dir");
    std::fs::write(dir.join("docs/page.md"), "# Page\n\n## A section\n").expect("page");
    std::fs::write(
        dir.join("README.md"),
        "# Title\n[ok](docs/page.md#a-section) [self](#title) [web](https://example.com/x)\n\
         [gone](docs/gone.md)\n[bad](docs/page.md#no-section)\n",
    )
    .expect("readme");
    let problems = broken(dir, &dir.join("README.md"));
    assert_eq!(
        problems,
        vec![
            "README.md:3: docs/gone.md (no such file)".to_owned(),
            "README.md:4: docs/page.md#no-section (no such heading)".to_owned(),
        ]
    );
}

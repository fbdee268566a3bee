//! The index from each article of the Measures to the code that carries it out and the tests
//! that prove it, `docs/articles.md`, generated from what the code and the tests cite
//! (`Art. N` in a comment, a message or a test's doc comment) and checked here: it must be
//! what the sources say now, and every article that asks something of the system must have
//! code and at least one test. `CREDITMESH_UPDATE_ARTICLES=1` writes it anew.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every article of the Measures (`measures.zh.txt`): what it asks of the system, or why it
/// asks nothing of it.
const ARTICLES: [(u32, Asks); 32] = [
    (1, Nothing("the purpose and legal basis of the Measures")),
    (
        2,
        System("whom the Measures cover: agencies active in the region, filed or not"),
    ),
    (
        3,
        Nothing("what a credit service agency is; Art. 9(1) applies it"),
    ),
    (4, Nothing("the principles agencies and their staff follow")),
    (
        5,
        System(
            "which authority supervises what: region, prefectures, counties, and the departments",
        ),
    ),
    (
        6,
        System("the conditions of filing: capital, staff, information security, internal rules"),
    ),
    (
        7,
        System("filing is voluntary; filed agencies are published"),
    ),
    (
        8,
        System("what an application carries, complete, item by item"),
    ),
    (9, System("when a filing is refused, on which ground")),
    (
        10,
        System(
            "review within 10 working days, by the authority of the registered address; publication desensitised",
        ),
    ),
    (
        11,
        System("the annual report by 30 June, and revocation without it"),
    ),
    (
        12,
        System("changes reported within 20 working days, reviewed and published"),
    ),
    (
        13,
        System("prohibited conduct, found and recorded against the agency"),
    ),
    (
        14,
        System(
            "inspection, tiered supervision, spot checks, interviews and orders in the credit file",
        ),
    ),
    (
        15,
        System("revocation for dishonesty, the 12-month restriction, referral"),
    ),
    (
        16,
        System("violations handled under the regional credit regulation"),
    ),
    (
        17,
        Nothing("other liability follows other laws; a finding of another violation cites it"),
    ),
    (
        18,
        System(
            "deregistration, the register stops showing it, the database disposed of under supervision",
        ),
    ),
    (19, System("service items and fees shown")),
    (20, System("the agency's service records kept")),
    (
        21,
        System("a data subject sees the source, content, changes and uses of their information"),
    ),
    (
        22,
        System(
            "a data subject objects; the record is marked; the agency decides within 10 working days",
        ),
    ),
    (
        23,
        System("credit information kept secure and confidential"),
    ),
    (
        24,
        System("complaints handled within 15 working days, or referred and the complainant told"),
    ),
    (25, System("every authority's act attributable")),
    (26, Nothing("industry organisations and self-regulation")),
    (
        27,
        System("filed agencies push non-public credit information, answerable for it"),
    ),
    (
        28,
        Nothing("encouragement of services for people and businesses"),
    ),
    (
        29,
        Nothing("authorised operation of public credit information, to be explored"),
    ),
    (
        30,
        Nothing("encouragement of agencies' own credit products"),
    ),
    (31, Nothing("who interprets the Measures")),
    (
        32,
        System("the Measures' effective date and their five years of validity"),
    ),
];

enum Asks {
    System(&'static str),
    Nothing(&'static str),
}
use Asks::{Nothing, System};

/// The directories of production code, and of the tests.
const CODE: [&str; 6] = [
    "crates",
    "services",
    "gateway",
    "web",
    "creditmesh",
    "proto",
];
const TESTS: &str = "tests/tests";

#[test]
fn the_article_index_is_current_and_every_article_that_asks_is_carried_out_and_tested() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut code: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut tests: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for dir in CODE {
        for file in sources(&root.join(dir), &["rs", "proto"]) {
            let text = std::fs::read_to_string(&file).unwrap();
            let shown = file.strip_prefix(root).unwrap().display().to_string();
            // Unit tests sit at the end of a file, after `#[cfg(test)]`.
            let production = text.split("#[cfg(test)]").next().unwrap();
            for n in cited(production) {
                code.entry(n).or_default().insert(shown.clone());
            }
            for (name, n) in tests_citing(&text) {
                tests
                    .entry(n)
                    .or_default()
                    .insert(format!("{shown}: {name}"));
            }
        }
    }
    for file in sources(&root.join(TESTS), &["rs"]) {
        if file.ends_with("articles.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let module = file
            .strip_prefix(root.join(TESTS))
            .unwrap()
            .display()
            .to_string()
            .trim_end_matches(".rs")
            .replace('/', "::");
        for (name, n) in tests_citing(&text) {
            tests
                .entry(n)
                .or_default()
                .insert(format!("{module}::{name}"));
        }
    }

    let index = render(&code, &tests);
    let path = root.join("docs/articles.md");
    if std::env::var_os("CREDITMESH_UPDATE_ARTICLES").is_some() {
        std::fs::write(&path, &index).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == index,
        "docs/articles.md is not what the sources cite now; write it anew with\n  \
         CREDITMESH_UPDATE_ARTICLES=1 cargo test -p creditmesh-tests --test articles"
    );
    let wanting: Vec<String> = ARTICLES
        .iter()
        .filter(|(_, asks)| matches!(asks, System(_)))
        .filter_map(|(n, _)| {
            let missing: Vec<&str> = [("code", &code), ("test", &tests)]
                .into_iter()
                .filter(|(_, cites)| cites.get(n).is_none_or(BTreeSet::is_empty))
                .map(|(what, _)| what)
                .collect();
            (!missing.is_empty()).then(|| format!("Art. {n}: no {}", missing.join(", no ")))
        })
        .collect();
    assert!(
        wanting.is_empty(),
        "articles that ask something of the system and are not carried out or not tested:\n{}",
        wanting.join("\n")
    );
}

fn render(
    code: &BTreeMap<u32, BTreeSet<String>>,
    tests: &BTreeMap<u32, BTreeSet<String>>,
) -> String {
    let mut out = String::from(
        "# The Measures, article by article\n\n\
         Where each article of the *Credit Service Agency Management Measures* is carried out and\n\
         where it is tested: the files whose code cites it (`Art. N`) and the tests whose name or\n\
         doc comment cites it. How an article is read where its text leaves a choice is in\n\
         [measures.md](measures.md).\n\n\
         Generated by `tests/tests/articles.rs`, which CI runs: do not edit. After citing an\n\
         article in new code or a new test, write it anew with\n\
         `CREDITMESH_UPDATE_ARTICLES=1 cargo test -p creditmesh-tests --test articles`.\n\n\
         | article | what it asks of the system | code | tests |\n|---|---|---|---|\n",
    );
    let list = |set: Option<&BTreeSet<String>>| {
        set.map(|s| {
            s.iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join("<br>")
        })
        .unwrap_or_default()
    };
    for (n, asks) in &ARTICLES {
        if let System(what) = asks {
            out.push_str(&format!(
                "| {n} | {what} | {} | {} |\n",
                list(code.get(n)),
                list(tests.get(n))
            ));
        }
    }
    out.push_str(
        "\n## Articles that ask nothing of the system\n\n| article | what it says | cited in |\n|---|---|---|\n",
    );
    for (n, asks) in &ARTICLES {
        if let Nothing(what) = asks {
            out.push_str(&format!("| {n} | {what} | {} |\n", list(code.get(n))));
        }
    }
    out
}

/// The files under `dir` with one of `extensions`, in a stable order.
fn sources(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| extensions.iter().any(|e| x == *e))
            {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// The articles `text` cites: `Art. 9`, `Art. 9(2)`, `Art. 21–22` (both), `Art. 9/12/18` (each).
fn cited(text: &str) -> BTreeSet<u32> {
    let mut found = BTreeSet::new();
    for (i, _) in text.match_indices("Art. ") {
        let rest = &text[i + 5..];
        let number = |s: &str| {
            let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok().map(|n| (n, digits.len()))
        };
        let Some((first, len)) = number(rest) else {
            continue;
        };
        found.insert(first);
        let mut tail = &rest[len..];
        // Skip paragraph and item marks: `(2)`, `(1)–(3)`.
        while tail.starts_with('(') {
            tail = tail.find(')').map_or("", |j| &tail[j + 1..]);
        }
        let mut previous = first;
        loop {
            let (range, after) = if let Some(t) = tail.strip_prefix('–') {
                (true, t)
            } else if let Some(t) = tail.strip_prefix('/') {
                (false, t)
            } else {
                break;
            };
            let Some((next, len)) = number(after) else {
                break;
            };
            if range {
                found.extend(previous..=next);
            } else {
                found.insert(next);
            }
            previous = next;
            tail = &after[len..];
        }
    }
    found.retain(|n| (1..=32).contains(n));
    found
}

/// The tests in `text` and the articles each cites in its doc comment, its body or its name
/// (`art_6`): a test is a function marked `#[test]` or `#[tokio::test]`, or named in a
/// `crate::on_both_engines!(…)` list.
fn tests_citing(text: &str) -> Vec<(String, u32)> {
    let listed: BTreeSet<&str> = text
        .split("on_both_engines!(")
        .skip(1)
        .flat_map(|s| s.split(");").next().unwrap().split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let mut found = Vec::new();
    let mut doc = String::new();
    let mut marked = false;
    let mut current: Option<(String, String)> = None;
    let finish = |current: &mut Option<(String, String)>, found: &mut Vec<(String, u32)>| {
        if let Some((name, body)) = current.take() {
            for n in cited(&body) {
                found.push((name.clone(), n));
            }
        }
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("///") {
            doc.push_str(rest);
            doc.push('\n');
            continue;
        }
        if trimmed.starts_with("#[test]") || trimmed.starts_with("#[tokio::test") {
            marked = true;
            continue;
        }
        let signature = trimmed
            .strip_prefix("async fn ")
            .or_else(|| trimmed.strip_prefix("fn "))
            .or_else(|| trimmed.strip_prefix("pub async fn "))
            .or_else(|| trimmed.strip_prefix("pub fn "));
        if let Some(sig) = signature {
            finish(&mut current, &mut found);
            let name: String = sig
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if marked || listed.contains(name.as_str()) {
                let named = name.replace("art_", "Art. ");
                current = Some((name, format!("{doc}\n{named}\n")));
            }
            doc.clear();
            marked = false;
            continue;
        }
        if !trimmed.starts_with("#[") {
            doc.clear();
        }
        if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    finish(&mut current, &mut found);
    found.sort();
    found.dedup();
    found
}

#[test]
fn citations_are_read_as_written() {
    let got = |s: &str| cited(s).into_iter().collect::<Vec<_>>();
    assert_eq!(got("(Art. 9(2)) and Art. 21–22"), [9, 21, 22]);
    assert_eq!(got("the Art. 9/12/18 grounds"), [9, 12, 18]);
    assert_eq!(got("Art. 15(1)–(3), Art. 201 of the Civil Code"), [15]);
    let tests = tests_citing(
        "/// Art. 6: conditions.\nasync fn a(engine: Engine) {\n    // Art. 19 too\n}\n\
         fn helper() { // Art. 8\n}\n#[tokio::test]\nasync fn art_24_b() {}\n",
    );
    let tests: Vec<(&str, u32)> = tests.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    assert_eq!(tests, [("art_24_b", 24)]);
    let listed = tests_citing(
        "crate::on_both_engines!(a,);\n/// Art. 6: conditions.\nasync fn a(engine: Engine) {\n    // Art. 19 too\n}\n",
    );
    assert_eq!(listed, [("a".to_owned(), 6), ("a".to_owned(), 19)]);
}

//! Every service is written in the one shape ARCHITECTURE.md describes ("The shape of a
//! service"): the same files for the same roles, SQL only in its stores, no `Status` built
//! outside the edge, one line per gRPC method, and nothing importing the gRPC module back.

use std::fs;
use std::path::{Path, PathBuf};

/// The services behind the gateway, each a `ServiceDef`.
const SERVICES: [&str; 5] = ["filing", "review", "disclosure", "complaints", "datapush"];

/// The files every service has, each for its role.
const FILES: [&str; 8] = [
    "lib.rs",
    "state.rs",
    "grpc.rs",
    "convert.rs",
    "events.rs",
    "jobs.rs",
    "store.rs",
    "schema.rs",
];

/// A department's node is not a `ServiceDef`: its receiver, its use case and its store.
const DEPARTMENT_FILES: [&str; 4] = ["lib.rs", "grpc.rs", "receiving.rs", "store.rs"];

fn source_dir(service: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("services")
        .join(service)
        .join("src")
}

/// Every `.rs` file of `service`, by name, with its text.
fn sources(service: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fs::read_dir(source_dir(service))
        .expect("a service's sources")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(&p).expect("a source file");
            (name, text)
        })
        .collect();
    out.sort();
    out
}

/// Every service and the department's node, with their sources.
fn all() -> Vec<(&'static str, Vec<(String, String)>)> {
    SERVICES
        .iter()
        .chain(&["department"])
        .map(|s| (*s, sources(s)))
        .collect()
}

/// A file's code without its comments, so that prose naming a thing does not count as it.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.trim_start() {
            t if t.starts_with("//") => "",
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_store(file: &str) -> bool {
    file == "store.rs" || file.ends_with("_store.rs") || file == "schema.rs"
}

/// Where `text` builds a `Status` itself: a constructor, or a conversion that belongs to
/// `rpc::edge`.
fn status_built(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in code(text).lines().enumerate() {
        let constructs = line.match_indices("Status::").any(|(i, _)| {
            let before = line[..i].chars().last();
            let after = line[i + "Status::".len()..].chars().next();
            // `Status::internal(..)`, not `ComplaintStatus::Received`.
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
                && after.is_some_and(|c| c.is_ascii_lowercase())
        });
        // `rpc::status` and `rpc::status_from`, called or passed (`map_err(status)`).
        let converts = ["status(", "status_from", "(status)"].iter().any(|call| {
            line.match_indices(call).any(|(i, _)| {
                let before = line[..i].chars().last();
                call.starts_with('(')
                    || !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                        && !line[..i].trim_end().ends_with("fn")
            })
        });
        if constructs || converts {
            found.push(format!("line {}: {}", n + 1, line.trim()));
        }
    }
    found
}

#[test]
fn every_service_has_the_same_files_for_the_same_roles() {
    for service in SERVICES {
        let dir = source_dir(service);
        let missing: Vec<&str> = FILES
            .iter()
            .copied()
            .filter(|f| !dir.join(f).is_file())
            .collect();
        assert!(missing.is_empty(), "services/{service} lacks {missing:?}");
    }
    let dir = source_dir("department");
    for f in DEPARTMENT_FILES {
        assert!(dir.join(f).is_file(), "services/department lacks {f}");
    }
}

#[test]
fn sql_is_written_only_in_the_stores() {
    let markers = [
        "sqlx::query",
        "query_as(",
        "query_scalar(",
        "\"SELECT ",
        "\"INSERT INTO",
        "\"UPDATE ",
        "\"DELETE FROM",
    ];
    let mut outside = Vec::new();
    for (service, files) in all() {
        for (file, text) in files {
            if is_store(&file) {
                continue;
            }
            let code = code(&text);
            if let Some(m) = markers.iter().find(|m| code.contains(*m)) {
                outside.push(format!("services/{service}/src/{file} ({m})"));
            }
        }
    }
    assert!(outside.is_empty(), "SQL outside the stores: {outside:#?}");
}

#[test]
fn a_status_is_built_only_at_the_edge() {
    let mut built = Vec::new();
    for (service, files) in all() {
        for (file, text) in files {
            for at in status_built(&text) {
                built.push(format!("services/{service}/src/{file} {at}"));
            }
        }
    }
    assert!(built.is_empty(), "a Status built in a service: {built:#?}");
}

#[test]
fn statuses_are_compared_through_the_lifecycle_machines() {
    let mut literal = Vec::new();
    for service in SERVICES {
        for (file, text) in sources(service) {
            if is_store(&file) {
                continue;
            }
            for (n, line) in code(&text).lines().enumerate() {
                if ["status == \"", "status != \"", "status.as_str()"]
                    .iter()
                    .any(|m| line.contains(m))
                {
                    literal.push(format!("services/{service}/src/{file} line {}", n + 1));
                }
            }
        }
    }
    assert!(
        literal.is_empty(),
        "a status compared with a literal, not through its machine: {literal:#?}"
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert_eq!(status_built("Err(Status::internal(\"x\"))").len(), 1);
    assert_eq!(status_built(".map_err(status_from)?").len(), 1);
    assert_eq!(status_built(".map_err(status)?").len(), 1);
    assert_eq!(status_built("let s = status_from(e);").len(), 1);
    assert_eq!(status_built("Err(status(e))").len(), 1);
    assert!(status_built("ComplaintStatus::Received; r.status(); fn status(e: Error)").is_empty());
    assert!(status_built("// Status::internal is built at the edge").is_empty());
    assert!(is_store("referral_store.rs") && !is_store("referrals.rs"));
}

#[test]
fn each_grpc_method_is_one_line_to_its_use_case() {
    for (service, files) in all() {
        let (_, grpc) = files
            .iter()
            .find(|(f, _)| f == "grpc.rs")
            .unwrap_or_else(|| panic!("services/{service} has no grpc.rs"));
        let lines: Vec<&str> = grpc.lines().collect();
        let mut methods = 0;
        for (i, line) in lines.iter().enumerate() {
            if !line.trim_start().starts_with("async fn ") {
                continue;
            }
            methods += 1;
            let open = (i..lines.len())
                .find(|j| lines[*j].trim_end().ends_with('{'))
                .expect("a method body");
            let body = lines[open + 1].trim();
            assert!(
                body.starts_with("crate::") && body.ends_with(".await"),
                "services/{service}/src/grpc.rs line {}: a method delegates in one line, found {body:?}",
                open + 2
            );
            assert_eq!(
                lines[open + 2].trim(),
                "}",
                "services/{service}/src/grpc.rs line {}: a method is one line",
                open + 3
            );
        }
        assert!(methods > 0, "services/{service}/src/grpc.rs has no method");
        for (file, text) in &files {
            assert!(
                !code(text).contains("crate::grpc"),
                "services/{service}/src/{file} imports the gRPC module: nothing does"
            );
        }
    }
}

/// The source directories of every crate of the workspace.
fn crate_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut dirs = vec![
        root.join("gateway/src"),
        root.join("web/src"),
        root.join("creditmesh/src"),
        root.join("bench/src"),
        root.join("proto/src"),
    ];
    for group in ["crates", "services"] {
        for e in fs::read_dir(root.join(group)).unwrap() {
            dirs.push(e.unwrap().path().join("src"));
        }
    }
    dirs
}

/// The module files of a crate (its root and `mod.rs` faces left out: they declare the
/// modules and hand names on), keyed by module path (`console::review`).
fn modules(src: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, String)>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                walk(&p, &format!("{prefix}{name}::"), out);
            } else if p.extension().is_some_and(|x| x == "rs")
                && !["lib", "main", "mod"].contains(&name.as_str())
            {
                out.push((format!("{prefix}{name}"), fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, "", &mut out);
    out
}

/// The modules `text` (the module `me`) names through `crate::` or `super::`, among `known`.
fn imports(me: &str, text: &str, known: &[String]) -> Vec<String> {
    let code = code(text);
    let code = code.split("#[cfg(test)]").next().unwrap_or_default();
    let parent = me
        .rsplit_once("::")
        .map(|(p, _)| format!("{p}::"))
        .unwrap_or_default();
    let mut out = Vec::new();
    for (prefix, base) in [("crate::", String::new()), ("super::", parent)] {
        for (i, _) in code.match_indices(prefix) {
            let rest = &code[i + prefix.len()..];
            // `crate::{a, b::c}` names several; `crate::a::b` one.
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .collect(),
                None => vec![rest],
            };
            for n in names {
                let path: String = n
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
                // The longest module path it starts with.
                while !segments.is_empty() {
                    let m = format!("{base}{}", segments.join("::"));
                    if known.contains(&m) && m != me {
                        out.push(m);
                        break;
                    }
                    segments.pop();
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let mut circles = Vec::new();
    for src in crate_dirs() {
        let mods = modules(&src);
        let known: Vec<String> = mods.iter().map(|(m, _)| m.clone()).collect();
        let edges: Vec<(String, Vec<String>)> = mods
            .iter()
            .map(|(m, text)| (m.clone(), imports(m, text, &known)))
            .collect();
        let out_of = |m: &str| -> &[String] {
            edges
                .iter()
                .find(|(n, _)| n == m)
                .map(|(_, e)| e.as_slice())
                .unwrap_or(&[])
        };
        // From each module, whatever it reaches; a circle is a module that reaches itself.
        for (start, _) in &edges {
            let mut seen: Vec<String> = Vec::new();
            let mut todo: Vec<(String, Vec<String>)> = out_of(start)
                .iter()
                .map(|n| (n.clone(), vec![start.clone(), n.clone()]))
                .collect();
            while let Some((m, path)) = todo.pop() {
                if &m == start {
                    circles.push(format!("{}: {}", src.display(), path.join(" -> ")));
                    break;
                }
                if seen.contains(&m) {
                    continue;
                }
                seen.push(m.clone());
                for n in out_of(&m) {
                    let mut p = path.clone();
                    p.push(n.clone());
                    todo.push((n.clone(), p));
                }
            }
        }
    }
    assert!(circles.is_empty(), "modules in a circle: {circles:#?}");
}

#[test]
fn imports_are_read_as_the_compiler_reads_them() {
    let known: Vec<String> = ["state", "store", "console::review", "console::acts"]
        .map(String::from)
        .to_vec();
    assert_eq!(
        imports(
            "grpc",
            "use crate::{state::Api, store};\n// crate::grpc",
            &known
        ),
        ["state", "store"]
    );
    assert_eq!(
        imports(
            "console::review",
            "use super::acts::Act; use super::Desk;",
            &known
        ),
        ["console::acts"]
    );
    assert!(
        imports(
            "state",
            "#[cfg(test)]\nmod tests { use crate::store; }",
            &known
        )
        .is_empty()
    );
}

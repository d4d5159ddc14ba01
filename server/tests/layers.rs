//! The server's modules form layers (docs/ARCHITECTURE.md): a module
//! imports only from its own layer or below, and the imports between
//! modules form no circle. This test reads every `crate::…` path in
//! `server/src` and fails on an upward import or a circle, so the layering
//! stays true as the code changes.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// Top to bottom. A module is a file or folder directly under `src/`; the
/// crate root's own items (`AppState`, re-exports) count as `lib`. A
/// module imports its own group and the ranks below it; groups that share
/// a rank (the room core and the stores) do not import each other: the
/// room core knows the stores only through the ports.
const LAYERS: &[(&str, usize, &[&str])] = &[
    (
        "edges",
        0,
        &[
            "main", "lib", "state", "api", "http", "web", "listen", "session", "admin",
        ],
    ),
    ("room core", 1, &["room"]),
    ("stores", 1, &["memory", "hub", "sqlite", "cluster"]),
    (
        "ports",
        2,
        &["log", "history", "identity", "accounts", "access", "search"],
    ),
    (
        "leaves",
        3,
        &[
            "config",
            "credentials",
            "metrics",
            "addr",
            "origin",
            "names",
            "limits",
            "ids",
            "outbox",
            "ring",
            "hashed_name",
        ],
    ),
];

/// The layer a module is in: its group's index in [`LAYERS`].
fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, _, modules)| modules.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is in no layer: add it to LAYERS"))
}

/// Whether a module of layer `from` may import one of layer `to`.
fn may_import(from: usize, to: usize) -> bool {
    from == to || LAYERS[to].1 > LAYERS[from].1
}

/// The top-level module a source file belongs to.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel
        .components()
        .next()
        .expect("a path")
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    first.trim_end_matches(".rs").to_owned()
}

/// The modules named by `crate::…` paths in `code`: `crate::a::b` and the
/// first level of `crate::{a::b, c}` give `a` (and `c`); names that start
/// with a capital are the crate root's own items (`lib`).
fn imports(code: &str) -> BTreeSet<String> {
    // Comments mention modules without importing them.
    let code: String = code
        .lines()
        .map(|line| line.split_once("//").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut token = String::new();
            let mut expecting = true;
            for c in group.chars() {
                if c.is_alphanumeric() || c == '_' {
                    if depth == 1 && expecting {
                        token.push(c);
                    }
                    continue;
                }
                if !token.is_empty() {
                    out.insert(std::mem::take(&mut token));
                    expecting = false;
                }
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expecting = true,
                    _ => {}
                }
            }
            if !token.is_empty() {
                out.insert(token);
            }
        } else {
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
        rest = after;
    }
    out.into_iter()
        .map(|m| {
            if m.chars().next().is_some_and(char::is_uppercase) || m == "self" {
                "lib".to_owned()
            } else {
                m
            }
        })
        .collect()
}

/// `code` without its `#[cfg(test)]` items (a `mod tests;` line, or an
/// inline module up to its closing brace): what follows them still counts.
fn without_test_items(code: &str) -> String {
    let mut out = String::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        // The item: further attributes, then a line ending in `;`, or a
        // block skipped until its braces balance.
        let mut depth = 0i32;
        let mut opened = false;
        for line in lines.by_ref() {
            let trimmed = line.trim();
            if !opened && trimmed.starts_with("#[") {
                continue;
            }
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            opened |= line.contains('{');
            if (!opened && trimmed.ends_with(';')) || (opened && depth <= 0) {
                break;
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every module's imports of other modules.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        // Tests may reach into any layer: what the layering is about is
        // the code that runs (test modules sit at the end of their file, or
        // in `tests.rs` / `tests/` beside it).
        let rel = file.strip_prefix(&src).expect("under src");
        if rel
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "tests.rs")
        {
            continue;
        }
        let module = module_of(&src, &file);
        let code = std::fs::read_to_string(&file).expect("read");
        let code = without_test_items(&code);
        let deps = graph.entry(module.clone()).or_default();
        for import in imports(&code) {
            if import != module {
                deps.insert(import);
            }
        }
    }
    graph
}

/// Where `from`'s imports lead back to it, if they do.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_owned()];
    walk(graph, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn modules_import_only_their_own_layer_or_below_and_form_no_circle() {
    let graph = graph();
    let mut problems = Vec::new();
    for (module, deps) in &graph {
        for dep in deps {
            if !graph.contains_key(dep) && dep != "lib" {
                continue; // a macro or an item path, not a module
            }
            if !may_import(layer_of(module), layer_of(dep)) {
                problems.push(format!(
                    "`{module}` ({}) imports `{dep}` ({}), which is not below it",
                    LAYERS[layer_of(module)].0,
                    LAYERS[layer_of(dep)].0
                ));
            }
        }
    }
    for module in graph.keys() {
        if let Some(path) = circle(&graph, module) {
            problems.push(format!(
                "imports go round in a circle: {}",
                path.join(" → ")
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_import_reader_reads_groups_and_paths() {
    let code = "use crate::{\n    a::{b, c::D},\n    e,\n    Big,\n};\nlet x = crate::f::g(1); // see crate::h\n//! crate::i";
    let found: Vec<String> = imports(code).into_iter().collect();
    assert_eq!(found, ["a", "e", "f", "lib"]);
}

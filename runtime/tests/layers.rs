//! The runtime's modules form layers with no back-edges: each module names (`crate::…`) only
//! modules of earlier layers. Run with `cargo test -p runcomfy --test layers`.
//!
//! The check reads the sources: every `crate::` path outside comments, `use crate::{…}`
//! groups included, is resolved to the module it names (`crate::http::retry::RetryPolicy` →
//! `http::retry`). A path through a crate-root re-export (`crate::Error`) is refused in a
//! layered module, because it would hide the real dependency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use its own layer's earlier entries and any
/// earlier layer; nothing later.
const LAYERS: &[&str] = &[
    // Leaves: plain data and checks.
    "types",
    "file",
    "validate",
    "model",
    "error",
    "ids",
    "download",
    // HTTP: one exchange, then the one retry loop.
    "http",
    "http::transport",
    "http::retry",
    // One function per endpoint.
    "api",
    // The job store the client writes through (submit records, the end of a wait).
    "record",
    // The poll schedule and the waiter, over the api.
    "wait",
    // The `Client` type (api + poll policy), below the handles that take it.
    "session",
    // Job handles and the `Run` future.
    "job",
    // The typed endpoint and run = submit + wait.
    "endpoint",
    // The facade: builder and client methods.
    "client",
    // The batch engine, over the client and the job store.
    "batch::folder",
    "batch",
];

/// Modules above every layer: users of the layered ones (the crate root, the optional fake
/// server, the generated models).
const ABOVE: &[&str] = &["lib", "fake", "fake::lifecycle", "models", "__codegen"];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

/// `src/http/retry.rs` → `http::retry`, `src/http/mod.rs` → `http`, `src/lib.rs` → `lib`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") && parts.len() > 1 {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (doc comments mention paths that are not dependencies).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The leading path segments of `s` (`a::b::C` → `["a", "b", "C"]`); stops at `{`.
fn segments(s: &str) -> (Vec<String>, &str) {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    loop {
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_owned());
        rest = &rest[end..];
        match rest.strip_prefix("::") {
            Some(r) => rest = r.trim_start(),
            None => break,
        }
    }
    (out, rest)
}

/// Splits the inside of a `{…}` group at its top-level commas.
fn group_items(s: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&s[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// The full paths of a `use` tree after `crate::` (`{a::B, c::{D, E}}` → `a::B`, `c::D`, `c::E`).
fn expand(prefix: &[String], s: &str, out: &mut Vec<Vec<String>>) {
    let (segs, rest) = segments(s);
    let mut path = prefix.to_vec();
    path.extend(segs);
    match rest.trim_start().strip_prefix('{') {
        Some(group) => {
            for item in group_items(group) {
                expand(&path, item, out);
            }
        }
        None => out.push(path),
    }
}

/// The module a path names: its first segment, or its first two under `http` and `fake`.
/// `None` for a path that names no module (a crate-root re-export such as `crate::Error`).
fn module_named(path: &[String]) -> Option<String> {
    let module = match path {
        [first, second, ..]
            if (first == "http" || first == "fake") && !second.starts_with(char::is_uppercase) =>
        {
            format!("{first}::{second}")
        }
        [first, ..] => first.clone(),
        [] => return None,
    };
    (rank(&module).is_some() || ABOVE.contains(&module.as_str())).then_some(module)
}

/// Every module named by a `crate::` path in `code`; a path that names no module is returned
/// as `Err(path)`.
fn dependencies(code: &str) -> Vec<Result<String, String>> {
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue; // `runcomfy_crate::`, not ours
        }
        expand(&[], &code[at + "crate::".len()..], &mut paths);
    }
    paths
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| module_named(&p).ok_or_else(|| p.join("::")))
        .collect()
}

#[test]
fn runtime_modules_only_use_earlier_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let Some(own) = rank(&module) else {
            assert!(
                ABOVE.contains(&module.as_str()),
                "{module} ({}) is in no layer: add it to LAYERS in tests/layers.rs",
                file.display()
            );
            continue;
        };
        for dep in dependencies(&code) {
            match dep {
                Ok(dep) if dep == module => {}
                Ok(dep) => {
                    let ok = rank(&dep).is_some_and(|r| r < own);
                    if !ok {
                        problems.push(format!("{module} uses {dep}, which is not below it"));
                    }
                    edges.entry(module.clone()).or_default().push(dep);
                }
                Err(path) => problems.push(format!(
                    "{module} names crate::{path}: use the path of the module that defines it"
                )),
            }
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "layer violations:\n{}",
        problems.join("\n")
    );
    // The check saw the real structure, not an empty tree.
    for (module, dep) in [
        ("api", "http::retry"),
        ("wait", "api"),
        ("client", "endpoint"),
    ] {
        assert!(
            edges
                .get(module)
                .is_some_and(|d| d.iter().any(|x| x == dep)),
            "expected {module} to use {dep}: {edges:?}"
        );
    }
}

#[test]
fn the_parser_reads_groups_and_refuses_root_paths() {
    let code = "use crate::{api::Api, http::{retry::Stop, transport::Token}};\n\
                fn f() -> crate::wait::Progress { crate::Error::x() }";
    let got = dependencies(code);
    assert_eq!(
        got,
        vec![
            Ok("api".to_owned()),
            Ok("http::retry".to_owned()),
            Ok("http::transport".to_owned()),
            Ok("wait".to_owned()),
            Err("Error::x".to_owned()),
        ]
    );
    assert_eq!(code_of("let a = 1; // crate::client"), "let a = 1; ");
}

//! The layout of `src/` is the architecture: one folder per stage, in the
//! order a scrape's data flows through them, and no stage uses one above it.
//! A new upward `crate::` path, a file outside the stages, two files of a
//! stage that use each other (directly or round a longer circle), a bollard
//! type named outside `src/engine/`, or a folder that docs/architecture.md
//! does not name fails here.

use std::path::{Path, PathBuf};

/// The stages, lowest first: each may use only those before it.
const STAGES: [&str; 5] = ["config", "engine", "scrape", "exposition", "http"];

/// The files of `src/` that sit above every stage and wire them together.
const TOP: [&str; 2] = ["lib.rs", "main.rs"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The rank of the stage a source file (relative to `src/`) belongs to;
/// `None` for the top files.
fn stage_of(relative: &Path) -> Result<Option<usize>, String> {
    let first = relative
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or("");
    if TOP.contains(&first) {
        return Ok(None);
    }
    STAGES
        .iter()
        .position(|s| *s == first)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "src/{} is outside the stages {STAGES:?}: put it in the folder of the stage it belongs to",
                relative.display()
            )
        })
}

/// Every use of a stage above `rank` in `code`, as `line: text`; comments
/// count too (a doc link upward is a dependency in the reader's mind).
fn upward_uses(code: &str, rank: usize) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        for (higher, stage) in STAGES.iter().enumerate().skip(rank + 1) {
            let path = format!("crate::{stage}");
            let hit = line.match_indices(&path).any(|(at, _)| {
                let rest = &line[at + path.len()..];
                !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if hit {
                found.push(format!(
                    "{}: uses {stage} (stage {higher}): {}",
                    n + 1,
                    line.trim()
                ));
            }
        }
        if line.contains("super::super") {
            found.push(format!(
                "{}: super::super hides which stage is used: {}",
                n + 1,
                line.trim()
            ));
        }
    }
    found
}

#[test]
fn no_stage_uses_a_stage_above_it() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 20, "src/ has only {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let rank = match stage_of(relative) {
            Ok(Some(rank)) => rank,
            Ok(None) => continue,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let code = std::fs::read_to_string(file).expect("read source file");
        for hit in upward_uses(&code, rank) {
            failures.push(format!("src/{}:{hit}", relative.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "the stages are {STAGES:?}, lowest first; each may use only those before it:\n{}",
        failures.join("\n")
    );
}

#[test]
fn an_upward_use_is_caught() {
    // A scrape-stage file that reaches into the HTTP stage, and one that
    // only names a lower stage or a longer name starting like a stage.
    let scrape = 2;
    assert_eq!(
        upward_uses("use crate::http::AppState;", scrape).len(),
        1,
        "an upward use must be reported"
    );
    assert_eq!(
        upward_uses("let x = crate::exposition::metrics::TABLE;", scrape).len(),
        1
    );
    assert!(upward_uses(
        "use crate::config::Config;\nuse crate::engine::EngineApi;",
        scrape
    )
    .is_empty());
    assert!(upward_uses("use crate::httpx::X;", scrape).is_empty());
    assert_eq!(upward_uses("use super::super::x;", scrape).len(), 1);
    assert!(stage_of(Path::new("stray.rs")).is_err());
    assert_eq!(stage_of(Path::new("lib.rs")), Ok(None));
    assert_eq!(stage_of(Path::new("http/routes.rs")), Ok(Some(4)));
}

#[test]
fn lib_lists_the_stages_in_the_order_data_flows() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).expect("read src/lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert_eq!(
        declared, STAGES,
        "src/lib.rs declares the stages in flow order"
    );
}

#[test]
fn the_architecture_document_names_every_folder() {
    let doc = std::fs::read_to_string(root().join("docs/architecture.md"))
        .expect("read docs/architecture.md");
    let mut missing = Vec::new();
    for base in ["src", "tests"] {
        let entries = std::fs::read_dir(root().join(base)).expect("read folder");
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                let name = format!(
                    "{base}/{}/",
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
                );
                if !doc.contains(&name) {
                    missing.push(name);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/architecture.md does not name {missing:?}"
    );
}

/// The sibling modules of a stage that `code` names: `super::NAME` and
/// `crate::STAGE::NAME` paths, and the names in `use super::{A, B::c}`.
/// Comments count, as for upward uses.
fn sibling_uses(code: &str, stage: &str, siblings: &[String]) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let prefixes = ["super::".to_string(), format!("crate::{stage}::")];
    for prefix in &prefixes {
        for (at, _) in code.match_indices(prefix.as_str()) {
            let rest = &code[at + prefix.len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                Some(group) => group
                    .split('}')
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .map(|n| n.trim().split("::").next().unwrap_or(""))
                    .collect(),
                None => vec![rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")],
            };
            for name in names {
                if siblings.iter().any(|s| s == name) && !found.iter().any(|f| f == name) {
                    found.push(name.to_string());
                }
            }
        }
    }
    found
}

/// A circle in `edges` (module, the modules it uses), as `a -> b -> a`.
fn circle(edges: &[(String, Vec<String>)]) -> Option<String> {
    fn visit(
        node: &str,
        edges: &[(String, Vec<String>)],
        path: &mut Vec<String>,
        done: &mut Vec<String>,
    ) -> Option<String> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut ring = path[at..].to_vec();
            ring.push(node.to_string());
            return Some(ring.join(" -> "));
        }
        if done.iter().any(|d| d == node) {
            return None;
        }
        path.push(node.to_string());
        let next = edges
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, to)| to.clone())
            .unwrap_or_default();
        for to in next {
            if let Some(ring) = visit(&to, edges, path, done) {
                return Some(ring);
            }
        }
        path.pop();
        done.push(node.to_string());
        None
    }
    let mut done = Vec::new();
    edges
        .iter()
        .find_map(|(node, _)| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_two_files_of_a_stage_use_each_other() {
    let mut failures = Vec::new();
    for stage in STAGES {
        let dir = root().join("src").join(stage);
        let mut files = Vec::new();
        rust_files(&dir, &mut files);
        // mod.rs is the stage itself: it declares and re-exports the others.
        files.retain(|f| f.file_name().is_some_and(|n| n != "mod.rs"));
        let siblings: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_stem()?.to_str().map(str::to_string))
            .collect();
        let edges: Vec<(String, Vec<String>)> = files
            .iter()
            .zip(&siblings)
            .map(|(file, name)| {
                let code = std::fs::read_to_string(file).expect("read source file");
                let mut uses = sibling_uses(&code, stage, &siblings);
                uses.retain(|u| u != name);
                (name.clone(), uses)
            })
            .collect();
        if let Some(ring) = circle(&edges) {
            failures.push(format!("src/{stage}/: {ring}"));
        }
    }
    assert!(
        failures.is_empty(),
        "files of a stage that use each other, round a circle (move what both need to a file \
         of its own):\n{}",
        failures.join("\n")
    );
}

#[test]
fn a_circle_is_caught() {
    let siblings: Vec<String> = ["routes", "live", "state"].map(String::from).to_vec();
    assert_eq!(
        sibling_uses(
            "use super::{state::{snapshots, AppState}, live};\n.route(\"/\", get(super::live::page))",
            "http",
            &siblings
        ),
        ["state", "live"]
    );
    assert_eq!(
        sibling_uses("use crate::http::routes::app;", "http", &siblings),
        ["routes"]
    );
    assert!(sibling_uses("use crate::scrape::live::x;", "http", &siblings).is_empty());
    let edges = |pairs: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
        pairs
            .iter()
            .map(|(n, to)| (n.to_string(), to.iter().map(|t| t.to_string()).collect()))
            .collect()
    };
    assert_eq!(
        circle(&edges(&[
            ("routes", &["live", "state"]),
            ("live", &["state"]),
            ("state", &[])
        ])),
        None
    );
    assert_eq!(
        circle(&edges(&[("routes", &["live"]), ("live", &["routes"])])).as_deref(),
        Some("routes -> live -> routes")
    );
    assert_eq!(
        circle(&edges(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"])])).as_deref(),
        Some("a -> b -> c -> a")
    );
}

#[test]
fn only_the_engine_stage_knows_which_engine_answers() {
    // The scrape stage and above ask `engine::quirks`, never the flavor.
    let mut failures = Vec::new();
    for stage in &STAGES[2..] {
        let mut files = Vec::new();
        rust_files(&root().join("src").join(stage), &mut files);
        for file in files {
            let code = std::fs::read_to_string(&file).expect("read source file");
            for (n, line) in code.lines().enumerate() {
                if line.contains("Flavor") {
                    failures.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "ask engine::quirks::Quirks instead of branching on Flavor:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_client_librarys_types_stay_in_the_engine_stage() {
    // The engine stage answers in the crate's own types (engine/model.rs);
    // bollard's models stop there.
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut failures = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).expect("under src/");
        if relative.starts_with("engine") {
            continue;
        }
        let code = std::fs::read_to_string(&file).expect("read source file");
        for (n, line) in code.lines().enumerate() {
            if line.contains("bollard::") {
                failures.push(format!(
                    "src/{}:{}: {}",
                    relative.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "bollard is named outside src/engine/; use engine::model's types:\n{}",
        failures.join("\n")
    );
}

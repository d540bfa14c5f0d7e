//! The README's metric reference is the code's metric table.
//! `UPDATE_README=1 cargo test --test exposition readme` writes the table into README.md
//! after an intended change.

#![allow(clippy::unwrap_used)]

use docker_stats_exporter::exposition::metrics::reference_table;

#[test]
fn readme_metric_table_matches_the_code() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start =
        "<!-- metrics:begin (generated from src/exposition/metrics.rs; checked by tests/exposition/readme.rs) -->\n";
    let end = "<!-- metrics:end -->";
    let from = readme
        .find(start)
        .expect("metrics:begin marker in README.md")
        + start.len();
    let to = readme[from..].find(end).expect("metrics:end marker") + from;
    let expected = reference_table();
    if std::env::var_os("UPDATE_README").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let updated = format!("{}{expected}{}", &readme[..from], &readme[to..]);
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert!(
        readme[from..to] == expected,
        "README.md's metric table is out of date; replace it with:\n{expected}"
    );
}

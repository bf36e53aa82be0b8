//! The rule docs under docs/rules are generated from the registry; this fails when the
//! committed copy is stale (regenerate with `make docs`).

use std::path::Path;

use audit_core::rules::{self, RULES};

#[test]
fn rule_docs_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rules");
    let mut stale = Vec::new();
    let mut expected = vec![("README.md".to_string(), rules::render_index())];
    expected.extend(
        RULES
            .iter()
            .map(|r| (format!("{}.md", r.id), rules::render_markdown(r))),
    );
    for (name, want) in &expected {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(have) if have == *want => {}
            _ => stale.push(name.clone()),
        }
    }
    let extra: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.iter().any(|(e, _)| e == n))
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "docs/rules is stale (run `make docs`): changed {stale:?}, extra {extra:?}"
    );
}

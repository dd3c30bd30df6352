//! docs/events.md is generated from the proto files; this test fails when the
//! checked-in page drifts from them. `KIZUNA_BLESS=1` rewrites the page.

use std::path::PathBuf;

#[test]
fn docs_events_md_matches_the_proto_catalog() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    let expected = kizuna_proto::catalog::events_markdown();
    if std::env::var_os("KIZUNA_BLESS").is_some() {
        std::fs::write(&path, &expected).expect("write docs/events.md");
        return;
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "docs/events.md is out of date with proto/; regenerate it with \
         `KIZUNA_BLESS=1 cargo test -p kizuna-proto --test events_doc`"
    );
}

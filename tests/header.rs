//! The committed `include/tzstore.h` must equal the header cbindgen generates
//! from the current sources (build.rs writes the fresh one to OUT_DIR; in CI
//! it does not touch the committed copy, so drift fails here).

#[test]
fn committed_header_is_current() {
    let fresh = include_str!(concat!(env!("OUT_DIR"), "/tzstore.h"));
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/tzstore.h"))
            .expect("include/tzstore.h is committed");
    assert!(
        fresh == committed,
        "include/tzstore.h is stale: run `cargo build` outside CI and commit the regenerated header"
    );
}

#[test]
fn header_documents_every_function() {
    let header = include_str!(concat!(env!("OUT_DIR"), "/tzstore.h"));
    let lines: Vec<&str> = header.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_prototype = line.contains("tzs_")
            && line.contains('(')
            && !line.starts_with(' ')
            && !line.starts_with('#')
            && !line.starts_with("typedef");
        if is_prototype {
            let above = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .copied()
                .unwrap_or("");
            assert!(
                above.trim_end().ends_with("*/"),
                "undocumented C function: {line}"
            );
        }
    }
}

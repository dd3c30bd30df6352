//! Checks every row of the shared contact-normalisation vectors.
//!
//! The vectors are a copy kept in this crate (`testdata/`), compiled in with
//! `include_str!`, so the test needs nothing outside the crate at run time.
//! Every row is checked before the test fails, and the failure lists each
//! disagreeing row, so one run shows the whole gap.

use kizuna_domain::contact::{
    ContactError, Region, normalize_email, normalize_phone, normalize_text,
};

const VECTORS: &str = include_str!("../testdata/contact-normalization.tsv");

/// One data row: `kind region input expected`, tab-separated. Fields are not
/// trimmed: leading and trailing spaces in `input` are part of the vector.
struct Row<'a> {
    line: usize,
    kind: &'a str,
    region: &'a str,
    input: &'a str,
    expected: &'a str,
}

fn rows() -> Vec<Row<'static>> {
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (index, line) in VECTORS.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            fields.len(),
            4,
            "line {line_no}: expected 4 tab-separated fields, got {}: {line:?}",
            fields.len()
        );
        if !header_seen {
            assert_eq!(
                fields,
                ["kind", "region", "input", "expected"],
                "line {line_no}: header"
            );
            header_seen = true;
            continue;
        }
        rows.push(Row {
            line: line_no,
            kind: fields[0],
            region: fields[1],
            input: fields[2],
            expected: fields[3],
        });
    }
    rows
}

fn run(row: &Row<'_>) -> Result<String, ContactError> {
    match row.kind {
        "email" => normalize_email(row.input),
        "phone" => normalize_phone(row.input, row.region.parse::<Region>()?),
        "text" => normalize_text(row.input),
        other => panic!("line {}: unknown kind {other:?}", row.line),
    }
}

#[test]
fn every_vector_row_holds() {
    let rows = rows();
    assert!(!rows.is_empty(), "no vector rows found");

    let mut disagreements = Vec::new();
    for row in &rows {
        let got = run(row);
        let agrees = match (&got, row.expected) {
            (Err(_), "ERROR") => true,
            (Ok(value), expected) => value == expected,
            (Err(_), _) => false,
        };
        if !agrees {
            disagreements.push(format!(
                "  line {} [{} {}] input {:?}: expected {:?}, got {:?}",
                row.line, row.kind, row.region, row.input, row.expected, got
            ));
        }
    }

    assert!(
        disagreements.is_empty(),
        "{} of {} vector rows disagree:\n{}",
        disagreements.len(),
        rows.len(),
        disagreements.join("\n")
    );
    println!("{} vector rows checked, all agree", rows.len());
}

#[test]
fn vectors_cover_every_kind() {
    let rows = rows();
    for kind in ["email", "phone", "text"] {
        assert!(
            rows.iter().any(|r| r.kind == kind),
            "no {kind} rows in the vectors"
        );
    }
}

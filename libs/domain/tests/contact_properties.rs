//! Invariants of the contact-data input rule, checked by proptest: every
//! normaliser is idempotent (a stored value normalises to itself, so
//! re-normalising on replay or import changes nothing), its output has no
//! stray whitespace, and no input makes it panic.

use kizuna_domain::contact::{Region, normalize_email, normalize_phone, normalize_text};
use proptest::prelude::*;

/// Characters that exercise the rule: ASCII, full-width forms, half-width
/// katakana with voicing marks, kanji, and many kinds of whitespace.
fn messy_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<char>(),
            prop::sample::select(vec![
                ' ', '\t', '\n', '\u{3000}', '\u{a0}', '\u{2028}', '@', '.', '-', '+', '(', ')',
                'A', 'z', '0', '9', 'Ａ', '０', '＠', '．', 'ﾀ', 'ﾞ', 'ﾟ', '山', 'İ', 'ß', 'K',
            ]),
        ],
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Strings that look like phone numbers, half- or full-width.
fn phone_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            '0', '1', '2', '3', '5', '8', '9', '０', '９', '+', '＋', '-', '－', ' ', '(', ')',
            'x', '#',
        ]),
        0..18,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// A valid number (national digits in `JP`, or with a country code) written
/// the way people write it: any digit may be full-width, and any gap may hold
/// a space, a hyphen (ASCII, full-width, or the `ー` typed for one) or an
/// ideographic space.
fn rendered_phone() -> impl Strategy<Value = (&'static str, String)> {
    let base = prop::sample::select(vec![
        "0312345678",
        "09012345678",
        "0120123456",
        "+12015550123",
        "+442079460958",
        "+819012345678",
    ]);
    base.prop_flat_map(|base| {
        let n = base.chars().count();
        (
            Just(base),
            prop::collection::vec(any::<bool>(), n),
            prop::collection::vec(
                prop::sample::select(vec!["", "", " ", "-", "－", "ー", "\u{3000}"]),
                n,
            ),
        )
    })
    .prop_map(|(base, wide, gaps)| {
        let mut out = String::new();
        for ((c, wide), gap) in base.chars().zip(wide).zip(gaps) {
            match c.to_digit(10) {
                Some(d) if wide => out.extend(char::from_u32(0xFF10 + d)),
                _ => out.push(c),
            }
            out.push_str(gap);
        }
        (base, out)
    })
}

fn region() -> impl Strategy<Value = Region> {
    prop::sample::select(vec!["JP", "US", "GB", "DE", "KR"]).prop_map(|c| c.parse().unwrap())
}

fn clean_spacing(value: &str) -> bool {
    !value.starts_with(' ')
        && !value.ends_with(' ')
        && !value.contains("  ")
        && value.chars().all(|c| c == ' ' || !c.is_whitespace())
}

proptest! {
    #[test]
    fn text_is_idempotent_and_tidy(input in messy_text()) {
        if let Ok(value) = normalize_text(&input) {
            prop_assert!(clean_spacing(&value), "{value:?}");
            prop_assert_eq!(normalize_text(&value), Ok(value));
        }
    }

    #[test]
    fn email_is_idempotent_and_has_one_at(
        input in prop_oneof![
            messy_text(),
            (messy_text(), messy_text()).prop_map(|(local, domain)| format!("{local}@{domain}")),
        ],
    ) {
        if let Ok(value) = normalize_email(&input) {
            prop_assert_eq!(value.matches('@').count(), 1);
            prop_assert!(!value.chars().any(char::is_whitespace), "{value:?}");
            prop_assert_eq!(normalize_email(&value), Ok(value));
        }
    }

    #[test]
    fn phone_output_is_e164_and_stable(
        input in prop_oneof![phone_like(), messy_text()],
        default in region(),
        other in region(),
    ) {
        if let Ok(value) = normalize_phone(&input, default) {
            prop_assert!(value.starts_with('+'), "{value:?}");
            prop_assert!(value[1..].bytes().all(|b| b.is_ascii_digit()), "{value:?}");
            // An E.164 value carries its own country code: any default region
            // reads it back unchanged.
            prop_assert_eq!(normalize_phone(&value, other), Ok(value));
        }
    }

    #[test]
    fn phone_spelling_does_not_change_the_value(
        (base, written) in rendered_phone(),
        other in region(),
    ) {
        let jp: Region = "JP".parse().unwrap();
        let expected = normalize_phone(base, jp);
        prop_assert!(expected.is_ok(), "{base:?}: {expected:?}");
        prop_assert_eq!(normalize_phone(&written, jp), expected.clone(), "{:?}", written);
        // E.164 carries its own country code: any default region reads it back.
        if let Ok(value) = expected.clone() {
            prop_assert_eq!(normalize_phone(&value, other), expected);
        }
    }
}

//! The contact-data input rule: how e-mail addresses, phone numbers, names and
//! addresses are normalised before they are recorded.
//!
//! Events are immutable, so a value is normalised once, before it enters the
//! log, and never again: projections, searches and duplicate detection then
//! compare canonical values instead of each re-deriving them. The rule is NFKC
//! first because Japanese input methods produce full-width Latin letters and
//! digits (`０９０`), half-width katakana (`ﾀﾛｳ`) and the ideographic space;
//! NFKC folds each of these to the one form people mean. Phone numbers are
//! stored in E.164 (`+819012345678`) so the same line written three ways is
//! one value.
//!
//! The rule is pinned by the shared test vectors
//! (`testdata/contact-normalization.tsv`); the validity checks here go no
//! further than those vectors and input that is plainly broken.

use std::fmt;
use std::str::FromStr;

use phonenumber::ParseError;
use phonenumber::country::Id;
use unicode_normalization::UnicodeNormalization;

/// Why a contact value was rejected. Every message can be shown to the person
/// who typed the value; the caller adds which field it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// Nothing was left after normalisation (the input was empty or only
    /// whitespace). Callers for optional fields may treat this as "absent".
    #[error("the value is empty")]
    Empty,

    /// The input is not an e-mail address.
    #[error("invalid e-mail address: {reason}")]
    InvalidEmail {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The input is not a phone number valid for its region.
    #[error("invalid phone number: {reason}")]
    InvalidPhone {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The region code is not one the phone-number metadata knows.
    #[error("unknown region {code:?}: expected a two-letter ISO 3166 code such as \"JP\"")]
    UnknownRegion {
        /// The code as given.
        code: String,
    },
}

/// A region for phone numbers written without a country calling code: an
/// ISO 3166-1 alpha-2 code (`"JP"`, `"US"`) that the phone-number metadata
/// knows.
///
/// Parsed with [`str::parse`]; the code is matched case-insensitively and
/// kept upper-case. The accepted set is the metadata's (CLDR) region list,
/// which is ISO 3166-1 alpha-2 plus the few regions with their own numbering
/// plan but no ISO code of their own, such as `AC` (Ascension) and `XK`
/// (Kosovo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Region(Id);

impl Region {
    /// The upper-case two-letter code, e.g. `"JP"`.
    pub fn as_str(&self) -> &str {
        // `Id` derives `AsRefStr`: its variant names are the codes.
        self.0.as_ref()
    }
}

impl FromStr for Region {
    type Err = ContactError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let unknown = || ContactError::UnknownRegion {
            code: code.to_owned(),
        };
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(unknown());
        }
        code.to_ascii_uppercase()
            .parse::<Id>()
            .map(Region)
            .map_err(|_| unknown())
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Normalises an e-mail address: NFKC, trim, collapse inner whitespace,
/// lower-case; then rejects what is not an address.
///
/// An address must have exactly one `@`, something before it and a domain
/// after it whose dot-separated labels are all non-empty; it must not contain
/// whitespace (after trimming) or control characters. Nothing more is checked:
/// whether the domain exists is not this rule's business. Blank input is
/// [`ContactError::Empty`].
///
/// ```
/// use kizuna_domain::contact::normalize_email;
///
/// assert_eq!(normalize_email(" Taro@Example.JP ").unwrap(), "taro@example.jp");
/// assert!(normalize_email("taro@").is_err());
/// ```
pub fn normalize_email(input: &str) -> Result<String, ContactError> {
    let invalid = |reason| ContactError::InvalidEmail { reason };
    let collapsed = nfkc_collapsed(input)?;
    // Lower-casing can, for a few characters, leave text that NFKC would
    // change again; one more pass keeps the result a fixed point.
    let email: String = collapsed.to_lowercase().nfkc().collect();

    if email.chars().any(char::is_whitespace) {
        return Err(invalid("it must not contain spaces"));
    }
    if email.chars().any(char::is_control) {
        return Err(invalid("it must not contain control characters"));
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err(invalid("it has no @"));
    };
    if domain.contains('@') {
        return Err(invalid("it has more than one @"));
    }
    if local.is_empty() {
        return Err(invalid("nothing comes before the @"));
    }
    if domain.is_empty() {
        return Err(invalid("no domain comes after the @"));
    }
    if domain.split('.').any(str::is_empty) {
        return Err(invalid(
            "the domain has an empty part (a leading, trailing or doubled dot)",
        ));
    }
    Ok(email)
}

/// Normalises a phone number to E.164 (`+819012345678`).
///
/// The input is NFKC-normalised first, so full-width digits and punctuation
/// work, and separators (spaces, hyphens, dots, slashes, parentheses, and the
/// `ー` often typed for a hyphen) are ignored. A number without a country
/// calling code is read as a number of `default_region`; one with a code
/// (`+1 …`) keeps its own. Either way the number must be valid for the region
/// it belongs to. Extensions are rejected, because E.164 cannot hold them and
/// dropping one silently would lose what was typed. Blank input is
/// [`ContactError::Empty`].
///
/// ```
/// use kizuna_domain::contact::{normalize_phone, Region};
///
/// let jp: Region = "JP".parse().unwrap();
/// assert_eq!(normalize_phone("090-1234-5678", jp).unwrap(), "+819012345678");
/// ```
pub fn normalize_phone(input: &str, default_region: Region) -> Result<String, ContactError> {
    let invalid = |reason| ContactError::InvalidPhone { reason };
    let text = strip_separators(nfkc_collapsed(input)?);
    // A number with its own `+CC` is parsed without the default region:
    // `phonenumber` 0.3 strips a national prefix by the default region's rules
    // even when the number names another country (`+81 120 …` read with
    // region US would lose the `1` of `120`, the US trunk prefix).
    let region = (!text.starts_with('+')).then_some(default_region.0);
    let number = phonenumber::parse(region, &text).map_err(|e| {
        invalid(match e {
            ParseError::NoNumber | ParseError::MalformedInteger(_) => "it is not a phone number",
            ParseError::InvalidCountryCode => "the country calling code does not exist",
            ParseError::TooShortAfterIdd | ParseError::TooShortNsn => "it is too short",
            ParseError::TooLong => "it is too long",
        })
    })?;
    if number.extension().is_some() {
        return Err(invalid("extensions are not supported"));
    }
    if !number.is_valid() {
        return Err(invalid("it is not a valid number for its region"));
    }
    // Exactly what `number.format().mode(Mode::E164)` writes, without the
    // national-format regex matching that `phonenumber` 0.3 runs (and
    // discards) for every mode: a third of the cost of this function.
    Ok(format!("+{}{}", number.country().code(), number.national()))
}

/// Drops the separators from a number written only with digits, an optional
/// leading `+` and separators (`+81 90-1234-5678` becomes `+819012345678`);
/// anything else (an extension, letters, a `tel:` URI) is left for the parser.
///
/// Separators carry no meaning in a number, but `phonenumber` 0.3 reads the
/// digits between `+` and the first separator as the country calling code
/// when separators are mixed, so `+8190-1234-5678` fails with "invalid
/// country code" where libphonenumber reads `+81`.
fn strip_separators(text: String) -> String {
    let is_separator = |c: char| {
        matches!(
            c,
            ' ' | '-' | '.' | '/' | '(' | ')' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{30FC}'
        )
    };
    let body = text.strip_prefix('+').unwrap_or(&text);
    if body.chars().all(|c| c.is_ascii_digit() || is_separator(c)) {
        text.chars().filter(|&c| !is_separator(c)).collect()
    } else {
        text
    }
}

/// Normalises a name or an address: NFKC, trim, and collapse every run of
/// inner whitespace (including the ideographic space U+3000, which NFKC maps
/// to a space, and tabs and line breaks) to one ASCII space. Case and
/// punctuation are kept. Blank input is [`ContactError::Empty`], which a
/// caller may read as "absent" for an optional field.
///
/// ```
/// use kizuna_domain::contact::normalize_text;
///
/// assert_eq!(normalize_text("山田\u{3000}太郎").unwrap(), "山田 太郎");
/// ```
pub fn normalize_text(input: &str) -> Result<String, ContactError> {
    nfkc_collapsed(input)
}

/// NFKC, then trim and collapse whitespace runs to one ASCII space; rejects
/// what is left empty. Shared first step of every rule in this module.
fn nfkc_collapsed(input: &str) -> Result<String, ContactError> {
    let nfkc: String = input.nfkc().collect();
    let mut out = String::with_capacity(nfkc.len());
    for word in nfkc.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        return Err(ContactError::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_is_written_exactly_as_the_phonenumber_formatter_writes_it() {
        for (input, region) in [
            ("090-1234-5678", "JP"),
            ("03-1234-5678", "JP"),
            ("+39 06 6982 1234", "JP"),
            ("(415) 555-0132", "US"),
            ("+44 20 7946 0958", "US"),
            ("0120-123-456", "JP"),
        ] {
            let region: Region = region.parse().expect("region");
            let ours = normalize_phone(input, region).expect(input);
            let text = strip_separators(nfkc_collapsed(input).expect(input));
            let parsed = phonenumber::parse((!text.starts_with('+')).then_some(region.0), &text)
                .expect(input);
            let theirs = parsed.format().mode(phonenumber::Mode::E164).to_string();
            assert_eq!(ours, theirs, "{input}");
        }
    }

    fn jp() -> Region {
        "JP".parse().unwrap()
    }

    fn invalid_email(input: &str) -> &'static str {
        match normalize_email(input) {
            Err(ContactError::InvalidEmail { reason }) => reason,
            other => panic!("{input:?}: expected InvalidEmail, got {other:?}"),
        }
    }

    fn invalid_phone(input: &str, region: Region) -> &'static str {
        match normalize_phone(input, region) {
            Err(ContactError::InvalidPhone { reason }) => reason,
            other => panic!("{input:?}: expected InvalidPhone, got {other:?}"),
        }
    }

    // --- e-mail ---

    #[test]
    fn email_with_full_width_and_upper_case_is_folded_to_one_form() {
        // Given an address typed with full-width letters and capitals
        // When it is normalised
        // Then it is the plain lower-case address
        assert_eq!(
            normalize_email("\u{3000}Ｔａｒｏ.Ｙａｍａｄａ＠Ｅｘａｍｐｌｅ.ｊｐ ").unwrap(),
            "taro.yamada@example.jp"
        );
    }

    #[test]
    fn email_without_the_parts_of_an_address_is_rejected() {
        assert_eq!(invalid_email("taro.example.jp"), "it has no @");
        assert_eq!(invalid_email("@example.jp"), "nothing comes before the @");
        assert_eq!(invalid_email("taro@"), "no domain comes after the @");
        assert_eq!(invalid_email("taro@x@example.jp"), "it has more than one @");
    }

    #[test]
    fn email_with_inner_whitespace_or_control_characters_is_rejected() {
        // Whitespace at the ends is trimmed; whitespace inside is an error
        // (collapsing it to one space would still not make an address).
        assert_eq!(
            invalid_email("taro @example.jp"),
            "it must not contain spaces"
        );
        assert_eq!(
            invalid_email("ta\u{3000}ro@example.jp"),
            "it must not contain spaces"
        );
        assert_eq!(
            invalid_email("ta\u{0}ro@example.jp"),
            "it must not contain control characters"
        );
    }

    #[test]
    fn email_domain_with_an_empty_label_is_rejected() {
        for input in ["taro@.example.jp", "taro@example..jp", "taro@example.jp."] {
            assert!(
                matches!(
                    normalize_email(input),
                    Err(ContactError::InvalidEmail { .. })
                ),
                "{input:?}"
            );
        }
    }

    #[test]
    fn email_that_is_blank_is_empty() {
        assert_eq!(normalize_email(""), Err(ContactError::Empty));
        assert_eq!(normalize_email(" \u{3000}\t"), Err(ContactError::Empty));
    }

    // --- phone ---

    #[test]
    fn phone_in_national_format_takes_the_default_region() {
        // Given the same national digits
        // When the default region differs
        // Then the country calling code follows the region
        assert_eq!(
            normalize_phone("03-1234-5678", jp()).unwrap(),
            "+81312345678"
        );
        let us: Region = "US".parse().unwrap();
        assert_eq!(
            normalize_phone("(201) 555-0123", us).unwrap(),
            "+12015550123"
        );
    }

    #[test]
    fn phone_with_a_country_code_ignores_the_default_region() {
        let us: Region = "US".parse().unwrap();
        assert_eq!(
            normalize_phone("+81 3-1234-5678", us).unwrap(),
            "+81312345678"
        );
    }

    #[test]
    fn phone_with_a_country_code_reads_the_same_under_every_default_region() {
        // Given numbers whose spelling trips `phonenumber` 0.3 when the
        // default region's rules are applied to them
        // When they are read with several default regions
        // Then each is the same E.164 value every time
        for code in ["JP", "US", "GB", "DE"] {
            let region: Region = code.parse().unwrap();
            for (input, expected) in [
                ("+8190-1234-5678", "+819012345678"),
                ("+81 120 123 456", "+81120123456"),
                ("+81 (0)3 1234 5678", "+81312345678"),
                ("+44 (0)20 7946 0958", "+442079460958"),
            ] {
                assert_eq!(
                    normalize_phone(input, region).as_deref(),
                    Ok(expected),
                    "{input:?} with default region {code}"
                );
            }
        }
    }

    #[test]
    fn phone_with_full_width_digits_and_plus_is_normalised() {
        assert_eq!(
            normalize_phone("＋８１　９０　１２３４　５６７８", jp()).unwrap(),
            "+819012345678"
        );
    }

    #[test]
    fn phone_that_is_not_valid_for_its_region_is_rejected() {
        assert_eq!(
            invalid_phone("090-1234-567", jp()),
            "it is not a valid number for its region"
        );
        assert_eq!(
            invalid_phone("12", jp()),
            "it is not a valid number for its region"
        );
        assert_eq!(invalid_phone("call me", jp()), "it is not a phone number");
        assert_eq!(
            invalid_phone("+999 1234 5678", jp()),
            "the country calling code does not exist"
        );
    }

    #[test]
    fn phone_with_an_extension_is_rejected_rather_than_truncated() {
        assert_eq!(
            invalid_phone("03-1234-5678 ext. 12", jp()),
            "extensions are not supported"
        );
    }

    #[test]
    fn phone_that_is_blank_is_empty() {
        assert_eq!(normalize_phone("\u{3000}", jp()), Err(ContactError::Empty));
    }

    // --- region ---

    #[test]
    fn region_parses_iso_codes_case_insensitively() {
        let region: Region = "jp".parse().unwrap();
        assert_eq!(region, jp());
        assert_eq!(region.as_str(), "JP");
        assert_eq!(region.to_string(), "JP");
    }

    #[test]
    fn region_rejects_unknown_or_malformed_codes() {
        for code in ["", "J", "JPN", "ZZ", "001", " JP", "ＪＰ"] {
            assert_eq!(
                code.parse::<Region>(),
                Err(ContactError::UnknownRegion {
                    code: code.to_owned()
                }),
                "{code:?}"
            );
        }
    }

    // --- text ---

    #[test]
    fn text_collapses_every_kind_of_whitespace_to_one_space() {
        assert_eq!(
            normalize_text(" 山田\u{3000}\u{3000}太郎\t\n様 ").unwrap(),
            "山田 太郎 様"
        );
    }

    #[test]
    fn text_folds_half_width_katakana_and_full_width_latin() {
        assert_eq!(normalize_text("ﾔﾏﾀﾞ").unwrap(), "ヤマダ");
        assert_eq!(normalize_text("ＡＢＣ１２３").unwrap(), "ABC123");
    }

    #[test]
    fn text_keeps_case_and_punctuation() {
        // Names are not e-mail addresses: case is part of the value.
        assert_eq!(
            normalize_text("McDonald, O'Brien").unwrap(),
            "McDonald, O'Brien"
        );
    }

    #[test]
    fn text_that_is_blank_is_empty() {
        assert_eq!(normalize_text(""), Err(ContactError::Empty));
        assert_eq!(normalize_text("\u{3000} \t"), Err(ContactError::Empty));
    }

    #[test]
    fn errors_read_as_messages() {
        assert_eq!(
            normalize_email("taro").unwrap_err().to_string(),
            "invalid e-mail address: it has no @"
        );
        assert_eq!(ContactError::Empty.to_string(), "the value is empty");
    }
}

/// Longest accepted name, company or address line, in characters (after
/// normalisation).
pub const MAX_TEXT_CHARS: usize = 200;

/// A text field that may be left empty: normalised, or `""` when blank.
fn optional_text(input: &str, field: &str) -> Result<String, crate::DomainError> {
    match normalize_text(input) {
        Ok(v) if v.chars().count() > MAX_TEXT_CHARS => Err(crate::DomainError::invalid(
            field,
            format!("is longer than {MAX_TEXT_CHARS} characters"),
        )),
        Ok(v) if v.chars().any(char::is_control) => Err(crate::DomainError::invalid(
            field,
            "must not contain control characters",
        )),
        Ok(v) => Ok(v),
        Err(ContactError::Empty) => Ok(String::new()),
        Err(e) => Err(crate::DomainError::invalid(field, e.to_string())),
    }
}

/// Applies the input rule to every field of `data`, naming fields as
/// `{prefix}.email`, `{prefix}.postal_address.lines[0]`, …: e-mail and phone
/// normalised (blank means "not given"), names, company and address lines NFKC
/// with whitespace collapsed, country upper-cased. Leaves the question of
/// which fields are required to the caller.
pub fn normalize_contact(
    data: &crate::pb::ContactData,
    default_region: Region,
    prefix: &str,
) -> Result<crate::pb::ContactData, crate::DomainError> {
    let field = |name: &str| format!("{prefix}.{name}");
    let email = match normalize_email(&data.email) {
        Ok(v) => v,
        Err(ContactError::Empty) => String::new(),
        Err(e) => return Err(crate::DomainError::invalid(field("email"), e.to_string())),
    };
    let phone = match normalize_phone(&data.phone, default_region) {
        Ok(v) => v,
        Err(ContactError::Empty) => String::new(),
        Err(e) => return Err(crate::DomainError::invalid(field("phone"), e.to_string())),
    };
    let postal_address = match &data.postal_address {
        None => None,
        Some(a) => {
            let mut lines = Vec::with_capacity(a.lines.len());
            for (i, line) in a.lines.iter().enumerate() {
                let line = optional_text(line, &field(&format!("postal_address.lines[{i}]")))?;
                if !line.is_empty() {
                    lines.push(line);
                }
            }
            let country = a.country.trim().to_ascii_uppercase();
            if !country.is_empty()
                && (country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()))
            {
                return Err(crate::DomainError::invalid(
                    field("postal_address.country"),
                    "must be a two-letter ISO 3166-1 code such as \"JP\"",
                ));
            }
            let address = crate::pb::PostalAddress {
                lines,
                locality: optional_text(&a.locality, &field("postal_address.locality"))?,
                region: optional_text(&a.region, &field("postal_address.region"))?,
                postal_code: optional_text(&a.postal_code, &field("postal_address.postal_code"))?,
                country,
            };
            (address != crate::pb::PostalAddress::default()).then_some(address)
        }
    };
    Ok(crate::pb::ContactData {
        given_name: optional_text(&data.given_name, &field("given_name"))?,
        family_name: optional_text(&data.family_name, &field("family_name"))?,
        email,
        phone,
        postal_address,
        company: optional_text(&data.company, &field("company"))?,
    })
}

#[cfg(test)]
mod contact_data_tests {
    use super::*;
    use crate::pb;

    fn jp() -> Region {
        "JP".parse().expect("JP")
    }

    #[test]
    fn every_field_follows_the_input_rule() {
        let raw = pb::ContactData {
            given_name: " ﾀﾛｳ ".into(),
            family_name: "山田\u{3000}".into(),
            email: " Taro@Example.JP ".into(),
            phone: "０９０-１２３４-５６７８".into(),
            postal_address: Some(pb::PostalAddress {
                lines: vec!["１－２－３　丸の内".into(), "  ".into()],
                locality: "千代田区".into(),
                region: "東京都".into(),
                postal_code: "１００－０００５".into(),
                country: "jp".into(),
            }),
            company: "ＡＣＭＥ  株式会社".into(),
        };
        let n = normalize_contact(&raw, jp(), "contact").expect("valid");
        assert_eq!(n.given_name, "タロウ");
        assert_eq!(n.family_name, "山田");
        assert_eq!(n.email, "taro@example.jp");
        assert_eq!(n.phone, "+819012345678");
        assert_eq!(n.company, "ACME 株式会社");
        let a = n.postal_address.expect("address");
        assert_eq!(a.lines, ["1-2-3 丸の内"]);
        assert_eq!(
            (a.postal_code.as_str(), a.country.as_str()),
            ("100-0005", "JP")
        );
    }

    #[test]
    fn bad_values_name_their_field_and_blanks_mean_absent() {
        let bad_email = pb::ContactData {
            email: "taro@".into(),
            ..Default::default()
        };
        assert!(matches!(
            normalize_contact(&bad_email, jp(), "contact"),
            Err(crate::DomainError::InvalidArgument { field, .. }) if field == "contact.email"
        ));
        let bad_country = pb::ContactData {
            postal_address: Some(pb::PostalAddress {
                country: "Japan".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(matches!(
            normalize_contact(&bad_country, jp(), "c"),
            Err(crate::DomainError::InvalidArgument { field, .. }) if field == "c.postal_address.country"
        ));
        let blank = pb::ContactData {
            email: "   ".into(),
            postal_address: Some(pb::PostalAddress::default()),
            ..Default::default()
        };
        assert_eq!(
            normalize_contact(&blank, jp(), "c"),
            Ok(pb::ContactData::default())
        );
    }
}

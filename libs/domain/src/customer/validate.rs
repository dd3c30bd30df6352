//! Input checks of the customer's commands, each naming the request field it
//! is about, so `decide` reads as the rules and these as the limits.

use unicode_normalization::UnicodeNormalization;

use super::{AttributeDate, AttributeValue, ContactValue};
use crate::contact::{self, ContactError, Region};
use crate::error::DomainError;
use crate::pb;

/// Longest attribute key, in characters.
pub const MAX_ATTRIBUTE_KEY_CHARS: usize = 64;
/// Longest string attribute value, in characters.
pub const MAX_ATTRIBUTE_STRING_CHARS: usize = 1000;
/// Longest note, in characters (after NFKC and trimming).
pub const MAX_NOTE_CHARS: usize = 5000;
/// Longest `source` (registration, consents), in characters.
pub const MAX_SOURCE_CHARS: usize = 200;
/// Longest consent evidence, in characters.
pub const MAX_EVIDENCE_CHARS: usize = 1000;
/// Longest bounce reason, in characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// Longest note author, in bytes (as long as a command's actor).
pub const MAX_AUTHOR_BYTES: usize = 256;

/// Whether `key` is a valid attribute key: `^[a-z][a-z0-9_]{0,63}$`.
pub fn valid_attribute_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase())
        && key.len() <= MAX_ATTRIBUTE_KEY_CHARS
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub(super) fn attribute_key(key: &str) -> Result<(), DomainError> {
    if valid_attribute_key(key) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "key",
            format!("{key:?} must match ^[a-z][a-z0-9_]{{0,63}}$"),
        ))
    }
}

pub(super) fn attribute_value(value: &AttributeValue) -> Result<(), DomainError> {
    match value {
        AttributeValue::String(s) if s.chars().count() > MAX_ATTRIBUTE_STRING_CHARS => {
            Err(DomainError::invalid(
                "value.string_value",
                format!("is longer than {MAX_ATTRIBUTE_STRING_CHARS} characters"),
            ))
        }
        AttributeValue::Number(n) if !n.is_finite() => Err(DomainError::invalid(
            "value.number_value",
            "must be a finite number (not NaN or infinite)",
        )),
        AttributeValue::Date(d) if !valid_date(*d) => Err(DomainError::invalid(
            "value.date_value",
            format!(
                "{:04}-{:02}-{:02} is not a calendar date (year 1..=9999, month 1..=12, a day of that month)",
                d.year, d.month, d.day
            ),
        )),
        _ => Ok(()),
    }
}

fn valid_date(d: AttributeDate) -> bool {
    let leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
    let days = match d.month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=9999).contains(&d.year) && (1..=days).contains(&d.day)
}

/// A note: NFKC, trimmed; line breaks and tabs are kept (a note has
/// paragraphs), other control characters are refused.
pub(super) fn note_text(text: &str) -> Result<String, DomainError> {
    let nfkc: String = text.nfkc().collect();
    let text = nfkc.trim();
    if text.is_empty() {
        return Err(DomainError::invalid("text", "is required"));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(DomainError::invalid(
            "text",
            format!("is longer than {MAX_NOTE_CHARS} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(DomainError::invalid(
            "text",
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(text.to_owned())
}

pub(super) fn author(author: &str) -> Result<String, DomainError> {
    if author.len() > MAX_AUTHOR_BYTES {
        return Err(DomainError::invalid(
            "author",
            format!("is longer than {MAX_AUTHOR_BYTES} bytes"),
        ));
    }
    if author.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "author",
            "must not contain control characters",
        ));
    }
    Ok(author.to_owned())
}

/// A free-text field that may be empty: NFKC with whitespace collapsed (the
/// input rule for names), at most `max` characters, no control characters.
pub(super) fn optional_text(input: &str, field: &str, max: usize) -> Result<String, DomainError> {
    let text = match contact::normalize_text(input) {
        Ok(t) => t,
        Err(ContactError::Empty) => return Ok(String::new()),
        Err(e) => return Err(DomainError::invalid(field, e.to_string())),
    };
    if text.chars().count() > max {
        return Err(DomainError::invalid(
            field,
            format!("is longer than {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text)
}

/// A channel of a consent grant given as a number: known and not UNSPECIFIED.
pub(super) fn channel(value: i32, field: &str) -> Result<pb::ContactChannel, DomainError> {
    match pb::ContactChannel::try_from(value) {
        Ok(pb::ContactChannel::Unspecified) => Err(DomainError::invalid(field, "is required")),
        Ok(c) => Ok(c),
        Err(_) => Err(DomainError::invalid(
            field,
            format!("{value} is not a ContactChannel"),
        )),
    }
}

/// A purpose of a consent grant given as a number: known and not UNSPECIFIED.
pub(super) fn purpose(value: i32, field: &str) -> Result<pb::ConsentPurpose, DomainError> {
    match pb::ConsentPurpose::try_from(value) {
        Ok(pb::ConsentPurpose::Unspecified) => Err(DomainError::invalid(field, "is required")),
        Ok(p) => Ok(p),
        Err(_) => Err(DomainError::invalid(
            field,
            format!("{value} is not a ConsentPurpose"),
        )),
    }
}

/// The fields of a grant or revocation: channel and purpose set, source and
/// evidence within their limits (returned normalised).
pub(super) fn consent(
    channel: pb::ContactChannel,
    purpose: pb::ConsentPurpose,
    source: &str,
    evidence: &str,
) -> Result<(String, String), DomainError> {
    if channel == pb::ContactChannel::Unspecified {
        return Err(DomainError::invalid("channel", "is required"));
    }
    if purpose == pb::ConsentPurpose::Unspecified {
        return Err(DomainError::invalid("purpose", "is required"));
    }
    Ok((
        optional_text(source, "source", MAX_SOURCE_CHARS)?,
        optional_text(evidence, "evidence", MAX_EVIDENCE_CHARS)?,
    ))
}

/// The bounced e-mail address or phone number, normalised by `normalize`.
pub(super) fn bounced_address(
    value: Option<&ContactValue>,
    channel: &str,
    normalize: impl FnOnce(&str) -> Result<String, ContactError>,
) -> Result<String, DomainError> {
    let Some(ContactValue::Address(given)) = value else {
        return Err(DomainError::invalid(
            "address",
            format!("is required for channel {channel}"),
        ));
    };
    match normalize(given) {
        Ok(v) => Ok(v),
        Err(ContactError::Empty) => Err(DomainError::invalid(
            "address",
            format!("is required for channel {channel}"),
        )),
        Err(e) => Err(DomainError::invalid("address", e.to_string())),
    }
}

/// The bounced postal address, normalised as contact data is.
pub(super) fn bounced_postal(
    value: Option<&ContactValue>,
    region: Region,
) -> Result<pb::PostalAddress, DomainError> {
    let required = || DomainError::invalid("postal_address", "is required for channel POSTAL");
    let Some(ContactValue::Postal(given)) = value else {
        return Err(required());
    };
    let wrapped = pb::ContactData {
        postal_address: Some(given.clone()),
        ..Default::default()
    };
    // The input rule names fields under a prefix; the request has the
    // address at the top level, so the prefix is taken off again.
    const PREFIX: &str = "bounced";
    let normalised = contact::normalize_contact(&wrapped, region, PREFIX).map_err(|e| match e {
        DomainError::InvalidArgument { field, reason } => DomainError::InvalidArgument {
            field: field
                .strip_prefix(PREFIX)
                .and_then(|f| f.strip_prefix('.'))
                .unwrap_or(&field)
                .to_owned(),
            reason,
        },
        other => other,
    })?;
    normalised.postal_address.ok_or_else(required)
}

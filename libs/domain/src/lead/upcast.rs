//! `lead.captured` v1 → v2: the single `full_name` becomes the given and
//! family name of the contact data.
//!
//! v1 payloads stay in the log as written; this runs on every read, so it must
//! be a pure function of the bytes. The split is a heuristic by script, since
//! a v1 name carries nothing else to go by: names written in Han, Hiragana or
//! Katakana put the family name first (山田 太郎), others last (Mary Ann Smith).

use crate::contact::normalize_text;
use crate::event::DecodeError;
use crate::pb;
use prost::Message as _;

/// Upcasts a `lead.captured` v1 payload (`LeadCapturedV1`) to v2
/// (`LeadCaptured`). Fields shared by both versions are carried over as they
/// are; the name goes into `contact` unless the contact already names the
/// person.
pub fn lead_captured_v1_to_v2(payload: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let v1 = pb::LeadCapturedV1::decode(payload).map_err(|e| DecodeError::Malformed {
        event_type: "lead.captured".to_owned(),
        schema_version: 1,
        reason: e.to_string(),
    })?;
    let mut contact = v1.contact.unwrap_or_default();
    if contact.given_name.is_empty() && contact.family_name.is_empty() {
        let (given_name, family_name) = split_full_name(&v1.full_name);
        contact.given_name = given_name;
        contact.family_name = family_name;
    }
    let v2 = pb::LeadCaptured {
        lead_id: v1.lead_id,
        source: v1.source,
        channel: v1.channel,
        campaign_id: v1.campaign_id,
        contact: Some(contact),
        consents: v1.consents,
    };
    Ok(v2.encode_to_vec())
}

/// Splits a full name into `(given name, family name)`, NFKC-normalised.
///
/// A name with any Han, Hiragana or Katakana character is read family name
/// first: the first word is the family name, the rest the given name. Any
/// other name is read given name first: the last word is the family name, the
/// rest the given name. A single word is a given name only; a blank name is
/// two empty strings.
pub fn split_full_name(full_name: &str) -> (String, String) {
    let Ok(name) = normalize_text(full_name) else {
        return (String::new(), String::new());
    };
    let words: Vec<&str> = name.split(' ').collect();
    match words.as_slice() {
        [] => (String::new(), String::new()),
        [single] => ((*single).to_owned(), String::new()),
        [first, rest @ ..] if name.chars().any(is_cjk) => (rest.join(" "), (*first).to_owned()),
        [rest @ .., last] => (rest.join(" "), (*last).to_owned()),
    }
}

/// Han ideographs (with the iteration and closing marks 々 〆 〇), Hiragana
/// and Katakana, including the half-width forms NFKC has already folded.
fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3005}'..='\u{3007}'
        | '\u{3040}'..='\u{309F}'
        | '\u{30A0}'..='\u{30FF}'
        | '\u{31F0}'..='\u{31FF}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FF66}'..='\u{FF9F}'
        | '\u{20000}'..='\u{323AF}')
}

//! Syntax of stream names and event type names.
//!
//! Names are keys in the on-disk indexes and subjects on other backends, so the
//! log accepts only a small, safe alphabet: no separators, no whitespace, no
//! control characters.

/// Longest accepted stream name, in bytes.
pub const MAX_STREAM_NAME_LEN: usize = 200;
/// Longest accepted event type name, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;

/// The category of a stream: the part before the first `-`.
pub fn category_of(stream: &str) -> &str {
    stream.split_once('-').map_or(stream, |(c, _)| c)
}

/// The id of `stream` when it is `{category}-{uuid}` (the aggregate streams
/// of the services), else `None`.
pub fn stream_uuid(stream: &str, category: &str) -> Option<uuid::Uuid> {
    stream
        .strip_prefix(category)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|id| uuid::Uuid::try_parse(id).ok())
}

/// Checks a category: `[a-z][a-z0-9_]*`, at most 64 bytes.
pub fn validate_category(category: &str) -> Result<(), String> {
    let mut chars = category.chars();
    match chars.next() {
        None => return Err("category is empty".into()),
        Some(c) if !c.is_ascii_lowercase() => {
            return Err(format!(
                "category {category:?} must start with a lower-case letter"
            ));
        }
        Some(_) => {}
    }
    if category.len() > 64 {
        return Err(format!("category {category:?} is longer than 64 bytes"));
    }
    if let Some(bad) = chars.find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "category {category:?} has {bad:?}; allowed are a-z, 0-9 and _"
        ));
    }
    Ok(())
}

/// Checks a stream name: `{category}-{id}` where the category is
/// `[a-z][a-z0-9_]*` and the id is `[A-Za-z0-9._:-]+`, at most
/// [`MAX_STREAM_NAME_LEN`] bytes in all.
pub fn validate_stream_name(stream: &str) -> Result<(), String> {
    if stream.is_empty() {
        return Err("stream name is empty".into());
    }
    if stream.len() > MAX_STREAM_NAME_LEN {
        return Err(format!(
            "stream name is {} bytes, longer than {MAX_STREAM_NAME_LEN}",
            stream.len()
        ));
    }
    let Some((category, id)) = stream.split_once('-') else {
        return Err(format!(
            "stream name {stream:?} must be {{category}}-{{id}}, e.g. \"lead-0190a1b2-…\""
        ));
    };
    validate_category(category)?;
    if id.is_empty() {
        return Err(format!(
            "stream name {stream:?} has an empty id after the '-'"
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "stream id in {stream:?} has {bad:?}; allowed are A-Z, a-z, 0-9 and . _ : -"
        ));
    }
    Ok(())
}

/// Checks an event type: dot-separated lower-case words
/// (`[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*`), at most [`MAX_EVENT_TYPE_LEN`] bytes.
pub fn validate_event_type(event_type: &str) -> Result<(), String> {
    if event_type.is_empty() {
        return Err("event type is empty".into());
    }
    if event_type.len() > MAX_EVENT_TYPE_LEN {
        return Err(format!(
            "event type is longer than {MAX_EVENT_TYPE_LEN} bytes"
        ));
    }
    for word in event_type.split('.') {
        let ok = word.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!(
                "event type {event_type:?} must be dot-separated lower-case words such as \"lead.captured\""
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_category_dash_id_streams() {
        for ok in [
            "lead-0190a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
            "customer-1",
            "loyalty_points-A.b:c_d-e",
        ] {
            assert_eq!(validate_stream_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_malformed_streams_with_a_reason() {
        for bad in [
            "",
            "lead",
            "lead-",
            "-x",
            "Lead-1",
            "1lead-1",
            "le ad-1",
            "lead-a b",
            "lead-a/b",
            "lead-\u{0}",
            "lead-ü",
        ] {
            assert!(validate_stream_name(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("lead-{}", "a".repeat(MAX_STREAM_NAME_LEN));
        assert!(validate_stream_name(&long).unwrap_err().contains("longer"));
    }

    #[test]
    fn the_uuid_of_a_stream_of_a_category() {
        let id = uuid::Uuid::from_u128(0x0190_f5a4_0c3e_7a51_9b7e_4b1c_2d3e_4f50);
        assert_eq!(stream_uuid(&format!("ticket-{id}"), "ticket"), Some(id));
        assert_eq!(stream_uuid(&format!("ticket-{id}"), "tick"), None);
        assert_eq!(stream_uuid(&format!("lead-{id}"), "ticket"), None);
        assert_eq!(stream_uuid("ticket-not-a-uuid", "ticket"), None);
    }

    #[test]
    fn category_is_the_part_before_the_first_dash() {
        assert_eq!(category_of("lead-0190-aa"), "lead");
        assert_eq!(category_of("nodash"), "nodash");
    }

    #[test]
    fn event_types_are_dotted_lower_case_words() {
        for ok in ["lead.captured", "ticket.sla_breached", "x", "a1.b2.c3"] {
            assert_eq!(validate_event_type(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "Lead.captured",
            "lead..captured",
            ".x",
            "x.",
            "lead captured",
            "lead-captured",
            "1x",
        ] {
            assert!(validate_event_type(bad).is_err(), "{bad:?} accepted");
        }
    }
}

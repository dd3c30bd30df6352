//! Request fields every service reads the same way.

use kizuna_domain::DomainError;
use uuid::Uuid;

/// A required id field: a canonical (lower-case, hyphenated) UUID, not nil.
/// The API promises ids in that one form, so that an id a caller stores
/// compares equal to the id in every reply and event.
pub fn required_id(value: &str, field: &str) -> Result<Uuid, DomainError> {
    optional_id(value, field)?.ok_or_else(|| DomainError::invalid(field, "is required (a UUID)"))
}

/// An id field that may be left empty (`None`); otherwise as [`required_id`].
pub fn optional_id(value: &str, field: &str) -> Result<Option<Uuid>, DomainError> {
    if value.is_empty() {
        return Ok(None);
    }
    let id = Uuid::try_parse(value)
        .map_err(|e| DomainError::invalid(field, format!("{value:?} is not a UUID: {e}")))?;
    if id.is_nil() {
        return Err(DomainError::invalid(field, "the nil UUID is not allowed"));
    }
    if id.hyphenated().to_string() != value {
        return Err(DomainError::invalid(
            field,
            format!("{value:?} must be written as a lower-case hyphenated UUID ({id})"),
        ));
    }
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of<T: std::fmt::Debug>(r: Result<T, DomainError>) -> String {
        match r {
            Err(DomainError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_canonical_uuids_and_empty_means_absent() {
        let id = Uuid::now_v7();
        assert_eq!(required_id(&id.to_string(), "x"), Ok(id));
        assert_eq!(optional_id("", "x"), Ok(None));
        for bad in [
            String::new(),
            "nope".into(),
            Uuid::nil().to_string(),
            id.to_string().to_uppercase(),
            id.simple().to_string(),
        ] {
            assert_eq!(field_of(required_id(&bad, "lead_id")), "lead_id", "{bad:?}");
        }
    }
}

//! The lead: a person we may sell to, from capture to conversion.

/// Registers the lead's upcasters (see [`crate::upcasters`]).
pub fn register_upcasters(_upcasters: &mut crate::Upcasters) {}

//! The event catalog as triggers see it: which event types exist, what a
//! condition's path names, and what a payload holds at a path.
//!
//! Kept out of the domain, which does not read descriptors: the domain gets
//! the answers ([`FieldSpec`], [`ObservedField`]) and decides with them.

use kizuna_domain::trigger::{FieldKind, FieldSpec, Observed, ObservedField};
use kizuna_proto::catalog;
use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, ReflectMessage as _, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every event type of the catalog with its current version and message.
fn by_type() -> &'static HashMap<String, (u32, MessageDescriptor)> {
    static BY_TYPE: OnceLock<HashMap<String, (u32, MessageDescriptor)>> = OnceLock::new();
    BY_TYPE.get_or_init(|| {
        catalog::event_catalog()
            .into_iter()
            .filter_map(|e| {
                let m = catalog::descriptor_pool().get_message_by_name(&e.message)?;
                Some((e.event_type, (e.schema_version, m)))
            })
            .collect()
    })
}

/// The current schema version and payload message of `event_type`.
pub(crate) fn event_schema(event_type: &str) -> Option<&'static (u32, MessageDescriptor)> {
    by_type().get(event_type)
}

/// What the dotted `path` names in `message`, or why nothing.
pub(crate) fn resolve(message: &MessageDescriptor, path: &str) -> Result<FieldSpec, String> {
    let mut current = message.clone();
    let segments: Vec<&str> = path.split('.').collect();
    for (i, name) in segments.iter().enumerate() {
        let field = current
            .get_field_by_name(name)
            .ok_or_else(|| format!("{} has no field {name:?}", current.full_name()))?;
        let repeated = field.is_list() || field.is_map();
        if i + 1 == segments.len() {
            let kind = match field.kind() {
                Kind::Int32
                | Kind::Int64
                | Kind::Uint32
                | Kind::Uint64
                | Kind::Sint32
                | Kind::Sint64
                | Kind::Fixed32
                | Kind::Fixed64
                | Kind::Sfixed32
                | Kind::Sfixed64 => FieldKind::Integer,
                Kind::Bool => FieldKind::Bool,
                Kind::String => FieldKind::String,
                Kind::Enum(e) => FieldKind::Enum(e.values().map(|v| v.name().to_owned()).collect()),
                Kind::Double | Kind::Float | Kind::Bytes | Kind::Message(_) => FieldKind::Other,
            };
            return Ok(FieldSpec {
                kind,
                repeated,
                pii: catalog::is_pii(&field),
            });
        }
        match field.kind() {
            Kind::Message(m) if !repeated => current = m,
            _ => {
                return Err(format!(
                    "{name:?} is a {} field: a path can only go through single message fields",
                    if repeated { "repeated" } else { "scalar" }
                ));
            }
        }
    }
    Err("is empty".into())
}

fn observed_value(kind: &Kind, value: &Value) -> Observed {
    match value {
        Value::I32(v) => Observed::Integer((*v).into()),
        Value::I64(v) => Observed::Integer((*v).into()),
        Value::U32(v) => Observed::Integer((*v).into()),
        Value::U64(v) => Observed::Integer((*v).into()),
        Value::Bool(b) => Observed::Bool(*b),
        Value::String(s) => Observed::String(s.clone()),
        Value::EnumNumber(n) => Observed::Enum(match kind {
            Kind::Enum(e) => e
                .get_value(*n)
                .map_or_else(|| n.to_string(), |v| v.name().to_owned()),
            _ => n.to_string(),
        }),
        _ => Observed::Other,
    }
}

/// The field at `path` of `message`; `None` when the path does not exist in
/// it (a schema that changed since the trigger was defined). A message on the
/// way that is not set reads as empty, so its fields read as defaults.
pub(crate) fn observe(message: &DynamicMessage, path: &str) -> Option<ObservedField> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut current = message.clone();
    for (i, name) in segments.iter().enumerate() {
        let field = current.descriptor().get_field_by_name(name)?;
        if i + 1 == segments.len() {
            let set = current.has_field(&field);
            let value = current.get_field(&field);
            return Some(ObservedField {
                set,
                value: observed_value(&field.kind(), &value),
            });
        }
        let next = match current.get_field(&field).as_ref() {
            Value::Message(m) => m.clone(),
            _ => return None,
        };
        current = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase() -> &'static MessageDescriptor {
        &event_schema("loyalty.purchase_recorded")
            .expect("in the catalog")
            .1
    }

    #[test]
    fn paths_resolve_to_kinds_and_bad_paths_say_why() {
        assert_eq!(
            resolve(purchase(), "amount_minor"),
            Ok(FieldSpec::plain(FieldKind::Integer))
        );
        assert_eq!(
            resolve(purchase(), "currency"),
            Ok(FieldSpec::plain(FieldKind::String))
        );
        assert!(resolve(purchase(), "line_items").expect("exists").repeated);
        assert!(resolve(purchase(), "line_items.sku").is_err());
        assert!(resolve(purchase(), "amount_minor.x").is_err());
        assert!(resolve(purchase(), "nope").is_err());
        let registered = &event_schema("customer.registered")
            .expect("in the catalog")
            .1;
        let email = resolve(registered, "contact.email").expect("a nested path");
        assert!(email.pii);
    }
}

//! The event catalog, read from the descriptor set itself.
//!
//! Event messages declare their type name and schema version as options
//! (`kizuna.v1.event_type`, `kizuna.v1.schema_version`) and mark personal
//! data with `kizuna.v1.pii`. Reading those from the compiled descriptors,
//! rather than keeping a list by hand, means docs/events.md, the domain's
//! catalog test and (later) encryption of personal data all follow the
//! `.proto` files and cannot drift from them.

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Value};
use std::sync::OnceLock;

/// Every kizuna message, service and option, with comments.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // The set is produced by this crate's own build script; a failure here
        // is a build defect, not an input error.
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("the build script writes a valid descriptor set")
    })
}

/// One event type as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSchema {
    /// Stable dotted type name, e.g. `lead.captured`.
    pub event_type: String,
    /// Current schema version.
    pub schema_version: u32,
    /// Full protobuf name of the payload message, e.g. `kizuna.v1.LeadCaptured`.
    pub message: String,
    /// The `.proto` file that declares it.
    pub file: String,
    /// The message's leading comment.
    pub doc: String,
    /// Its fields, in declaration order.
    pub fields: Vec<FieldSchema>,
}

/// One field of a message in the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSchema {
    /// Field name.
    pub name: String,
    /// Field number.
    pub number: u32,
    /// Type as written in the `.proto` (`string`, `kizuna.v1.ContactData`, …),
    /// with `repeated ` or `optional ` in front where it applies.
    pub type_name: String,
    /// Whether the field is marked `(kizuna.v1.pii) = true`.
    pub pii: bool,
    /// The field's leading comment.
    pub doc: String,
}

/// The leading comment of the element at `path` in `message`'s file.
fn comment(file: &prost_types::FileDescriptorProto, path: &[i32]) -> String {
    file.source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.leading_comments.as_deref())
        .map(|c| {
            c.lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

fn extension_value(options: &prost_reflect::DynamicMessage, name: &str) -> Option<Value> {
    let ext = descriptor_pool().get_extension_by_name(name)?;
    options
        .has_extension(&ext)
        .then(|| options.get_extension(&ext).into_owned())
}

/// Whether `field` is marked as personal data.
pub fn is_pii(field: &FieldDescriptor) -> bool {
    matches!(
        extension_value(&field.options(), "kizuna.v1.pii"),
        Some(Value::Bool(true))
    )
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
    }
}

/// The fields of `message` as the catalog lists them.
pub fn fields_of(message: &MessageDescriptor) -> Vec<FieldSchema> {
    let file = message.parent_file_descriptor_proto();
    message
        .fields()
        .map(|f| {
            let base = kind_name(&f.kind());
            let type_name = if f.is_map() {
                format!("map {base}")
            } else if f.is_list() {
                format!("repeated {base}")
            } else if f.field_descriptor_proto().proto3_optional() {
                format!("optional {base}")
            } else {
                base
            };
            FieldSchema {
                name: f.name().to_owned(),
                number: f.number(),
                type_name,
                pii: is_pii(&f),
                doc: comment(file, f.path()),
            }
        })
        .collect()
}

/// The leading comment of `message`.
pub fn doc_of(message: &MessageDescriptor) -> String {
    comment(message.parent_file_descriptor_proto(), message.path())
}

/// Every event message (those with a `kizuna.v1.event_type` option), sorted
/// by type name.
pub fn event_catalog() -> Vec<EventSchema> {
    let mut events: Vec<EventSchema> = descriptor_pool()
        .all_messages()
        .filter_map(|m| {
            let options = m.options();
            let Some(Value::String(event_type)) = extension_value(&options, "kizuna.v1.event_type")
            else {
                return None;
            };
            let schema_version = match extension_value(&options, "kizuna.v1.schema_version") {
                Some(Value::U32(v)) => v,
                _ => 0,
            };
            Some(EventSchema {
                event_type,
                schema_version,
                message: m.full_name().to_owned(),
                file: m.parent_file().name().to_owned(),
                doc: doc_of(&m),
                fields: fields_of(&m),
            })
        })
        .collect();
    events.sort_by(|a, b| a.event_type.cmp(&b.event_type));
    events
}

/// The payload message of `event_type` at `schema_version`, if that is the
/// catalog's current version of it (older versions are only readable through
/// the domain's upcasters).
pub fn event_message(event_type: &str, schema_version: u32) -> Option<MessageDescriptor> {
    static BY_TYPE: OnceLock<std::collections::HashMap<String, (u32, String)>> = OnceLock::new();
    let by_type = BY_TYPE.get_or_init(|| {
        event_catalog()
            .into_iter()
            .map(|e| (e.event_type, (e.schema_version, e.message)))
            .collect()
    });
    let (version, message) = by_type.get(event_type)?;
    (*version == schema_version.max(1))
        .then(|| descriptor_pool().get_message_by_name(message))
        .flatten()
}

/// docs/events.md, generated from the catalog: every event type with its
/// fields, then every message and enum those events refer to. A test keeps the
/// checked-in file equal to this (`KIZUNA_BLESS=1` rewrites it).
pub fn events_markdown() -> String {
    use std::collections::BTreeSet;
    use std::fmt::Write as _;

    let pool = descriptor_pool();
    let events = event_catalog();
    let mut out = String::new();
    out.push_str(EVENTS_PREAMBLE);

    // Group by stream category: the part of the type before the first dot.
    let mut category = String::new();
    let mut referenced: BTreeSet<String> = BTreeSet::new();
    for e in &events {
        let cat = e.event_type.split('.').next().unwrap_or_default();
        if cat != category {
            category = cat.to_owned();
            let _ = write!(out, "\n## {category}\n");
        }
        let _ = write!(
            out,
            "\n### `{}` (v{})\n\n{}\n\nPayload `{}` ({}).\n\n",
            e.event_type, e.schema_version, e.doc, e.message, e.file
        );
        field_table(&mut out, &e.fields);
        if let Some(m) = pool.get_message_by_name(&e.message) {
            collect_references(&m, &mut referenced);
        }
    }

    if !referenced.is_empty() {
        out.push_str("\n## Shared messages and enums\n");
        for name in &referenced {
            if let Some(m) = pool.get_message_by_name(name) {
                let _ = write!(out, "\n### `{name}`\n\n{}\n\n", doc_of(&m));
                field_table(&mut out, &fields_of(&m));
            } else if let Some(en) = pool.get_enum_by_name(name) {
                let file = en.parent_file_descriptor_proto();
                let _ = write!(
                    out,
                    "\n### `{name}` (enum)\n\n{}\n\n| value | number | description |\n|---|---|---|\n",
                    comment(file, en.path())
                );
                for v in en.values() {
                    let _ = writeln!(
                        out,
                        "| `{}` | {} | {} |",
                        v.name(),
                        v.number(),
                        comment(file, v.path()).replace('|', "\\|")
                    );
                }
            }
        }
    }
    out
}

const EVENTS_PREAMBLE: &str = "# Event catalog

<!-- Generated from proto/kizuna/v1 by `kizuna_proto::catalog::events_markdown`.
     Do not edit by hand: change the .proto comments, then run
     `KIZUNA_BLESS=1 cargo test -p kizuna-proto --test events_doc`. -->

Every event in the log has a stable dotted type name (past tense, never
renamed) and a schema version. The payload is the protobuf message named
below. An older schema version is read through an upcaster into the current
shape, so history is never rewritten (see `kizuna_domain::upcasters`).

Fields marked **pii** hold personal data; they are the fields a later release
encrypts with a per-person key so that erasing a person deletes the key.

Contact data follows one input rule wherever it enters: e-mail trimmed and
lower-cased, phone numbers in E.164 (numbers without a country code are read
in the server's default region, `--default-region`), names and addresses
NFKC-normalised with whitespace collapsed, so full-width and half-width forms
are one value. Duplicates are found on these normalised values.

Streams are `{category}-{id}`, the id a UUID unless said otherwise:
`lead-…`, `customer-…`, `ticket-…`, `survey-…`, `slapolicy-…`, `loyalty-…`
(one per customer), `earningrules-…`, `reward-…`, `coupon-{code}` (the
coupon code, e.g. `coupon-9F3A-1B2C-3D4E-5F60`), `campaign-…`, `outreach-…`
(one per customer: where campaign sends to that customer are decided),
`trigger-…` and `triggercheckpoint-{processor}` (where the trigger processor
has read to). Every event carries the id of the aggregate it belongs to, and
events about a customer are tagged with the customer id (the per-customer
index of the log).
";

fn field_table(out: &mut String, fields: &[FieldSchema]) {
    use std::fmt::Write as _;
    if fields.is_empty() {
        out.push_str("No fields.\n");
        return;
    }
    out.push_str("| # | field | type | pii | description |\n|---|---|---|---|---|\n");
    for f in fields {
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {} | {} |",
            f.number,
            f.name,
            f.type_name,
            if f.pii { "**pii**" } else { "" },
            f.doc.replace('|', "\\|")
        );
    }
}

fn collect_references(message: &MessageDescriptor, seen: &mut std::collections::BTreeSet<String>) {
    for f in message.fields() {
        match f.kind() {
            Kind::Message(m) => {
                let name = m.full_name().to_owned();
                if name.starts_with("kizuna.") && seen.insert(name) {
                    collect_references(&m, seen);
                }
            }
            Kind::Enum(e) if e.full_name().starts_with("kizuna.") => {
                seen.insert(e.full_name().to_owned());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_reads_type_version_pii_and_comments_from_the_descriptors() {
        let events = event_catalog();
        let registered = events
            .iter()
            .find(|e| e.event_type == "customer.registered")
            .expect("customer.registered is in the catalog");
        assert_eq!(registered.schema_version, 1);
        assert_eq!(registered.message, "kizuna.v1.CustomerRegistered");
        assert!(
            registered.doc.contains("registered"),
            "{:?}",
            registered.doc
        );
        let contact = descriptor_pool()
            .get_message_by_name("kizuna.v1.ContactData")
            .expect("ContactData");
        let fields = fields_of(&contact);
        let email = fields.iter().find(|f| f.name == "email").expect("email");
        assert!(email.pii);
        assert!(!email.doc.is_empty());
        let address = fields
            .iter()
            .find(|f| f.name == "postal_address")
            .expect("postal_address");
        assert!(!address.pii, "a message field is not itself marked");
    }

    #[test]
    fn every_event_has_a_dotted_type_and_a_version() {
        for e in event_catalog() {
            assert!(
                e.schema_version >= 1,
                "{} has no schema_version",
                e.event_type
            );
            assert!(
                e.event_type.contains('.')
                    && e.event_type
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'),
                "{} is not a dotted lower-case name",
                e.event_type
            );
            assert!(!e.doc.is_empty(), "{} has no comment", e.message);
        }
    }
}

//! Field conditions on an event's payload: checked when a trigger is defined,
//! evaluated by the trigger processor.
//!
//! The domain does not read protobuf descriptors: the service looks each path
//! up in the event catalog and hands the result in as a [`FieldSpec`] (or why
//! the path does not exist), and the processor hands in what it read from the
//! payload as an [`Observed`] value. What may be compared with what, and how,
//! is decided here, where it can be tested without a catalog.

use crate::error::DomainError;
use crate::pb;
use std::cmp::Ordering;

/// Longest string value of a condition, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;

/// What kind of value a payload field holds, for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// Any integer type (int32, int64, uint32, uint64, sint*, fixed*).
    Integer,
    /// A boolean.
    Bool,
    /// A string.
    String,
    /// An enum with these value names.
    Enum(Vec<String>),
    /// Anything else (a message, bytes, a float): only EXISTS.
    Other,
}

/// What the catalog says about the field a condition's path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// The value kind (of the elements, for a repeated field).
    pub kind: FieldKind,
    /// Whether the field is repeated (or a map): only EXISTS.
    pub repeated: bool,
    /// Whether it holds personal data: only EXISTS, so no personal data is
    /// copied into a trigger's definition.
    pub pii: bool,
}

impl FieldSpec {
    /// A plain (not repeated, not pii) field of `kind`.
    pub fn plain(kind: FieldKind) -> Self {
        Self {
            kind,
            repeated: false,
            pii: false,
        }
    }
}

/// A condition as requested, with the catalog's answer for its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldConditionInput {
    /// Dotted path in the event message.
    pub path: String,
    /// The comparison.
    pub op: pb::TriggerConditionOp,
    /// The value, as text.
    pub value: String,
    /// The field the path names, or why there is none (unknown name, a path
    /// through a repeated field or a scalar).
    pub field: Result<FieldSpec, String>,
}

fn is_ordering(op: pb::TriggerConditionOp) -> bool {
    use pb::TriggerConditionOp::{GreaterOrEqual, GreaterThan, LessOrEqual, LessThan};
    matches!(op, GreaterThan | GreaterOrEqual | LessThan | LessOrEqual)
}

/// Checks one condition (named `field` in errors, e.g.
/// `on_event.conditions[0]`) and returns it as recorded, its value in
/// canonical form (integers without sign or leading zeros noise).
pub fn check_condition(
    field: &str,
    input: &FieldConditionInput,
) -> Result<pb::TriggerFieldCondition, DomainError> {
    use pb::TriggerConditionOp::{Exists, Unspecified};
    let path_field = format!("{field}.path");
    if input.path.is_empty() {
        return Err(DomainError::invalid(path_field, "is required"));
    }
    let spec = input
        .field
        .as_ref()
        .map_err(|why| DomainError::invalid(&path_field, why.clone()))?;
    let op_field = format!("{field}.op");
    let value_field = format!("{field}.value");
    if input.op == Unspecified {
        return Err(DomainError::invalid(op_field, "is required"));
    }
    let recorded = |value: String| pb::TriggerFieldCondition {
        path: input.path.clone(),
        op: input.op as i32,
        value,
    };
    if input.op == Exists {
        if !input.value.is_empty() {
            return Err(DomainError::invalid(
                value_field,
                "must be empty for EXISTS",
            ));
        }
        return Ok(recorded(String::new()));
    }
    if spec.repeated {
        return Err(DomainError::invalid(
            op_field,
            format!("{} is a repeated field: only EXISTS applies", input.path),
        ));
    }
    if spec.pii {
        return Err(DomainError::invalid(
            op_field,
            format!(
                "{} holds personal data: only EXISTS applies, so no personal data is stored in a trigger",
                input.path
            ),
        ));
    }
    let value = match &spec.kind {
        FieldKind::Integer => input
            .value
            .parse::<i128>()
            .ok()
            .filter(|v| (i128::from(i64::MIN)..=i128::from(u64::MAX)).contains(v))
            .map(|v| v.to_string())
            .ok_or_else(|| {
                DomainError::invalid(&value_field, format!("{:?} is not an integer", input.value))
            })?,
        FieldKind::String => {
            if input.value.len() > MAX_VALUE_BYTES {
                return Err(DomainError::invalid(
                    value_field,
                    format!("is over {MAX_VALUE_BYTES} bytes"),
                ));
            }
            if input.value.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    value_field,
                    "must not contain control characters",
                ));
            }
            input.value.clone()
        }
        FieldKind::Bool | FieldKind::Enum(_) if is_ordering(input.op) => {
            return Err(DomainError::invalid(
                op_field,
                format!(
                    "{} is a {} field: only EQUALS, NOT_EQUALS and EXISTS apply",
                    input.path,
                    if spec.kind == FieldKind::Bool {
                        "boolean"
                    } else {
                        "enum"
                    }
                ),
            ));
        }
        FieldKind::Bool => match input.value.as_str() {
            "true" | "false" => input.value.clone(),
            other => {
                return Err(DomainError::invalid(
                    value_field,
                    format!("{other:?} is not true or false"),
                ));
            }
        },
        FieldKind::Enum(names) => {
            if !names.contains(&input.value) {
                return Err(DomainError::invalid(
                    value_field,
                    format!("{:?} is not one of {}", input.value, names.join(", ")),
                ));
            }
            input.value.clone()
        }
        FieldKind::Other => {
            return Err(DomainError::invalid(
                op_field,
                format!("{} cannot be compared: only EXISTS applies", input.path),
            ));
        }
    };
    Ok(recorded(value))
}

/// A payload field as the processor read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// An integer field's value (its default 0 when not set).
    Integer(i128),
    /// A boolean field's value.
    Bool(bool),
    /// A string field's value.
    String(String),
    /// An enum field's value name (its number as text when the name is unknown).
    Enum(String),
    /// Anything else: only whether it is set.
    Other,
}

/// A payload field: whether it is set (see EXISTS) and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedField {
    /// Present message, non-empty list, scalar not at its default.
    pub set: bool,
    /// The value (the default when not set).
    pub value: Observed,
}

/// Whether `condition` (as recorded by [`check_condition`]) holds for `field`.
/// A value of another kind than the condition was checked for (a changed
/// schema) never holds, except for EXISTS.
pub fn holds(condition: &pb::TriggerFieldCondition, field: &ObservedField) -> bool {
    use pb::TriggerConditionOp as Op;
    let op = Op::try_from(condition.op).unwrap_or(Op::Unspecified);
    if op == Op::Exists {
        return field.set;
    }
    let ordering = match &field.value {
        Observed::Integer(v) => match condition.value.parse::<i128>() {
            Ok(wanted) => v.cmp(&wanted),
            Err(_) => return false,
        },
        Observed::String(s) => s.as_bytes().cmp(condition.value.as_bytes()),
        Observed::Bool(b) => match condition.value.as_str() {
            "true" => b.cmp(&true),
            "false" => b.cmp(&false),
            _ => return false,
        },
        Observed::Enum(name) => {
            if name == &condition.value {
                Ordering::Equal
            } else {
                // Enums have no order: only (in)equality is meaningful.
                return op == Op::NotEquals;
            }
        }
        Observed::Other => return false,
    };
    let unordered = matches!(field.value, Observed::Bool(_) | Observed::Enum(_));
    match op {
        Op::Equals => ordering == Ordering::Equal,
        Op::NotEquals => ordering != Ordering::Equal,
        _ if unordered => false,
        Op::GreaterThan => ordering == Ordering::Greater,
        Op::GreaterOrEqual => ordering != Ordering::Less,
        Op::LessThan => ordering == Ordering::Less,
        Op::LessOrEqual => ordering != Ordering::Greater,
        Op::Unspecified | Op::Exists => false,
    }
}

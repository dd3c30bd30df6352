//! Requests to domain commands, and state to replies.
//!
//! Only the request's shape is checked here (ids are UUIDs, enum numbers are
//! known, a oneof is set); the rules and limits on values live in the
//! decider, which also normalises contact data, so the service cannot record
//! anything the domain would not.

use std::collections::BTreeSet;

use kizuna_domain::DomainError;
use kizuna_domain::contact::Region;
use kizuna_domain::customer::{
    AttributeValue, ContactField, ContactValue, CustomerCommand, CustomerState,
};
use kizuna_proto::v1 as pb;
use uuid::Uuid;

pub use kizuna_command::fields::{optional_id, required_id};

fn channel(value: i32, field: &str) -> Result<pb::ContactChannel, DomainError> {
    pb::ContactChannel::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not a ContactChannel")))
}

fn purpose(value: i32, field: &str) -> Result<pb::ConsentPurpose, DomainError> {
    pb::ConsentPurpose::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not a ConsentPurpose")))
}

fn bounce_kind(value: i32, field: &str) -> Result<pb::BounceKind, DomainError> {
    pb::BounceKind::try_from(value)
        .map_err(|_| DomainError::invalid(field, format!("{value} is not a BounceKind")))
}

/// RegisterCustomer.
pub fn register(
    req: &pb::RegisterCustomerRequest,
    region: Region,
) -> Result<CustomerCommand, DomainError> {
    Ok(CustomerCommand::Register {
        customer_id: optional_id(&req.customer_id, "customer_id")?,
        contact: req.contact.clone().unwrap_or_default(),
        consents: req.consents.clone(),
        source: req.source.clone(),
        region,
    })
}

/// UpdateCustomerContact.
pub fn update_contact(
    req: &pb::UpdateCustomerContactRequest,
    region: Region,
) -> Result<CustomerCommand, DomainError> {
    let customer_id = required_id(&req.customer_id, "customer_id")?;
    let fields = match &req.update_mask {
        Some(mask) if !mask.paths.is_empty() => {
            let mut fields = BTreeSet::new();
            for (i, path) in mask.paths.iter().enumerate() {
                let field = ContactField::from_path(path).ok_or_else(|| {
                    DomainError::invalid(
                        format!("update_mask.paths[{i}]"),
                        format!(
                            "{path:?} is not a contact field; expected one of {}",
                            ContactField::ALL.map(ContactField::path).join(", ")
                        ),
                    )
                })?;
                fields.insert(field);
            }
            Some(fields)
        }
        _ => None,
    };
    Ok(CustomerCommand::UpdateContact {
        customer_id,
        contact: req.contact.clone().unwrap_or_default(),
        fields,
        region,
    })
}

/// RecordContactBounce.
pub fn record_bounce(
    req: &pb::RecordContactBounceRequest,
    region: Region,
) -> Result<CustomerCommand, DomainError> {
    use pb::record_contact_bounce_request::Bounced;
    Ok(CustomerCommand::RecordBounce {
        customer_id: required_id(&req.customer_id, "customer_id")?,
        channel: channel(req.channel, "channel")?,
        value: req.bounced.as_ref().map(|b| match b {
            Bounced::Address(a) => ContactValue::Address(a.clone()),
            Bounced::PostalAddress(p) => ContactValue::Postal(p.clone()),
        }),
        kind: bounce_kind(req.kind, "kind")?,
        reason: req.reason.clone(),
        region,
    })
}

/// SetCustomerAttribute.
pub fn set_attribute(
    req: &pb::SetCustomerAttributeRequest,
) -> Result<CustomerCommand, DomainError> {
    let customer_id = required_id(&req.customer_id, "customer_id")?;
    let value = req
        .value
        .as_ref()
        .and_then(AttributeValue::from_proto)
        .ok_or_else(|| DomainError::invalid("value", "is required: set exactly one kind"))?;
    Ok(CustomerCommand::SetAttribute {
        customer_id,
        key: req.key.clone(),
        value,
    })
}

/// RemoveCustomerAttribute.
pub fn remove_attribute(
    req: &pb::RemoveCustomerAttributeRequest,
) -> Result<CustomerCommand, DomainError> {
    Ok(CustomerCommand::RemoveAttribute {
        customer_id: required_id(&req.customer_id, "customer_id")?,
        key: req.key.clone(),
    })
}

/// AddCustomerNote; `actor` is the author when the request names none.
pub fn add_note(
    req: &pb::AddCustomerNoteRequest,
    actor: &str,
) -> Result<CustomerCommand, DomainError> {
    Ok(CustomerCommand::AddNote {
        customer_id: required_id(&req.customer_id, "customer_id")?,
        text: req.text.clone(),
        author: if req.author.is_empty() {
            actor.to_owned()
        } else {
            req.author.clone()
        },
    })
}

/// GrantConsent.
pub fn grant_consent(req: &pb::GrantConsentRequest) -> Result<CustomerCommand, DomainError> {
    Ok(CustomerCommand::GrantConsent {
        customer_id: required_id(&req.customer_id, "customer_id")?,
        channel: channel(req.channel, "channel")?,
        purpose: purpose(req.purpose, "purpose")?,
        source: req.source.clone(),
        evidence: req.evidence.clone(),
    })
}

/// RevokeConsent.
pub fn revoke_consent(req: &pb::RevokeConsentRequest) -> Result<CustomerCommand, DomainError> {
    Ok(CustomerCommand::RevokeConsent {
        customer_id: required_id(&req.customer_id, "customer_id")?,
        channel: channel(req.channel, "channel")?,
        purpose: purpose(req.purpose, "purpose")?,
        source: req.source.clone(),
        evidence: req.evidence.clone(),
    })
}

/// The customer as the API shows it.
pub fn customer(customer_id: Uuid, state: &CustomerState) -> pb::Customer {
    let link = |l: &kizuna_domain::customer::MergeLink| pb::CustomerMergeLink {
        merge_id: l.merge_id.to_string(),
        customer_id: l.customer_id.to_string(),
    };
    pb::Customer {
        customer_id: customer_id.to_string(),
        contact: Some(state.contact.clone()),
        source: state.source.clone(),
        converted_from_lead_id: state.converted_from_lead_id.clone(),
        consents: state
            .consents
            .iter()
            .map(|(c, p)| pb::ConsentGrant {
                channel: *c as i32,
                purpose: *p as i32,
            })
            .collect(),
        bounces: state
            .bounces
            .iter()
            .map(|(channel, flag)| pb::ContactBounceFlag {
                channel: *channel as i32,
                bounced: Some(match &flag.value {
                    ContactValue::Address(a) => {
                        pb::contact_bounce_flag::Bounced::Address(a.clone())
                    }
                    ContactValue::Postal(p) => {
                        pb::contact_bounce_flag::Bounced::PostalAddress(p.clone())
                    }
                }),
                kind: flag.kind as i32,
                bounce_count: flag.count,
                last_reason: flag.last_reason.clone(),
            })
            .collect(),
        attributes: state
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.to_proto()))
            .collect(),
        notes: state
            .notes
            .iter()
            .map(|n| pb::CustomerNote {
                note_id: n.note_id.to_string(),
                text: n.text.clone(),
                author: n.author.clone(),
                added_at: n.added_at,
            })
            .collect(),
        merged_into: state.merged_into.as_ref().map(link),
        absorbed_merges: state.absorbed.iter().map(link).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<impl std::fmt::Debug, DomainError>) -> String {
        match r {
            Err(DomainError::InvalidArgument { field, .. }) => field,
            other => panic!("expected an invalid field, got {other:?}"),
        }
    }

    #[test]
    fn unknown_mask_paths_and_enum_numbers_name_their_field() {
        let jp: Region = "JP".parse().expect("JP");
        let req = pb::UpdateCustomerContactRequest {
            customer_id: Uuid::from_u128(1).to_string(),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["email".into(), "contact.email".into()],
            }),
            ..Default::default()
        };
        assert_eq!(field_of(update_contact(&req, jp)), "update_mask.paths[1]");
        let req = pb::GrantConsentRequest {
            customer_id: Uuid::from_u128(1).to_string(),
            channel: 42,
            ..Default::default()
        };
        assert_eq!(field_of(grant_consent(&req)), "channel");
    }
}

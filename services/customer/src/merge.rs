//! Merging two customers and undoing it: each is one decision over two
//! streams, appended all-or-nothing, so a merge (or its undo) is never
//! visible on one side only. The source stream is loaded first and so is the
//! primary stream that `command.expected_version` is about.

use kizuna_command::{Attempt, CommandError, Decision, Plan};
use kizuna_domain::DomainError;
use kizuna_domain::customer::{Customer, CustomerCommand, MERGE_NOT_FOUND, stream_name};
use uuid::Uuid;

/// Merge `source` into `target`.
#[derive(Debug, Clone, Copy)]
pub struct MergeCustomers {
    /// The customer merged away.
    pub source: Uuid,
    /// The surviving customer.
    pub target: Uuid,
}

impl Decision for MergeCustomers {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let source = attempt.load::<Customer>(&stream_name(self.source)).await?;
        // The attempt's first derived id, so every attempt and every retry of
        // the command names the same merge (the reply reports it without
        // reading the log).
        let merge_id = attempt.context().new_id();
        let source_events = attempt.decide(
            &source,
            &CustomerCommand::MergeInto {
                customer_id: self.source,
                target_customer_id: self.target,
                merge_id,
            },
        )?;
        let target = attempt.load::<Customer>(&stream_name(self.target)).await?;
        let target_events = attempt.decide(
            &target,
            &CustomerCommand::AbsorbMerge {
                customer_id: self.target,
                source_customer_id: self.source,
                merge_id,
            },
        )?;
        Ok(Plan::new()
            .append_to(&source, Some(self.source), &source_events)
            .append_to(&target, Some(self.target), &target_events))
    }
}

/// Undo the current merge of `source` (which must be `merge_id` when given).
#[derive(Debug, Clone, Copy)]
pub struct UndoCustomerMerge {
    /// The merged-away customer.
    pub source: Uuid,
    /// The merge the caller means, if it said.
    pub merge_id: Option<Uuid>,
}

impl Decision for UndoCustomerMerge {
    async fn plan(&self, attempt: &mut Attempt<'_>) -> Result<Plan, CommandError> {
        let source = attempt.load::<Customer>(&stream_name(self.source)).await?;
        if !source.state.registered {
            return Err(DomainError::not_found("customer", self.source).into());
        }
        let link = match source.state.merged_into {
            Some(link) if self.merge_id.is_none_or(|m| m == link.merge_id) => link,
            Some(link) => {
                return Err(not_found_merge(format!(
                    "customer {}'s current merge is {}, not {}",
                    self.source,
                    link.merge_id,
                    self.merge_id.unwrap_or_default()
                )));
            }
            None => {
                return Err(not_found_merge(format!(
                    "customer {} is not merged into another customer",
                    self.source
                )));
            }
        };
        let undo = |customer_id| CustomerCommand::UndoMerge {
            customer_id,
            merge_id: link.merge_id,
        };
        let source_events = attempt.decide(&source, &undo(self.source))?;
        let target = attempt
            .load::<Customer>(&stream_name(link.customer_id))
            .await?;
        let target_events = attempt.decide(&target, &undo(link.customer_id))?;
        // The target's side must be the same merge with the same source:
        // only then is it current on both sides.
        if !target
            .state
            .absorbed
            .iter()
            .any(|l| l.merge_id == link.merge_id && l.customer_id == self.source)
        {
            return Err(not_found_merge(format!(
                "customer {} does not hold merge {} of customer {}",
                link.customer_id, link.merge_id, self.source
            )));
        }
        Ok(Plan::new()
            .append_to(&source, Some(self.source), &source_events)
            .append_to(&target, Some(link.customer_id), &target_events))
    }
}

fn not_found_merge(message: String) -> CommandError {
    DomainError::rejected(MERGE_NOT_FOUND, message).into()
}

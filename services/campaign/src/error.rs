//! The service's errors and their one mapping to gRPC status.

use kizuna_command::CommandError;
use tonic::Status;

/// Why a CampaignService call failed.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// The command loop (validation, rules, the log) said no.
    #[error(transparent)]
    Command(#[from] CommandError),
}

impl From<kizuna_domain::DomainError> for CampaignError {
    fn from(e: kizuna_domain::DomainError) -> Self {
        Self::Command(e.into())
    }
}

impl From<kizuna_eventlog::StoreError> for CampaignError {
    fn from(e: kizuna_eventlog::StoreError) -> Self {
        Self::Command(e.into())
    }
}

impl From<CampaignError> for Status {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Command(e) => Status::from(e),
        }
    }
}

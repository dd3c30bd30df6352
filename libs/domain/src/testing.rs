//! Given / when / then for deciders, so a rule's test reads like the rule:
//!
//! ```ignore
//! given::<Lead>([captured()])
//!     .when(LeadCommand::Qualify { .. })
//!     .then([LeadEvent::StatusChanged(..)]);
//! given::<Lead>([]).when(qualify()).then_rejected("LEAD_NOT_FOUND");
//! ```
//!
//! The clock is fixed ([`Scenario::at`], default [`default_now`]) and ids are
//! sequential (`…0001`, `…0002`), so expected events can be written out in
//! full. `then` also folds the produced events, so an `evolve` that panics on
//! its own decider's output fails the test.

use crate::decider::{Context, Decider, SequentialIds};
use crate::error::DomainError;
use crate::time::at_seconds;
use prost_types::Timestamp;

/// The fixed "now" of a scenario unless [`Scenario::at`] says otherwise:
/// 2026-01-01T00:00:00Z.
pub const DEFAULT_NOW_SECONDS: i64 = 1_767_225_600;

/// [`DEFAULT_NOW_SECONDS`] as a timestamp.
pub fn default_now() -> Timestamp {
    at_seconds(DEFAULT_NOW_SECONDS)
}

/// A decider test: the history so far.
#[derive(Debug)]
pub struct Scenario<D: Decider> {
    history: Vec<D::Event>,
    now: Timestamp,
}

/// Starts a scenario from `events` (the stream's history, oldest first).
pub fn given<D: Decider>(events: impl IntoIterator<Item = D::Event>) -> Scenario<D> {
    Scenario {
        history: events.into_iter().collect(),
        now: default_now(),
    }
}

impl<D: Decider> Scenario<D> {
    /// Decides at `now` instead of the default time.
    #[must_use]
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = now;
        self
    }

    /// Runs `command` against the folded history.
    pub fn when(self, command: D::Command) -> Outcome<D> {
        let state = D::fold(&self.history);
        let mut ids = SequentialIds::default();
        let mut ctx = Context {
            now: self.now,
            ids: &mut ids,
        };
        let result = D::decide(&state, &command, &mut ctx);
        Outcome {
            state,
            command,
            result,
        }
    }

    /// The state the history folds to.
    pub fn state(&self) -> D::State {
        D::fold(&self.history)
    }
}

/// What a command did in a [`Scenario`].
#[derive(Debug)]
pub struct Outcome<D: Decider> {
    state: D::State,
    command: D::Command,
    result: Result<Vec<D::Event>, DomainError>,
}

impl<D: Decider> Outcome<D> {
    /// Asserts the command produced exactly `expected`, and that they fold.
    /// Returns the state after them, for further checks.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = D::Event>) -> D::State {
        let expected: Vec<D::Event> = expected.into_iter().collect();
        match self.result {
            Ok(events) => {
                assert_eq!(
                    events, expected,
                    "\nwhen {:?}\non state {:?}",
                    self.command, self.state
                );
                events.iter().fold(self.state, |s, e| D::evolve(s, e))
            }
            Err(e) => panic!(
                "expected events {expected:?}\nwhen {:?}\nbut the command failed: {e:?}",
                self.command
            ),
        }
    }

    /// Asserts the command was refused with exactly `expected`.
    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        match self.result {
            Err(e) => assert_eq!(e, expected, "when {:?}", self.command),
            Ok(events) => panic!(
                "expected {expected:?}\nwhen {:?}\nbut it produced {events:?}",
                self.command
            ),
        }
    }

    /// Asserts the command was refused by a business rule with reason code `reason`.
    #[track_caller]
    pub fn then_rejected(self, reason: &str) {
        match self.result {
            Err(DomainError::Rejected { reason: got, .. }) if got == reason => {}
            other => panic!(
                "expected rejection {reason}\nwhen {:?}\ngot {other:?}",
                self.command
            ),
        }
    }

    /// Asserts the command was refused for the request field `field`.
    #[track_caller]
    pub fn then_invalid(self, field: &str) {
        match self.result {
            Err(DomainError::InvalidArgument { field: got, .. }) if got == field => {}
            other => panic!(
                "expected invalid field {field}\nwhen {:?}\ngot {other:?}",
                self.command
            ),
        }
    }

    /// Asserts the command was refused because `kind` was not found.
    #[track_caller]
    pub fn then_not_found(self, kind: &str) {
        match self.result {
            Err(DomainError::NotFound { kind: got, .. }) if got == kind => {}
            other => panic!(
                "expected {kind} not found\nwhen {:?}\ngot {other:?}",
                self.command
            ),
        }
    }

    /// The produced events, for checks `then` cannot express; panics if the
    /// command failed.
    #[track_caller]
    pub fn events(self) -> Vec<D::Event> {
        match self.result {
            Ok(events) => events,
            Err(e) => panic!("when {:?}: the command failed: {e:?}", self.command),
        }
    }
}

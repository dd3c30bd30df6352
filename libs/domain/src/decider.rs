//! The decider: the shape every aggregate's rules take.
//!
//! `decide(state, command, context) -> events | error` and
//! `evolve(state, event) -> state`, both pure. The clock and the id source come
//! in through [`Context`] so a test fixes them and a service derives them from
//! the command (see [`DerivedIds`]), which is what makes a retried command
//! produce the same events.

use crate::error::DomainError;
use crate::event::DomainEvent;
use prost_types::Timestamp;
use uuid::Uuid;

/// Where new ids come from inside `decide` (a new customer's id, a note's id).
pub trait IdSource {
    /// The next id.
    fn next_id(&mut self) -> Uuid;
}

/// Ids derived from the command id: the n-th id is UUIDv5 of the command id
/// (as namespace) and `"id/{n}"`. A retried command therefore creates the same
/// ids again, so a new stream it opens is the same stream.
#[derive(Debug, Clone)]
pub struct DerivedIds {
    command_id: Uuid,
    next: u32,
}

impl DerivedIds {
    /// Ids for the command `command_id`, from the first.
    pub fn new(command_id: Uuid) -> Self {
        Self {
            command_id,
            next: 0,
        }
    }

    /// The first id of `command_id`: what a command that creates something
    /// without a caller-chosen id names it, on every retry alike.
    pub fn first(command_id: Uuid) -> Uuid {
        Self::new(command_id).next_id()
    }
}

impl IdSource for DerivedIds {
    fn next_id(&mut self) -> Uuid {
        let id = Uuid::new_v5(&self.command_id, format!("id/{}", self.next).as_bytes());
        self.next += 1;
        id
    }
}

/// Predictable ids for tests: `00000000-0000-0000-0000-000000000001`, `…02`, …
#[derive(Debug, Clone, Default)]
pub struct SequentialIds {
    next: u128,
}

impl IdSource for SequentialIds {
    fn next_id(&mut self) -> Uuid {
        self.next += 1;
        Uuid::from_u128(self.next)
    }
}

/// What `decide` may know about the world besides state and command.
pub struct Context<'a> {
    /// The business time of the command.
    pub now: Timestamp,
    /// Where new ids come from.
    pub ids: &'a mut dyn IdSource,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// A new id from the injected source.
    pub fn new_id(&mut self) -> Uuid {
        self.ids.next_id()
    }
}

/// An aggregate's rules.
pub trait Decider {
    /// What the rules need to know, folded from the stream's events.
    /// `Default` is the state of a stream that does not exist yet.
    type State: Default + Clone + std::fmt::Debug + Send + Sync + 'static;
    /// What a caller asks for.
    type Command: std::fmt::Debug + Send + Sync;
    /// What happened.
    type Event: DomainEvent;

    /// Checks `command` against `state`: the events to append, or why not.
    /// An empty list means the command changes nothing.
    fn decide(
        state: &Self::State,
        command: &Self::Command,
        ctx: &mut Context<'_>,
    ) -> Result<Vec<Self::Event>, DomainError>;

    /// The state after `event`.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// The state after all of `events`, from the empty state.
    fn fold<'e>(events: impl IntoIterator<Item = &'e Self::Event>) -> Self::State
    where
        Self::Event: 'e,
    {
        events
            .into_iter()
            .fold(Self::State::default(), |s, e| Self::evolve(s, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_repeat_for_the_same_command_and_differ_between_commands() {
        let a = Uuid::from_u128(7);
        let b = Uuid::from_u128(8);
        let first: Vec<Uuid> = (0..3)
            .scan(DerivedIds::new(a), |ids, _| Some(ids.next_id()))
            .collect();
        let again: Vec<Uuid> = (0..3)
            .scan(DerivedIds::new(a), |ids, _| Some(ids.next_id()))
            .collect();
        assert_eq!(first, again);
        assert_eq!(
            first.iter().collect::<std::collections::HashSet<_>>().len(),
            3
        );
        assert_ne!(DerivedIds::new(b).next_id(), first[0]);
    }
}

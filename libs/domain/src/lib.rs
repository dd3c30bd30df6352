//! kizuna's domain logic.
//!
//! Pure domain logic: no I/O. Everything here is a function of its arguments,
//! so the rules can be tested without a store, a clock or a network, and the
//! services that do I/O stay thin adapters around them.
//!
//! - [`decider`]: the shape of every aggregate's rules, with the injected
//!   clock and id source;
//! - [`event`]: typed events, their catalog and the upcaster registry;
//! - [`testing`]: given / when / then for deciders;
//! - [`lead`], [`customer`], [`ticket`], [`survey`]: the aggregates behind
//!   the lead, customer and support services;
//! - [`loyalty`], [`campaign`]: the loyalty account and earning rules, and
//!   campaigns with per-customer send arbitration (their services come next);
//! - [`trigger`]: event-based marketing triggers (on a matching event or
//!   after days without a purchase, target the customer into a campaign);
//! - [`reward`]: rewards bought with points and the coupons their claims
//!   issue (a claim is one all-or-nothing append to three streams);
//! - [`money`]: the currency-code rule every aggregate recording money shares;
//! - [`contact`]: the contact-data input rule (how e-mail addresses, phone
//!   numbers, names and addresses are normalised before they are recorded).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod campaign;
pub mod contact;
pub mod customer;
pub mod decider;
pub mod error;
pub mod event;
pub mod lead;
pub mod loyalty;
pub mod money;
pub mod reward;
pub mod survey;
pub mod testing;
pub mod ticket;
pub mod time;
pub mod trigger;

pub use decider::{Context, Decider, DerivedIds, IdSource, SequentialIds};
pub use error::DomainError;
pub use event::{DecodeError, DomainEvent, EventMessage, Upcasters};
pub use kizuna_proto::v1 as pb;

/// Every upcaster kizuna knows: what the services read the log through.
pub fn upcasters() -> Upcasters {
    let mut upcasters = Upcasters::new();
    lead::register_upcasters(&mut upcasters);
    upcasters
}

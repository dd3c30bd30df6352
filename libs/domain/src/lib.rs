//! kizuna's domain logic.
//!
//! Pure domain logic: no I/O. Everything here is a function of its arguments,
//! so the rules can be tested without a store, a clock or a network, and the
//! services that do I/O stay thin adapters around them.
//!
//! - [`contact`]: the contact-data input rule (how e-mail addresses, phone
//!   numbers, names and addresses are normalised before they are recorded).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod contact;

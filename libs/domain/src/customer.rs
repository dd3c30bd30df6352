//! The customer: who they are, how to reach them, what they agreed to.

use crate::pb;

crate::event_messages! {
    pb::CustomerRegistered => "customer.registered" version 1,
}

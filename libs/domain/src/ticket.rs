//! The support ticket: a customer's question, from opening to closing, with SLAs.

//! Channel adapters: each turns its medium's messages into core events and
//! renders the core's outcomes. They hold no state of their own and never
//! touch the store directly.

pub mod console;
pub mod telegram;

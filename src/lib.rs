//! mnemo — a private, local-first memory bot.
//!
//! See ARCHITECTURE.md for the map. In one breath: channels ([`channels`])
//! turn messages into [`core::Inbound`] events; the [`core`] applies them to
//! the [`store`] (redb, the single source of truth) in one transaction and
//! returns [`core::Outcome`]s; derived indexes live in [`memory`]; every word
//! a user reads comes from [`i18n`].

pub mod app;
pub mod backup;
pub mod buttons;
pub mod channels;
pub mod cli;
pub mod config;
pub mod core;
pub mod digest;
pub mod extract;
pub mod health;
pub mod i18n;
pub mod import;
pub mod jobs;
pub mod llm;
pub mod logging;
pub mod memory;
pub mod models;
pub mod store;
pub mod voice;

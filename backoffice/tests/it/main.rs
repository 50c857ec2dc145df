//! Integration tests of the back office API against the real PostgreSQL started by
//! `cargo xtask test`. One binary for the crate, one module per area.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod auth;
mod campaigns;
mod dashboards;
mod hardening;
mod identity;
mod kyc;
mod webhooks;

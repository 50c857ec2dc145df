//! End-to-end tests: the real services together, against the PostgreSQL and anvil that
//! `cargo xtask test` starts. One binary, one module per journey.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod access;
mod browser;
mod chaos;
mod checkout;
mod compose;
mod contracts;
mod enforcement;
mod fuzz;
mod indexing;
mod kyc;
mod operator;
mod pages;
mod platform;
mod qr_codes;
mod redeeming;
mod royalty_shares;
mod sales;
mod schemathesis;
mod sentry;
mod staff_pages;

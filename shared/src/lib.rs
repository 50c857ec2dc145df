//! The Brandmint commerce core.
//!
//! Every service (back office, payment, redemption, indexer) is built from these pieces and
//! from nothing else of each other's: configuration, telemetry, money, the database, chain
//! access and the HTTP plumbing that gives every service the same health, metrics, OpenAPI
//! and error format.

pub mod address;
pub mod audit;
pub mod auth;
pub mod chain;
pub mod config;
pub mod contracts;
pub mod daemon;
pub mod db;
pub mod errors;
pub mod http;
pub mod ids;
pub mod kyc;
pub mod mail;
pub mod money;
pub mod orders;
pub mod pages;
pub mod qr;
pub mod service;
pub mod storage;
pub mod telemetry;
pub mod workflow;

pub use config::Config;
pub use service::{App, AppState, ServiceSpec};

//! The `brandmint` command's library: every service of the platform, the local contract
//! deployment, the demo data and the walk-through of the journeys. The whole platform in one process.
//!
//! Production runs each service as its own process; locally (`cargo xtask dev`) and in the
//! end-to-end tests the four run side by side in one, sharing one pool and one chain client.
//! They still only talk through the database, exactly as when they are apart.

use shared::ServiceSpec;

pub mod demo;
pub mod local;
pub mod walkthrough;

/// Every service of the platform.
pub const SERVICES: [ServiceSpec; 4] = [backoffice::SERVICE, payment::SERVICE, redemption::SERVICE, indexer::SERVICE];

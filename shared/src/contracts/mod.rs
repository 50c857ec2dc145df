//! The platform's contracts, from their compiled artifacts in `contracts/artifacts/` (checked
//! against the sources by `cargo xtask test`), and a small typed client per role.
//!
//! Clients return alloy call builders: a caller sends them directly (tests, local set-up) or
//! takes `.calldata()` for the transaction queue, through which every production write goes.

mod bindings;
mod platform;
mod signing;

pub use bindings::*;
pub use platform::{CampaignParams, Platform, PlatformRoles};
pub use signing::{QuoteSigner, VoucherSigner, compact_voucher};

/// `address(0)` as a pay or reward token means native ETH.
pub const ETH: alloy::primitives::Address = alloy::primitives::Address::ZERO;

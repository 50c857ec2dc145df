//! The marketplace on a local chain: Seaport 1.6 deployed from the committed artifacts
//! (`ConduitController`, then `Seaport(conduitController)`), with orders built and signed the way
//! a marketplace has its users sign them: the order hash from `getOrderHash`, signed under
//! Seaport's EIP-712 domain separator. Used by the tests and by `cargo xtask dev` (the resale in
//! `cargo xtask demo`).

#![allow(missing_docs, missing_debug_implementations, unreachable_pub, clippy::too_many_arguments)]

pub mod binding {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        Seaport,
        "../contracts/artifacts/Seaport.json"
    );
}

pub mod conduit {
    alloy::sol!(
        #[sol(rpc)]
        #[derive(Debug)]
        ConduitController,
        "../contracts/artifacts/ConduitController.json"
    );
}

use alloy::{
    primitives::{Address, B256, Bytes, U256, keccak256},
    providers::DynProvider,
    signers::{SignerSync, local::PrivateKeySigner},
};
use anyhow::Context;
pub use binding::Seaport::{ConsiderationItem, OfferItem, Order, OrderComponents, OrderParameters};

pub const NATIVE: u8 = 0;
pub const ERC20: u8 = 1;
pub const ERC721: u8 = 2;
/// An ERC-721 item of a collection given by a criteria root (0: any of its tokens), the token
/// chosen by the fulfiller's criteria resolver.
pub const ERC721_WITH_CRITERIA: u8 = 4;

/// Order types: filled whole, or in fractions (`numerator / denominator` per fill).
pub const FULL_OPEN: u8 = 0;
pub const PARTIAL_OPEN: u8 = 1;

/// `milli` thousandths of an ether, in wei.
pub fn eth(milli: u64) -> U256 {
    U256::from(milli) * U256::from(1_000_000_000_000_000u64)
}

/// Deploys a ConduitController and a Seaport from `deployer`'s wallet (its first two
/// transactions when the account is fresh: see [`predicted`]).
pub async fn deploy(deployer: DynProvider) -> anyhow::Result<binding::Seaport::SeaportInstance<DynProvider>> {
    let controller = conduit::ConduitController::deploy(deployer.clone()).await.context("ConduitController")?;
    binding::Seaport::deploy(deployer, *controller.address()).await.context("Seaport")
}

/// Where [`deploy`] puts Seaport when `deployer` has sent nothing yet.
pub fn predicted(deployer: Address) -> Address {
    deployer.create(1)
}

/// An offer item of a fixed amount.
pub fn offer(item_type: u8, token: Address, id: u64, amount: U256) -> OfferItem {
    OfferItem {
        itemType: item_type,
        token,
        identifierOrCriteria: U256::from(id),
        startAmount: amount,
        endAmount: amount,
    }
}

/// A consideration item of a fixed amount for `to`.
pub fn consider(item_type: u8, token: Address, id: u64, amount: U256, to: Address) -> ConsiderationItem {
    ConsiderationItem {
        itemType: item_type,
        token,
        identifierOrCriteria: U256::from(id),
        startAmount: amount,
        endAmount: amount,
        recipient: to,
    }
}

/// A full-open order by `offerer`, valid for a day from `now`, signed by it.
pub async fn signed(
    seaport: &binding::Seaport::SeaportInstance<DynProvider>,
    offerer: &PrivateKeySigner,
    offer: Vec<OfferItem>,
    consideration: Vec<ConsiderationItem>,
    now: u64,
    salt: u64,
) -> anyhow::Result<Order> {
    sign(seaport, offerer, parameters(offerer.address(), offer, consideration, now, salt)).await
}

/// A full-open order's parameters (no zone, no conduit), valid for a day from `now`.
pub fn parameters(
    offerer: Address,
    offer: Vec<OfferItem>,
    consideration: Vec<ConsiderationItem>,
    now: u64,
    salt: u64,
) -> OrderParameters {
    OrderParameters {
        offerer,
        zone: Address::ZERO,
        totalOriginalConsiderationItems: U256::from(consideration.len()),
        offer,
        consideration,
        orderType: FULL_OPEN,
        startTime: U256::from(now.saturating_sub(60)),
        endTime: U256::from(now + 86_400),
        zoneHash: B256::ZERO,
        salt: U256::from(salt),
        conduitKey: B256::ZERO,
    }
}

/// The hash Seaport knows an order by, at its offerer's current counter.
pub async fn order_hash(
    seaport: &binding::Seaport::SeaportInstance<DynProvider>,
    parameters: &OrderParameters,
) -> anyhow::Result<B256> {
    let counter = seaport.getCounter(parameters.offerer).call().await.context("getCounter")?;
    let components = OrderComponents {
        offerer: parameters.offerer,
        zone: parameters.zone,
        offer: parameters.offer.clone(),
        consideration: parameters.consideration.clone(),
        orderType: parameters.orderType,
        startTime: parameters.startTime,
        endTime: parameters.endTime,
        zoneHash: parameters.zoneHash,
        salt: parameters.salt,
        conduitKey: parameters.conduitKey,
        counter,
    };
    seaport.getOrderHash(components).call().await.context("getOrderHash")
}

/// `parameters` signed by their offerer, as a marketplace has its users sign: the order hash
/// (at the offerer's current counter) under Seaport's EIP-712 domain separator.
pub async fn sign(
    seaport: &binding::Seaport::SeaportInstance<DynProvider>,
    offerer: &PrivateKeySigner,
    parameters: OrderParameters,
) -> anyhow::Result<Order> {
    let hash = order_hash(seaport, &parameters).await?;
    let information = seaport.information().call().await.context("information")?;
    let digest = keccak256([&[0x19, 0x01][..], information.domainSeparator.as_slice(), hash.as_slice()].concat());
    let signature = offerer.sign_hash_sync(&digest)?;
    Ok(Order { parameters, signature: Bytes::from(signature.as_bytes().to_vec()) })
}

//! What a log means to the platform: each log of a watched contract becomes one [`Fact`].
//! Transfers of campaign collections are the bulk and get a narrow row of their own; every other
//! platform event is kept with its decoded fields; Seaport's logs are kept raw (topics and data),
//! for the sales decoder to read.

use alloy::{
    primitives::{Address, B256, U256},
    rpc::types::Log,
    sol_types::SolEvent,
};
use serde_json::{Value, json};
use shared::contracts::{
    CampaignFactory::CampaignDeployed,
    CampaignNFT::Transfer,
    Checkout::OrderPaid,
    RewardVault::{RewardRedeemed, RewardsDistributed, VaultFunded, VaultWithdrawn},
};

alloy::sol! {
    /// Seaport 1.6's events, as the marketplace emits them (kept raw here).
    #[derive(Debug, PartialEq, Eq)]
    struct SpentItem { uint8 itemType; address token; uint256 identifier; uint256 amount; }
    #[derive(Debug, PartialEq, Eq)]
    struct ReceivedItem { uint8 itemType; address token; uint256 identifier; uint256 amount; address recipient; }
    event OrderFulfilled(bytes32 orderHash, address indexed offerer, address indexed zone, address recipient,
                         SpentItem[] offer, ReceivedItem[] consideration);
    event OrdersMatched(bytes32[] orderHashes);
}

/// Where a log happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub block_number: u64,
    pub block_hash: B256,
    pub log_index: u64,
    pub tx_hash: B256,
}

/// A Transfer of a campaign collection's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenTransfer {
    pub at: Position,
    pub collection: Address,
    pub token_id: U256,
    pub from: Address,
    pub to: Address,
}

/// Any other fact: its kind (`campaign_deployed`, `order_paid`, `vault_funded`,
/// `reward_redeemed`, `rewards_distributed`, `vault_withdrawn`, `seaport_order_fulfilled`,
/// `seaport_orders_matched`), the raw log and the fields the platform reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: Position,
    pub address: Address,
    pub kind: &'static str,
    pub topics: Vec<B256>,
    pub data: Vec<u8>,
    pub fields: Value,
}

/// One indexed log.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Transfer(TokenTransfer),
    Event(Event),
}

impl Fact {
    pub fn position(&self) -> Position {
        match self {
            Fact::Transfer(t) => t.at,
            Fact::Event(e) => e.at,
        }
    }
}

/// The platform contracts whose logs are facts.
#[derive(Debug, Clone, Copy)]
pub struct Platform {
    pub factory: Option<Address>,
    pub checkout: Option<Address>,
    pub vault: Option<Address>,
    pub seaport: Address,
}

impl Platform {
    /// Every contract whose logs are read, but the collections.
    pub fn addresses(&self) -> Vec<Address> {
        [self.factory, self.checkout, self.vault, Some(self.seaport)].into_iter().flatten().collect()
    }
}

/// Every event signature the indexer reads (for filtering by topic).
pub fn signatures() -> Vec<B256> {
    vec![
        Transfer::SIGNATURE_HASH,
        CampaignDeployed::SIGNATURE_HASH,
        OrderPaid::SIGNATURE_HASH,
        VaultFunded::SIGNATURE_HASH,
        RewardRedeemed::SIGNATURE_HASH,
        RewardsDistributed::SIGNATURE_HASH,
        VaultWithdrawn::SIGNATURE_HASH,
        OrderFulfilled::SIGNATURE_HASH,
        OrdersMatched::SIGNATURE_HASH,
    ]
}

fn position(log: &Log) -> Option<Position> {
    Some(Position {
        block_number: log.block_number?,
        block_hash: log.block_hash?,
        log_index: log.log_index?,
        tx_hash: log.transaction_hash?,
    })
}

/// The fact `log` is, if it is one: `is_collection` says whether an address is a campaign
/// collection. A pending log (no block) or one that does not decode is not a fact.
pub fn decode(log: &Log, platform: &Platform, is_collection: impl Fn(&Address) -> bool) -> Option<Fact> {
    let at = position(log)?;
    let address = log.address();
    let topic0 = *log.topic0()?;
    if is_collection(&address) {
        if topic0 != Transfer::SIGNATURE_HASH {
            return None;
        }
        let t = Transfer::decode_log(&log.inner).ok()?;
        return Some(Fact::Transfer(TokenTransfer {
            at,
            collection: address,
            token_id: t.data.tokenId,
            from: t.data.from,
            to: t.data.to,
        }));
    }
    let (kind, fields) = if Some(address) == platform.factory && topic0 == CampaignDeployed::SIGNATURE_HASH {
        let e = CampaignDeployed::decode_log(&log.inner).ok()?.data;
        let fields = json!({ "campaign_ref": e.campaignId.to_string(), "collection": e.collection,
                             "admin": e.admin, "name": e.name, "symbol": e.symbol, "max_supply": e.maxSupply.to_string(),
                             "royalty_receiver": e.royaltyReceiver, "royalty_bps": e.royaltyBps.to::<u64>() });
        ("campaign_deployed", fields)
    } else if Some(address) == platform.checkout && topic0 == OrderPaid::SIGNATURE_HASH {
        let e = OrderPaid::decode_log(&log.inner).ok()?.data;
        let fields = json!({ "order_id": e.orderId, "buyer": e.buyer, "pay_token": e.payToken,
                             "amount": e.amount.to_string(), "first_token_id": e.firstTokenId.to_string(),
                             "quantity": e.quantity.to_string() });
        ("order_paid", fields)
    } else if Some(address) == platform.vault {
        match topic0 {
            t if t == VaultFunded::SIGNATURE_HASH => {
                let e = VaultFunded::decode_log(&log.inner).ok()?.data;
                let fields = json!({ "campaign_ref": e.campaignId.to_string(), "token": e.token, "from": e.from,
                                     "amount": e.amount.to_string() });
                ("vault_funded", fields)
            }
            t if t == RewardRedeemed::SIGNATURE_HASH => {
                let e = RewardRedeemed::decode_log(&log.inner).ok()?.data;
                ("reward_redeemed", json!({ "redemption_id": e.redemptionId.to_string() }))
            }
            t if t == RewardsDistributed::SIGNATURE_HASH => {
                let e = RewardsDistributed::decode_log(&log.inner).ok()?.data;
                let fields = json!({ "batch_id": e.batchId.to_string(), "campaign_ref": e.campaignId.to_string(),
                                     "token": e.token, "recipients": e.recipients.to_string(), "total": e.total.to_string() });
                ("rewards_distributed", fields)
            }
            t if t == VaultWithdrawn::SIGNATURE_HASH => {
                let e = VaultWithdrawn::decode_log(&log.inner).ok()?.data;
                let fields = json!({ "campaign_ref": e.campaignId.to_string(), "token": e.token, "to": e.to,
                                     "amount": e.amount.to_string() });
                ("vault_withdrawn", fields)
            }
            _ => return None,
        }
    } else if address == platform.seaport && topic0 == OrderFulfilled::SIGNATURE_HASH {
        let e = OrderFulfilled::decode_log(&log.inner).ok()?.data;
        ("seaport_order_fulfilled", json!({ "order_hash": e.orderHash, "offerer": e.offerer, "zone": e.zone }))
    } else if address == platform.seaport && topic0 == OrdersMatched::SIGNATURE_HASH {
        let e = OrdersMatched::decode_log(&log.inner).ok()?.data;
        ("seaport_orders_matched", json!({ "order_hashes": e.orderHashes }))
    } else {
        return None;
    };
    Some(Fact::Event(Event {
        at,
        address,
        kind,
        topics: log.topics().to_vec(),
        data: log.data().data.to_vec(),
        fields,
    }))
}

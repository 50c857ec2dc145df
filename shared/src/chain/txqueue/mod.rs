//! The persisted chain transaction queue: every contract write goes through it.
//!
//! * [`enqueue`] records a [`TxRequest`] under a business idempotency key (`mint:order:17`) in
//!   the caller's transaction, so the request commits (or not) with the requester's own state
//!   change. The same key twice is one request, hence one on-chain transaction.
//! * A [`TxSender`] per signer does the rest. Across replicas one sender per signer is active
//!   (it holds a PostgreSQL advisory lock; every update it makes is also conditional on the
//!   row's `revision`). It assigns nonces from `signer_nonces` in ranges (never from the node's
//!   or alloy's nonce cache), signs, **stores the raw transaction and its hash before
//!   broadcasting**, broadcasts in JSON-RPC batches, and watches the signer's account nonce
//!   and receipts: it re-signs a stuck nonce with both fee fields bumped, waits for N
//!   confirmations, re-broadcasts a transaction whose block was orphaned, and hands a nonce
//!   whose request failed before broadcast to the next request (or fills it with a 0-value
//!   self-transfer) so later nonces are not stuck behind a gap.
//! * Every step is a transition of the `tx` machine ([`ChainTx`](crate::workflow::machines::ChainTx)).
//!   Requesters learn the outcome from its `tx.confirmed` / `tx.failed` outbox events, whose
//!   payload carries the idempotency key, the request's `context`, the transaction hash, block
//!   number and hash, gas used, and the error or revert reason.
//!
//! Confirmed means `confirmations` blocks deep (the receipt's block is still the canonical one
//! at that height): that is when the requester hears the outcome. A reorg that removes a mined
//! transaction before then sends it again. After that, settled transactions are re-checked
//! until their block is at or below the chain's `finalized` block (then `finalized_at` is set
//! and they are never looked at again); one that a deeper reorg removed goes back to `signed`
//! (`deep_reorg`, a plain `tx.signed` event) and its signed bytes are sent again — the same
//! nonce and hash — and the requester hears only an outcome different from the one it was told.
//!
//! Operators cancel or replace a stuck transaction ([`request_operator_action`]: recorded on the
//! row, done by the sender), and each sender watches its signer's balance, raising
//! `signer.balance_low` / `signer.balance_ok` in the outbox once per crossing of
//! [`SenderConfig::low_balance`].

mod balance;
mod broadcast;
mod operator;
mod rpc;
mod sender;
mod sign;
mod store;
mod submit;
mod watch;

use std::fmt;

use alloy::{
    primitives::{Address, B256, Bytes},
    transports::TransportError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    money::Wei,
    workflow::{WorkflowError, machines::TxState},
};

pub use balance::{BALANCE_LOW, BALANCE_OK};
pub use operator::{
    AttemptView, OperatorAction, OperatorView, Requested, recent, request as request_operator_action,
    view as operator_view,
};
pub use sender::{LowBalance, SenderConfig, TxSender};
pub use submit::{attempts, enqueue, get, get_by_key};

/// The `LISTEN/NOTIFY` channel [`enqueue`] notifies (payload `<chain id>:<signer>`), so a
/// sender picks new requests up at once.
pub const CHANNEL: &str = "chain_tx_queued";

/// A queued chain transaction's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct ChainTxId(i64);

impl ChainTxId {
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ChainTxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A business idempotency key: `<action>:<entity>:<id>`, e.g. `deploy:campaign:42`,
/// `mint:order:17`, `payout:redemption:9`. Printable ASCII without spaces, at most 200 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 200;

    pub fn new(key: impl Into<String>) -> Result<Self> {
        let key = key.into();
        if key.is_empty() || key.len() > Self::MAX_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TxQueueError::InvalidRequest(format!(
                "idempotency key {key:?}: 1 to {} printable ASCII characters without spaces",
                Self::MAX_LEN
            )));
        }
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = TxQueueError;
    fn try_from(key: String) -> Result<Self> {
        Self::new(key)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> Self {
        key.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A contract write (or transfer, or contract creation) to put in the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct TxRequest {
    pub idempotency_key: IdempotencyKey,
    pub chain_id: u64,
    /// The account that signs and pays; a [`TxSender`] for it must run somewhere.
    pub signer: Address,
    /// `None` creates a contract from `data`.
    pub to: Option<Address>,
    pub value: Wei,
    pub data: Bytes,
    /// `None`: estimated when first signed (plus a margin), then fixed. Give one when the call
    /// cannot be estimated yet (it depends on an earlier transaction of the queue).
    pub gas_limit: Option<u64>,
    /// Blocks deep (counting its own) before `tx.confirmed`; at least 1.
    pub confirmations: u32,
    /// Anything the requester wants back in the `tx.*` events (ids of its own entities).
    pub context: Value,
    /// Who asked: the outcome events are addressed to it (`tx.confirmed.order-mint`).
    pub requester: Requester,
}

/// The kinds of business that queue chain calls. A transaction's outcome events carry its kind in
/// their type (`tx.confirmed.<kind>`, `tx.failed.<kind>`), so each requester's subscriber receives
/// exactly its own outcomes ([`Requester::outcomes`]). A new requester is a variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "kebab-case")]
pub enum Requester {
    /// Nobody listens for the outcome (tests, operator tools); events are plain `tx.<state>`.
    None,
    /// A campaign's collection deployed through the factory (back office).
    CampaignDeployment,
    /// The calls that set a deployed campaign up (vault admin, checkout treasury).
    CampaignSetup,
    /// A token reward funded into the vault (back office).
    RewardFunding,
    /// A paid card order's tokens minted to the buyer (payment).
    OrderMint,
    /// Holders' royalty shares paid by `RewardVault.distribute` (redemption).
    RoyaltyDistribution,
    /// A claimed token reward paid by `RewardVault.redeem` (redemption).
    RedemptionPayout,
}

impl Requester {
    /// The kind's name, as stored and in event types.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The outcome event types of this requester's transactions, for its subscriber.
    pub fn outcomes(self) -> &'static [&'static str] {
        match self {
            Requester::None => &["tx.confirmed", "tx.failed"],
            Requester::CampaignDeployment => &["tx.confirmed.campaign-deployment", "tx.failed.campaign-deployment"],
            Requester::CampaignSetup => &["tx.confirmed.campaign-setup", "tx.failed.campaign-setup"],
            Requester::RewardFunding => &["tx.confirmed.reward-funding", "tx.failed.reward-funding"],
            Requester::OrderMint => &["tx.confirmed.order-mint", "tx.failed.order-mint"],
            Requester::RoyaltyDistribution => &["tx.confirmed.royalty-distribution", "tx.failed.royalty-distribution"],
            Requester::RedemptionPayout => &["tx.confirmed.redemption-payout", "tx.failed.redemption-payout"],
        }
    }

    /// Whether `event_type` is a confirmation (else a failure) of a transaction.
    pub fn is_confirmed(event_type: &str) -> bool {
        event_type == "tx.confirmed" || event_type.starts_with("tx.confirmed.")
    }

    /// Why the transaction of a failure event's `payload` failed: its revert reason, else the
    /// queue's error.
    pub fn failure_reason(payload: &Value) -> Option<&str> {
        payload["revert_reason"].as_str().or(payload["error"].as_str())
    }
}

impl TxRequest {
    /// A call of `to` with `data`, no value, gas estimated, one confirmation.
    pub fn call(idempotency_key: IdempotencyKey, chain_id: u64, signer: Address, to: Address, data: Bytes) -> Self {
        Self {
            idempotency_key,
            chain_id,
            signer,
            to: Some(to),
            value: Wei::ZERO,
            data,
            gas_limit: None,
            confirmations: 1,
            context: Value::Object(serde_json::Map::new()),
            requester: Requester::None,
        }
    }

    /// Addresses the outcome events to `requester`.
    pub fn requested_by(mut self, requester: Requester) -> Self {
        self.requester = requester;
        self
    }

    pub fn with_value(mut self, value: Wei) -> Self {
        self.value = value;
        self
    }

    pub fn with_gas_limit(mut self, gas_limit: u64) -> Self {
        self.gas_limit = Some(gas_limit);
        self
    }

    pub fn with_confirmations(mut self, confirmations: u32) -> Self {
        self.confirmations = confirmations;
        self
    }

    pub fn with_context(mut self, context: Value) -> Self {
        self.context = context;
        self
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: ChainTxId,
    /// `false`: the key was already queued (with the same parameters); nothing new was added.
    pub created: bool,
}

/// A queued transaction as the requester sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainTxView {
    pub id: ChainTxId,
    pub idempotency_key: String,
    /// `request`, or `gap_fill` for the queue's own 0-value self-transfers.
    pub kind: String,
    #[serde(serialize_with = "serialize_state")]
    pub state: TxState,
    pub chain_id: u64,
    pub signer: Address,
    pub to: Option<Address>,
    pub value: Wei,
    pub context: Value,
    pub nonce: Option<u64>,
    /// The current attempt, or the mined one.
    pub tx_hash: Option<B256>,
    pub max_fee_per_gas: Option<Wei>,
    pub max_priority_fee_per_gas: Option<Wei>,
    pub block_number: Option<u64>,
    pub block_hash: Option<B256>,
    pub gas_used: Option<u64>,
    /// The receipt's status: `Some(false)` reverted.
    pub success: Option<bool>,
    pub error: Option<String>,
    pub revert_reason: Option<String>,
}

fn serialize_state<S: serde::Serializer>(state: &TxState, s: S) -> Result<S::Ok, S::Error> {
    let name: &'static str = (*state).into();
    s.serialize_str(name)
}

/// One signed version of a request (the first, or a re-sign with bumped fees).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub nonce: u64,
    pub tx_hash: B256,
    pub max_fee_per_gas: Wei,
    pub max_priority_fee_per_gas: Wei,
}

/// What can go wrong in the queue.
#[derive(Debug, thiserror::Error)]
pub enum TxQueueError {
    /// The request is malformed (bad key, zero confirmations, numbers out of range).
    #[error("invalid transaction request: {0}")]
    InvalidRequest(String),
    /// No queued transaction has this id.
    #[error("no chain transaction {0}")]
    NotFound(ChainTxId),
    /// What an operator asked is not possible in the transaction's state.
    #[error("refused: {0}")]
    Refused(String),
    /// The idempotency key is already used by a request with different parameters.
    #[error("idempotency key `{0}` is already used by a different transaction")]
    KeyReused(String),
    /// A row holds something the queue cannot read (a manual edit or a bad migration).
    #[error("chain transaction {id}: {problem}")]
    Corrupt { id: i64, problem: String },
    /// The node could not be reached or answered with an error.
    #[error("RPC: {0}")]
    Rpc(#[from] TransportError),
    /// The node did not answer in time.
    #[error("RPC call timed out")]
    RpcTimeout,
    /// The local signer refused.
    #[error("signing: {0}")]
    Signing(#[from] alloy::signers::Error),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = TxQueueError> = std::result::Result<T, E>;

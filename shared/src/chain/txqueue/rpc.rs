//! The node calls the queue makes, batched (one HTTP round trip for many transactions) and
//! bounded by a timeout, and what the node's refusals mean.

use std::{future::IntoFuture, time::Duration};

use alloy::{
    eips::BlockNumberOrTag,
    primitives::{Address, B256, Bytes, U64, U256},
    providers::{DynProvider, Provider},
    rpc::{
        client::BatchRequest,
        types::{TransactionInput, TransactionReceipt, TransactionRequest},
    },
    sol_types::decode_revert_reason,
    transports::{RpcError, TransportError},
};
use serde::Deserialize;

use super::{Result, TxQueueError, sign::Fees};

/// Calls per JSON-RPC batch: big enough to amortise the round trip, small enough for any node.
const BATCH: usize = 100;

/// What the node said to a raw transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    Accepted,
    /// The node has it already (a re-broadcast): as good as accepted.
    AlreadyKnown,
    /// The account's nonce is past this one: maybe ours was mined; the receipts tell.
    NonceTooLow,
    /// Another transaction with this nonce is in the pool and pays at least as much.
    ReplacementUnderpriced,
    /// The fee is under what the node accepts now (base fee rose): re-sign with fresh fees.
    FeeTooLow,
    /// The account cannot pay: pause the signer, keep the nonce.
    InsufficientFunds,
    /// A refusal that sending the same bytes again will not change.
    Rejected(String),
    /// Anything else (timeouts, an unreachable or overloaded node): try again later.
    Transient(String),
}

impl SendOutcome {
    fn from_error(error: &TransportError) -> Self {
        let Some(payload) = error.as_error_resp() else {
            return Self::Transient(error.to_string());
        };
        let message = payload.message.to_ascii_lowercase();
        let has = |needle: &str| message.contains(needle);
        if has("already known") || has("already imported") || has("known transaction") {
            Self::AlreadyKnown
        } else if has("nonce too low") || has("nonce is too low") || has("oldnonce") {
            Self::NonceTooLow
        } else if has("replacement transaction underpriced") || has("replacement fee too low") {
            Self::ReplacementUnderpriced
        } else if has("insufficient funds") {
            Self::InsufficientFunds
        } else if has("less than block base fee")
            || has("fee cap less than")
            || has("transaction underpriced")
            || has("feecap too low")
            || has("max fee per gas less than")
        {
            Self::FeeTooLow
        } else if has("intrinsic gas too")
            || has("exceeds block gas limit")
            || has("gas limit reached")
            || has("invalid sender")
            || has("invalid signature")
            || has("invalid chain id")
            || has("exceeds the configured cap")
            || has("transaction type not supported")
            || has("oversized data")
            || has("priority fee per gas higher than")
            || has("tip higher than fee cap")
        {
            Self::Rejected(payload.message.to_string())
        } else {
            Self::Transient(payload.message.to_string())
        }
    }
}

/// Why a gas estimate failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EstimateError {
    /// The call reverts: it would fail on chain too.
    Reverted {
        reason: String,
        data: Option<Bytes>,
    },
    InsufficientFunds,
    Transient(String),
}

impl EstimateError {
    fn from_error(error: &TransportError) -> Self {
        let Some(payload) = error.as_error_resp() else {
            return Self::Transient(error.to_string());
        };
        let message = payload.message.to_ascii_lowercase();
        if message.contains("insufficient funds") {
            Self::InsufficientFunds
        } else if payload.code == 3 || message.contains("revert") {
            let data = payload.as_revert_data();
            // A custom error decodes to its raw bytes, NULs included: text columns refuse those,
            // and an operator cannot read them, so fall back to the node's message.
            let reason = data
                .as_deref()
                .and_then(|data| decode_revert_reason(data))
                .filter(|reason| !reason.chars().any(char::is_control))
                .unwrap_or_else(|| payload.message.replace('\0', ""));
            Self::Reverted { reason, data }
        } else {
            Self::Transient(payload.message.to_string())
        }
    }
}

/// The fields of a block header the queue needs.
#[derive(Debug, Deserialize)]
struct BlockHash {
    hash: B256,
}

/// A block header's number.
#[derive(Debug, Deserialize)]
struct BlockNumberOnly {
    number: U64,
}

/// What a call would send, for estimates and revert replays.
#[derive(Debug, Clone)]
pub(crate) struct CallSpec {
    pub(crate) from: Address,
    pub(crate) to: Option<Address>,
    pub(crate) value: U256,
    pub(crate) data: Bytes,
    pub(crate) gas_limit: Option<u64>,
}

impl CallSpec {
    fn request(&self) -> TransactionRequest {
        let request = TransactionRequest::default()
            .from(self.from)
            .value(self.value)
            .input(TransactionInput::new(self.data.clone()));
        let request = match self.to {
            Some(to) => request.to(to),
            None => request.create(),
        };
        match self.gas_limit {
            Some(gas) => request.gas_limit(gas),
            None => request,
        }
    }
}

/// The node, as the queue uses it.
#[derive(Debug, Clone)]
pub(crate) struct Rpc {
    provider: DynProvider,
    timeout: Duration,
}

impl Rpc {
    pub(crate) fn new(provider: DynProvider, timeout: Duration) -> Self {
        Self { provider, timeout }
    }

    async fn bounded<T>(&self, call: impl IntoFuture<Output = Result<T, TransportError>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, call.into_future()).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(TxQueueError::RpcTimeout),
        }
    }

    pub(crate) async fn chain_id(&self) -> Result<u64> {
        self.bounded(self.provider.get_chain_id()).await
    }

    /// The head block number and the signer's mined nonce count, in one round trip.
    pub(crate) async fn head_and_nonce(&self, signer: Address) -> Result<(u64, u64)> {
        let mut batch = BatchRequest::new(self.provider.client());
        let head = batch.add_call::<_, U64>("eth_blockNumber", &())?;
        let nonce = batch.add_call::<_, U64>("eth_getTransactionCount", &(signer, BlockNumberOrTag::Latest))?;
        self.bounded(batch.send()).await?;
        let head = self.bounded(head).await?;
        let nonce = self.bounded(nonce).await?;
        Ok((head.to::<u64>(), nonce.to::<u64>()))
    }

    /// The account's balance at the head.
    pub(crate) async fn balance(&self, account: Address) -> Result<U256> {
        self.bounded(self.provider.get_balance(account)).await
    }

    /// The number of the chain's `finalized` block (`None`: the node knows none yet).
    pub(crate) async fn finalized_block(&self) -> Result<Option<u64>> {
        let block = self
            .bounded(
                self.provider.client().request::<_, Option<BlockNumberOnly>>(
                    "eth_getBlockByNumber",
                    (BlockNumberOrTag::Finalized, false),
                ),
            )
            .await?;
        Ok(block.map(|b| b.number.to::<u64>()))
    }

    /// The signer's nonce count including transactions in the node's pool.
    pub(crate) async fn pending_nonce(&self, signer: Address) -> Result<u64> {
        self.bounded(self.provider.get_transaction_count(signer).pending()).await
    }

    pub(crate) async fn fees(&self, cap: Option<u128>) -> Result<Fees> {
        let estimate = self.bounded(self.provider.estimate_eip1559_fees()).await?;
        Ok(Fees::from_estimate(estimate, cap))
    }

    /// Broadcasts raw transactions in order; one outcome per transaction. An error means the
    /// whole batch's fate is unknown (some may have reached the node).
    pub(crate) async fn send_raw(&self, raws: &[&[u8]]) -> Result<Vec<SendOutcome>> {
        let mut outcomes = Vec::with_capacity(raws.len());
        for chunk in raws.chunks(BATCH) {
            let mut batch = BatchRequest::new(self.provider.client());
            let waiters = chunk
                .iter()
                .map(|raw| batch.add_call::<_, B256>("eth_sendRawTransaction", &(Bytes::copy_from_slice(raw),)))
                .collect::<Result<Vec<_>, _>>()?;
            self.bounded(batch.send()).await?;
            for waiter in waiters {
                outcomes.push(match self.bounded(waiter).await {
                    Ok(_) => SendOutcome::Accepted,
                    Err(TxQueueError::Rpc(error)) => SendOutcome::from_error(&error),
                    Err(other) => SendOutcome::Transient(other.to_string()),
                });
            }
        }
        Ok(outcomes)
    }

    /// The receipt of each hash (`None`: not mined, or orphaned).
    pub(crate) async fn receipts(&self, hashes: &[B256]) -> Result<Vec<Option<TransactionReceipt>>> {
        let mut receipts = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(BATCH) {
            let mut batch = BatchRequest::new(self.provider.client());
            let waiters = chunk
                .iter()
                .map(|hash| batch.add_call::<_, Option<TransactionReceipt>>("eth_getTransactionReceipt", &(hash,)))
                .collect::<Result<Vec<_>, _>>()?;
            self.bounded(batch.send()).await?;
            for waiter in waiters {
                receipts.push(self.bounded(waiter).await?);
            }
        }
        Ok(receipts)
    }

    /// The canonical block hash at each height (`None`: no such block).
    pub(crate) async fn block_hashes(&self, numbers: &[u64]) -> Result<Vec<Option<B256>>> {
        let mut hashes = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(BATCH) {
            let mut batch = BatchRequest::new(self.provider.client());
            let waiters = chunk
                .iter()
                .map(|n| {
                    batch.add_call::<_, Option<BlockHash>>(
                        "eth_getBlockByNumber",
                        &(BlockNumberOrTag::Number(*n), false),
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.bounded(batch.send()).await?;
            for waiter in waiters {
                hashes.push(self.bounded(waiter).await?.map(|b| b.hash));
            }
        }
        Ok(hashes)
    }

    /// Gas estimates, one per call; the outer error is the batch's.
    pub(crate) async fn estimate_gas(&self, calls: &[CallSpec]) -> Result<Vec<Result<u64, EstimateError>>> {
        let mut estimates = Vec::with_capacity(calls.len());
        for chunk in calls.chunks(BATCH) {
            let mut batch = BatchRequest::new(self.provider.client());
            let waiters = chunk
                .iter()
                .map(|call| batch.add_call::<_, U64>("eth_estimateGas", &(call.request(),)))
                .collect::<Result<Vec<_>, _>>()?;
            self.bounded(batch.send()).await?;
            for waiter in waiters {
                estimates.push(match self.bounded(waiter).await {
                    Ok(gas) => Ok(gas.to::<u64>()),
                    Err(TxQueueError::Rpc(error)) => Err(EstimateError::from_error(&error)),
                    Err(other) => Err(EstimateError::Transient(other.to_string())),
                });
            }
        }
        Ok(estimates)
    }

    /// Why a mined call reverted: the call replayed on the state before its block. `None`
    /// when the replay does not revert (it depended on a transaction earlier in the block).
    pub(crate) async fn revert_reason(&self, call: &CallSpec, block: u64) -> Result<Option<(String, Option<Bytes>)>> {
        let replay = self.provider.call(call.request()).block(BlockNumberOrTag::Number(block.saturating_sub(1)).into());
        match tokio::time::timeout(self.timeout, replay.into_future()).await {
            Err(_) => Err(TxQueueError::RpcTimeout),
            Ok(Ok(_)) => Ok(None),
            Ok(Err(error @ RpcError::ErrorResp(_))) => match EstimateError::from_error(&error) {
                EstimateError::Reverted { reason, data } => Ok(Some((reason, data))),
                EstimateError::InsufficientFunds | EstimateError::Transient(_) => Ok(None),
            },
            Ok(Err(error)) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(code: i64, message: &'static str) -> TransportError {
        let payload = serde_json::json!({ "code": code, "message": message }).to_string();
        RpcError::ErrorResp(serde_json::from_str(&payload).unwrap())
    }

    #[test]
    fn node_refusals_of_a_raw_transaction_are_classified() {
        let cases = [
            ("already known", SendOutcome::AlreadyKnown),
            ("transaction already imported", SendOutcome::AlreadyKnown),
            ("nonce too low", SendOutcome::NonceTooLow),
            ("Nonce too low: next nonce 5, tx nonce 4", SendOutcome::NonceTooLow),
            ("replacement transaction underpriced", SendOutcome::ReplacementUnderpriced),
            ("Insufficient funds for gas * price + value", SendOutcome::InsufficientFunds),
            ("max fee per gas less than block base fee", SendOutcome::FeeTooLow),
            ("transaction underpriced", SendOutcome::FeeTooLow),
            ("intrinsic gas too low", SendOutcome::Rejected("intrinsic gas too low".into())),
            (
                "intrinsic gas too high -- tx.gas_limit > env.block.gas_limit",
                SendOutcome::Rejected("intrinsic gas too high -- tx.gas_limit > env.block.gas_limit".into()),
            ),
            ("txpool is full", SendOutcome::Transient("txpool is full".into())),
        ];
        for (message, expected) in cases {
            assert_eq!(SendOutcome::from_error(&refusal(-32003, message)), expected, "{message}");
        }
    }

    #[test]
    fn a_custom_error_revert_has_a_printable_reason() {
        // MaxSupplyExceeded(2, 1): a selector and two words, NUL bytes galore.
        let data = format!("0x3f3b6a5c{:064x}{:064x}", 2, 1);
        let payload =
            serde_json::json!({ "code": 3, "message": "execution reverted: custom error 0x3f3b6a5c", "data": data });
        let error = RpcError::ErrorResp(serde_json::from_value(payload).unwrap());
        let EstimateError::Reverted { reason, data } = EstimateError::from_error(&error) else {
            panic!("not a revert")
        };
        assert!(!reason.chars().any(char::is_control), "{reason:?}");
        assert_eq!(reason, "execution reverted: custom error 0x3f3b6a5c");
        assert_eq!(data.unwrap().len(), 68);
    }

    #[test]
    fn a_reverting_estimate_is_told_apart_from_a_flaky_node() {
        assert!(matches!(
            EstimateError::from_error(&refusal(3, "execution reverted: nope")),
            EstimateError::Reverted { .. }
        ));
        assert_eq!(
            EstimateError::from_error(&refusal(-32003, "Insufficient funds for gas * price + value")),
            EstimateError::InsufficientFunds
        );
        assert!(matches!(EstimateError::from_error(&refusal(-32000, "header not found")), EstimateError::Transient(_)));
    }
}

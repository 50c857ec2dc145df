//! Wallet payments: the buyer's wallet sends the platform-signed quote to the Checkout contract,
//! which takes the payment and mints in one transaction; the indexer reads its `OrderPaid`
//! events and [`WalletPayments`] fulfils the orders they name once they are confirmed.
//!
//! An order's on-chain id is its public UUID, right-aligned in the `bytes32`.

use alloy::primitives::{Address, B256, U256};
use serde_json::json;
use shared::{
    contracts::Checkout::{OrderPaid, Quote},
    ids::{BrandId, OrderId},
    orders::{OrderEvent, OrderKey, OrderState, advance},
    service::Resources,
    workflow::{BoxFuture, OutboxEvent, Subscriber},
};
use uuid::Uuid;

/// The `bytes32` order id of the Checkout contract for an order.
pub(crate) fn chain_order_id(order: Uuid) -> B256 {
    let mut id = [0u8; 32];
    id[16..].copy_from_slice(order.as_bytes());
    B256::from(id)
}

/// The order a Checkout `orderId` names, if it is one of ours.
pub(crate) fn order_of(id: B256) -> Option<Uuid> {
    id[..16].iter().all(|b| *b == 0).then(|| Uuid::from_slice(&id[16..]).ok()).flatten()
}

/// Fulfils wallet orders from the indexer's confirmed `OrderPaid` facts
/// (`chain.order_paid.confirmed`): payment reads the chain through the indexer, never itself.
pub(crate) struct WalletPayments {
    resources: Resources,
}

impl WalletPayments {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    async fn handle_event(&self, event: &OutboxEvent, conn: &mut sqlx::PgConnection) -> anyhow::Result<()> {
        let p = &event.payload;
        let checkout = self.resources.config().chain.contracts.checkout;
        let address = p["address"].as_str().and_then(|a| a.parse::<Address>().ok());
        if checkout.is_none() || address != checkout {
            return Ok(());
        }
        let field = |name: &str| p[name].as_str().ok_or_else(|| anyhow::anyhow!("OrderPaid without `{name}`"));
        let number = |name: &str| -> anyhow::Result<U256> { Ok(field(name)?.parse()?) };
        let address_of = |name: &str| -> anyhow::Result<Address> { Ok(field(name)?.parse()?) };
        let paid = OrderPaid {
            orderId: field("order_id")?.parse()?,
            buyer: address_of("buyer")?,
            payToken: address_of("pay_token")?,
            amount: number("amount")?,
            firstTokenId: number("first_token_id")?,
            quantity: number("quantity")?,
        };
        let Some(order) = order_of(paid.orderId) else { return Ok(()) };
        let cause = format!("log:{}:{}", field("tx_hash")?, p["log_index"]);
        record(conn, order, &paid, &cause).await.map(drop)
    }
}

impl Subscriber for WalletPayments {
    fn name(&self) -> &'static str {
        "payment.wallet-payments"
    }
    fn event_types(&self) -> &'static [&'static str] {
        &["chain.order_paid.confirmed"]
    }
    fn handle<'a>(
        &'a self,
        event: &'a OutboxEvent,
        conn: &'a mut sqlx::PgConnection,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.handle_event(event, conn))
    }
}

/// Fulfils `order` paid by `paid`; `false` when already recorded or not ours to record.
async fn record(conn: &mut sqlx::PgConnection, order: Uuid, paid: &OrderPaid, cause: &str) -> anyhow::Result<bool> {
    let row = sqlx::query!(
        r#"SELECT o.id AS "id: OrderId", o.brand_id AS "brand_id: BrandId", o.state AS "state: OrderState", o.quantity,
                  q.amount::text AS "amount?", q.pay_token AS "pay_token?"
           FROM orders o LEFT JOIN fx_quotes q ON q.order_id = o.id WHERE o.public_id = $1 FOR UPDATE OF o"#,
        order
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        tracing::warn!(%order, "OrderPaid for an unknown order");
        return Ok(false);
    };
    // The contract only accepts our signed quote; a mismatch means the quote table and the
    // chain disagree, which an operator must look at.
    let expected = (row.amount.as_deref(), row.pay_token.as_deref(), i64::from(row.quantity));
    let seen =
        (Some(paid.amount.to_string()), Some(paid.payToken.as_slice()), i64::try_from(paid.quantity).unwrap_or(-1));
    if expected != (seen.0.as_deref(), seen.1, seen.2) {
        anyhow::bail!("order {order}: OrderPaid {paid:?} does not match its quote {expected:?}");
    }
    let extra = json!({ "first_token_id": paid.firstTokenId.to_string(), "buyer": paid.buyer,
                        "amount": paid.amount.to_string(), "pay_token": paid.payToken });
    let key = OrderKey { id: row.id, public_id: order, brand: row.brand_id };
    let moved = advance(conn, &key, OrderEvent::PaidOnChain, cause, "payment.wallet", extra).await?;
    if !moved && row.state != OrderState::Fulfilled {
        // Paid on chain after we expired it: the buyer holds the NFT and we hold the money.
        tracing::error!(%order, from = %row.state, "OrderPaid for an order that is no longer pending: reconcile by hand");
        return Ok(false);
    }
    let first: bigdecimal::BigDecimal = paid.firstTokenId.to_string().parse()?;
    sqlx::query!(
        "UPDATE orders SET first_token_id = $2, fulfilled_at = COALESCE(fulfilled_at, now()) WHERE id = $1",
        row.id.get(),
        first
    )
    .execute(&mut *conn)
    .await?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    #[test]
    fn order_ids_round_trip_through_bytes32() {
        let order = uuid::Uuid::new_v4();
        assert_eq!(super::order_of(super::chain_order_id(order)), Some(order));
        assert_eq!(super::order_of(alloy::primitives::B256::repeat_byte(1)), None);
    }
}

/// What the buyer's wallet sends: `Checkout.buy(quote, signature)` with `amount` as value (ETH)
/// or after approving `amount` of `pay_token`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct WalletPayment {
    /// The Checkout contract (EIP-55) and its chain.
    checkout: String,
    chain_id: i64,
    quote: QuoteView,
    /// 65-byte EIP-712 signature of the platform's quote signer, hex.
    signature: String,
    /// eth or stablecoin.
    asset: String,
    /// Fiat per whole unit of the asset (mid), its source and the spread applied.
    pub(crate) rate: String,
    pub(crate) source: String,
    spread_bps: i32,
    /// Always `up`: the amount is rounded up to the asset's smallest unit.
    rounding: String,
    fetched_at: chrono::DateTime<chrono::Utc>,
    /// The quote's deadline: after it the contract refuses it.
    pub(crate) expires_at: chrono::DateTime<chrono::Utc>,
    /// The transactions to send from the buyer's wallet, in order, as `eth_sendTransaction`
    /// takes them: for the stablecoin its `approve` of the checkout first, then `Checkout.buy`.
    pub(crate) transactions: Vec<WalletTransaction>,
}

impl WalletPayment {
    /// The quote's amount as a person reads it (`0.336667 ETH`, `25.25 USD stablecoin`).
    pub(crate) fn display_amount(&self) -> String {
        match self.asset.as_str() {
            "eth" => format!("{} ETH", shared::pages::amount(&self.quote.amount, 18)),
            _ => format!("{} USD stablecoin", shared::pages::amount(&self.quote.amount, 6)),
        }
    }
}

/// A transaction for the buyer's wallet to send.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct WalletTransaction {
    /// What it does, in words.
    purpose: String,
    to: String,
    /// Calldata, 0x-hex.
    data: String,
    /// Wei, 0x-hex (what `eth_sendTransaction` takes).
    value: String,
}

/// The EIP-712 `Quote` as the contract takes it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct QuoteView {
    order_id: String,
    buyer: String,
    collection: String,
    quantity: i32,
    pay_token: String,
    /// In the asset's smallest unit (wei / 6-decimal units), decimal.
    amount: String,
    /// Unix seconds.
    deadline: i64,
}

/// The wallet payment of order `id`, if it has one.
pub(crate) async fn view(
    conn: &mut sqlx::PgConnection,
    id: shared::ids::OrderId,
) -> sqlx::Result<Option<WalletPayment>> {
    let row = sqlx::query!(
        "SELECT q.asset, q.pay_token, q.amount::text AS \"amount!\", q.rate, q.source, q.spread_bps, q.rounding,
                q.fetched_at, q.expires_at, q.collection, q.checkout, q.chain_id, q.signature,
                o.public_id, o.wallet_address, o.quantity
         FROM fx_quotes q JOIN orders o ON o.id = q.order_id WHERE q.order_id = $1",
        id.get()
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|q| WalletPayment {
        transactions: transactions(&q.checkout, &q.pay_token, &q.amount, &q.signature, || Quote {
            orderId: chain_order_id(q.public_id),
            buyer: Address::from_slice(&q.wallet_address),
            collection: Address::from_slice(&q.collection),
            quantity: U256::from(u64::try_from(q.quantity).unwrap_or(0)),
            payToken: Address::from_slice(&q.pay_token),
            amount: q.amount.parse().unwrap_or_default(),
            deadline: U256::from(u64::try_from(q.expires_at.timestamp()).unwrap_or(0)),
        }),
        checkout: shared::chain::checksummed(&q.checkout),
        chain_id: q.chain_id,
        quote: QuoteView {
            order_id: chain_order_id(q.public_id).to_string(),
            buyer: shared::chain::checksummed(&q.wallet_address),
            collection: shared::chain::checksummed(&q.collection),
            quantity: q.quantity,
            pay_token: shared::chain::checksummed(&q.pay_token),
            amount: q.amount,
            deadline: q.expires_at.timestamp(),
        },
        signature: format!("0x{}", alloy::hex::encode(&q.signature)),
        asset: q.asset,
        rate: q.rate,
        source: q.source,
        spread_bps: q.spread_bps,
        rounding: q.rounding,
        fetched_at: q.fetched_at,
        expires_at: q.expires_at,
    }))
}

/// The buyer's transactions for a quote: approve the stablecoin (when it is not ETH), then buy.
fn transactions(
    checkout: &[u8],
    pay_token: &[u8],
    amount: &str,
    signature: &[u8],
    quote: impl FnOnce() -> Quote,
) -> Vec<WalletTransaction> {
    use alloy::sol_types::SolCall;
    let (checkout, token) = (Address::from_slice(checkout), Address::from_slice(pay_token));
    let amount: U256 = amount.parse().unwrap_or_default();
    let hex = |bytes: Vec<u8>| format!("0x{}", alloy::hex::encode(bytes));
    let buy = shared::contracts::Checkout::buyCall { quote: quote(), signature: signature.to_vec().into() };
    let mut calls = Vec::new();
    if !token.is_zero() {
        let approve = shared::contracts::TestStablecoin::approveCall { spender: checkout, value: amount };
        calls.push(WalletTransaction {
            purpose: "allow the checkout to take the price in stablecoin".into(),
            to: token.to_checksum(None),
            data: hex(approve.abi_encode()),
            value: "0x0".into(),
        });
    }
    calls.push(WalletTransaction {
        purpose: "pay and mint".into(),
        to: checkout.to_checksum(None),
        data: hex(buy.abi_encode()),
        value: format!("{:#x}", if token.is_zero() { amount } else { U256::ZERO }),
    });
    calls
}

/// How long after its quote's deadline a wallet order stays pending, so that a payment mined
/// just before the deadline is still seen by the watcher before the order expires.
const WATCH_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// Prices a new wallet order in crypto, signs its quote and announces the order, in one
/// transaction. Without a fresh, agreeing rate the buyer gets a 503 problem (and the caller
/// withdraws the order).
pub(crate) async fn quote(
    state: &shared::AppState,
    created: &crate::new_order::Created,
) -> shared::http::ApiResult<()> {
    let id = created.id.get();
    use crate::fx::{Asset, FxError};
    use alloy::primitives::U256;
    use shared::{
        contracts::{Checkout::Quote, ETH, QuoteSigner},
        http::ApiError,
        money::{Currency, Money},
    };
    let contracts = &state.config().chain.contracts;
    let unavailable = |detail: String| ApiError::Unavailable { detail, checks: None };
    let order = sqlx::query!(
        "SELECT o.public_id, o.total_minor, o.currency, o.quantity, o.wallet_address, o.brand_id,
                c.collection_address, c.chain_id
         FROM orders o JOIN campaigns c ON c.id = o.campaign_id WHERE o.id = $1",
        id
    )
    .fetch_one(state.db())
    .await?;
    let (asset, pay_token) = match created.method {
        shared::orders::PaymentMethod::Eth => (Asset::Eth, Some(ETH)),
        _ => (Asset::Stablecoin, contracts.stablecoin),
    };
    let setup = (
        contracts.checkout,
        contracts.quote_signer_key.as_ref(),
        pay_token,
        order.collection_address.as_deref().and_then(|b| alloy::primitives::Address::try_from(b).ok()),
        order.chain_id.and_then(|c| u64::try_from(c).ok()),
    );
    let (Some(checkout), Some(key), Some(pay_token), Some(collection), Some(chain_id)) = setup else {
        return Err(unavailable(
            "wallet payments are not available: the platform has no Checkout contract or quote signer".into(),
        ));
    };
    let currency: Currency = order.currency.parse()?;
    let fx = match state.part::<crate::Payments>()?.fx.quote(Money::new(order.total_minor, currency), asset).await {
        Ok(fx) => fx,
        Err(e) => {
            return Err(match e {
                FxError::UnsupportedCurrency(_) | FxError::InvalidPrice(_) => {
                    ApiError::Validation(vec![shared::http::FieldError::new("method", e.to_string())])
                }
                _ => unavailable(format!("no quote: {e}")),
            });
        }
    };
    let deadline = fx.expires_at.timestamp();
    let quote = Quote {
        orderId: chain_order_id(order.public_id),
        buyer: alloy::primitives::Address::try_from(order.wallet_address.as_slice())
            .map_err(|e| ApiError::Internal(e.into()))?,
        collection,
        quantity: U256::from(order.quantity),
        payToken: pay_token,
        amount: fx.amount.get(),
        deadline: U256::from(deadline),
    };
    let signer: alloy::signers::local::PrivateKeySigner =
        secrecy::ExposeSecret::expose_secret(key).parse().map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let signature =
        QuoteSigner::new(signer, chain_id, checkout).sign(&quote).await.map_err(|e| ApiError::Internal(e.into()))?;
    let amount: bigdecimal::BigDecimal =
        fx.amount.to_string().parse().map_err(|e: bigdecimal::ParseBigDecimalError| ApiError::Internal(e.into()))?;
    let mut tx = state.db().begin().await?;
    sqlx::query!(
        "INSERT INTO fx_quotes (order_id, asset, pay_token, amount, rate, source, spread_bps, rounding, fetched_at,
             expires_at, collection, checkout, chain_id, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'up', $8, $9, $10, $11, $12, $13)",
        id,
        created.method.as_str(),
        pay_token.as_slice(),
        amount,
        fx.rate.to_string(),
        serde_json::to_value(fx.source).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        i32::from(fx.spread_bps.get()),
        fx.fetched_at,
        fx.expires_at,
        collection.as_slice(),
        checkout.as_slice(),
        i64::try_from(chain_id).unwrap_or_default(),
        signature.as_ref()
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("UPDATE orders SET expires_at = $2 WHERE id = $1", id, fx.expires_at + WATCH_GRACE)
        .execute(&mut *tx)
        .await?;
    crate::new_order::announce(&mut tx, created).await?;
    tx.commit().await?;
    Ok(())
}

//! The queue's rows, as the sender reads and moves them.
//!
//! Every change the sender makes is conditional on the row's `revision` (and bumps it), and
//! each state change goes through the workflow engine ([`apply`]) in the same savepoint, so
//! the columns, the history and the `tx.*` outbox event commit together or not at all.

use alloy::primitives::{Address, B256, Bytes};
use serde_json::{Map, Value, json};
use sqlx::{Acquire, PgConnection};

use super::{Requester, Result, TxQueueError, sign::Fees, sign::Signed};
use crate::{
    money::Wei,
    workflow::{
        Transition, apply,
        machines::{ChainTx, TxEvent, TxState},
    },
};

/// Gas of a plain transfer: what a gap-filling or cancelling self-transfer needs.
pub(crate) const TRANSFER_GAS: i64 = 21_000;

/// Why a cancelled request failed (its `error`, and its `tx.failed` event's).
pub(crate) const CANCELLED: &str = "cancelled by an operator";

/// An attempt's purpose: the request's own call, or the 0-value self-transfer cancelling it.
pub(crate) const SEND: &str = "send";
pub(crate) const CANCEL: &str = "cancel";

// --- conversions between the database's integers and bytes and alloy's types ---------------

pub(crate) fn to_i64(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value).map_err(|_| TxQueueError::InvalidRequest(format!("{what} is too large")))
}

pub(crate) fn to_u64(id: i64, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| corrupt(id, format!("negative number {value}")))
}

fn corrupt(id: i64, problem: String) -> TxQueueError {
    TxQueueError::Corrupt { id, problem }
}

pub(crate) fn address(id: i64, bytes: &[u8]) -> Result<Address> {
    Address::try_from(bytes).map_err(|_| corrupt(id, format!("bad address {bytes:?}")))
}

pub(crate) fn opt_address(id: i64, bytes: Option<&[u8]>) -> Result<Option<Address>> {
    bytes.map(|b| address(id, b)).transpose()
}

pub(crate) fn b256(id: i64, bytes: &[u8]) -> Result<B256> {
    B256::try_from(bytes).map_err(|_| corrupt(id, format!("bad hash {bytes:?}")))
}

pub(crate) fn opt_b256(id: i64, bytes: Option<&[u8]>) -> Result<Option<B256>> {
    bytes.map(|b| b256(id, b)).transpose()
}

pub(crate) fn state(id: i64, name: &str) -> Result<TxState> {
    name.parse().map_err(|_| corrupt(id, format!("unknown state {name}")))
}

fn fee(id: i64, wei: Option<Wei>) -> Result<u128> {
    let wei = wei.ok_or_else(|| corrupt(id, "signed without fees".into()))?;
    u128::try_from(wei.get()).map_err(|_| corrupt(id, format!("fee {wei} out of range")))
}

pub(crate) fn fees(id: i64, max: Option<Wei>, priority: Option<Wei>) -> Result<Fees> {
    Ok(Fees { max_fee_per_gas: fee(id, max)?, max_priority_fee_per_gas: fee(id, priority)? })
}

fn wei(value: u128) -> Wei {
    Wei::from_u128(value)
}

// --- the rows -------------------------------------------------------------------------------

/// One signer on one chain: what a sender owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lane {
    pub(crate) chain_id: u64,
    pub(crate) signer: Address,
}

impl Lane {
    fn chain(&self) -> Result<i64> {
        to_i64(self.chain_id, "chain id")
    }

    fn signer(&self) -> &[u8] {
        self.signer.as_slice()
    }

    fn actor(&self) -> String {
        format!("daemon:tx-sender:{:#x}", self.signer)
    }
}

/// What every row the sender moves carries into its events.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) id: i64,
    pub(crate) revision: i32,
    pub(crate) key: String,
    pub(crate) kind: String,
    /// The [`super::Requester`] its outcome events are addressed to, by name.
    pub(crate) requester: String,
    pub(crate) context: Value,
    pub(crate) nonce: Option<u64>,
}

impl Head {
    /// A transaction's head from a row selecting `id, revision, idempotency_key, kind,
    /// requester, context, nonce`.
    pub(crate) fn from_row(r: &sqlx::postgres::PgRow) -> Result<Self> {
        use sqlx::Row;
        let id: i64 = r.try_get("id")?;
        let nonce: Option<i64> = r.try_get("nonce")?;
        Ok(Head {
            id,
            revision: r.try_get("revision")?,
            key: r.try_get("idempotency_key")?,
            kind: r.try_get("kind")?,
            requester: r.try_get("requester")?,
            context: r.try_get("context")?,
            nonce: nonce.map(|n| to_u64(id, n)).transpose()?,
        })
    }

    /// The event payload: who asked, for what, with which nonce and hash, plus `extra`.
    pub(crate) fn payload(&self, lane: &Lane, tx_hash: Option<B256>, extra: Value) -> Value {
        let mut body = Map::new();
        body.insert("idempotency_key".into(), json!(self.key));
        body.insert("kind".into(), json!(self.kind));
        body.insert("context".into(), self.context.clone());
        body.insert("chain_id".into(), json!(lane.chain_id));
        body.insert("signer".into(), json!(lane.signer));
        body.insert("nonce".into(), json!(self.nonce));
        body.insert("tx_hash".into(), json!(tx_hash));
        if let Value::Object(extra) = extra {
            body.extend(extra);
        }
        Value::Object(body)
    }

    fn cause(&self, event: TxEvent) -> String {
        let event: &'static str = event.into();
        format!("txqueue:{event}:r{}", self.revision)
    }
}

/// What a transaction does, as needed to sign it or replay it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) to: Option<Address>,
    pub(crate) value: Wei,
    pub(crate) data: Bytes,
    pub(crate) gas_limit: Option<u64>,
    /// An operator cancelled the request: this is the self-transfer that takes its nonce.
    pub(crate) cancel: bool,
}

impl Call {
    /// The 0-value self-transfer that uses a cancelled request's nonce.
    pub(crate) fn cancellation(signer: Address) -> Self {
        Self {
            to: Some(signer),
            value: Wei::ZERO,
            data: Bytes::new(),
            gas_limit: Some(TRANSFER_GAS.unsigned_abs()),
            cancel: true,
        }
    }

    /// The purpose of an attempt signing this call.
    pub(crate) fn purpose(&self) -> &'static str {
        if self.cancel { CANCEL } else { SEND }
    }
}

/// A request waiting for its first signature.
#[derive(Debug, Clone)]
pub(crate) struct Queued {
    pub(crate) head: Head,
    pub(crate) call: Call,
}

/// A signed request waiting to be (re-)broadcast.
#[derive(Debug, Clone)]
pub(crate) struct Unsent {
    pub(crate) head: Head,
    pub(crate) nonce: u64,
    pub(crate) tx_hash: B256,
    pub(crate) raw_tx: Vec<u8>,
    /// An earlier attempt reached the node (this one is a bump or a re-broadcast).
    pub(crate) was_broadcast: bool,
    pub(crate) fees: Fees,
}

/// A request the watcher follows: signed, broadcast or mined.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub(crate) head: Head,
    pub(crate) state: TxState,
    pub(crate) nonce: u64,
    pub(crate) tx_hash: B256,
    pub(crate) fees: Fees,
    /// The current attempt was last sent longer ago than the stuck threshold.
    pub(crate) stale: bool,
    pub(crate) confirmations: u64,
    pub(crate) mined: Option<Mined>,
}

/// A receipt, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mined {
    pub(crate) tx_hash: B256,
    pub(crate) block_number: u64,
    pub(crate) block_hash: B256,
    pub(crate) gas_used: u64,
    pub(crate) effective_gas_price: u128,
    pub(crate) success: bool,
    /// The mined attempt is an operator's cancellation, not the request's call.
    pub(crate) cancellation: bool,
}

impl Mined {
    fn payload(&self) -> Value {
        json!({
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "gas_used": self.gas_used,
            "effective_gas_price": self.effective_gas_price.to_string(),
            "success": self.success,
        })
    }
}

// --- nonces ---------------------------------------------------------------------------------

/// Creates the signer's nonce row, or raises it to `at_least` (the chain's pending count:
/// someone else may have used the account). Never lowers it.
pub(crate) async fn sync_next_nonce(conn: &mut PgConnection, lane: &Lane, at_least: u64) -> Result<u64> {
    let next = sqlx::query_scalar!(
        "INSERT INTO signer_nonces (chain_id, address, next_nonce) VALUES ($1, $2, $3)
         ON CONFLICT (chain_id, address) DO UPDATE
         SET next_nonce = GREATEST(signer_nonces.next_nonce, EXCLUDED.next_nonce),
             updated_at = CASE WHEN signer_nonces.next_nonce < EXCLUDED.next_nonce THEN now()
                               ELSE signer_nonces.updated_at END
         RETURNING next_nonce",
        lane.chain()?,
        lane.signer(),
        to_i64(at_least, "nonce")?
    )
    .fetch_one(conn)
    .await?;
    to_u64(0, next)
}

/// Locks the signer's nonce row for the rest of the transaction; returns the next nonce.
pub(crate) async fn lock_next_nonce(conn: &mut PgConnection, lane: &Lane) -> Result<u64> {
    let next = sqlx::query_scalar!(
        "SELECT next_nonce FROM signer_nonces WHERE chain_id = $1 AND address = $2 FOR UPDATE",
        lane.chain()?,
        lane.signer()
    )
    .fetch_one(conn)
    .await?;
    to_u64(0, next)
}

pub(crate) async fn set_next_nonce(conn: &mut PgConnection, lane: &Lane, next: u64) -> Result<()> {
    sqlx::query!(
        "UPDATE signer_nonces SET next_nonce = $3, updated_at = now()
         WHERE chain_id = $1 AND address = $2 AND next_nonce < $3",
        lane.chain()?,
        lane.signer(),
        to_i64(next, "nonce")?
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Nonces in `[from, next_nonce)` that no row holds: gaps that would stall every later nonce.
pub(crate) async fn missing_nonces(conn: &mut PgConnection, lane: &Lane, from: u64) -> Result<Vec<u64>> {
    let missing = sqlx::query_scalar!(
        r#"SELECT n AS "n!" FROM signer_nonces s, generate_series($3::bigint, s.next_nonce - 1) AS n
           WHERE s.chain_id = $1 AND s.address = $2
             AND NOT EXISTS (SELECT 1 FROM chain_transactions t
                             WHERE t.chain_id = $1 AND t.signer = $2 AND t.nonce = n)
           ORDER BY n"#,
        lane.chain()?,
        lane.signer(),
        to_i64(from, "nonce")?
    )
    .fetch_all(conn)
    .await?;
    missing.into_iter().map(|n| to_u64(0, n)).collect()
}

/// Gives `nonce` (held by a request that will never use it) to the oldest request still
/// waiting for one, or, when none waits, to a new 0-value self-transfer that fills it.
/// Returns the id of the request that now holds it.
pub(crate) async fn hand_over_nonce(conn: &mut PgConnection, lane: &Lane, nonce: u64) -> Result<i64> {
    let nonce = to_i64(nonce, "nonce")?;
    let recycled = sqlx::query_scalar!(
        "UPDATE chain_transactions SET nonce = $3, revision = revision + 1, updated_at = now()
         WHERE id = (SELECT id FROM chain_transactions
                     WHERE chain_id = $1 AND signer = $2 AND state = 'queued' AND nonce IS NULL
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING id",
        lane.chain()?,
        lane.signer(),
        nonce
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(id) = recycled {
        return Ok(id);
    }
    let key = format!("gap-fill:{}:{:#x}:{nonce}:{}", lane.chain_id, lane.signer, uuid::Uuid::new_v4().simple());
    let id = sqlx::query_scalar!(
        "INSERT INTO chain_transactions
             (idempotency_key, kind, chain_id, signer, to_address, value, calldata, gas_limit, confirmations, nonce)
         VALUES ($1, 'gap_fill', $2, $3, $3, 0, '\\x', $4, 1, $5)
         RETURNING id",
        key,
        lane.chain()?,
        lane.signer(),
        TRANSFER_GAS,
        nonce
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

// --- reading the working set ----------------------------------------------------------------

/// Requests waiting for a signature: those holding a handed-over nonce first, then by age.
pub(crate) async fn queued(conn: &mut PgConnection, lane: &Lane, limit: usize) -> Result<Vec<Queued>> {
    let rows = sqlx::query!(
        r#"SELECT id, revision, idempotency_key, kind, requester, context, nonce, to_address,
                  value AS "value: Wei", calldata, gas_limit
           FROM chain_transactions
           WHERE chain_id = $1 AND signer = $2 AND state = 'queued'
           ORDER BY nonce NULLS LAST, id
           LIMIT $3"#,
        lane.chain()?,
        lane.signer(),
        i64::try_from(limit).unwrap_or(i64::MAX)
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Queued {
                head: Head {
                    id: r.id,
                    revision: r.revision,
                    key: r.idempotency_key,
                    kind: r.kind,
                    requester: r.requester,
                    context: r.context,
                    nonce: r.nonce.map(|n| to_u64(r.id, n)).transpose()?,
                },
                call: Call {
                    to: opt_address(r.id, r.to_address.as_deref())?,
                    value: r.value,
                    data: Bytes::from(r.calldata),
                    gas_limit: r.gas_limit.map(|g| to_u64(r.id, g)).transpose()?,
                    cancel: false,
                },
            })
        })
        .collect()
}

/// Signed requests whose current attempt has not been handed to the node, by nonce.
pub(crate) async fn unsent(conn: &mut PgConnection, lane: &Lane, limit: usize) -> Result<Vec<Unsent>> {
    let rows = sqlx::query!(
        r#"SELECT id, revision, idempotency_key, kind, requester, context, nonce AS "nonce!", tx_hash AS "tx_hash!",
                  raw_tx AS "raw_tx!", broadcast_at IS NOT NULL AS "was_broadcast!",
                  max_fee_per_gas AS "max_fee_per_gas: Wei",
                  max_priority_fee_per_gas AS "max_priority_fee_per_gas: Wei"
           FROM chain_transactions
           WHERE chain_id = $1 AND signer = $2 AND state = 'signed'
           ORDER BY nonce
           LIMIT $3"#,
        lane.chain()?,
        lane.signer(),
        i64::try_from(limit).unwrap_or(i64::MAX)
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let nonce = to_u64(r.id, r.nonce)?;
            Ok(Unsent {
                head: Head {
                    id: r.id,
                    revision: r.revision,
                    key: r.idempotency_key,
                    kind: r.kind,
                    requester: r.requester,
                    context: r.context,
                    nonce: Some(nonce),
                },
                nonce,
                tx_hash: b256(r.id, &r.tx_hash)?,
                raw_tx: r.raw_tx,
                was_broadcast: r.was_broadcast,
                fees: fees(r.id, r.max_fee_per_gas, r.max_priority_fee_per_gas)?,
            })
        })
        .collect()
}

/// Everything signed and not final, by nonce.
pub(crate) async fn watched(
    conn: &mut PgConnection,
    lane: &Lane,
    stuck_after: std::time::Duration,
) -> Result<Vec<Watched>> {
    let rows = sqlx::query!(
        r#"SELECT id, revision, state, idempotency_key, kind, requester, context, nonce AS "nonce!", tx_hash AS "tx_hash!",
                  max_fee_per_gas AS "max_fee_per_gas: Wei",
                  max_priority_fee_per_gas AS "max_priority_fee_per_gas: Wei",
                  (last_sent_at IS NULL OR last_sent_at < now() - make_interval(secs => $3)) AS "stale!",
                  confirmations, block_number, block_hash, gas_used,
                  effective_gas_price AS "effective_gas_price: Wei", receipt_status
           FROM chain_transactions
           WHERE chain_id = $1 AND signer = $2 AND state IN ('signed', 'broadcast', 'mined')
           ORDER BY nonce"#,
        lane.chain()?,
        lane.signer(),
        stuck_after.as_secs_f64()
    )
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let id = r.id;
            let nonce = to_u64(id, r.nonce)?;
            let tx_hash = b256(id, &r.tx_hash)?;
            let mined = match (r.block_number, r.block_hash, r.gas_used, r.receipt_status) {
                (Some(number), Some(hash), Some(gas_used), Some(success)) => Some(Mined {
                    tx_hash,
                    block_number: to_u64(id, number)?,
                    block_hash: b256(id, &hash)?,
                    gas_used: to_u64(id, gas_used)?,
                    effective_gas_price: fee(id, r.effective_gas_price).unwrap_or(0),
                    success,
                    // Filled in by the watcher ([`cancellations`]) for the rows it follows.
                    cancellation: false,
                }),
                _ => None,
            };
            Ok(Watched {
                head: Head {
                    id,
                    revision: r.revision,
                    key: r.idempotency_key,
                    kind: r.kind,
                    requester: r.requester,
                    context: r.context,
                    nonce: Some(nonce),
                },
                state: state(id, &r.state)?,
                nonce,
                tx_hash,
                fees: fees(id, r.max_fee_per_gas, r.max_priority_fee_per_gas)?,
                stale: r.stale,
                confirmations: u64::try_from(r.confirmations).unwrap_or(1),
                mined,
            })
        })
        .collect()
}

/// Every attempt's hash of these requests, as `(request id, hash, is a cancellation)`.
pub(crate) async fn attempt_hashes(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<(i64, B256, bool)>> {
    let rows: Vec<(i64, Vec<u8>, bool)> = sqlx::query_as(
        "SELECT chain_transaction_id, tx_hash, purpose = 'cancel' FROM chain_transaction_attempts
         WHERE chain_transaction_id = ANY($1) ORDER BY id",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(|(id, hash, cancel)| Ok((id, b256(id, &hash)?, cancel))).collect()
}

/// Which of these requests' current attempt (the mined one, for mined rows) is a cancellation.
pub(crate) async fn cancellations(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT t.id FROM chain_transactions t JOIN chain_transaction_attempts a ON a.tx_hash = t.tx_hash
         WHERE t.id = ANY($1) AND a.purpose = 'cancel'",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?)
}

/// What each of these requests does, for re-signing or replaying it: its call, or for a request
/// an operator cancelled, the self-transfer that takes its nonce.
pub(crate) async fn calls(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<(i64, Call)>> {
    type Row = (i64, Vec<u8>, Option<Vec<u8>>, Wei, Vec<u8>, Option<i64>, bool);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, signer, to_address, value::numeric, calldata, gas_limit, operator_action IS NOT DISTINCT FROM 'cancel'
         FROM chain_transactions WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(id, signer, to, value, data, gas_limit, cancelled)| {
            let call = if cancelled {
                Call::cancellation(address(id, &signer)?)
            } else {
                Call {
                    to: opt_address(id, to.as_deref())?,
                    value,
                    data: Bytes::from(data),
                    gas_limit: gas_limit.map(|g| to_u64(id, g)).transpose()?,
                    cancel: false,
                }
            };
            Ok((id, call))
        })
        .collect()
}

/// The current attempt's signed bytes of these requests.
pub(crate) async fn raw_txs(conn: &mut PgConnection, ids: &[i64]) -> Result<Vec<(i64, Vec<u8>)>> {
    let rows = sqlx::query!(
        r#"SELECT id, raw_tx AS "raw_tx!" FROM chain_transactions WHERE id = ANY($1) AND raw_tx IS NOT NULL ORDER BY nonce"#,
        ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.raw_tx)).collect())
}

// --- moving rows ----------------------------------------------------------------------------

/// Applies `event` to the row in the savepoint `conn` holds, with `payload`.
pub(crate) async fn transition(
    conn: &mut PgConnection,
    lane: &Lane,
    head: &Head,
    event: TxEvent,
    payload: Value,
) -> Result<()> {
    let cause = head.cause(event);
    let actor = lane.actor();
    let mut transition = Transition::new(head.id, event, &cause, &actor).with_payload(payload);
    if head.requester != Requester::None.as_str() {
        transition = transition.addressed_to(&head.requester);
    }
    apply::<ChainTx>(conn, transition).await?;
    Ok(())
}

/// Records the first signature (the raw transaction and its hash) before anything is sent:
/// `queued → signed`. `false` when the row changed meanwhile (nothing was written).
pub(crate) async fn record_signed(
    conn: &mut PgConnection,
    lane: &Lane,
    row: &Queued,
    nonce: u64,
    gas_limit: u64,
    fees: Fees,
    signed: &Signed,
) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET nonce = $3, gas_limit = $4, max_fee_per_gas = $5, max_priority_fee_per_gas = $6,
             raw_tx = $7, tx_hash = $8, signed_at = now(), broadcast_errors = 0,
             revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state = 'queued'",
        row.head.id,
        row.head.revision,
        to_i64(nonce, "nonce")?,
        to_i64(gas_limit, "gas limit")?,
        wei(fees.max_fee_per_gas) as Wei,
        wei(fees.max_priority_fee_per_gas) as Wei,
        &signed.raw,
        signed.hash.as_slice()
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    insert_attempt(&mut sp, row.head.id, nonce, fees, signed, SEND).await?;
    let head = Head { nonce: Some(nonce), ..row.head.clone() };
    transition(&mut sp, lane, &head, TxEvent::Sign, head.payload(lane, Some(signed.hash), Value::Null)).await?;
    sp.commit().await?;
    Ok(true)
}

async fn insert_attempt(
    conn: &mut PgConnection,
    id: i64,
    nonce: u64,
    fees: Fees,
    signed: &Signed,
    purpose: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO chain_transaction_attempts
             (chain_transaction_id, nonce, tx_hash, raw_tx, max_fee_per_gas, max_priority_fee_per_gas, purpose)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(to_i64(nonce, "nonce")?)
    .bind(signed.hash.as_slice())
    .bind(&signed.raw)
    .bind(wei(fees.max_fee_per_gas))
    .bind(wei(fees.max_priority_fee_per_gas))
    .bind(purpose)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a new signature of the same nonce with other fees, before it is sent. With
/// `Some(Bump)` the row goes `broadcast → signed` (a stuck transaction); with `None` it stays
/// `signed` (its fees were refused before it ever reached the pool). `purpose`: whether the
/// signed call is the request's own or its cancellation.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_resigned(
    conn: &mut PgConnection,
    lane: &Lane,
    head: &Head,
    nonce: u64,
    fees: Fees,
    signed: &Signed,
    purpose: &str,
    event: Option<TxEvent>,
) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET max_fee_per_gas = $3, max_priority_fee_per_gas = $4, raw_tx = $5, tx_hash = $6,
             revision = revision + 1
         WHERE id = $1 AND revision = $2",
        head.id,
        head.revision,
        wei(fees.max_fee_per_gas) as Wei,
        wei(fees.max_priority_fee_per_gas) as Wei,
        &signed.raw,
        signed.hash.as_slice()
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    insert_attempt(&mut sp, head.id, nonce, fees, signed, purpose).await?;
    if let Some(event) = event {
        let extra = json!({
            "max_fee_per_gas": fees.max_fee_per_gas.to_string(),
            "max_priority_fee_per_gas": fees.max_priority_fee_per_gas.to_string(),
        });
        transition(&mut sp, lane, head, event, head.payload(lane, Some(signed.hash), extra)).await?;
    }
    sp.commit().await?;
    Ok(true)
}

/// The node has the current attempt (or a reason to believe it may be mined): `signed →
/// broadcast`, and the stuck timer starts now.
pub(crate) async fn record_broadcast(
    conn: &mut PgConnection,
    lane: &Lane,
    row: &Unsent,
    note: Option<&str>,
) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET broadcast_at = COALESCE(broadcast_at, now()), last_sent_at = now(), broadcast_errors = 0,
             revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state = 'signed'",
        row.head.id,
        row.head.revision
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    let extra = note.map_or(Value::Null, |note| json!({ "note": note }));
    transition(&mut sp, lane, &row.head, TxEvent::Broadcast, row.head.payload(lane, Some(row.tx_hash), extra)).await?;
    sp.commit().await?;
    Ok(true)
}

/// Counts a failed broadcast that may succeed later; the row stays as it is.
pub(crate) async fn record_send_error(conn: &mut PgConnection, id: i64, error: &str) -> Result<()> {
    sqlx::query!(
        "UPDATE chain_transactions SET broadcast_errors = broadcast_errors + 1, error = $2 WHERE id = $1",
        id,
        error
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The current attempt was sent again as it is (no bump possible under the fee cap).
pub(crate) async fn record_resent(conn: &mut PgConnection, id: i64) -> Result<()> {
    sqlx::query!("UPDATE chain_transactions SET last_sent_at = now() WHERE id = $1", id).execute(conn).await?;
    Ok(())
}

/// Fails a request that never reached the chain (`queued`/`signed → failed`) and hands its
/// nonce, if it had one, to the next request or to a gap filler.
pub(crate) async fn fail_unsent(
    conn: &mut PgConnection,
    lane: &Lane,
    head: &Head,
    error: &str,
    revert_reason: Option<&str>,
) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET nonce = NULL, error = $3, revert_reason = $4, finished_at = now(), revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state IN ('queued', 'signed')",
        head.id,
        head.revision,
        error,
        revert_reason
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    let mut extra = json!({ "error": error, "revert_reason": revert_reason });
    if let Some(nonce) = head.nonce {
        let holder = hand_over_nonce(&mut sp, lane, nonce).await?;
        extra["nonce_handed_to"] = json!(holder);
    }
    transition(&mut sp, lane, head, TxEvent::Fail, head.payload(lane, None, extra)).await?;
    sp.commit().await?;
    Ok(true)
}

/// Its nonce was used by a transaction the queue did not send: `signed`/`broadcast → queued`
/// without a nonce, to be signed again with a fresh one.
pub(crate) async fn requeue(conn: &mut PgConnection, lane: &Lane, row: &Watched) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET nonce = NULL, raw_tx = NULL, tx_hash = NULL, max_fee_per_gas = NULL, max_priority_fee_per_gas = NULL,
             broadcast_at = NULL, last_sent_at = NULL, signed_at = NULL,
             error = 'nonce used by a transaction sent outside the queue', revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state IN ('signed', 'broadcast')",
        row.head.id,
        row.head.revision
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    let extra = json!({ "error": "nonce used by a transaction sent outside the queue" });
    transition(&mut sp, lane, &row.head, TxEvent::Requeue, row.head.payload(lane, Some(row.tx_hash), extra)).await?;
    sp.commit().await?;
    Ok(true)
}

/// A receipt was found (`signed`/`broadcast → mined`): the mined attempt becomes the current
/// one, so a reorg re-broadcasts exactly it.
pub(crate) async fn record_mined(
    conn: &mut PgConnection,
    lane: &Lane,
    row: &Watched,
    mined: &Mined,
) -> Result<Option<Head>> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET tx_hash = $3,
             raw_tx = (SELECT raw_tx FROM chain_transaction_attempts WHERE tx_hash = $3),
             max_fee_per_gas = (SELECT max_fee_per_gas FROM chain_transaction_attempts WHERE tx_hash = $3),
             max_priority_fee_per_gas = (SELECT max_priority_fee_per_gas FROM chain_transaction_attempts WHERE tx_hash = $3),
             block_number = $4, block_hash = $5, gas_used = $6, effective_gas_price = $7,
             receipt_status = $8, mined_at = now(), error = NULL, revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state IN ('signed', 'broadcast')",
        row.head.id,
        row.head.revision,
        mined.tx_hash.as_slice(),
        to_i64(mined.block_number, "block number")?,
        mined.block_hash.as_slice(),
        to_i64(mined.gas_used, "gas used")?,
        wei(mined.effective_gas_price) as Wei,
        mined.success
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(None);
    }
    transition(&mut sp, lane, &row.head, TxEvent::Mine, row.head.payload(lane, Some(mined.tx_hash), mined.payload()))
        .await?;
    sp.commit().await?;
    Ok(Some(Head { revision: row.head.revision + 1, ..row.head.clone() }))
}

/// The receipt is `confirmations` deep on the canonical chain: `mined → confirmed` (status 1)
/// or `mined → failed` (status 0, with the revert reason when the replay gives one; or the
/// operator's cancellation was mined in its place: `cancel`).
pub(crate) async fn record_final(
    conn: &mut PgConnection,
    lane: &Lane,
    head: &Head,
    mined: &Mined,
    revert: Option<(&str, Option<&Bytes>)>,
) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let error = if mined.cancellation { Some(CANCELLED) } else { (!mined.success).then_some("reverted") };
    let reason = revert.map(|(reason, _)| reason);
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET finished_at = now(), error = $3, revert_reason = $4, revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state = 'mined'",
        head.id,
        head.revision,
        error,
        reason
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    let mut extra = mined.payload();
    extra["error"] = json!(error);
    extra["revert_reason"] = json!(reason);
    extra["revert_data"] = json!(revert.and_then(|(_, data)| data));
    let event = match (mined.cancellation, mined.success) {
        (true, _) => TxEvent::Cancel,
        (false, true) => TxEvent::Confirm,
        (false, false) => TxEvent::Revert,
    };
    extra["cancelled"] = json!(mined.cancellation);
    // After a deep reorg the requester was told an outcome already: the same again is not
    // announced to it twice (the event is plain `tx.<state>`); a different one is.
    let outcome = if event == TxEvent::Confirm { "confirmed" } else { "failed" };
    let told: Option<String> = sqlx::query_scalar("SELECT reported_outcome FROM chain_transactions WHERE id = $1")
        .bind(head.id)
        .fetch_one(&mut *sp)
        .await?;
    let announced = if told.as_deref() == Some(outcome) {
        extra["repeated"] = json!(true);
        Head { requester: Requester::None.as_str().to_owned(), ..head.clone() }
    } else {
        head.clone()
    };
    sqlx::query("UPDATE chain_transactions SET reported_outcome = $2 WHERE id = $1")
        .bind(head.id)
        .bind(outcome)
        .execute(&mut *sp)
        .await?;
    transition(&mut sp, lane, &announced, event, head.payload(lane, Some(mined.tx_hash), extra)).await?;
    sp.commit().await?;
    Ok(true)
}

/// The mined transaction is in another block now (re-included by the reorg): follow it there.
pub(crate) async fn record_moved(conn: &mut PgConnection, head: &Head, mined: &Mined) -> Result<bool> {
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET block_number = $3, block_hash = $4, gas_used = $5, receipt_status = $6, revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state = 'mined'",
        head.id,
        head.revision,
        to_i64(mined.block_number, "block number")?,
        mined.block_hash.as_slice(),
        to_i64(mined.gas_used, "gas used")?,
        mined.success
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// The block holding it was orphaned and the transaction is gone: `mined → signed`, to be
/// broadcast again (the same signed bytes).
pub(crate) async fn record_reorg(conn: &mut PgConnection, lane: &Lane, head: &Head, mined: &Mined) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query!(
        "UPDATE chain_transactions
         SET block_number = NULL, block_hash = NULL, gas_used = NULL, effective_gas_price = NULL,
             receipt_status = NULL, mined_at = NULL, revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state = 'mined'",
        head.id,
        head.revision
    )
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    let extra = json!({ "orphaned_block_number": mined.block_number, "orphaned_block_hash": mined.block_hash });
    transition(&mut sp, lane, head, TxEvent::Reorg, head.payload(lane, Some(mined.tx_hash), extra)).await?;
    sp.commit().await?;
    Ok(true)
}

// --- after the outcome: finality -------------------------------------------------------------

/// A request with an outcome from a receipt (confirmed, reverted or cancelled) whose block is
/// not finalized yet: a reorg deeper than its confirmations may still remove it.
#[derive(Debug, Clone)]
pub(crate) struct Settled {
    pub(crate) head: Head,
    pub(crate) mined: Mined,
}

/// The lane's settled requests not finalized yet, oldest block first.
pub(crate) async fn unfinalized(conn: &mut PgConnection, lane: &Lane, limit: i64) -> Result<Vec<Settled>> {
    let rows = sqlx::query(
        "SELECT id, revision, idempotency_key, kind, requester, context, nonce, tx_hash, block_number, block_hash,
                gas_used, effective_gas_price::numeric AS effective_gas_price, receipt_status
         FROM chain_transactions
         WHERE chain_id = $1 AND signer = $2 AND state IN ('confirmed', 'failed') AND finalized_at IS NULL
           AND block_number IS NOT NULL AND block_hash IS NOT NULL AND tx_hash IS NOT NULL
         ORDER BY block_number, id
         LIMIT $3",
    )
    .bind(lane.chain()?)
    .bind(lane.signer())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            use sqlx::Row;
            let head = Head::from_row(&r)?;
            let id = head.id;
            let gas_used: Option<i64> = r.try_get("gas_used")?;
            let price: Option<Wei> = r.try_get("effective_gas_price")?;
            Ok(Settled {
                head,
                mined: Mined {
                    tx_hash: b256(id, r.try_get::<&[u8], _>("tx_hash")?)?,
                    block_number: to_u64(id, r.try_get("block_number")?)?,
                    block_hash: b256(id, r.try_get::<&[u8], _>("block_hash")?)?,
                    gas_used: gas_used.map(|g| to_u64(id, g)).transpose()?.unwrap_or(0),
                    effective_gas_price: fee(id, price).unwrap_or(0),
                    success: r.try_get::<Option<bool>, _>("receipt_status")?.unwrap_or(false),
                    cancellation: false,
                },
            })
        })
        .collect()
}

/// Their blocks are at or below the chain's finalized block: never looked at again.
pub(crate) async fn mark_finalized(conn: &mut PgConnection, ids: &[i64]) -> Result<u64> {
    let updated = sqlx::query(
        "UPDATE chain_transactions SET finalized_at = now() WHERE id = ANY($1) AND finalized_at IS NULL
           AND state IN ('confirmed', 'failed')",
    )
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected())
}

/// A reorg moved a settled transaction into another block: follow it there (the outcome stands).
pub(crate) async fn record_settled_moved(conn: &mut PgConnection, head: &Head, mined: &Mined) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE chain_transactions SET block_number = $3, block_hash = $4, gas_used = $5, revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state IN ('confirmed', 'failed') AND finalized_at IS NULL",
    )
    .bind(head.id)
    .bind(head.revision)
    .bind(to_i64(mined.block_number, "block number")?)
    .bind(mined.block_hash.as_slice())
    .bind(to_i64(mined.gas_used, "gas used")?)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// A reorg deeper than its confirmations removed a settled transaction before its block was
/// finalized: `confirmed`/`failed → signed` (`deep_reorg`), to broadcast the mined attempt's
/// signed bytes again (same nonce, same hash). Its requester is not told (the event is plain
/// `tx.signed`); it hears again only if the new outcome differs from the one it was told.
pub(crate) async fn record_deep_reorg(
    conn: &mut PgConnection,
    lane: &Lane,
    head: &Head,
    mined: &Mined,
) -> Result<bool> {
    let mut sp = conn.begin().await?;
    let updated = sqlx::query(
        "UPDATE chain_transactions
         SET block_number = NULL, block_hash = NULL, gas_used = NULL, effective_gas_price = NULL,
             receipt_status = NULL, mined_at = NULL, finished_at = NULL, error = NULL, revert_reason = NULL,
             last_sent_at = NULL, deep_reorgs = deep_reorgs + 1, revision = revision + 1
         WHERE id = $1 AND revision = $2 AND state IN ('confirmed', 'failed') AND finalized_at IS NULL",
    )
    .bind(head.id)
    .bind(head.revision)
    .execute(&mut *sp)
    .await?;
    if updated.rows_affected() == 0 {
        sp.rollback().await?;
        return Ok(false);
    }
    let extra = json!({
        "deep_reorg": true,
        "orphaned_block_number": mined.block_number,
        "orphaned_block_hash": mined.block_hash,
    });
    let unaddressed = Head { requester: Requester::None.as_str().to_owned(), ..head.clone() };
    transition(&mut sp, lane, &unaddressed, TxEvent::DeepReorg, head.payload(lane, Some(mined.tx_hash), extra)).await?;
    sp.commit().await?;
    Ok(true)
}

//! The sender of one signer: one active instance across all replicas (a PostgreSQL advisory
//! lock per chain and signer), running two loops over the signer's rows until shutdown:
//!
//! * **send** ([`broadcast`](super::broadcast)): sign queued requests with nonces assigned from
//!   the database in ranges, store them, broadcast everything signed but not yet sent;
//! * **watch** ([`watch`](super::watch)): receipts, confirmations, reorgs, stuck transactions
//!   and nonce gaps.
//!
//! Nothing lives only in memory: a sender that is killed at any point and started again (here
//! or on another replica) resumes from the rows — signed-but-unsent transactions are sent again
//! (the node answers "already known" or "nonce too low" when the first send went through) and
//! broadcast ones are watched.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, keccak256},
    providers::DynProvider,
    signers::local::PrivateKeySigner,
};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool, postgres::PgListener};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    CHANNEL, Result,
    rpc::Rpc,
    sign::{Fees, Signed, Unsigned, sign},
    store::{self, Call, Lane},
    submit::notify_payload,
    watch::WatchState,
};
use crate::errors;

/// How the sender paces itself and prices its transactions.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// How often the chain is looked at (receipts, confirmations, stuck transactions) and
    /// failed sends are retried. New requests are picked up at once (`LISTEN`).
    pub poll_interval: Duration,
    /// When the signer's nonce has not moved for this long while transactions wait, those sent
    /// at least this long ago are re-signed with higher fees.
    pub stuck_after: Duration,
    /// How much a re-sign raises both fee fields, in percent; at least 10 (what nodes require
    /// of a replacement).
    pub fee_bump_percent: u32,
    /// The most the signer ever offers per gas (wei); `None`: no cap. At the cap a stuck
    /// transaction is sent again as it is.
    pub max_fee_per_gas: Option<u128>,
    /// Gas estimates are raised by this much, in percent, to absorb state changes between the
    /// estimate and the block.
    pub gas_margin_percent: u32,
    /// Requests signed (nonces assigned) per database transaction.
    pub batch_size: usize,
    /// The bound on every node call.
    pub rpc_timeout: Duration,
    /// After the node says the signer cannot pay: wait this long before sending again.
    pub funds_retry: Duration,
    /// Below what the signer's balance raises `signer.balance_low` (and, back above it,
    /// `signer.balance_ok`), before the node starts refusing its transactions.
    pub low_balance: LowBalance,
    /// How often the signer's balance is read.
    pub balance_check_interval: Duration,
}

/// When a signer's balance counts as low.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowBalance {
    /// Below this many wei.
    Wei(u128),
    /// Below what this many transactions cost at the current max fee per gas, counting
    /// [`LowBalance::GAS_PER_TRANSACTION`] gas each (a contract call of the platform's sort).
    Transactions(u64),
}

impl LowBalance {
    /// The gas one transaction is counted at by [`LowBalance::Transactions`].
    pub const GAS_PER_TRANSACTION: u64 = 300_000;
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            stuck_after: Duration::from_secs(120),
            fee_bump_percent: 20,
            max_fee_per_gas: None,
            gas_margin_percent: 20,
            batch_size: 200,
            rpc_timeout: Duration::from_secs(10),
            funds_retry: Duration::from_secs(30),
            low_balance: LowBalance::Transactions(50),
            balance_check_interval: Duration::from_secs(30),
        }
    }
}

/// Sends the queued transactions of one signer; see the [module](super) documentation.
#[derive(Debug)]
pub struct TxSender {
    pool: PgPool,
    provider: DynProvider,
    signer: PrivateKeySigner,
    config: SenderConfig,
}

impl TxSender {
    /// `provider` reaches the chain; any provider works (its fillers are not used: the sender
    /// sets every field itself and sends raw transactions).
    pub fn new(pool: PgPool, provider: DynProvider, signer: PrivateKeySigner, mut config: SenderConfig) -> Self {
        config.fee_bump_percent = config.fee_bump_percent.max(10);
        config.batch_size = config.batch_size.max(1);
        Self { pool, provider, signer, config }
    }

    /// The signer's address: requests with this `signer` are this sender's.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Runs until `shutdown`: waits for the signer's lock (another replica may hold it), then
    /// sends and watches. Failures are logged, recorded in the error log and retried; it
    /// returns only on shutdown.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Self { pool, provider, signer, config } = self;
        let rpc = Rpc::new(provider, config.rpc_timeout);
        let chain_id = loop {
            match rpc.chain_id().await {
                Ok(id) => break id,
                Err(e) => tracing::warn!(error = %e, "tx sender: chain unreachable"),
            }
            if pause(&shutdown, config.poll_interval).await {
                return Ok(());
            }
        };
        let worker = Worker {
            lane: Lane { chain_id, signer: signer.address() },
            pool,
            rpc,
            signer,
            config,
            paused_until: Mutex::new(None),
        };
        loop {
            let lock = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                lock = worker.lock() => lock,
            };
            tracing::info!(signer = %worker.lane.signer, chain_id, "tx sender active");
            if let Err(e) = worker.work(lock, &shutdown).await {
                worker.report("start_failed", &e.to_string(), Value::Null).await;
            }
            if pause(&shutdown, worker.config.poll_interval).await {
                return Ok(());
            }
        }
    }
}

/// Sleeps, or returns `true` at once on shutdown.
async fn pause(shutdown: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

/// A running sender: what both loops share.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) pool: PgPool,
    pub(crate) rpc: Rpc,
    pub(crate) signer: PrivateKeySigner,
    pub(crate) lane: Lane,
    pub(crate) config: SenderConfig,
    /// Set when the node said the signer cannot pay.
    paused_until: Mutex<Option<Instant>>,
}

impl Worker {
    /// Signs a stored call at `nonce` with this worker's key: first signatures and fee-bumped
    /// re-signatures alike.
    pub(crate) fn sign_call(&self, call: &Call, nonce: u64, gas_limit: u64, fees: Fees) -> Result<Signed> {
        let unsigned = Unsigned {
            chain_id: self.lane.chain_id,
            nonce,
            gas_limit,
            fees,
            to: call.to,
            value: call.value.get(),
            input: call.data.clone(),
        };
        Ok(sign(&self.signer, &unsigned)?)
    }

    fn lock_key(&self) -> i64 {
        let digest = keccak256(format!("brandmint:txqueue:{}:{:#x}", self.lane.chain_id, self.lane.signer));
        let mut first = [0_u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_be_bytes(first)
    }

    /// Waits until this process holds the signer's advisory lock, on a connection of its own
    /// (not the pool's: the lock lives as long as the connection, and ends with it when the
    /// process dies).
    async fn lock(&self) -> PgConnection {
        loop {
            match self.try_lock().await {
                Ok(Some(conn)) => return conn,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "tx sender: cannot take the signer lock"),
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    async fn try_lock(&self) -> sqlx::Result<Option<PgConnection>> {
        let mut conn = PgConnection::connect_with(&self.pool.connect_options()).await?;
        let locked =
            sqlx::query_scalar!("SELECT pg_try_advisory_lock($1)", self.lock_key()).fetch_one(&mut conn).await?;
        if locked == Some(true) {
            Ok(Some(conn))
        } else {
            conn.close().await?;
            Ok(None)
        }
    }

    /// Resumes from the rows and runs both loops until shutdown or until the lock is lost.
    async fn work(&self, mut lock: PgConnection, shutdown: &CancellationToken) -> Result<()> {
        // Never hand out a nonce the account has already used (outside the queue, or before
        // this database was restored).
        let pending = self.rpc.pending_nonce(self.lane.signer).await?;
        let mut conn = self.pool.acquire().await?;
        store::sync_next_nonce(&mut conn, &self.lane, pending).await?;
        drop(conn);
        let wake = Notify::new();
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = self.send_loop(&wake) => {}
            () = self.watch_loop(&wake) => {}
            () = hold(&mut lock, self.config.poll_interval.max(Duration::from_secs(5))) => {
                tracing::warn!(signer = %self.lane.signer, "tx sender lost its lock; stopping until it has it again");
            }
        }
        drop(lock.close().await);
        Ok(())
    }

    async fn send_loop(&self, wake: &Notify) {
        let mut listener = match PgListener::connect_with(&self.pool).await {
            Ok(mut listener) => listener.listen(CHANNEL).await.map(|()| listener).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "tx sender: LISTEN unavailable; polling only");
                None
            }
        };
        let mine = notify_payload(self.lane.chain_id, self.lane.signer);
        loop {
            match self.send_pass().await {
                Ok(0) => {}
                // There may be more: go again at once.
                Ok(_) => continue,
                Err(e) => {
                    self.report("send_failed", &e.to_string(), Value::Null).await;
                }
            }
            let notified = async {
                match listener.as_mut() {
                    Some(listener) => loop {
                        match listener.recv().await {
                            Ok(n) if n.payload() == mine => {
                                // One pass serves every request queued so far.
                                while listener.next_buffered().is_some() {}
                                return;
                            }
                            Ok(_) => {}
                            Err(_) => std::future::pending::<()>().await,
                        }
                    },
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wake.notified() => {}
                () = notified => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    async fn send_pass(&self) -> Result<usize> {
        if self.paused() {
            return Ok(0);
        }
        let mut progressed = self.operator_actions().await?;
        progressed += self.broadcast_unsent().await?;
        let signed = self.sign_queued().await?;
        if signed > 0 {
            progressed += signed + self.broadcast_unsent().await?;
        }
        Ok(progressed)
    }

    async fn watch_loop(&self, wake: &Notify) {
        let mut state = WatchState::default();
        let mut balance_checked: Option<Instant> = None;
        loop {
            if balance_checked.is_none_or(|at| at.elapsed() >= self.config.balance_check_interval) {
                balance_checked = Some(Instant::now());
                if let Err(e) = self.check_balance().await {
                    self.report("balance_check_failed", &e.to_string(), Value::Null).await;
                }
            }
            match self.watch_pass(&mut state).await {
                Ok(true) => wake.notify_one(),
                Ok(false) => {}
                Err(e) => {
                    self.report("watch_failed", &e.to_string(), Value::Null).await;
                }
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    pub(crate) fn paused(&self) -> bool {
        let mut paused = self.paused_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *paused {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                *paused = None;
                false
            }
            None => false,
        }
    }

    /// The node says the signer cannot pay: stop sending (nonces stay with their requests)
    /// and raise the alarm.
    pub(crate) async fn pause_for_funds(&self, detail: &str) {
        {
            let mut paused = self.paused_until.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            *paused = Some(Instant::now() + self.config.funds_retry);
        }
        self.report(
            "insufficient_funds",
            "the signer cannot pay for its transactions; sending is paused",
            json!({ "detail": detail, "retry_in_secs": self.config.funds_retry.as_secs_f64() }),
        )
        .await;
    }

    /// Logs a problem once and records it in the error log (counted per distinct message).
    pub(crate) async fn report(&self, kind: &str, message: &str, context: Value) {
        tracing::warn!(signer = %self.lane.signer, chain_id = self.lane.chain_id, kind, %context, "tx sender: {message}");
        let mut body = json!({ "chain_id": self.lane.chain_id, "signer": self.lane.signer });
        if let (Value::Object(extra), Some(body)) = (context, body.as_object_mut()) {
            body.extend(extra);
        }
        let recorded = match self.pool.acquire().await {
            Ok(mut conn) => {
                errors::record(
                    &mut conn,
                    errors::ErrorRecord {
                        source: "daemon:tx-sender",
                        kind,
                        message,
                        context: body,
                        correlation_id: None,
                    },
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "tx sender: cannot write the error log");
        }
    }
}

/// Keeps the lock connection alive; returns when it fails (the lock is then gone).
async fn hold(lock: &mut PgConnection, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if lock.ping().await.is_err() {
            return;
        }
    }
}

//! The persisted chain transaction queue against PostgreSQL and anvil.
//!
//! Tests that only send transactions use the shared anvil (`RPC_URL`) with a fresh random
//! signer each, funded with `anvil_setBalance`, so they never share a nonce sequence. Tests that
//! change how the chain behaves (mining off, base fee, reorgs) start an anvil of their own.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use alloy::{
    node_bindings::{Anvil, AnvilInstance},
    primitives::{Address, B256, Bytes, U256, hex},
    providers::{DynProvider, Provider, ProviderBuilder, ext::AnvilApi},
    rpc::types::anvil::ReorgOptions,
    signers::local::PrivateKeySigner,
};
use serde_json::{Value, json};
use shared::{
    chain::txqueue::{self, ChainTxId, ChainTxView, IdempotencyKey, SenderConfig, TxQueueError, TxRequest, TxSender},
    db,
    money::Wei,
    workflow::machines::TxState,
};
use sqlx::{PgPool, postgres::PgPoolOptions};
use testkit::{
    TestDb,
    proxy::{Hold, RpcProxy},
    required_env,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const ETHER: u128 = 1_000_000_000_000_000_000;

async fn pool() -> PgPool {
    let test_db = TestDb::create().await;
    let pool = PgPoolOptions::new().max_connections(20).connect(&test_db.url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    pool
}

fn provider(url: &str) -> DynProvider {
    shared::chain::install_crypto_provider();
    ProviderBuilder::new().connect_http(url.parse().unwrap()).erased()
}

/// The anvil every test shares; only send transactions to it.
fn shared_chain() -> DynProvider {
    provider(&required_env("RPC_URL"))
}

/// An anvil of this test's own, for changing how the chain behaves.
fn own_chain() -> (AnvilInstance, DynProvider) {
    let anvil = Anvil::at(required_env("ANVIL_BIN")).try_spawn().unwrap();
    let provider = provider(&anvil.endpoint());
    (anvil, provider)
}

async fn funded_signer(chain: &DynProvider) -> PrivateKeySigner {
    let signer = PrivateKeySigner::random();
    chain.anvil_set_balance(signer.address(), U256::from(100 * ETHER)).await.unwrap();
    signer
}

/// Fast pacing for tests.
fn config() -> SenderConfig {
    SenderConfig {
        poll_interval: Duration::from_millis(50),
        stuck_after: Duration::from_secs(30),
        rpc_timeout: Duration::from_secs(10),
        funds_retry: Duration::from_millis(200),
        ..SenderConfig::default()
    }
}

/// A sender running in the background of a test.
struct Running {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    fn start(pool: &PgPool, chain: &DynProvider, signer: PrivateKeySigner, config: SenderConfig) -> Self {
        let shutdown = CancellationToken::new();
        let sender = TxSender::new(pool.clone(), chain.clone(), signer, config);
        let task = tokio::spawn(sender.run(shutdown.clone()));
        Self { shutdown, task }
    }

    /// Stops it gracefully.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }

    /// Kills it wherever it is (as a crash would: nothing after the current await runs).
    async fn kill(self) {
        self.task.abort();
        assert!(self.task.await.unwrap_err().is_cancelled());
    }
}

/// Polls `probe` until it yields a value; fails the test after `timeout`.
async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn view(pool: &PgPool, id: ChainTxId) -> ChainTxView {
    let mut conn = pool.acquire().await.unwrap();
    txqueue::get(&mut conn, id).await.unwrap().unwrap()
}

/// Waits until the request is final; returns it.
async fn finished(pool: &PgPool, id: ChainTxId, timeout: Duration) -> ChainTxView {
    eventually("the transaction to be final", timeout, || async {
        let tx = view(pool, id).await;
        matches!(tx.state, TxState::Confirmed | TxState::Failed).then_some(tx)
    })
    .await
}

async fn wait_for_state(pool: &PgPool, id: ChainTxId, state: TxState) -> ChainTxView {
    eventually(&format!("state {state:?}"), Duration::from_secs(20), || async {
        let tx = view(pool, id).await;
        (tx.state == state).then_some(tx)
    })
    .await
}

/// A fresh address nobody uses.
fn somebody() -> Address {
    PrivateKeySigner::random().address()
}

fn key(key: &str) -> IdempotencyKey {
    IdempotencyKey::new(key).unwrap()
}

fn transfer(key_: &str, chain_id: u64, signer: Address, to: Address, wei: u128) -> TxRequest {
    TxRequest::call(key(key_), chain_id, signer, to, Bytes::new()).with_value(Wei::from_u128(wei))
}

async fn enqueue(pool: &PgPool, request: &TxRequest) -> ChainTxId {
    let mut conn = pool.acquire().await.unwrap();
    txqueue::enqueue(&mut conn, request).await.unwrap().id
}

async fn events(pool: &PgPool, event_type: &str) -> Vec<Value> {
    sqlx::query_scalar("SELECT payload FROM outbox_events WHERE event_type = $1 ORDER BY id")
        .bind(event_type)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn transitions(pool: &PgPool, id: ChainTxId) -> Vec<String> {
    sqlx::query_scalar("SELECT event FROM state_transitions WHERE machine = 'tx' AND entity_id = $1 ORDER BY id")
        .bind(id.get())
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_hundred_concurrent_requests_from_one_signer_confirm_with_contiguous_nonces_and_no_duplicates() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let recipient = somebody();
    // Nothing here is stuck: with automine every broadcast is mined at once. But on a loaded
    // machine the 200 requests can take longer than `config()`'s 30 s stuck threshold to go
    // through (the nonce then "stands still" between two watch passes), and the watcher would
    // bump fees or look for gaps, giving a request a second attempt the assertions below rule
    // out. This test's threshold is far beyond its own deadline, so a bump cannot happen.
    let sender =
        Running::start(&pool, &chain, signer, SenderConfig { stuck_after: Duration::from_secs(3_600), ..config() });

    // Each request in its own database transaction, as requesters would; gas is estimated.
    let submissions: Vec<_> = (1..=200_u128)
        .map(|i| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let request = transfer(&format!("pay:test:{i}"), chain_id, from, recipient, i);
                let mut tx = pool.begin().await.unwrap();
                let id = txqueue::enqueue(&mut tx, &request).await.unwrap().id;
                tx.commit().await.unwrap();
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for submission in submissions {
        ids.push(submission.await.unwrap());
    }

    eventually("200 confirmations", Duration::from_secs(60), || async {
        let (confirmed, failed): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state = 'confirmed'), count(*) FILTER (WHERE state = 'failed')
             FROM chain_transactions",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(failed, 0, "a transaction failed");
        (confirmed == 200).then_some(())
    })
    .await;
    sender.stop().await;

    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT nonce, tx_hash FROM chain_transactions ORDER BY nonce").fetch_all(&pool).await.unwrap();
    let nonces: Vec<i64> = rows.iter().map(|(n, _)| *n).collect();
    assert_eq!(nonces, (0..200).collect::<Vec<i64>>(), "contiguous, no duplicates");
    let mut hashes: Vec<B256> = rows.iter().map(|(_, h)| B256::from_slice(h)).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 200);
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_transaction_attempts").fetch_one(&pool).await.unwrap();
    assert_eq!(attempts, 200, "nothing needed a second signature");

    // The chain agrees: 200 transactions from the signer, each stored hash mined successfully.
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 200);
    for hash in &hashes {
        let receipt = chain.get_transaction_receipt(*hash).await.unwrap().unwrap();
        assert!(receipt.status());
    }
    assert_eq!(chain.get_balance(recipient).await.unwrap(), U256::from((1..=200_u128).sum::<u128>()));

    // And each requester heard back exactly once, with its key.
    let confirmed = events(&pool, "tx.confirmed").await;
    assert_eq!(confirmed.len(), 200);
    let mut keys: Vec<&str> = confirmed.iter().map(|e| e["idempotency_key"].as_str().unwrap()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), 200);
    let sample = &confirmed[0];
    for field in ["tx_hash", "block_number", "block_hash", "gas_used"] {
        assert!(!sample[field].is_null(), "{field} missing from {sample}");
    }
}

#[tokio::test]
async fn two_replicas_of_a_signers_sender_never_assign_a_nonce_twice_and_one_takes_over_when_the_other_dies() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let first = Running::start(&pool, &chain, signer.clone(), config());
    let second = Running::start(&pool, &chain, signer, config());
    let recipient = somebody();
    let submit = |range: std::ops::Range<u32>| {
        let pool = pool.clone();
        async move {
            for i in range {
                enqueue(&pool, &transfer(&format!("replica:{i}"), chain_id, from, recipient, 1)).await;
            }
        }
    };
    submit(0..30).await;
    // Whichever of them was active, the other carries on.
    first.kill().await;
    submit(30..60).await;
    eventually("60 confirmations", Duration::from_secs(120), || async {
        let confirmed: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_transactions WHERE state = 'confirmed'")
            .fetch_one(&pool)
            .await
            .unwrap();
        (confirmed == 60).then_some(())
    })
    .await;
    second.stop().await;
    let nonces: Vec<i64> =
        sqlx::query_scalar("SELECT nonce FROM chain_transactions ORDER BY nonce").fetch_all(&pool).await.unwrap();
    assert_eq!(nonces, (0..60).collect::<Vec<i64>>());
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 60);
    assert_eq!(chain.get_balance(recipient).await.unwrap(), U256::from(60));
}

#[tokio::test]
async fn the_same_idempotency_key_submitted_twice_yields_one_on_chain_transaction() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let request = transfer("mint:order:17", chain_id, from, somebody(), 5).with_context(json!({ "order_id": 17 }));

    // Twice at the same time, in two transactions: one row.
    let (a, b) = tokio::join!(
        async {
            let mut tx = pool.begin().await.unwrap();
            let enqueued = txqueue::enqueue(&mut tx, &request).await.unwrap();
            tx.commit().await.unwrap();
            enqueued
        },
        async {
            let mut tx = pool.begin().await.unwrap();
            let enqueued = txqueue::enqueue(&mut tx, &request).await.unwrap();
            tx.commit().await.unwrap();
            enqueued
        }
    );
    assert_eq!(a.id, b.id);
    assert!(a.created != b.created, "exactly one of them created it");

    // The same key for something else is refused, not silently merged.
    let mut conn = pool.acquire().await.unwrap();
    let other = request.clone().with_value(Wei::from_u128(6));
    assert!(matches!(txqueue::enqueue(&mut conn, &other).await, Err(TxQueueError::KeyReused(_))));

    let sender = Running::start(&pool, &chain, signer, config());
    let tx = finished(&pool, a.id, Duration::from_secs(20)).await;
    assert_eq!(tx.state, TxState::Confirmed);

    // Once more after it is done: still the same request, nothing new is sent.
    let again = txqueue::enqueue(&mut conn, &request).await.unwrap();
    assert_eq!((again.id, again.created), (a.id, false));
    sender.stop().await;

    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1);
    let confirmed = events(&pool, "tx.confirmed").await;
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0]["idempotency_key"], "mint:order:17");
    assert_eq!(confirmed[0]["context"]["order_id"], 17);
    assert_eq!(confirmed[0]["tx_hash"], json!(tx.tx_hash.unwrap()));
}

#[tokio::test]
async fn a_transaction_stuck_under_a_raised_base_fee_is_bumped_and_then_confirms() {
    let pool = pool().await;
    let (_anvil, chain) = own_chain();
    chain.anvil_set_auto_mine(false).await.unwrap();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let stuck_after = Duration::from_millis(300);
    let sender = Running::start(&pool, &chain, signer, SenderConfig { stuck_after, ..config() });
    let id = enqueue(&pool, &transfer("payout:redemption:9", chain_id, from, somebody(), 1)).await;
    let first = wait_for_state(&pool, id, TxState::Broadcast).await;
    let first_hash = first.tx_hash.unwrap();
    let first_max_fee = first.max_fee_per_gas.unwrap().get();
    let first_priority = first.max_priority_fee_per_gas.unwrap().get();

    // The next block's base fee is far above what the transaction offers: it is not included.
    let base_fee = u128::try_from(first_max_fee).unwrap() * 4;
    chain.anvil_set_next_block_base_fee_per_gas(base_fee).await.unwrap();
    chain.evm_mine(None).await.unwrap();
    assert!(chain.get_transaction_receipt(first_hash).await.unwrap().is_none());
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 0);

    // The sender re-signs the same nonce with higher fees and broadcasts it.
    let bumped = eventually("a bumped broadcast", Duration::from_secs(20), || async {
        let tx = view(&pool, id).await;
        (tx.state == TxState::Broadcast && tx.tx_hash != Some(first_hash)).then_some(tx)
    })
    .await;

    // Blocks come; it confirms.
    let confirmed = eventually("confirmation", Duration::from_secs(20), || async {
        chain.evm_mine(None).await.unwrap();
        let tx = view(&pool, id).await;
        (tx.state == TxState::Confirmed).then_some(tx)
    })
    .await;
    sender.stop().await;

    assert_eq!(confirmed.nonce, Some(0));
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1, "one transaction on chain");
    let mut conn = pool.acquire().await.unwrap();
    let attempts = txqueue::attempts(&mut conn, id).await.unwrap();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert!(attempts.iter().all(|a| a.nonce == 0), "always the same nonce");
    let mined =
        attempts.iter().find(|a| Some(a.tx_hash) == confirmed.tx_hash).expect("the mined hash is one of the attempts");
    assert_ne!(mined.tx_hash, first_hash);
    // Both fee fields went up by at least 10 % over the first attempt.
    assert!(mined.max_fee_per_gas.get() * U256::from(10) >= first_max_fee * U256::from(11));
    assert!(mined.max_priority_fee_per_gas.get() * U256::from(10) >= first_priority * U256::from(11));
    assert!(bumped.max_fee_per_gas.unwrap().get() > first_max_fee);
    assert!(transitions(&pool, id).await.contains(&"bump".to_owned()));
    let receipt = chain.get_transaction_receipt(mined.tx_hash).await.unwrap().unwrap();
    assert!(receipt.status());
}

/// Kills the sender while its broadcast is in flight (signed and stored, the node's answer
/// not yet heard), restarts it, and checks exactly one transaction reaches the chain.
async fn crash_between_signing_and_broadcast(hold: Hold) {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let proxy = RpcProxy::start(required_env("RPC_URL"), hold).await.unwrap();
    let id = enqueue(&pool, &transfer("deploy:campaign:42", chain_id, from, somebody(), 3)).await;

    let sender = Running::start(&pool, &provider(proxy.url()), signer.clone(), config());
    let signed = eventually("a broadcast in flight", Duration::from_secs(20), || async {
        let tx = view(&pool, id).await;
        (tx.state == TxState::Signed && proxy.broadcasts_seen() > 0).then_some(tx)
    })
    .await;
    sender.kill().await;
    let expected_on_chain = match hold {
        Hold::Swallow | Hold::Nothing => 0,
        Hold::ForwardSilently => 1,
    };
    let count = eventually("the node to settle", Duration::from_secs(10), || async {
        let n = chain.get_transaction_count(from).await.unwrap();
        (n == expected_on_chain).then_some(n)
    })
    .await;
    assert_eq!(count, expected_on_chain);

    // Restarted (against the node directly): it resumes from the stored signed transaction.
    let sender = Running::start(&pool, &chain, signer, config());
    let tx = finished(&pool, id, Duration::from_secs(20)).await;
    sender.stop().await;
    assert_eq!(tx.state, TxState::Confirmed);
    assert_eq!(tx.tx_hash, signed.tx_hash, "the stored bytes went out, not a new signature");
    assert_eq!(tx.nonce, Some(0));
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1, "exactly one transaction");
    let mut conn = pool.acquire().await.unwrap();
    assert_eq!(txqueue::attempts(&mut conn, id).await.unwrap().len(), 1);
    assert_eq!(events(&pool, "tx.confirmed").await.len(), 1);
}

#[tokio::test]
async fn killing_the_sender_after_signing_before_the_broadcast_left_and_restarting_it_sends_exactly_one_transaction() {
    crash_between_signing_and_broadcast(Hold::Swallow).await;
}

#[tokio::test]
async fn killing_the_sender_while_the_node_has_the_broadcast_unanswered_and_restarting_it_sends_exactly_one_transaction()
 {
    crash_between_signing_and_broadcast(Hold::ForwardSilently).await;
}

#[tokio::test]
async fn a_nonce_used_outside_the_queue_is_detected_and_the_request_sent_again_with_a_fresh_one() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let proxy = RpcProxy::start(required_env("RPC_URL"), Hold::Swallow).await.unwrap();
    let id = enqueue(&pool, &transfer("payout:redemption:11", chain_id, from, somebody(), 2)).await;

    // The queue signs nonce 0; its broadcast never arrives and the sender dies.
    let sender = Running::start(&pool, &provider(proxy.url()), signer.clone(), config());
    let signed = eventually("a broadcast in flight", Duration::from_secs(20), || async {
        let tx = view(&pool, id).await;
        (tx.state == TxState::Signed && proxy.broadcasts_seen() > 0).then_some(tx)
    })
    .await;
    sender.kill().await;
    assert_eq!(signed.nonce, Some(0));

    // Meanwhile someone else uses the same key for nonce 0.
    let wallet = ProviderBuilder::new()
        .wallet(alloy::network::EthereumWallet::from(signer.clone()))
        .connect_http(required_env("RPC_URL").parse().unwrap());
    let outside = alloy::rpc::types::TransactionRequest::default().to(from).nonce(0).gas_limit(21_000);
    wallet.send_transaction(outside).await.unwrap().get_receipt().await.unwrap();

    let sender = Running::start(&pool, &chain, signer, config());
    let tx = finished(&pool, id, Duration::from_secs(20)).await;
    sender.stop().await;
    assert_eq!((tx.state, tx.nonce), (TxState::Confirmed, Some(1)));
    assert_ne!(tx.tx_hash, signed.tx_hash);
    assert!(transitions(&pool, id).await.contains(&"requeue".to_owned()));
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 2, "the outside one and ours");
    let alerts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM error_log WHERE kind = 'nonce_taken'").fetch_one(&pool).await.unwrap();
    assert_eq!(alerts, 1);
}

#[tokio::test]
async fn a_reorg_that_removes_a_mined_transaction_makes_the_queue_resend_it_until_it_is_confirmed() {
    let pool = pool().await;
    let (_anvil, chain) = own_chain();
    chain.anvil_set_auto_mine(false).await.unwrap();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let sender = Running::start(&pool, &chain, signer, config());
    let request = transfer("mint:order:18", chain_id, from, somebody(), 7).with_confirmations(3);
    let id = enqueue(&pool, &request).await;
    let sent = wait_for_state(&pool, id, TxState::Broadcast).await;

    chain.evm_mine(None).await.unwrap();
    let mined = wait_for_state(&pool, id, TxState::Mined).await;
    let (orphaned_block, orphaned_hash) = (mined.block_number.unwrap(), mined.block_hash.unwrap());
    assert_eq!(mined.tx_hash, sent.tx_hash);

    // Replace the block holding it with an empty one: the receipt vanishes.
    chain.anvil_reorg(ReorgOptions { depth: 1, tx_block_pairs: vec![] }).await.unwrap();
    assert!(chain.get_transaction_receipt(sent.tx_hash.unwrap()).await.unwrap().is_none());

    // The queue notices, sends the same signed transaction again, and follows it to 3 blocks.
    eventually("the reorg to be noticed", Duration::from_secs(20), || async {
        transitions(&pool, id).await.contains(&"reorg".to_owned()).then_some(())
    })
    .await;
    wait_for_state(&pool, id, TxState::Broadcast).await;
    let confirmed = eventually("confirmation", Duration::from_secs(20), || async {
        chain.evm_mine(None).await.unwrap();
        let tx = view(&pool, id).await;
        (tx.state == TxState::Confirmed).then_some(tx)
    })
    .await;
    sender.stop().await;

    assert_eq!(confirmed.tx_hash, sent.tx_hash);
    assert_ne!(confirmed.block_hash, Some(orphaned_hash));
    assert!(confirmed.block_number.unwrap() > orphaned_block);
    let receipt = chain.get_transaction_receipt(confirmed.tx_hash.unwrap()).await.unwrap().unwrap();
    assert_eq!(receipt.block_hash, confirmed.block_hash);
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1);
    let history = transitions(&pool, id).await;
    assert_eq!(history, ["sign", "broadcast", "mine", "reorg", "broadcast", "mine", "confirm"], "{history:?}");
    assert_eq!(events(&pool, "tx.confirmed").await.len(), 1);
}

#[tokio::test]
async fn a_signer_without_funds_pauses_without_burning_its_nonce_and_resumes_when_funded() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = PrivateKeySigner::random();
    let from = signer.address();
    let sender = Running::start(&pool, &chain, signer, config());
    let id =
        enqueue(&pool, &transfer("payout:redemption:10", chain_id, from, somebody(), 1).with_gas_limit(21_000)).await;

    eventually("the alert", Duration::from_secs(20), || async {
        let alerts: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM error_log WHERE source = 'daemon:tx-sender' AND kind = 'insufficient_funds'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        (alerts > 0).then_some(())
    })
    .await;
    let waiting = view(&pool, id).await;
    assert_eq!((waiting.state, waiting.nonce), (TxState::Signed, Some(0)));

    chain.anvil_set_balance(from, U256::from(ETHER)).await.unwrap();
    let tx = finished(&pool, id, Duration::from_secs(20)).await;
    sender.stop().await;
    assert_eq!((tx.state, tx.nonce), (TxState::Confirmed, Some(0)));
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1);
}

#[tokio::test]
async fn a_nonce_freed_by_a_refused_transaction_goes_to_the_next_request() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    // More gas than a block holds: the node refuses it for good.
    let refused = enqueue(&pool, &transfer("bad:1", chain_id, from, somebody(), 1).with_gas_limit(100_000_000)).await;
    let next = enqueue(&pool, &transfer("good:1", chain_id, from, somebody(), 1)).await;
    // One request per signing batch: the refused one has nonce 0 while the next still waits.
    let sender = Running::start(&pool, &chain, signer, SenderConfig { batch_size: 1, ..config() });

    let failed = finished(&pool, refused, Duration::from_secs(20)).await;
    let good = finished(&pool, next, Duration::from_secs(20)).await;
    sender.stop().await;
    assert_eq!(failed.state, TxState::Failed);
    assert!(failed.error.as_deref().unwrap().contains("refused by the node"), "{failed:?}");
    assert_eq!(failed.nonce, None, "it gave its nonce away");
    assert_eq!((good.state, good.nonce), (TxState::Confirmed, Some(0)));
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1);
    let failures = events(&pool, "tx.failed").await;
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0]["idempotency_key"], "bad:1");
    assert!(failures[0]["error"].as_str().unwrap().contains("refused"));
}

#[tokio::test]
async fn a_nonce_freed_while_no_request_waits_is_filled_with_a_self_transfer() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let refused = enqueue(&pool, &transfer("bad:2", chain_id, from, somebody(), 1).with_gas_limit(100_000_000)).await;
    let after = enqueue(&pool, &transfer("good:2", chain_id, from, somebody(), 1)).await;
    // Both signed together (nonces 0 and 1); nonce 0 is then refused and nobody waits for one.
    let sender = Running::start(&pool, &chain, signer, config());

    let failed = finished(&pool, refused, Duration::from_secs(20)).await;
    let good = finished(&pool, after, Duration::from_secs(20)).await;
    let fill: i64 =
        sqlx::query_scalar("SELECT id FROM chain_transactions WHERE kind = 'gap_fill'").fetch_one(&pool).await.unwrap();
    let fill = finished(&pool, ChainTxId::new(fill), Duration::from_secs(20)).await;
    sender.stop().await;
    assert_eq!(failed.state, TxState::Failed);
    assert_eq!((good.state, good.nonce), (TxState::Confirmed, Some(1)));
    assert_eq!((fill.state, fill.nonce, fill.kind.as_str()), (TxState::Confirmed, Some(0), "gap_fill"));
    assert_eq!(fill.to, Some(from), "a transfer to itself");
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 2);
}

/// Runtime code that always reverts with `Error("nope")`.
fn reverting_code() -> Bytes {
    let mut code = hex::decode("6064600c600039606460 00fd".replace(' ', "")).unwrap();
    code.extend(hex::decode("08c379a0").unwrap());
    code.extend(U256::from(0x20).to_be_bytes::<32>());
    code.extend(U256::from(4).to_be_bytes::<32>());
    let mut reason = b"nope".to_vec();
    reason.resize(32, 0);
    code.extend(reason);
    Bytes::from(code)
}

#[tokio::test]
async fn reverting_calls_fail_with_their_reason_and_only_a_mined_one_uses_a_nonce() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let contract = somebody();
    chain.anvil_set_code(contract, reverting_code()).await.unwrap();
    let call = |k: &str| TxRequest::call(key(k), chain_id, from, contract, Bytes::from_static(b"\x12\x34"));

    // Estimated first: it reverts there, so it fails without a nonce.
    let estimated = enqueue(&pool, &call("call:estimated")).await;
    let sender = Running::start(&pool, &chain, signer, config());
    let failed = finished(&pool, estimated, Duration::from_secs(20)).await;
    assert_eq!((failed.state, failed.nonce), (TxState::Failed, None));
    assert_eq!(failed.revert_reason.as_deref(), Some("revert: nope"));

    // With a gas limit it is sent, mined with status 0, and fails once confirmed.
    let sent = enqueue(&pool, &call("call:sent").with_gas_limit(100_000)).await;
    let reverted = finished(&pool, sent, Duration::from_secs(20)).await;
    let after = enqueue(&pool, &transfer("after:revert", chain_id, from, somebody(), 1)).await;
    let ok = finished(&pool, after, Duration::from_secs(20)).await;
    sender.stop().await;

    assert_eq!(reverted.state, TxState::Failed);
    assert_eq!((reverted.nonce, reverted.success), (Some(0), Some(false)));
    assert!(reverted.block_number.is_some());
    assert_eq!(reverted.revert_reason.as_deref(), Some("revert: nope"));
    assert_eq!(ok.nonce, Some(1));
    let failures = events(&pool, "tx.failed").await;
    let mined_failure = failures.iter().find(|e| e["idempotency_key"] == "call:sent").unwrap();
    assert_eq!(mined_failure["revert_reason"], "revert: nope");
    assert_eq!(mined_failure["tx_hash"], json!(reverted.tx_hash.unwrap()));
}

/// An anvil of this test's own started with `args`.
fn own_chain_with(args: &[&str]) -> (AnvilInstance, DynProvider) {
    let anvil = Anvil::at(required_env("ANVIL_BIN")).args(args.iter().copied()).try_spawn().unwrap();
    let provider = provider(&anvil.endpoint());
    (anvil, provider)
}

async fn operator_view(pool: &PgPool, id: ChainTxId) -> txqueue::OperatorView {
    let mut conn = pool.acquire().await.unwrap();
    txqueue::operator_view(&mut conn, id).await.unwrap().unwrap()
}

async fn operator_action(
    pool: &PgPool,
    id: ChainTxId,
    action: txqueue::OperatorAction,
) -> txqueue::Result<txqueue::Requested> {
    let mut conn = pool.acquire().await.unwrap();
    txqueue::request_operator_action(&mut conn, id, action, "user:1").await
}

#[tokio::test]
async fn an_operator_cancels_a_stuck_transaction_its_nonce_goes_to_a_self_transfer_and_the_requester_hears_it_failed() {
    let pool = pool().await;
    let (_anvil, chain) = own_chain();
    chain.anvil_set_auto_mine(false).await.unwrap();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let sender = Running::start(&pool, &chain, signer, config());
    let request = transfer("mint:order:77", chain_id, from, somebody(), 7).requested_by(txqueue::Requester::OrderMint);
    let id = enqueue(&pool, &request).await;
    let stuck = wait_for_state(&pool, id, TxState::Broadcast).await;

    // Cancelled twice: one cancellation.
    let first = operator_action(&pool, id, txqueue::OperatorAction::Cancel).await.unwrap();
    assert!(first.created);
    assert_eq!(first.view.operator_action.as_deref(), Some("cancel"));
    let again = operator_action(&pool, id, txqueue::OperatorAction::Cancel).await.unwrap();
    assert!(!again.created, "a second cancel answers the same");
    // Replacing what is being cancelled is refused.
    assert!(matches!(
        operator_action(&pool, id, txqueue::OperatorAction::Replace { max_fee_per_gas: None }).await,
        Err(TxQueueError::Refused(_))
    ));

    // The sender signs a self-transfer at the same nonce with higher fees and broadcasts it.
    let cancelling = eventually("the cancellation to be broadcast", Duration::from_secs(20), || async {
        let view = operator_view(&pool, id).await;
        (view.tx.state == TxState::Broadcast && view.attempts.iter().any(|a| a.purpose == "cancel")).then_some(view)
    })
    .await;
    assert!(!cancelling.operator_action_pending);
    let cancel = cancelling.attempts.iter().find(|a| a.purpose == "cancel").unwrap().clone();
    assert_eq!(cancel.nonce, stuck.nonce.unwrap());
    assert!(cancel.max_fee_per_gas.get() * U256::from(10) >= stuck.max_fee_per_gas.unwrap().get() * U256::from(11));
    assert!(
        cancel.max_priority_fee_per_gas.get() * U256::from(10)
            >= stuck.max_priority_fee_per_gas.unwrap().get() * U256::from(11)
    );

    // A block: the cancellation is mined in the original's place; the request fails.
    let failed = eventually("the cancellation to be mined", Duration::from_secs(20), || async {
        chain.evm_mine(None).await.unwrap();
        let tx = view(&pool, id).await;
        (tx.state == TxState::Failed).then_some(tx)
    })
    .await;
    sender.stop().await;

    assert_eq!(failed.error.as_deref(), Some("cancelled by an operator"));
    assert_eq!(failed.tx_hash, Some(cancel.tx_hash));
    assert!(operator_view(&pool, id).await.cancelled);
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1, "the nonce was used by the cancellation");
    assert!(chain.get_transaction_receipt(stuck.tx_hash.unwrap()).await.unwrap().is_none());
    let receipt = chain.get_transaction_receipt(cancel.tx_hash).await.unwrap().unwrap();
    assert!(receipt.status());
    assert_eq!((receipt.from, receipt.to), (from, Some(from)), "a self-transfer");
    assert_eq!(transitions(&pool, id).await, ["sign", "broadcast", "bump", "broadcast", "mine", "cancel"]);
    let failures = events(&pool, "tx.failed.order-mint").await;
    assert_eq!(failures.len(), 1, "the requester hears it failed, once");
    assert_eq!(failures[0]["error"], "cancelled by an operator");
    assert_eq!(failures[0]["cancelled"], true);
    assert!(events(&pool, "tx.confirmed.order-mint").await.is_empty());
    // Done: cancelling again answers the same, replacing is refused.
    assert!(!operator_action(&pool, id, txqueue::OperatorAction::Cancel).await.unwrap().created);
    assert!(matches!(
        operator_action(&pool, id, txqueue::OperatorAction::Replace { max_fee_per_gas: None }).await,
        Err(TxQueueError::Refused(_))
    ));
}

#[tokio::test]
async fn an_operator_replaces_a_stuck_transaction_at_the_same_nonce_with_the_fee_it_asks() {
    let pool = pool().await;
    let (_anvil, chain) = own_chain();
    chain.anvil_set_auto_mine(false).await.unwrap();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let recipient = somebody();
    let sender = Running::start(&pool, &chain, signer, config());
    let id = enqueue(&pool, &transfer("payout:redemption:77", chain_id, from, recipient, 9)).await;
    let stuck = wait_for_state(&pool, id, TxState::Broadcast).await;
    let current = stuck.max_fee_per_gas.unwrap();

    // Under what a node takes as a replacement: refused.
    let low = Wei::new(current.get() * U256::from(105) / U256::from(100));
    assert!(matches!(
        operator_action(&pool, id, txqueue::OperatorAction::Replace { max_fee_per_gas: Some(low) }).await,
        Err(TxQueueError::InvalidRequest(_))
    ));
    let asked = Wei::new(current.get() * U256::from(3));
    let replace = txqueue::OperatorAction::Replace { max_fee_per_gas: Some(asked) };
    assert!(operator_action(&pool, id, replace).await.unwrap().created);
    let replaced = eventually("the replacement to be broadcast", Duration::from_secs(20), || async {
        let tx = view(&pool, id).await;
        (tx.state == TxState::Broadcast && tx.tx_hash != stuck.tx_hash).then_some(tx)
    })
    .await;
    assert_eq!(replaced.max_fee_per_gas, Some(asked));
    assert_eq!(replaced.nonce, stuck.nonce);

    let confirmed = eventually("confirmation", Duration::from_secs(20), || async {
        chain.evm_mine(None).await.unwrap();
        let tx = view(&pool, id).await;
        (tx.state == TxState::Confirmed).then_some(tx)
    })
    .await;
    sender.stop().await;
    assert_eq!(confirmed.tx_hash, replaced.tx_hash, "the replacement was mined");
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1);
    assert_eq!(chain.get_balance(recipient).await.unwrap(), U256::from(9));
    let attempts = operator_view(&pool, id).await.attempts;
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a.purpose == "send" && a.nonce == 0));
    // Mined: no more cancelling or replacing.
    assert!(matches!(operator_action(&pool, id, txqueue::OperatorAction::Cancel).await, Err(TxQueueError::Refused(_))));
}

#[tokio::test]
async fn cancelling_a_request_not_signed_yet_fails_it_at_once() {
    let pool = pool().await;
    let chain = shared_chain();
    let chain_id = chain.get_chain_id().await.unwrap();
    let signer = funded_signer(&chain).await;
    let from = signer.address();
    let id = enqueue(
        &pool,
        &transfer("mint:order:78", chain_id, from, somebody(), 1).requested_by(txqueue::Requester::OrderMint),
    )
    .await;
    // No sender yet: it is queued.
    assert!(operator_action(&pool, id, txqueue::OperatorAction::Cancel).await.unwrap().created);
    let sender = Running::start(&pool, &chain, signer, config());
    let tx = finished(&pool, id, Duration::from_secs(20)).await;
    sender.stop().await;
    assert_eq!((tx.state, tx.nonce, tx.error.as_deref()), (TxState::Failed, None, Some("cancelled by an operator")));
    assert_eq!(transitions(&pool, id).await, ["cancel"]);
    assert_eq!(events(&pool, "tx.failed.order-mint").await.len(), 1);
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 0, "nothing was sent");
}

#[tokio::test]
async fn a_signer_low_on_funds_raises_one_alert_per_crossing_and_one_when_refilled() {
    let pool = pool().await;
    let chain = shared_chain();
    let signer = PrivateKeySigner::random();
    let from = signer.address();
    chain.anvil_set_balance(from, U256::from(ETHER)).await.unwrap();
    let config = SenderConfig {
        low_balance: txqueue::LowBalance::Wei(10 * ETHER),
        balance_check_interval: Duration::from_millis(50),
        ..config()
    };
    let sender = Running::start(&pool, &chain, signer, config);
    let count = |kind: &'static str| {
        let pool = pool.clone();
        async move { events(&pool, kind).await.len() }
    };

    let low = eventually("the low-balance alert", Duration::from_secs(20), || async {
        let low = events(&pool, txqueue::BALANCE_LOW).await;
        (!low.is_empty()).then_some(low)
    })
    .await;
    assert_eq!(low[0]["signer"], json!(from));
    assert_eq!(low[0]["balance"], ETHER.to_string());
    assert_eq!(low[0]["threshold"], (10 * ETHER).to_string());
    // Many checks later: still one alert.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(txqueue::BALANCE_LOW).await, 1);

    // Refilled: one all-clear; low again: a second alert.
    chain.anvil_set_balance(from, U256::from(100 * ETHER)).await.unwrap();
    eventually("the all-clear", Duration::from_secs(20), || async {
        (count(txqueue::BALANCE_OK).await == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(txqueue::BALANCE_OK).await, 1);
    chain.anvil_set_balance(from, U256::from(ETHER / 2)).await.unwrap();
    eventually("the second alert", Duration::from_secs(20), || async {
        (count(txqueue::BALANCE_LOW).await == 2).then_some(())
    })
    .await;
    sender.stop().await;
    let low: bool = sqlx::query_scalar("SELECT low FROM signer_balances WHERE address = $1")
        .bind(from.as_slice())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(low);
}

#[tokio::test]
async fn a_signer_low_balance_threshold_can_be_a_number_of_transactions_at_current_fees() {
    let pool = pool().await;
    let chain = shared_chain();
    let signer = PrivateKeySigner::random();
    let from = signer.address();
    // Nothing at all: below any positive threshold.
    let config = SenderConfig {
        low_balance: txqueue::LowBalance::Transactions(10),
        balance_check_interval: Duration::from_millis(50),
        ..config()
    };
    let sender = Running::start(&pool, &chain, signer, config);
    let low = eventually("the low-balance alert", Duration::from_secs(20), || async {
        let low = events(&pool, txqueue::BALANCE_LOW).await;
        low.into_iter().find(|e| e["signer"] == json!(from))
    })
    .await;
    sender.stop().await;
    let threshold: U256 = low["threshold"].as_str().unwrap().parse().unwrap();
    assert!(threshold > U256::ZERO);
    assert_eq!(threshold % U256::from(10 * txqueue::LowBalance::GAS_PER_TRANSACTION), U256::ZERO, "{threshold}");
}

#[tokio::test]
async fn a_reorg_deeper_than_the_confirmations_sends_a_confirmed_transaction_again_once_then_it_is_finalized() {
    let pool = pool().await;
    // Finalized trails the head by two epochs: 2 × 4 blocks here (anvil's default is 2 × 32).
    let (_anvil, chain) = own_chain_with(&["--slots-in-an-epoch", "4"]);
    chain.anvil_set_auto_mine(false).await.unwrap();
    let chain_id = chain.get_chain_id().await.unwrap();
    // Some history first, so the reorg below does not reach the genesis block.
    chain.anvil_mine(Some(5), None).await.unwrap();
    let signer = funded_signer(&chain).await;
    // The funding in a block of its own, which the reorg leaves alone.
    chain.evm_mine(None).await.unwrap();
    let from = signer.address();
    let sender = Running::start(&pool, &chain, signer, config());
    let request = transfer("mint:order:79", chain_id, from, somebody(), 7)
        .with_confirmations(2)
        .requested_by(txqueue::Requester::OrderMint);
    let id = enqueue(&pool, &request).await;
    let sent = wait_for_state(&pool, id, TxState::Broadcast).await;
    chain.evm_mine(None).await.unwrap();
    chain.evm_mine(None).await.unwrap();
    let confirmed = wait_for_state(&pool, id, TxState::Confirmed).await;
    let (orphaned_block, orphaned_hash) = (confirmed.block_number.unwrap(), confirmed.block_hash.unwrap());
    let finalized = chain.get_block_by_number(alloy::eips::BlockNumberOrTag::Finalized).await.unwrap().unwrap();
    assert!(finalized.header.number < orphaned_block, "not finalized yet");
    assert!(!operator_view(&pool, id).await.finalized);

    // Its block and the two after it replaced by empty ones: a reorg of 3 blocks, deeper than
    // its 2 confirmations; the receipt is gone.
    chain.evm_mine(None).await.unwrap();
    let head = chain.get_block_number().await.unwrap();
    assert_eq!(head, orphaned_block + 2);
    chain.anvil_reorg(ReorgOptions { depth: 3, tx_block_pairs: vec![] }).await.unwrap();
    assert!(chain.get_transaction_receipt(sent.tx_hash.unwrap()).await.unwrap().is_none());

    // The queue notices, sends the same signed transaction (same nonce, same hash) again.
    eventually("the deep reorg to be noticed", Duration::from_secs(20), || async {
        transitions(&pool, id).await.contains(&"deep_reorg".to_owned()).then_some(())
    })
    .await;
    wait_for_state(&pool, id, TxState::Broadcast).await;
    let again = eventually("confirmation again", Duration::from_secs(20), || async {
        chain.evm_mine(None).await.unwrap();
        let tx = view(&pool, id).await;
        (tx.state == TxState::Confirmed).then_some(tx)
    })
    .await;
    assert_eq!((again.tx_hash, again.nonce), (sent.tx_hash, sent.nonce));
    assert_ne!(again.block_hash, Some(orphaned_hash));

    // Blocks pass until it is finalized: marked so, and never looked at again.
    chain.anvil_mine(Some(12), None).await.unwrap();
    eventually("finalization", Duration::from_secs(20), || async {
        operator_view(&pool, id).await.finalized.then_some(())
    })
    .await;
    sender.stop().await;

    let history = transitions(&pool, id).await;
    assert_eq!(
        history,
        ["sign", "broadcast", "mine", "confirm", "deep_reorg", "broadcast", "mine", "confirm"],
        "{history:?}"
    );
    let view = operator_view(&pool, id).await;
    assert_eq!(view.deep_reorgs, 1);
    assert_eq!(view.attempts.len(), 1, "the same signed bytes, not a new signature");
    assert_eq!(chain.get_transaction_count(from).await.unwrap(), 1);
    // The requester heard "confirmed" once; the reorg and the re-confirmation are on record.
    assert_eq!(events(&pool, "tx.confirmed.order-mint").await.len(), 1);
    let repeated = events(&pool, "tx.confirmed").await;
    assert_eq!(repeated.len(), 1);
    assert_eq!(repeated[0]["repeated"], true);
    let reorged = events(&pool, "tx.signed").await;
    assert!(reorged.iter().any(|e| e["deep_reorg"] == true && e["orphaned_block_hash"] == json!(orphaned_hash)));
    let alerts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM error_log WHERE kind = 'deep_reorg'").fetch_one(&pool).await.unwrap();
    assert_eq!(alerts, 1);
}

//! The indexer against anvil: a campaign deployed by the back office is discovered from the
//! factory's event without configuration; mints and transfers make owners and holders; reorgs of
//! depth 1 to 5 with transfers and `OrderPaid` in the dropped blocks leave exactly what a fresh
//! index of the surviving chain has, and each dropped fact is announced reverted once.

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ext::AnvilApi},
};
use serde_json::{Value, json};
use shared::{
    contracts::{CampaignNFT, Checkout},
    ids::BrandId,
};
use sqlx::PgPool;
use testkit::{self as testing, TestDb};

use crate::operator::{PNG, Platformed, platformed};

type Derived = (Vec<(Vec<u8>, String, Vec<u8>)>, Vec<(Vec<u8>, Vec<u8>, i64)>, i64, Vec<(Vec<u8>, i32, String)>);

/// Owners, holders, the number of transfers and the events as the indexer has them, in a
/// comparable form.
async fn derived(db: &PgPool) -> Derived {
    let owners =
        sqlx::query_as("SELECT collection, token_id::text, owner FROM token_owners ORDER BY collection, token_id")
            .fetch_all(db)
            .await
            .unwrap();
    let holders = sqlx::query_as("SELECT collection, holder, tokens FROM collection_holders ORDER BY 1, 2")
        .fetch_all(db)
        .await
        .unwrap();
    let transfers: i64 = sqlx::query_scalar("SELECT count(*) FROM token_transfers").fetch_one(db).await.unwrap();
    let events =
        sqlx::query_as("SELECT block_hash, log_index, kind FROM chain_events ORDER BY block_number, log_index")
            .fetch_all(db)
            .await
            .unwrap();
    (owners, holders, transfers, events)
}

/// A `Checkout.buy` of one token for `buyer`, on a quote signed with the platform's quote key
/// (for an order the platform never placed: what the indexer sees is the same).
async fn buy(setup: &Platformed, collection: Address, buyer: usize, order: u8) {
    let anvil = &setup.anvil;
    let checkout = setup.platform.checkout.address();
    let signer = shared::contracts::QuoteSigner::new(testing::signer(anvil, 1), anvil.chain_id(), *checkout);
    let quote = Checkout::Quote {
        orderId: alloy::primitives::B256::repeat_byte(order),
        buyer: anvil.addresses()[buyer],
        collection,
        quantity: U256::from(1),
        payToken: Address::ZERO,
        amount: U256::from(1_000),
        deadline: U256::from(u64::MAX),
    };
    let signature = signer.sign(&quote).await.unwrap();
    testing::mined(
        Checkout::new(*checkout, testing::wallet(anvil, buyer)).buy(quote, signature).value(U256::from(1_000)),
    )
    .await;
}

/// Indexes the setup's chain from genesis into a fresh database.
async fn fresh_index(setup: &Platformed) -> PgPool {
    let db = TestDb::create().await;
    let mut config = setup.owner.app.resources.config().clone();
    config.database.url = db.url.clone().into();
    let app = testkit::TestApp::spawn_with(indexer::SERVICE, config).await;
    indexer::catch_up(&app.resources).await.unwrap();
    app.resources.db().clone()
}

#[tokio::test]
async fn collections_are_discovered_transfers_make_owners_and_reorgs_are_undone_exactly_once() {
    let setup = platformed(|anvil| anvil.addresses()[0], &[]).await;
    let Platformed { ref anvil, ref owner, brand, .. } = setup;
    let campaigns = owner.api().campaigns(BrandId::new(brand));
    let body = json!({ "name": "Indexed", "slug": "indexed", "royalty_bps": 500,
        "royalty_receiver": anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": 100, "payment_methods": ["card"] }] });
    let created = campaigns.create(&body).await.unwrap();
    campaigns.artwork(created.id, "image/png", alloy::hex::decode(PNG).unwrap()).await.unwrap();
    let live = campaigns.deployed(created.id).await;
    assert_eq!(live.state, "live");
    let collection: Address = live.rest["collection_address"].as_str().unwrap().parse().unwrap();
    let resources = &setup.owner.app.resources;
    let db = resources.db();

    // Mints and transfers by the holders' own wallets, indexed as they happen. The relayer's
    // account mints: first the campaign's set-up transactions must be through the queue.
    setup.queue_idle().await;
    let relayer = testing::wallet(anvil, 0);
    let nft = CampaignNFT::new(collection, relayer.clone());
    let (alice, bob, carol) = (anvil.addresses()[6], anvil.addresses()[7], anvil.addresses()[8]);
    testing::mined(nft.mint(alice, U256::from(3))).await;
    testing::mined(nft.mint(bob, U256::from(2))).await;
    let as_alice = CampaignNFT::new(collection, testing::wallet(anvil, 6));
    testing::mined(as_alice.transferFrom(alice, carol, U256::from(1))).await;
    indexer::catch_up(resources).await.unwrap();
    let known: i64 = sqlx::query_scalar("SELECT count(*) FROM indexed_collections WHERE address = $1")
        .bind(collection.as_slice())
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(known, 1, "discovered from CampaignDeployed");
    let service = testkit::TestApp::spawn_with(indexer::SERVICE, resources.config().clone()).await;
    let holders: Value = service.public_api().get(&format!("/campaigns/{}/holders", created.id)).await.unwrap();
    let counts: Vec<(String, i64)> = holders["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["address"].as_str().unwrap().to_owned(), h["tokens"].as_i64().unwrap()))
        .collect();
    let name = |a: Address| a.to_checksum(None);
    let mut expected = vec![(name(alice), 2), (name(bob), 2), (name(carol), 1)];
    expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.to_lowercase().cmp(&b.0.to_lowercase())));
    assert_eq!(counts, expected, "{holders}");

    // Reorgs of depth 1 to 5: a wallet payment (OrderPaid and its mint) and transfers in blocks
    // that are then dropped and replaced.
    let provider = testing::wallet(anvil, 0);
    for _ in 0..100 {
        if !setup.platform.checkout.treasuryOf(collection).call().await.unwrap().is_zero() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (mut dropped, mut paid) = (0, 0);
    for depth in 1..=5u64 {
        let snapshot = provider.anvil_snapshot().await.unwrap();
        buy(&setup, collection, 9, u8::try_from(depth).unwrap()).await;
        (dropped, paid) = (dropped + 1, paid + 1);
        for n in 1..depth {
            // Alice gives token 2 or 3 back and forth with carol in the doomed blocks.
            let token = U256::from(2 + n % 2);
            let owner_now = nft.ownerOf(token).call().await.unwrap();
            let next = if owner_now == alice { carol } else { alice };
            let index = if owner_now == alice { 6 } else { 8 };
            testing::mined(
                CampaignNFT::new(collection, testing::wallet(anvil, index)).transferFrom(owner_now, next, token),
            )
            .await;
            dropped += 1;
        }
        indexer::catch_up(resources).await.unwrap();
        provider.anvil_revert(snapshot).await.unwrap();
        // The new branch: one different transfer (bob → carol, token 4) and empty blocks, longer
        // than the dropped one.
        if depth % 2 == 1 {
            let owner_now = nft.ownerOf(U256::from(4)).call().await.unwrap();
            let (next, from) = if owner_now == bob { (carol, 7) } else { (bob, 8) };
            testing::mined(CampaignNFT::new(collection, testing::wallet(anvil, from)).transferFrom(
                owner_now,
                next,
                U256::from(4),
            ))
            .await;
        }
        provider.anvil_mine(Some(depth + 1), None).await.unwrap();
        indexer::catch_up(resources).await.unwrap();
    }
    let reverted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'chain.transfer.reverted'")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(reverted, dropped, "each dropped transfer announced reverted exactly once");
    let unpaid: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'chain.order_paid.reverted'")
            .fetch_one(db)
            .await
            .unwrap();
    assert_eq!(unpaid, paid, "each dropped OrderPaid announced reverted exactly once");
    let status: (i64, Option<i32>) =
        sqlx::query_as("SELECT reorgs, last_reorg_depth FROM indexer_chains").fetch_one(db).await.unwrap();
    assert_eq!(status.0, 5, "five reorgs walked back");
    let fresh = fresh_index(&setup).await;
    assert_eq!(derived(db).await, derived(&fresh).await, "the same as a fresh index of the surviving chain");
    let status: Value = service.public_api().get(&format!("/chains/{}/status", anvil.chain_id())).await.unwrap();
    assert_eq!((status["reorgs"].as_i64(), status["lag_blocks"].as_i64()), (Some(5), Some(0)), "{status}");
    service.stop().await.unwrap();
    setup.stop().await;
}

/// A private chain with the platform and one collection holding `mints` × 500 tokens, each mint
/// followed by 100 empty blocks (so a backfill takes several ranges).
async fn long_chain(mints: u64) -> (alloy::node_bindings::AnvilInstance, shared::contracts::Platform, Address) {
    let anvil = testing::anvil();
    let platform = testing::platform(&anvil).await;
    let collection = testing::collection(&platform, &anvil, 1, 1_000_000).await;
    let nft = platform.collection(collection);
    let provider = testing::wallet(&anvil, 0);
    for n in 0..mints {
        let mut holder = [0x44u8; 20];
        holder[12..].copy_from_slice(&(n % 7 + 1).to_be_bytes());
        testing::mined(nft.mint(Address::from(holder), U256::from(500))).await;
        provider.anvil_mine(Some(100), None).await.unwrap();
    }
    (anvil, platform, collection)
}

fn platform_env(
    anvil: &alloy::node_bindings::AnvilInstance,
    platform: &shared::contracts::Platform,
) -> Vec<(&'static str, String)> {
    let checksum = |a: &Address| a.to_checksum(None);
    vec![
        ("CHAIN_ID", anvil.chain_id().to_string()),
        ("CAMPAIGN_FACTORY_ADDRESS", checksum(platform.factory.address())),
        ("CHECKOUT_ADDRESS", checksum(platform.checkout.address())),
        ("REWARD_VAULT_ADDRESS", checksum(platform.vault.address())),
        ("INDEXER_REORG_WINDOW", "16".into()),
    ]
}

async fn indexed(db: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT indexed_block FROM indexer_chains").fetch_optional(db).await.unwrap()
}

/// Aborted at random points (as a crashed task is), and killed with SIGKILL as a separate
/// process mid-backfill: on restart the indexer resumes from its checkpoint, with no transfer
/// missing and none twice, and the same owners and holders as an index that was never stopped.
#[tokio::test]
async fn an_indexer_killed_mid_batch_resumes_with_no_gap_and_no_duplicate() {
    use rand::Rng;
    let (anvil, platform, collection) = long_chain(30).await;
    let head = testing::wallet(&anvil, 0).get_block_number().await.unwrap();
    let env = platform_env(&anvil, &platform);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // 1. Task aborts at random points.
    let db = TestDb::create().await;
    let app = testkit::TestApp::spawn_with(indexer::SERVICE, testing::config(&db.url, &anvil.endpoint(), &pairs)).await;
    let mut rng = rand::rng();
    for _ in 0..6 {
        let resources = app.resources.clone();
        let task = tokio::spawn(async move { indexer::catch_up(&resources).await });
        tokio::time::sleep(std::time::Duration::from_millis(rng.random_range(5..150))).await;
        task.abort();
        drop(task.await);
    }
    indexer::catch_up(&app.resources).await.unwrap();
    let aborted = app.resources.db().clone();

    // 2. The shipped `indexer` binary, killed with SIGKILL once it has written some batches but
    //    not all, then started again.
    let db = TestDb::create().await;
    let port = crate::compose::free_port();
    let start = || {
        let mut command = std::process::Command::new(crate::compose::binary("indexer"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &db.url)
            .env("RPC_URL", anvil.endpoint())
            .env("JWT_SECRET", testkit::TEST_JWT_SECRET)
            .env("INDEXER_ADDR", format!("127.0.0.1:{port}"))
            .env("INDEXER_CONFIRMATIONS", "0")
            .env("INDEXER_POLL_MS", "50")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(
                std::fs::File::create(std::env::temp_dir().join("brandmint-indexer-kill.log"))
                    .map_or_else(|_| std::process::Stdio::null(), std::process::Stdio::from),
            );
        for (name, value) in &env {
            command.env(name, value);
        }
        crate::compose::Running(command.spawn().expect("the indexer binary"))
    };
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect(&db.url).await.unwrap();
    let mut process = start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let killed_at = loop {
        let at = sqlx::query_scalar::<_, i64>("SELECT indexed_block FROM indexer_chains").fetch_optional(&pool).await;
        if let Ok(Some(at)) = at
            && at > 0
        {
            process.0.kill().unwrap();
            process.0.wait().unwrap();
            break at;
        }
        assert!(std::time::Instant::now() < deadline, "the indexer process never wrote a batch");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    };
    let _restarted = start();
    // The killed process's lease (10 s) runs out first.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if indexed(&pool).await.is_some_and(|at| at >= i64::try_from(head).unwrap()) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the restarted indexer never caught up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Every transfer once, and the same derived tables as an index never stopped.
    let fresh = testkit::TestApp::spawn_with(
        indexer::SERVICE,
        testing::config(&TestDb::create().await.url, &anvil.endpoint(), &pairs),
    )
    .await;
    indexer::catch_up(&fresh.resources).await.unwrap();
    let expected = derived(fresh.resources.db()).await;
    assert_eq!(expected.2, 30 * 500, "every mint's transfers");
    assert_eq!(derived(&aborted).await, expected, "after six aborts");
    assert_eq!(derived(&pool).await, expected, "after SIGKILL at block {killed_at} of {head}");
    let per_token: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT token_id FROM token_transfers WHERE collection = $1 GROUP BY token_id HAVING count(*) <> 1) t",
    )
    .bind(collection.as_slice())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(per_token, 0, "one mint per token, none missing or doubled");
}

/// The node goes away for a few seconds while blocks keep coming: the indexer waits it out
/// inside its run (backing off, no failed run), its readiness says it cannot follow the chain
/// meanwhile, and once the node answers again every block is indexed.
#[tokio::test]
async fn an_rpc_outage_is_waited_out_and_readiness_says_the_indexer_cannot_follow() {
    let (anvil, platform, collection) = long_chain(1).await;
    let proxy = testkit::proxy::TcpProxy::start(([127, 0, 0, 1], anvil.port()).into()).await.unwrap();
    let env = platform_env(&anvil, &platform);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let db = TestDb::create().await;
    let app = testkit::TestApp::spawn_with(indexer::SERVICE, testing::config(&db.url, &proxy.url(), &pairs)).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (resources, shutdown) = (app.resources.clone(), shutdown.clone());
        async move { shared::service::background(&resources, &[indexer::SERVICE], shutdown).await }
    });
    let pool = app.resources.db().clone();
    let chain = testing::wallet(&anvil, 0);
    let caught_up = |target: u64| {
        let pool = pool.clone();
        async move {
            for _ in 0..300 {
                if indexed(&pool).await.is_some_and(|at| at >= i64::try_from(target).unwrap()) {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("the indexer never reached block {target}");
        }
    };
    caught_up(chain.get_block_number().await.unwrap()).await;
    assert_eq!(app.get("/health/ready").await.status(), reqwest::StatusCode::OK);

    // The line to the node is cut; the chain goes on (a mint, 100 blocks).
    proxy.cut().await;
    testing::mined(platform.collection(collection).mint(anvil.addresses()[3], U256::from(500))).await;
    chain.anvil_mine(Some(100), None).await.unwrap();
    let head = chain.get_block_number().await.unwrap();
    let down = app.get("/health/ready").await;
    assert_eq!(down.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let problem: Value = down.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("does not answer"), "{problem}");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    // Back: everything is indexed, nothing failed for good.
    proxy.restore();
    caught_up(head).await;
    assert_eq!(app.get("/health/ready").await.status(), reqwest::StatusCode::OK);
    let (transfers, failed): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM token_transfers),
                (SELECT count(*) FROM daemon_runs WHERE daemon = 'indexer.chain' AND outcome = 'failed')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((transfers, failed), (1_000, 0), "both mints indexed; the outage waited out inside the run");
    shutdown.cancel();
    running.await.unwrap().unwrap();
    app.stop().await.unwrap();
}

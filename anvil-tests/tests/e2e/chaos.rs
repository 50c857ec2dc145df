//! Chaos: the platform as separate processes (`testkit::cluster`: every service from its shipped
//! binary, its own PostgreSQL, anvil behind a proxy that can cut it off), while a seeded random
//! hand `kill -9`s and restarts service processes, the journeys run through the APIs and the
//! chain as clients would, retrying where a load balancer would: a deployment; card and wallet
//! checkouts (more buyers than units); a Seaport resale paying the royalty, whose holders' share
//! the platform distributes through the vault; printed-code redemptions. One round adds a
//! 30-second RPC outage, another a PostgreSQL restart. Afterwards everything is terminal and
//! agrees with the chain and Stripe: 0 double mints, 0 double payouts, 0 captures without a
//! token, 0 wallet payments without their order, 0 oversold units, 0 outbox events lost, the
//! signer's nonces contiguous. The report prints the counts.
//!
//! `cargo xtask test` runs three seeded rounds (`chaos_…`); `cargo xtask bench chaos` runs
//! twenty ([`run`]).

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, U256, keccak256},
    providers::{DynProvider, Provider, ext::AnvilApi},
    signers::local::PrivateKeySigner,
    sol_types::SolEvent,
};
use fakes::seaport::{self, ERC721, NATIVE, consider, eth, offer};
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::contracts::{CampaignNFT, Checkout, RewardVault};
use testkit::{self as testing, cluster::Cluster};

/// What a round found; every count but the totals must be zero.
#[derive(Debug, Default, Clone)]
pub(crate) struct Report {
    pub(crate) rounds: u32,
    pub(crate) kills: u32,
    pub(crate) orders_fulfilled: i64,
    /// Of which paid from a wallet (`Checkout.buy`).
    pub(crate) wallet_orders_fulfilled: i64,
    pub(crate) orders_refused_sold_out: i64,
    pub(crate) tokens_minted: u64,
    pub(crate) redemptions_paid: i64,
    pub(crate) deployments_live: i64,
    pub(crate) resales: i64,
    /// Holders' shares of resale royalties, in `RewardVault.distribute` batches paid.
    pub(crate) distributions_paid: i64,
    pub(crate) double_mints: i64,
    /// Two payouts of one redemption or one distribution batch, or a payout the platform has
    /// no record of.
    pub(crate) double_payouts: i64,
    pub(crate) captures_without_token: i64,
    pub(crate) tokens_without_capture: i64,
    /// `OrderPaid` on chain without its order fulfilled, or a wallet order fulfilled without it.
    pub(crate) wallet_payments_unmatched: i64,
    /// A batch recorded as paid whose payout is not on chain, or whose total differs from it.
    pub(crate) distributions_unpaid: i64,
    pub(crate) oversold_units: i64,
    pub(crate) outbox_events_lost: i64,
    pub(crate) not_terminal: i64,
    pub(crate) nonce_gaps: i64,
    /// Runs of one daemon by two processes at overlapping times (its lease must prevent them).
    pub(crate) daemon_overlaps: i64,
    /// Daemons that more than one process ran over the rounds (the lease moves between them).
    pub(crate) daemons_run_by_several: i64,
}

impl Report {
    pub(crate) fn violations(&self) -> i64 {
        self.double_mints
            + self.double_payouts
            + self.captures_without_token
            + self.tokens_without_capture
            + self.wallet_payments_unmatched
            + self.distributions_unpaid
            + self.oversold_units
            + self.outbox_events_lost
            + self.not_terminal
            + self.nonce_gaps
            + self.daemon_overlaps
    }

    pub(crate) fn print(&self) {
        eprintln!(
            "chaos: {} rounds, {} processes killed (kill -9) and restarted\n  \
             done: {} deployments live, {} orders fulfilled ({} paid from a wallet), {} refused as sold out, \
             {} tokens minted, {} redemptions paid, {} resales, {} holders' distributions paid\n  \
             violations: {} double mints, {} double payouts, {} captures without a token, \
             {} tokens without a capture, {} wallet payments without their order, {} distributions unpaid, \
             {} oversold units, {} outbox events lost, {} not terminal, \
             {} nonce gaps, {} overlapping daemon runs\n  \
             daemons run by more than one process: {}",
            self.rounds,
            self.kills,
            self.deployments_live,
            self.orders_fulfilled,
            self.wallet_orders_fulfilled,
            self.orders_refused_sold_out,
            self.tokens_minted,
            self.redemptions_paid,
            self.resales,
            self.distributions_paid,
            self.double_mints,
            self.double_payouts,
            self.captures_without_token,
            self.tokens_without_capture,
            self.wallet_payments_unmatched,
            self.distributions_unpaid,
            self.oversold_units,
            self.outbox_events_lost,
            self.not_terminal,
            self.nonce_gaps,
            self.daemon_overlaps,
            self.daemons_run_by_several
        );
    }
}

/// Ten buyers for eight units: two are refused, so at least one wallet buyer gets through.
const CARD_BUYERS: usize = 7;
const WALLET_BUYERS: usize = 3;
const SUPPLY: i64 = 8;
/// The anvil accounts card buyers receive their tokens in (their keys sign resales). Account 4
/// deploys Seaport, 5 is the brand's treasury and royalty receiver; 0–2 are the platform's.
const CARD_WALLETS: [usize; 5] = [3, 6, 7, 8, 9];
const CODES: i64 = 4;
const PAYOUT: u64 = 1_000_000;

#[tokio::test]
async fn chaos_three_seeded_rounds_of_kill_9_an_rpc_outage_and_a_postgres_restart_lose_and_double_nothing() {
    let report = run(&[1, 2, 3], 1, true).await;
    report.print();
    assert_eq!(report.violations(), 0, "{report:#?}");
    assert_eq!(report.orders_fulfilled, 3 * SUPPLY, "every unit sold once: {report:#?}");
    assert!(report.wallet_orders_fulfilled >= 3, "wallet checkouts in every round: {report:#?}");
    assert_eq!(report.redemptions_paid, 3 * CODES, "every code paid once: {report:#?}");
    assert_eq!((report.resales, report.distributions_paid), (3, 3), "a distribution per resale: {report:#?}");
    assert!(report.kills >= 9, "processes were killed: {report:#?}");
}

#[tokio::test]
async fn three_replicas_of_every_service_share_the_work_and_do_none_of_it_twice() {
    let report = run(&[4], 3, false).await;
    report.print();
    assert_eq!(report.violations(), 0, "{report:#?}");
    assert_eq!(report.orders_fulfilled, SUPPLY, "{report:#?}");
    assert!(report.wallet_orders_fulfilled >= 1, "{report:#?}");
    assert_eq!(report.redemptions_paid, CODES, "{report:#?}");
    assert_eq!(report.distributions_paid, 1, "{report:#?}");
}

/// The world a round plays in.
pub(crate) struct World {
    anvil: alloy::node_bindings::AnvilInstance,
    platform: shared::contracts::Platform,
    /// Seaport, for resales.
    market: seaport::binding::Seaport::SeaportInstance<DynProvider>,
    stripe: fakes::stripe::StripeEmulator,
    /// Binance's prices for wallet quotes.
    _fx: fakes::fx::FxStub,
    /// With the chaos task during a round.
    pub(crate) cluster: Option<Cluster>,
    /// Every process's service and address (a restarted process keeps its address).
    addrs: Vec<(&'static str, std::net::SocketAddr)>,
    pub(crate) db_url: String,
    pub(crate) db: sqlx::PgPool,
    http: reqwest::Client,
    pub(crate) brand: i64,
    token: String,
}

/// Runs one round per seed on one cluster of `replicas` processes per service, with the chaos
/// hand at work or not; the totals.
pub(crate) async fn run(seeds: &[u64], replicas: usize, chaos: bool) -> Report {
    let mut world = set_up(replicas).await;
    let report = run_on(&mut world, seeds, chaos).await;
    world.shut_down().await;
    report
}

/// [`run`] on a cluster already set up.
pub(crate) async fn run_on(world: &mut World, seeds: &[u64], chaos: bool) -> Report {
    let mut report = Report::default();
    for &seed in seeds {
        round(world, seed, chaos, &mut report).await;
    }
    check(world, &mut report).await;
    report.kills = world.cluster.as_ref().map_or(0, |c| c.processes.iter().map(|p| p.kills).sum());
    report.rounds = u32::try_from(seeds.len()).unwrap_or(u32::MAX);
    report
}

pub(crate) async fn set_up(replicas: usize) -> World {
    let anvil = testing::anvil();
    let platform = testing::platform(&anvil).await;
    let market = seaport::deploy(testing::wallet(&anvil, 4)).await.unwrap();
    let fx = fakes::fx::FxStub::start().await.unwrap();
    let key = |n: usize| format!("0x{}", alloy::hex::encode(testing::signer(&anvil, n).to_bytes()));
    // The relayer's stablecoin for the reward vault, before the queue sends from its account.
    let relayer = anvil.addresses()[0];
    testing::mined(platform.stablecoin.mint(relayer, U256::from(1_000_000_000_000u64))).await;
    let stripe = fakes::stripe::StripeEmulator::start("sk_test_brandmint").await.unwrap();
    stripe.retry_deliveries(true);
    let secret = "whsec_Y2hhb3MtdGVzdHMtd2ViaG9vay1zZWNyZXQ";
    let checksum = |a: &Address| a.to_checksum(None);
    let env = [
        ("TX_SIGNER_PRIVATE_KEYS", key(0)),
        ("QUOTE_SIGNER_PRIVATE_KEY", key(1)),
        ("VOUCHER_SIGNER_PRIVATE_KEY", key(2)),
        ("CHAIN_ID", anvil.chain_id().to_string()),
        ("CAMPAIGN_FACTORY_ADDRESS", checksum(platform.factory.address())),
        ("CHECKOUT_ADDRESS", checksum(platform.checkout.address())),
        ("REWARD_VAULT_ADDRESS", checksum(platform.vault.address())),
        ("STABLECOIN_ADDRESS", checksum(platform.stablecoin.address())),
        ("TRANSFER_VALIDATOR_ADDRESS", checksum(platform.validator.address())),
        ("SEAPORT_ADDRESS", checksum(market.address())),
        ("BINANCE_API_URL", fx.url().to_string()),
        ("FX_SECOND_SOURCE_URL", fx.url().to_string()),
        ("STRIPE_SECRET_KEY", "sk_test_brandmint".into()),
        ("STRIPE_API_BASE", stripe.base_url().to_owned()),
        ("STRIPE_WEBHOOK_SECRET", secret.into()),
        ("REDEMPTION_CLAIMS_PER_HOUR", "100000".into()),
        ("TXQUEUE_STUCK_AFTER_SECS", "10".into()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let anvil_addr = anvil.endpoint_url().socket_addrs(|| None).unwrap()[0];
    let cluster = Cluster::start(replicas, anvil_addr, &env).await.unwrap();
    stripe.set_webhook(cluster.any("payment").url("/webhooks/stripe").parse().unwrap(), secret);
    let db = sqlx::PgPool::connect(&cluster.postgres.url()).await.unwrap();

    // The brand's owner, then everything else through the API.
    let (brand, token) = cluster.brand_owner(&db, "Chaos", "owner@chaos.example").await;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let addrs = cluster.processes.iter().map(|p| (p.service, p.addr)).collect();
    let db_url = cluster.postgres.url();
    let world = World {
        anvil,
        platform,
        market,
        stripe,
        _fx: fx,
        cluster: Some(cluster),
        addrs,
        db_url,
        db,
        http,
        brand,
        token,
    };
    let treasury = world.anvil.addresses()[5].to_checksum(None);
    let (status, body) = world
        .call(
            "backoffice",
            Method::PATCH,
            &format!("/brands/{brand}"),
            Some(json!({ "treasury_address": treasury })),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    world
}

/// Who a call is made as.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Caller<'a> {
    /// The brand's owner, signed in.
    Owner,
    /// A buyer placing an order: no account, an idempotency key so a retry is the same order.
    Buyer { idempotency_key: &'a str },
    /// Anyone (a customer with a printed code).
    Anyone,
}

impl World {
    /// Stops the processes, then the Stripe emulator (which would go on retrying deliveries).
    pub(crate) async fn shut_down(mut self) {
        drop(self.cluster.take());
        self.stripe.shutdown().await;
    }

    /// A call to any live replica of `service`, as through a load balancer: a refused connection
    /// goes to another replica (the request never arrived); any other failure is retried only
    /// when the call is `idempotent`. Gives up after 120 s.
    pub(crate) async fn call(
        &self,
        service: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotent: bool,
    ) -> (StatusCode, Value) {
        self.call_with(service, method, path, body, idempotent, Caller::Owner).await
    }

    pub(crate) async fn call_with(
        &self,
        service: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        idempotent: bool,
        caller: Caller<'_>,
    ) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let replicas: Vec<_> = self.addrs.iter().filter(|(s, _)| *s == service).map(|(_, a)| *a).collect();
        let mut n = 0usize;
        loop {
            let addr = replicas[n % replicas.len()];
            n += 1;
            let mut request =
                self.http.request(method.clone(), format!("http://{addr}{path}")).header("accept", "application/json");
            match caller {
                Caller::Owner => request = request.bearer_auth(&self.token),
                Caller::Buyer { idempotency_key } => request = request.header("idempotency-key", idempotency_key),
                Caller::Anyone => {}
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            match request.send().await {
                // A replica shutting down or a database restarting answers 503: try again.
                Ok(response) if response.status() != StatusCode::SERVICE_UNAVAILABLE => {
                    let status = response.status();
                    return (status, response.json().await.unwrap_or(Value::Null));
                }
                Ok(_) => {}
                Err(e) if e.is_connect() || idempotent => {}
                Err(e) => panic!("{method} {path}: {e} (not idempotent: not retried)"),
            }
            assert!(Instant::now() < deadline, "{method} {path}: no replica of {service} answered in 120 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The brand owner's access token.
    pub(crate) fn owner_token(&self) -> &str {
        &self.token
    }

    /// `path` on the first replica of `service`.
    pub(crate) fn url(&self, service: &str, path: &str) -> String {
        let addr = self.addrs.iter().find(|(s, _)| *s == service).map(|(_, a)| *a).unwrap();
        format!("http://{addr}{path}")
    }

    /// Polls `path` until `done` holds (180 s at most).
    pub(crate) async fn wait_for(&self, service: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (_, body) = self.call(service, Method::GET, path, None, true).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "gave up waiting on {path}: {body}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// One round: a campaign set up, then — while processes die — deployed, funded, sold out by
/// card and from wallets, a token resold on Seaport (its holders' royalty share distributed),
/// and redeemed with printed codes.
async fn round(world: &mut World, seed: u64, chaos: bool, report: &mut Report) {
    let brand = world.brand;
    let slug = format!("chaos-{seed}");
    let campaign = json!({ "name": format!("Chaos {seed}"), "slug": slug, "royalty_bps": 500,
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": SUPPLY,
                    "per_wallet_limit": 2, "payment_methods": ["card", "eth"] }] });
    let (status, campaign) =
        world.call("backoffice", Method::POST, &format!("/brands/{brand}/campaigns"), Some(campaign), false).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let id = campaign["id"].as_i64().unwrap();
    let item = campaign["items"][0]["id"].as_i64().unwrap();
    let base = format!("/brands/{brand}/campaigns/{id}");
    let png = shared::qr::png("chaos").unwrap();
    let upload = world
        .http
        .put(world.url("backoffice", &format!("{base}/artwork")))
        .bearer_auth(world.owner_token())
        .header("content-type", "image/png")
        .body(png)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::OK);
    let reward = json!({ "kind": "token", "name": "Chaos cash", "token": "stablecoin",
                         "amount_per_redemption": PAYOUT.to_string() });
    let (status, reward) =
        world.call("backoffice", Method::POST, &format!("{base}/rewards"), Some(reward), false).await;
    assert_eq!(status, StatusCode::CREATED, "{reward}");
    let reward = reward["id"].as_i64().unwrap();
    let share = json!({ "kind": "royalty_share", "name": "Holders' half", "share_bps": 5_000 });
    let (status, share) = world.call("backoffice", Method::POST, &format!("{base}/rewards"), Some(share), false).await;
    assert_eq!(status, StatusCode::CREATED, "{share}");

    // The chaos hand, from here until the journeys are done.
    let stop = tokio_util::sync::CancellationToken::new();
    let hand = {
        let stop = stop.clone();
        // The task holds the cluster until it is stopped, and gives it back.
        let mut cluster = world.cluster.take().unwrap();
        let rpc_outage = chaos && seed % 3 == 2;
        let postgres_restart = chaos && seed.is_multiple_of(3);
        tokio::spawn(async move {
            if !chaos {
                stop.cancelled().await;
                return cluster;
            }
            let mut rng = StdRng::seed_from_u64(seed);
            // Early, while the deployment is on its way: the node gone for 30 s, or the
            // database restarted (as a crash: open transactions lost, connections cut).
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_500))).await;
            if rpc_outage {
                cluster.rpc.cut().await;
                tokio::time::sleep(Duration::from_secs(30)).await;
                cluster.rpc.restore();
            }
            if postgres_restart {
                cluster.postgres.restart().unwrap();
            }
            while !stop.is_cancelled() {
                let n = rng.random_range(0..cluster.processes.len());
                cluster.kill(n);
                tokio::time::sleep(Duration::from_millis(rng.random_range(100..1_500))).await;
                cluster.restart(n).await.unwrap();
                tokio::time::sleep(Duration::from_millis(rng.random_range(200..1_500))).await;
            }
            cluster
        })
    };

    // Deploy, and wait until the collection is live.
    let (status, body) = world.call("backoffice", Method::POST, &format!("{base}/deploy"), None, true).await;
    assert!(status == StatusCode::ACCEPTED || status == StatusCode::OK, "{status} {body}");
    let live = world.wait_for("backoffice", &base, |c| c["state"] != "deploying").await;
    assert_eq!(live["state"], "live", "{live}");
    // Fund the reward (a money call: retried only when the request never arrived).
    let (status, body) = world
        .call(
            "backoffice",
            Method::POST,
            &format!("{base}/rewards/{reward}/fund"),
            Some(json!({ "amount": (PAYOUT * 100).to_string() })),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let collection: Address = live["collection_address"].as_str().unwrap().parse().unwrap();
    world.fund_holders_share(id).await;

    // More buyers than units, by card and from wallets, concurrently.
    let mut buyers = Vec::new();
    for n in 0..CARD_BUYERS {
        let wallet = world.anvil.addresses()[CARD_WALLETS[n % CARD_WALLETS.len()]].to_checksum(None);
        buyers.push(futures_util::future::Either::Left(buy(world, item, wallet, format!("chaos-{seed}-{n}"))));
    }
    for n in 0..WALLET_BUYERS {
        let key = format!("chaos-{seed}-wallet-{n}");
        buyers.push(futures_util::future::Either::Right(buy_from_wallet(world, item, wallet_buyer(seed, n), key)));
    }
    for (status, body) in futures_util::future::join_all(buyers).await {
        match status {
            StatusCode::CREATED | StatusCode::OK => {}
            StatusCode::CONFLICT => report.orders_refused_sold_out += 1,
            other => panic!("an order answered {other}: {body}"),
        }
    }

    // A holder resells a token on Seaport, the royalty paid to the brand; half of it goes to
    // the collection's holders, through the vault, once the indexer has the sale.
    world.resell(collection, seed).await;
    report.resales += 1;

    // Printed codes, each claimed once to a typed address (a lost answer's retry is refused as
    // already redeemed, which is the point).
    let batch = json!({ "reward_id": reward, "label": "Chaos", "size": CODES, "typed_addresses": true });
    let (status, batch) =
        world.call("backoffice", Method::POST, &format!("{base}/qr-batches"), Some(batch), false).await;
    assert_eq!(status, StatusCode::CREATED, "{batch}");
    let nonces: Vec<Vec<u8>> = sqlx::query_scalar("SELECT nonce FROM qr_codes WHERE batch_id = $1 ORDER BY seq")
        .bind(batch["id"].as_i64().unwrap())
        .fetch_all(&world.db)
        .await
        .unwrap();
    let key = testing::config(&world.db_url, "http://127.0.0.1:1", &[]).qr_code_key;
    for (n, nonce) in nonces.iter().enumerate() {
        let code = key.brand_code(nonce.as_slice().try_into().unwrap());
        let address = world.anvil.addresses()[(n % 4) + 10 - 4].to_checksum(None);
        let claim = Some(json!({ "address": address }));
        let path = format!("/r/{code}/claims");
        let (status, body) = world.call_with("redemption", Method::POST, &path, claim, true, Caller::Anyone).await;
        assert!(status == StatusCode::CREATED || status == StatusCode::CONFLICT, "{status} {body}");
    }

    // The mints, captures and payouts those started are still on their way: the hand keeps
    // killing for a while, then everything settles with no more chaos.
    if chaos {
        tokio::time::sleep(Duration::from_secs(8)).await;
    }
    stop.cancel();
    world.cluster = Some(hand.await.unwrap());
    settle(world, id).await;
    report.deployments_live += 1;
}

/// A live campaign named `slug` whose one item has `supply` card-payable units and a stablecoin
/// reward of 0.001 (funded for 100,000 payouts), for throughput runs: the campaign's path, its
/// item and its reward.
#[allow(dead_code, reason = "the throughput benches' (soak, replicas), which include this file")]
pub(crate) async fn open_campaign(world: &World, slug: &str, supply: i64) -> (String, i64, i64) {
    let brand = world.brand;
    let campaign = json!({ "name": slug, "slug": slug, "royalty_bps": 0,
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": supply,
                    "per_wallet_limit": supply, "payment_methods": ["card"] }] });
    let (status, campaign) =
        world.call("backoffice", Method::POST, &format!("/brands/{brand}/campaigns"), Some(campaign), false).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let (id, item) = (campaign["id"].as_i64().unwrap(), campaign["items"][0]["id"].as_i64().unwrap());
    let base = format!("/brands/{brand}/campaigns/{id}");
    let upload = world
        .http
        .put(world.url("backoffice", &format!("{base}/artwork")))
        .bearer_auth(world.owner_token())
        .header("content-type", "image/png")
        .body(shared::qr::png(slug).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::OK);
    let reward = json!({ "kind": "token", "name": "Cash", "token": "stablecoin", "amount_per_redemption": "1000" });
    let (_, reward) = world.call("backoffice", Method::POST, &format!("{base}/rewards"), Some(reward), false).await;
    let reward = reward["id"].as_i64().unwrap();
    world.call("backoffice", Method::POST, &format!("{base}/deploy"), None, true).await;
    world.wait_for("backoffice", &base, |c| c["state"] == "live").await;
    let fund = json!({ "amount": "100000000" });
    world.call("backoffice", Method::POST, &format!("{base}/rewards/{reward}/fund"), Some(fund), false).await;
    (base, item, reward)
}

/// Card orders placed and paid per second with `in_flight` buyers at once for `period` (each
/// buyer places its next order when its last is paid).
#[allow(clippy::float_arithmetic)] // a rate
#[allow(dead_code, reason = "the throughput benches' (soak, replicas), which include this file")]
pub(crate) async fn capacity(world: &std::sync::Arc<World>, item: i64, in_flight: usize, period: Duration) -> f64 {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..in_flight {
        let (world, done) = (world.clone(), done.clone());
        let wallet = world.anvil.addresses()[CARD_WALLETS[w % CARD_WALLETS.len()]].to_checksum(None);
        let tag = uuid::Uuid::new_v4().simple();
        workers.push(tokio::spawn(async move {
            let mut n = 0;
            while started.elapsed() < period {
                let (status, body) = buy(&world, item, wallet.clone(), format!("capacity-{tag}-{n}")).await;
                assert!(status.is_success(), "{status} {body}");
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    done.load(std::sync::atomic::Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// A wallet buyer of round `seed`: a key of its own (funded when it pays), so buyers never
/// share a nonce.
fn wallet_buyer(seed: u64, n: usize) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256(format!("chaos-wallet-buyer-{seed}-{n}"))).unwrap()
}

/// Waits (120 s at most, as long as an RPC outage can delay the queue) until `ready` holds.
async fn until_on_chain<F: std::future::Future<Output = bool>>(what: &str, ready: impl Fn() -> F) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// An order paid from `key`'s wallet: placed (an idempotency key, as for card buyers), then its
/// signed quote sent to `Checkout.buy`, which takes the ETH and mints in one transaction.
pub(crate) async fn buy_from_wallet(
    world: &World,
    item: i64,
    key: PrivateKeySigner,
    idempotency_key: String,
) -> (StatusCode, Value) {
    let order = json!({ "item_id": item, "quantity": 1, "email": format!("{idempotency_key}@example.com"),
                        "wallet_address": key.address().to_checksum(None), "method": "eth" });
    let buyer = Caller::Buyer { idempotency_key: &idempotency_key };
    let (status, body) = world.call_with("payment", Method::POST, "/orders", Some(order), true, buyer).await;
    if !status.is_success() {
        return (status, body);
    }
    let (checkout, quote, signature) = testing::wallet_payment(&body["wallet_payment"]);
    // The contract pays the collection's treasury, which the queue tells it after deployment.
    let checkout = Checkout::new(checkout, testing::wallet_of(&world.anvil, key.clone()));
    let collection = quote.collection;
    until_on_chain("the collection's treasury at the Checkout", || async {
        checkout.treasuryOf(collection).call().await.is_ok_and(|t| !t.is_zero())
    })
    .await;
    world.chain().anvil_set_balance(key.address(), eth(10_000)).await.unwrap();
    let value = quote.amount;
    let receipt = testing::mined(checkout.buy(quote, signature).value(value)).await;
    assert!(receipt.status(), "Checkout.buy reverted for {idempotency_key}: {body}");
    (status, body)
}

impl World {
    /// A provider on anvil without a wallet of its own (reads, anvil's test methods).
    fn chain(&self) -> DynProvider {
        testing::wallet(&self.anvil, 0)
    }

    /// The brand funds its campaign's holders' share in the vault with 1 ETH from its treasury
    /// (anvil's account 5), once the queue has made the campaign known to the vault.
    async fn fund_holders_share(&self, campaign: i64) {
        let campaign = U256::from(campaign);
        let vault = &self.platform.vault;
        until_on_chain("the campaign at the vault", || async {
            vault.campaignAdmin(campaign).call().await.is_ok_and(|admin| !admin.is_zero())
        })
        .await;
        let as_treasury = RewardVault::new(*vault.address(), testing::wallet(&self.anvil, 5));
        testing::mined(as_treasury.fund(campaign, Address::ZERO, eth(1_000)).value(eth(1_000))).await;
    }

    /// The holder of token 1 (once minted) sells it on Seaport for 0.1 ETH, 5 % of it to the
    /// brand's treasury as the royalty, to a collector of this round; waits until the platform
    /// has accrued the holders' share of it.
    async fn resell(&self, collection: Address, seed: u64) {
        let nft = self.platform.collection(collection);
        until_on_chain("token 1", || async { nft.totalMinted().call().await.is_ok_and(|n| !n.is_zero()) }).await;
        let holder = nft.ownerOf(U256::from(1)).call().await.unwrap();
        let seller = CARD_WALLETS
            .iter()
            .map(|n| testing::signer(&self.anvil, *n))
            .chain((0..WALLET_BUYERS).map(|n| wallet_buyer(seed, n)))
            .find(|key| key.address() == holder)
            .unwrap_or_else(|| panic!("token 1 is held by {holder}, not a buyer of this round"));
        let as_seller = CampaignNFT::new(collection, testing::wallet_of(&self.anvil, seller.clone()));
        testing::mined(as_seller.setApprovalForAll(*self.market.address(), true)).await;
        let treasury = self.anvil.addresses()[5];
        let now = self.chain().get_block(alloy::eips::BlockId::latest()).await.unwrap().unwrap().header.timestamp;
        let listing = seaport::signed(
            &self.market,
            &seller,
            vec![offer(ERC721, collection, 1, U256::from(1))],
            vec![
                consider(NATIVE, Address::ZERO, 0, eth(95), holder),
                consider(NATIVE, Address::ZERO, 0, eth(5), treasury),
            ],
            now,
            seed,
        )
        .await
        .unwrap();
        let collector = PrivateKeySigner::from_bytes(&keccak256(format!("chaos-collector-{seed}"))).unwrap();
        self.chain().anvil_set_balance(collector.address(), eth(10_000)).await.unwrap();
        let as_collector =
            seaport::binding::Seaport::new(*self.market.address(), testing::wallet_of(&self.anvil, collector));
        testing::mined(as_collector.fulfillOrder(listing, Default::default()).value(eth(100))).await;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // The database may be restarting.
            let accrued: Option<i64> = sqlx::query_scalar(
                "SELECT count(*) FROM royalty_accruals a JOIN campaigns c ON c.id = a.campaign_id
                 WHERE c.collection_address = $1",
            )
            .bind(collection.to_vec())
            .fetch_one(&self.db)
            .await
            .ok();
            if accrued.is_some_and(|n| n > 0) {
                return;
            }
            assert!(Instant::now() < deadline, "the resale of {collection}'s token 1 was never accrued to its holders");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

pub(crate) async fn buy(world: &World, item: i64, wallet: String, key: String) -> (StatusCode, Value) {
    let order = json!({ "item_id": item, "quantity": 1, "email": format!("{key}@example.com"),
                        "wallet_address": wallet, "method": "card" });
    let buyer = Caller::Buyer { idempotency_key: &key };
    let (status, body) = world.call_with("payment", Method::POST, "/orders", Some(order), true, buyer).await;
    if !status.is_success() {
        return (status, body);
    }
    let intent = body["card_payment"]["payment_intent_id"].as_str().unwrap().to_owned();
    let confirmed = world
        .http
        .post(format!("{}/v1/payment_intents/{intent}/confirm", world.stripe.base_url().trim_end_matches('/')))
        .bearer_auth("sk_test_brandmint")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("payment_method=pm_card_visa")
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    (status, body)
}

/// What is still moving: orders, redemptions and deployments not in an end state, queued
/// transactions in flight, outbox deliveries not done, holders' shares not paid (or reversed).
async fn in_flight(db: &sqlx::PgPool) -> sqlx::Result<(i64, i64, i64, i64, i64, i64)> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE state NOT IN ('fulfilled', 'expired', 'failed', 'refunded')),
                (SELECT count(*) FROM redemptions WHERE state NOT IN ('completed', 'failed', 'refused', 'expired')),
                (SELECT count(*) FROM campaigns WHERE state = 'deploying'),
                (SELECT count(*) FROM chain_transactions WHERE state NOT IN ('confirmed', 'failed')),
                (SELECT count(*) FROM outbox_deliveries WHERE status <> 'done'),
                (SELECT count(*) FROM royalty_accruals WHERE state IN ('accrued', 'batched'))
                  + (SELECT count(*) FROM royalty_batches WHERE state = 'submitted')",
    )
    .fetch_one(db)
    .await
}

/// Waits (three minutes at most) until nothing is in flight.
async fn settle(world: &World, campaign: i64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        // The database may be coming back from its restart.
        if let Ok(moving) = in_flight(&world.db).await
            && moving == (0, 0, 0, 0, 0, 0)
        {
            return;
        }
        if Instant::now() > deadline {
            let moving = in_flight(&world.db).await;
            eprintln!(
                "campaign {campaign} did not settle in 180 s: {moving:?} (orders, redemptions, deployments, txs, \
                 deliveries, holders' shares)"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Compares the database with the chain and the Stripe emulator.
async fn check(world: &World, report: &mut Report) {
    let db = &world.db;
    let (orders, redemptions, deployments, txs, deliveries, shares) = in_flight(db).await.unwrap();
    report.not_terminal = orders + redemptions + deployments + txs + shares;
    report.outbox_events_lost =
        sqlx::query_scalar("SELECT count(*) FROM outbox_deliveries WHERE status = 'dead'").fetch_one(db).await.unwrap();
    report.outbox_events_lost += deliveries;
    report.orders_fulfilled =
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE state = 'fulfilled'").fetch_one(db).await.unwrap();

    // Per collection: minted on chain against sold in the database and the supply.
    let collections: Vec<(i64, Vec<u8>, i64, i64, i64)> = sqlx::query_as(
        "SELECT c.id, c.collection_address,
                (SELECT COALESCE(sum(i.supply), 0) FROM campaign_items i WHERE i.campaign_id = c.id)::bigint,
                (SELECT COALESCE(sum(i.reserved), 0) FROM campaign_items i WHERE i.campaign_id = c.id)::bigint,
                (SELECT COALESCE(sum(o.quantity), 0) FROM orders o
                  WHERE o.campaign_id = c.id AND o.state IN ('fulfilled', 'refunded'))::bigint
         FROM campaigns c WHERE c.collection_address IS NOT NULL",
    )
    .fetch_all(db)
    .await
    .unwrap();
    for (_, address, supply, reserved, sold) in collections {
        let nft = world.platform.collection(Address::from_slice(&address));
        let minted: u64 = nft.totalMinted().call().await.unwrap().try_into().unwrap_or(u64::MAX);
        report.tokens_minted += minted;
        let minted = i64::try_from(minted).unwrap_or(i64::MAX);
        report.double_mints += (minted - sold).max(0);
        report.tokens_without_capture += (sold - minted).max(0);
        report.oversold_units += (minted - supply).max(0) + (reserved - supply).max(0);
    }
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT idempotency_key FROM chain_transactions
                               WHERE state = 'confirmed' AND idempotency_key LIKE 'order-mint:%'
                               GROUP BY idempotency_key HAVING count(*) > 1) t",
    )
    .fetch_one(db)
    .await
    .unwrap();
    report.double_mints += twice;

    // Stripe: a captured payment must have its token, and a token its captured payment.
    let intents: Vec<(String, String)> =
        sqlx::query_as("SELECT payment_intent_id, state FROM orders WHERE payment_intent_id IS NOT NULL")
            .fetch_all(db)
            .await
            .unwrap();
    for (intent, state) in intents {
        let captured = world.stripe.payment_intent(&intent).is_some_and(|i| i["status"] == "succeeded");
        match (captured, state.as_str()) {
            (true, "fulfilled" | "refunded") | (false, "expired" | "failed") => {}
            (true, _) => report.captures_without_token += 1,
            (false, _) => report.tokens_without_capture += 1,
        }
    }

    // Wallets: one `OrderPaid` per fulfilled wallet order, and none for an order not fulfilled
    // (the contract minted for it: a token the platform would not account for).
    report.wallet_orders_fulfilled =
        sqlx::query_scalar("SELECT count(*) FROM orders WHERE state = 'fulfilled' AND method <> 'card'")
            .fetch_one(db)
            .await
            .unwrap();
    let paid = alloy::rpc::types::Filter::new()
        .address(*world.platform.checkout.address())
        .event_signature(Checkout::OrderPaid::SIGNATURE_HASH)
        .from_block(0);
    let paid = world.platform.checkout.provider().get_logs(&paid).await.unwrap();
    let mut orders_paid = std::collections::BTreeSet::new();
    for log in &paid {
        let id = log.topics().get(1).copied().unwrap_or_default();
        if !orders_paid.insert(id) {
            report.double_mints += 1;
        }
        let order = uuid::Uuid::from_slice(&id[16..]).unwrap_or_default();
        let fulfilled: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM orders WHERE public_id = $1 AND state IN ('fulfilled', 'refunded'))",
        )
        .bind(order)
        .fetch_one(db)
        .await
        .unwrap();
        report.wallet_payments_unmatched += i64::from(!fulfilled);
    }
    report.wallet_payments_unmatched +=
        (report.wallet_orders_fulfilled - i64::try_from(orders_paid.len()).unwrap_or(0)).max(0);

    // Holders' shares: one `RewardsDistributed` per paid batch, with the batch's total; none for
    // a batch id the platform did not record as paid.
    let batches: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, total::text FROM royalty_batches WHERE state = 'paid'").fetch_all(db).await.unwrap();
    report.distributions_paid = i64::try_from(batches.len()).unwrap_or(i64::MAX);
    let distributed = alloy::rpc::types::Filter::new()
        .address(*world.platform.vault.address())
        .event_signature(RewardVault::RewardsDistributed::SIGNATURE_HASH)
        .from_block(0);
    let mut on_chain: std::collections::BTreeMap<U256, Vec<U256>> = std::collections::BTreeMap::new();
    for log in world.platform.vault.provider().get_logs(&distributed).await.unwrap() {
        let event = RewardVault::RewardsDistributed::decode_log_data(log.data()).unwrap();
        on_chain.entry(event.batchId).or_default().push(event.total);
    }
    for (batch, total) in &batches {
        match on_chain.remove(&U256::from(u64::try_from(*batch).unwrap_or(0))).as_deref() {
            Some([paid]) if paid.to_string() == *total => {}
            Some([_]) | None => report.distributions_unpaid += 1,
            Some(twice) => report.double_payouts += i64::try_from(twice.len()).unwrap_or(i64::MAX) - 1,
        }
    }
    report.double_payouts += i64::try_from(on_chain.len()).unwrap_or(i64::MAX);

    // The vault: one RewardRedeemed per completed token redemption, never two for one id.
    report.redemptions_paid =
        sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE state = 'completed'").fetch_one(db).await.unwrap();
    let filter = alloy::rpc::types::Filter::new()
        .address(*world.platform.vault.address())
        .event_signature(RewardVault::RewardRedeemed::SIGNATURE_HASH)
        .from_block(0);
    let logs = world.platform.vault.provider().get_logs(&filter).await.unwrap();
    let ids: std::collections::BTreeSet<_> = logs.iter().map(|log| log.topics().get(1).copied()).collect();
    let events = i64::try_from(logs.len()).unwrap_or(i64::MAX);
    report.double_payouts += events - i64::try_from(ids.len()).unwrap_or(0) + (events - report.redemptions_paid).max(0);

    // Daemons: never two processes in one daemon's work at once (runs a kill cut short never
    // finished; the lease ran out before another process took over).
    report.daemon_overlaps = sqlx::query_scalar(
        "SELECT count(*) FROM daemon_runs a JOIN daemon_runs b
           ON a.daemon = b.daemon AND a.id < b.id AND a.holder <> b.holder
          AND tstzrange(a.started_at, a.finished_at) && tstzrange(b.started_at, b.finished_at)
          AND a.outcome IN ('ok', 'failed') AND b.outcome IN ('ok', 'failed')",
    )
    .fetch_one(db)
    .await
    .unwrap();
    report.daemons_run_by_several = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT daemon FROM daemon_runs GROUP BY daemon HAVING count(DISTINCT holder) > 1) t",
    )
    .fetch_one(db)
    .await
    .unwrap();

    // The signer's nonces: every one used once, none skipped.
    let nonces: Vec<i64> = sqlx::query_scalar(
        "SELECT nonce FROM chain_transactions WHERE state = 'confirmed' AND nonce IS NOT NULL ORDER BY nonce",
    )
    .fetch_all(db)
    .await
    .unwrap();
    report.nonce_gaps += nonces.windows(2).filter(|pair| pair[1] != pair[0] + 1).count() as i64;
}

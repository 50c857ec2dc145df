//! A brand operator's journey through the back office, against the real app, PostgreSQL and a
//! private anvil with the platform's contracts: sign in → campaign with an item and a reward →
//! artwork → deploy (through the transaction queue) → the collection on chain → live →
//! metadata; then funding the reward into the vault, perk codes, and exports.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{
    auth::BrandRole,
    contracts::{Platform, PlatformRoles},
    service::background,
};
use testkit::{
    self as testing, TEST_PASSWORD, TestApp, TestDb,
    proxy::{Hold, RpcProxy},
};
use tokio_util::sync::CancellationToken;

/// A 1×1 PNG.
pub(crate) const PNG: &str = "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da636460f85f0f0002870180eb47ba920000000049454e44ae426082";

pub(crate) struct Operator {
    pub(crate) app: TestApp,
    pub(crate) token: String,
}

impl Operator {
    /// The API as this operator, through typed helpers.
    pub(crate) fn api(&self) -> testkit::api::Client<'_> {
        self.app.api(&self.token)
    }

    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs a file (an export, a ZIP, an image).
    pub(crate) async fn download(&self, path: &str) -> reqwest::Response {
        self.app.client.get(self.app.url(path)).bearer_auth(&self.token).send().await.unwrap()
    }

    pub(crate) async fn upload(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        self.send_bytes(Method::PUT, path, content_type, bytes).await
    }

    pub(crate) async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> (StatusCode, Value) {
        let request = self.app.client.request(method, self.app.url(path)).bearer_auth(&self.token);
        let response = request.header("content-type", content_type).body(bytes).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` until `done` holds (30 s at most).
    pub(crate) async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.call(Method::GET, path, None).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "gave up waiting on {path}: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The platform on a private anvil, the back office with its background (dispatcher, daemons,
/// transaction sender) and a signed-in brand owner.
pub(crate) struct Platformed {
    pub(crate) anvil: alloy::node_bindings::AnvilInstance,
    pub(crate) platform: Platform,
    pub(crate) relayer: alloy::signers::local::PrivateKeySigner,
    pub(crate) owner: Operator,
    /// The payment service on the same database and chain.
    pub(crate) payment: TestApp,
    pub(crate) brand: i64,
    /// Between the services and anvil when asked for ([`platformed_behind_proxy`]).
    pub(crate) rpc: Option<RpcProxy>,
    shutdown: CancellationToken,
    running: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The services a platformed test's background runs.
const SERVICES: [shared::ServiceSpec; 4] =
    [backoffice::SERVICE, payment::SERVICE, indexer::SERVICE, redemption::SERVICE];

/// Sets everything up; `deployer` holds the factory's deployer role (the relayer, normally);
/// `extra` adds configuration.
pub(crate) async fn platformed(
    deployer: impl FnOnce(&alloy::node_bindings::AnvilInstance) -> Address,
    extra: &[(&str, &str)],
) -> Platformed {
    set_up(deployer, extra, false).await
}

/// Same as [`platformed`], with the services reaching anvil through an [`RpcProxy`] the test
/// can make hold broadcasts back.
pub(crate) async fn platformed_behind_proxy(
    deployer: impl FnOnce(&alloy::node_bindings::AnvilInstance) -> Address,
    extra: &[(&str, &str)],
) -> Platformed {
    set_up(deployer, extra, true).await
}

async fn set_up(
    deployer: impl FnOnce(&alloy::node_bindings::AnvilInstance) -> Address,
    extra: &[(&str, &str)],
    proxied: bool,
) -> Platformed {
    let anvil = testing::anvil();
    let relayer = testing::signer(&anvil, 0);
    let roles = PlatformRoles {
        admin: relayer.address(),
        deployer: deployer(&anvil),
        quote_signer: anvil.addresses()[1],
        voucher_signer: anvil.addresses()[2],
        distributor: relayer.address(),
    };
    let platform = Platform::deploy(testing::wallet(&anvil, 0), roles).await.unwrap();
    let checksum = |a: &Address| a.to_checksum(None);
    let key = format!("0x{}", alloy::hex::encode(relayer.to_bytes()));
    let db = TestDb::create().await;
    let rpc = match proxied {
        true => Some(RpcProxy::start(anvil.endpoint(), Hold::Nothing).await.unwrap()),
        false => None,
    };
    let endpoint = rpc.as_ref().map_or_else(|| anvil.endpoint(), |rpc| rpc.url().to_owned());
    let quote_signer = format!("0x{}", alloy::hex::encode(testing::signer(&anvil, 1).to_bytes()));
    // The payment service's address is known before it starts: Stripe's hosted page sends
    // buyers back to its order page.
    let payment_addr = testing::free_addr().to_string();
    let payment_url = format!("http://{payment_addr}");
    let mut vars = vec![
        ("QUOTE_SIGNER_PRIVATE_KEY", quote_signer.as_str()),
        ("PAYMENT_ADDR", payment_addr.as_str()),
        ("PAYMENT_PUBLIC_URL", payment_url.as_str()),
    ];
    vars.extend_from_slice(extra);
    let config = |more: &[(&str, &str)]| {
        let mut all = vars.clone();
        all.extend_from_slice(more);
        testing::config(&db.url, &endpoint, &all)
    };
    let config = config(&[
        ("TX_SIGNER_PRIVATE_KEYS", &key),
        ("CHAIN_ID", &anvil.chain_id().to_string()),
        ("CAMPAIGN_FACTORY_ADDRESS", &checksum(platform.factory.address())),
        ("CHECKOUT_ADDRESS", &checksum(platform.checkout.address())),
        ("REWARD_VAULT_ADDRESS", &checksum(platform.vault.address())),
        ("STABLECOIN_ADDRESS", &checksum(platform.stablecoin.address())),
        ("TRANSFER_VALIDATOR_ADDRESS", &checksum(platform.validator.address())),
        ("PUBLIC_BASE_URL", "https://nft.brandmint.example"),
    ]);
    let app = TestApp::spawn_with(backoffice::SERVICE, config.clone()).await;
    let payment = TestApp::spawn_with(payment::SERVICE, config).await;
    let shutdown = CancellationToken::new();
    let running = tokio::spawn({
        let (resources, shutdown) = (app.resources.clone(), shutdown.clone());
        async move { background(&resources, &SERVICES, shutdown).await }
    });

    // The brand owner signs in through the API.
    let brand = app.brand("Acme").await;
    let (owner_id, _) = app.account("owner@acme.example", None).await;
    app.member(brand, owner_id, BrandRole::Owner, &[]).await;
    let sign_in = app
        .client
        .post(app.url("/auth/sign-in"))
        .json(&json!({ "email": "owner@acme.example", "password": TEST_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::OK);
    let token = sign_in.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    Platformed { anvil, platform, relayer, owner: Operator { app, token }, payment, brand, rpc, shutdown, running }
}

impl Platformed {
    /// Kills the background wherever it is (as `kill -9` would: nothing after its current await
    /// runs, its open transactions roll back) and starts a fresh one, as a restarted process.
    pub(crate) async fn restart_background(&mut self) {
        self.running.abort();
        drop((&mut self.running).await);
        let (resources, shutdown) = (self.owner.app.resources.clone(), self.shutdown.clone());
        self.running = tokio::spawn(async move { background(&resources, &SERVICES, shutdown).await });
    }

    /// Waits until the transaction queue has nothing in flight: the platform's own account 0
    /// (which tests also send from, to mint) is then free of the queue's nonces.
    pub(crate) async fn queue_idle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let in_flight: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM chain_transactions WHERE state NOT IN ('confirmed', 'failed')",
            )
            .fetch_one(self.owner.app.resources.db())
            .await
            .unwrap();
            if in_flight == 0 {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{in_flight} queued transactions never finished");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Whether the background (dispatcher, daemons, sender) still runs.
    pub(crate) fn background_running(&self) -> bool {
        !self.running.is_finished()
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.running.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn an_owner_sets_up_and_deploys_a_campaign_whose_collection_and_metadata_are_live() {
    let setup = platformed(|anvil| anvil.addresses()[0], &[]).await;
    let Platformed { ref anvil, ref platform, ref relayer, ref owner, brand, .. } = setup;
    let checksum = |a: &Address| a.to_checksum(None);

    // The brand's treasury receives royalties unless the campaign names another receiver.
    let treasury = anvil.addresses()[5];
    let (status, body) = owner
        .call(Method::PATCH, &format!("/brands/{brand}"), Some(json!({ "treasury_address": checksum(&treasury) })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A campaign with an item and a token reward.
    let campaign = json!({
        "name": "Summer Drop",
        "slug": "summer-drop",
        "description": "Sunglasses that unlock a beach party.",
        "royalty_bps": 750,
        "items": [{ "name": "Golden pass", "price_minor": 4_900, "currency": "EUR", "supply": 250,
                    "per_wallet_limit": 5, "payment_methods": ["card", "eth"] }],
    });
    let (status, campaign) = owner.call(Method::POST, &format!("/brands/{brand}/campaigns"), Some(campaign)).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    assert_eq!(campaign["state"], "draft");
    let id = campaign["id"].as_i64().unwrap();
    let base = format!("/brands/{brand}/campaigns/{id}");
    let (status, reward) = owner
        .call(
            Method::POST,
            &format!("{base}/rewards"),
            Some(json!({ "kind": "token", "name": "Beach cash", "token": "stablecoin", "amount_per_redemption": "5000000" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{reward}");
    let reward_id = reward["id"].as_i64().unwrap();

    // Deploying without artwork says what is missing.
    let (status, problem) = owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "artwork");

    // Artwork: a real image is stored; something else is refused.
    let (status, problem) = owner.upload(&format!("{base}/artwork"), "image/png", b"%PDF-1.7".to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let (status, body) = owner.upload(&format!("{base}/artwork"), "image/png", alloy::hex::decode(PNG).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["artwork"]["content_type"], "image/png");

    // Deploy, twice: one deployment, one transaction.
    let (status, body) = owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["state"], "deploying");
    let (status, again) = owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["deployment"]["chain_tx_id"], body["deployment"]["chain_tx_id"]);

    let live = owner.wait_for(&base, |c| c["state"] != "deploying").await;
    assert_eq!(live["state"], "live", "{live}");
    assert_eq!(live["deployment"]["state"], "confirmed");
    let collection: Address = live["collection_address"].as_str().unwrap().parse().unwrap();
    assert_eq!(collection, platform.factory.collectionOf(U256::from(id)).call().await.unwrap());

    // The collection on chain is what the operator set up.
    let nft = platform.collection(collection);
    assert_eq!(nft.name().call().await.unwrap(), "Summer Drop");
    assert_eq!(nft.symbol().call().await.unwrap(), "SUMMERDROP");
    assert_eq!(nft.maxSupply().call().await.unwrap(), U256::from(250));
    let royalty = nft.royaltyInfo(U256::from(1), U256::from(10_000)).call().await.unwrap();
    assert_eq!((royalty.receiver, royalty.amount), (treasury, U256::from(750)));
    assert_eq!(nft.baseURI().call().await.unwrap(), format!("https://nft.brandmint.example/metadata/{id}/"));

    // Metadata: 404 before a token is minted, JSON after.
    let metadata = format!("/metadata/{id}/1");
    let response = owner.app.get(&metadata).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    setup.queue_idle().await; // the campaign's set-up calls go out from account 0, as this mint
    Platform::mint_batch(&platform.collection(collection), anvil.addresses()[9], 2)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let response = owner.app.get(&metadata).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["cache-control"].to_str().unwrap().contains("max-age"));
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["name"], "Summer Drop #1");
    assert_eq!(token["description"], "Sunglasses that unlock a beach party.");
    assert_eq!(token["image"], format!("https://nft.brandmint.example/metadata/{id}/image"));
    assert!(token["attributes"].as_array().unwrap().iter().any(|a| a["trait_type"] == "Brand" && a["value"] == "Acme"));
    let image = owner.app.get(&format!("/metadata/{id}/image")).await;
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(image.bytes().await.unwrap().to_vec(), alloy::hex::decode(PNG).unwrap());

    // On-chain fields are frozen now; the description is not.
    let (status, _) = owner.call(Method::PATCH, &base, Some(json!({ "royalty_bps": 100 }))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = owner.call(Method::PATCH, &base, Some(json!({ "description": "Now with a DJ." }))).await;
    assert_eq!(status, StatusCode::OK);

    // Funding the reward: the relayer's stablecoin goes into the vault for this campaign.
    platform
        .stablecoin
        .mint(relayer.address(), U256::from(100_000_000u64))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let (status, body) = owner
        .call(Method::POST, &format!("{base}/rewards/{reward_id}/fund"), Some(json!({ "amount": "25000000" })))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let funded = owner.wait_for(&format!("{base}/rewards"), |rewards| rewards[0]["vault_balance"] == "25000000").await;
    assert_eq!(funded[0]["fundings"][0]["amount"], "25000000");
    assert_eq!(
        platform.vault.campaignBalance(U256::from(id), *platform.stablecoin.address()).call().await.unwrap(),
        U256::from(25_000_000u64)
    );

    // Pause and resume.
    let (status, body) = owner.call(Method::POST, &format!("{base}/state"), Some(json!({ "action": "pause" }))).await;
    assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("paused")));
    let (status, _) = owner.call(Method::POST, &format!("{base}/state"), Some(json!({ "action": "archive" }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "a paused campaign must end before it is archived");
    let (status, body) = owner.call(Method::POST, &format!("{base}/state"), Some(json!({ "action": "resume" }))).await;
    assert_eq!((status, body["state"].as_str()), (StatusCode::OK, Some("live")));

    setup.stop().await;
}

#[tokio::test]
async fn a_failed_deployment_shows_why_and_deploys_on_retry() {
    // The relayer lacks the factory's deployer role: the deployment fails.
    let setup = platformed(|anvil| anvil.addresses()[7], &[]).await;
    let Platformed { ref anvil, ref platform, ref relayer, ref owner, brand, .. } = setup;
    let campaign = json!({
        "name": "Retry Drop", "slug": "retry", "royalty_bps": 0,
        "royalty_receiver": anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 100, "currency": "EUR", "supply": 10, "payment_methods": ["card"] }],
    });
    let (status, campaign) = owner.call(Method::POST, &format!("/brands/{brand}/campaigns"), Some(campaign)).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let base = format!("/brands/{brand}/campaigns/{}", campaign["id"]);
    owner.upload(&format!("{base}/artwork"), "image/png", alloy::hex::decode(PNG).unwrap()).await;
    let (status, _) = owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let failed = owner.wait_for(&base, |c| c["state"] != "deploying").await;
    assert_eq!(failed["state"], "deploy_failed", "{failed}");
    assert_eq!(failed["deployment"]["state"], "failed");
    let error = failed["deployment"]["error"].as_str().unwrap();
    assert!(!error.is_empty() && error != "the transaction failed", "the operator sees why: {error}");

    // The platform admin grants the role (outside the back office, from the relayer's account:
    // once the queue has nothing in flight); deploying again succeeds.
    setup.queue_idle().await;
    let deployer_role = platform.factory.DEPLOYER_ROLE().call().await.unwrap();
    let admin = shared::contracts::CampaignFactory::new(*platform.factory.address(), testing::wallet(anvil, 0));
    admin.grantRole(deployer_role, relayer.address()).send().await.unwrap().get_receipt().await.unwrap();
    let (status, retried) = owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["deployment"]["attempt"], 2);
    let live = owner.wait_for(&base, |c| c["state"] != "deploying").await;
    assert_eq!(live["state"], "live", "{live}");
    assert_eq!(live["deployment"]["error"], Value::Null);
    let transitions: Vec<String> = sqlx::query_scalar(
        "SELECT to_state FROM state_transitions WHERE machine = 'campaign' AND entity_id = $1 ORDER BY id",
    )
    .bind(campaign["id"].as_i64().unwrap())
    .fetch_all(owner.app.resources.db())
    .await
    .unwrap();
    assert_eq!(transitions, ["deploying", "deploy_failed", "deploying", "live"]);
    setup.stop().await;
}

#[tokio::test]
async fn a_platform_admin_cancels_a_stuck_deployment_whose_nonce_goes_to_a_self_transfer_and_the_campaign_fails() {
    use alloy::providers::Provider;

    let setup = platformed_behind_proxy(|anvil| anvil.addresses()[0], &[]).await;
    let Platformed { ref anvil, ref relayer, ref owner, brand, .. } = setup;
    let rpc = setup.rpc.as_ref().unwrap();
    let (_, admin) = owner.app.account("ops-admin@brandmint.example", Some(shared::auth::PlatformRole::Admin)).await;
    let admin = Staff { app: &owner.app, token: &admin };
    let (_, developer) =
        owner.app.account("ops-dev@brandmint.example", Some(shared::auth::PlatformRole::Developer)).await;

    // The node never hears of the deployment: it is stuck, signed with its nonce.
    rpc.hold(Hold::Swallow);
    let campaign = json!({
        "name": "Stuck Drop", "slug": "stuck", "royalty_bps": 0,
        "royalty_receiver": anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 100, "currency": "EUR", "supply": 10, "payment_methods": ["card"] }],
    });
    let (status, campaign) = owner.call(Method::POST, &format!("/brands/{brand}/campaigns"), Some(campaign)).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let base = format!("/brands/{brand}/campaigns/{}", campaign["id"]);
    owner.upload(&format!("{base}/artwork"), "image/png", alloy::hex::decode(PNG).unwrap()).await;
    let seen = rpc.broadcasts_seen();
    let (status, deploying) = owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{deploying}");
    let tx_id = deploying["deployment"]["chain_tx_id"].as_i64().unwrap();
    let path = format!("/ops/chain-transactions/{tx_id}");
    let stuck = admin.wait_for(&path, |tx| tx["state"] == "signed" && rpc.broadcasts_seen() > seen).await;
    let nonce = stuck["nonce"].as_u64().unwrap();

    // Developers read the queue but cannot act on it.
    let developer = Staff { app: &owner.app, token: &developer };
    let (status, listed) = developer.call(Method::GET, "/ops/chain-transactions?state=signed", None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(listed.as_array().unwrap().iter().any(|tx| tx["id"] == tx_id));
    let (status, _) = developer.call(Method::POST, &format!("{path}/cancel"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Cancelled twice: one request, one audit entry.
    let (status, first) = admin.call(Method::POST, &format!("{path}/cancel"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    assert_eq!(first["operator_action"], "cancel");
    let (status, second) = admin.call(Method::POST, &format!("{path}/cancel"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{second}");
    assert_eq!(second["operator_action_at"], first["operator_action_at"]);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'chain-tx.cancel-requested' AND target = $1")
            .bind(format!("chain-tx:{tx_id}"))
            .fetch_one(owner.app.resources.db())
            .await
            .unwrap();
    assert_eq!(audited, 1);
    let (status, problem) = admin.call(Method::POST, &format!("{path}/replace"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // The sender signs the self-transfer at the same nonce; the node hears of it.
    let cancelling = admin
        .wait_for(&path, |tx| tx["attempts"].as_array().is_some_and(|a| a.iter().any(|a| a["purpose"] == "cancel")))
        .await;
    rpc.hold(Hold::Nothing);
    let cancel_hash: alloy::primitives::B256 = cancelling["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["purpose"] == "cancel")
        .map(|a| a["tx_hash"].as_str().unwrap().parse().unwrap())
        .unwrap();
    let failed = admin.wait_for(&path, |tx| tx["state"] == "failed").await;
    assert_eq!(failed["cancelled"], true, "{failed}");
    assert_eq!(failed["error"], "cancelled by an operator");
    assert_eq!(failed["nonce"].as_u64(), Some(nonce));

    // The nonce went to the cancellation: a 0-value transfer from the relayer to itself.
    let chain = alloy::providers::ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let receipt = chain.get_transaction_receipt(cancel_hash).await.unwrap().unwrap();
    assert_eq!((receipt.from, receipt.to), (relayer.address(), Some(relayer.address())));
    let mined = chain.get_transaction_by_hash(cancel_hash).await.unwrap().unwrap();
    assert_eq!(alloy::consensus::Transaction::nonce(&mined), nonce);
    assert!(chain.get_transaction_count(relayer.address()).await.unwrap() > nonce);

    // The requester heard it failed: the deployment failed, with why.
    let campaign = owner.wait_for(&base, |c| c["state"] != "deploying").await;
    assert_eq!(campaign["state"], "deploy_failed", "{campaign}");
    assert_eq!(campaign["deployment"]["error"], "cancelled by an operator");
    setup.stop().await;
}

/// A platform staff member's calls to the back office (an admin, a developer).
struct Staff<'a> {
    app: &'a TestApp,
    token: &'a str,
}

impl Staff<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.app.client.request(method, self.app.url(path)).bearer_auth(self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` until `done` holds (60 s at most: a swallowed broadcast holds the sender
    /// for its RPC timeout).
    async fn wait_for(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, body) = self.call(Method::GET, path, None).await;
            if done(&body) {
                return body;
            }
            assert!(Instant::now() < deadline, "gave up waiting on {path}: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

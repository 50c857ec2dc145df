//! Redeeming rewards with a wallet, against the real services and a private anvil with the
//! platform's contracts: 500 concurrent claims of one (reward, token) pay once on chain; a
//! wallet that does not hold the token is refused; after a transfer the new holder redeems and
//! the old one cannot; a perk's code is shown once; a voucher sent by the customer completes
//! from the indexer's event; a high-value claim waits for KYC, which staff approve in the back
//! office, and then pays once.

use std::time::{Duration, Instant};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{auth::PlatformRole, contracts::RewardVault};
use testkit::{self as testing, TestApp};

use crate::operator::{PNG, Platformed, platformed, platformed_behind_proxy};

/// A client of the redemption service as one customer (signed in with their wallet, or not).
pub(crate) struct Customer<'a> {
    pub(crate) app: &'a TestApp,
    pub(crate) token: Option<String>,
}

impl Customer<'_> {
    /// Calls the service; checks that no answer is a 500 and every refusal a problem document.
    pub(crate) async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.app.client.request(method, self.app.url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let problem = response.headers().get("content-type").is_some_and(|c| c == "application/problem+json");
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.as_u16() < 500, "{status}: {body}");
        assert!(status.is_success() || problem, "a refusal is a problem document: {status} {body}");
        (status, body)
    }

    pub(crate) async fn claim(&self, reward: i64, token: u64, extra: Value) -> (StatusCode, Value) {
        let mut body = json!({ "reward_id": reward, "token_id": token.to_string() });
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        self.call(Method::POST, "/customers/me/redemptions", Some(body)).await
    }

    /// Claims until the indexer has seen the token arrive (a fresh transfer is refused with a
    /// "not indexed yet" until then).
    async fn claim_when_indexed(&self, reward: i64, token: u64) -> (StatusCode, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.claim(reward, token, json!({})).await;
            let waiting = body["detail"].as_str().is_some_and(|d| d.contains("not indexed yet"));
            if !waiting || Instant::now() > deadline {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(crate) async fn until(&self, redemption: i64, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.call(Method::GET, &format!("/customers/me/redemptions/{redemption}"), None).await;
            if body["state"] == state {
                return body;
            }
            assert!(Instant::now() < deadline, "redemption {redemption} never got {state}: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A live campaign with a 5-dollar reward, a 50-dollar one above a 10-dollar KYC threshold
/// (both funded with 100 dollars in the vault) and a perk with two codes; tokens 1 and 2 held
/// by Ann (account 6), token 3 by Bob (account 7); the redemption service beside it.
pub(crate) struct Rewarded {
    pub(crate) setup: Platformed,
    pub(crate) service: TestApp,
    pub(crate) campaign: i64,
    /// The campaign's path in the back office.
    pub(crate) base: String,
    pub(crate) small: i64,
    pub(crate) large: i64,
    pub(crate) perk: i64,
    pub(crate) collection: Address,
    pub(crate) ann: Address,
    pub(crate) bob: Address,
}

/// Sets up [`Rewarded`]; `proxied` puts an [`testkit::proxy::RpcProxy`] between the services
/// and anvil.
pub(crate) async fn rewarded(proxied: bool) -> Rewarded {
    // The redemption service's voucher key, made a voucher signer of the vault below.
    let voucher_key = "0x5de4111afa1a4b94908f83103e29f0502e07e17ba31d7b643d5d5f24e5b6d1ca";
    let extra = [("VOUCHER_SIGNER_PRIVATE_KEY", voucher_key), ("REDEMPTION_CLAIMS_PER_HOUR", "100000")];
    let setup = match proxied {
        true => platformed_behind_proxy(|anvil| anvil.addresses()[0], &extra).await,
        false => platformed(|anvil| anvil.addresses()[0], &extra).await,
    };
    let (anvil, owner, platform) = (&setup.anvil, &setup.owner, &setup.platform);
    let service = TestApp::spawn_with(redemption::SERVICE, owner.app.resources.config().clone()).await;
    let voucher_signer = voucher_key.parse::<alloy::signers::local::PrivateKeySigner>().unwrap().address();
    let role = platform.vault.VOUCHER_SIGNER_ROLE().call().await.unwrap();
    testing::mined(platform.vault.grantRole(role, voucher_signer)).await;

    // A campaign with a 5-dollar reward, a 50-dollar one above a 10-dollar KYC threshold, and a
    // perk with two codes; deployed and funded.
    let brand = setup.brand;
    let campaign = json!({ "name": "Rewarded", "slug": "rewarded", "royalty_bps": 0,
        "royalty_receiver": anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": 100, "payment_methods": ["card"] }] });
    let (status, campaign) = owner.call(Method::POST, &format!("/brands/{brand}/campaigns"), Some(campaign)).await;
    assert_eq!(status, StatusCode::CREATED, "{campaign}");
    let id = campaign["id"].as_i64().unwrap();
    let base = format!("/brands/{brand}/campaigns/{id}");
    let rewards = format!("{base}/rewards");
    let reward = |body: Value| {
        let rewards = rewards.clone();
        async move {
            let (status, reward) = owner.call(Method::POST, &rewards, Some(body)).await;
            assert_eq!(status, StatusCode::CREATED, "{reward}");
            reward["id"].as_i64().unwrap()
        }
    };
    let small =
        reward(json!({ "kind": "token", "name": "Five", "token": "stablecoin", "amount_per_redemption": "5000000" }))
            .await;
    let large = reward(json!({ "kind": "token", "name": "Fifty", "token": "stablecoin",
                               "amount_per_redemption": "50000000", "kyc_threshold": "10000000" }))
    .await;
    let perk = reward(json!({ "kind": "perk", "name": "Backstage" })).await;
    let (status, _) = owner.upload(&format!("{base}/artwork"), "image/png", alloy::hex::decode(PNG).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let csv = b"code\nBACKSTAGE-1\nBACKSTAGE-2\n".to_vec();
    let (status, imported) =
        owner.send_bytes(Method::POST, &format!("{base}/rewards/{perk}/codes"), "text/csv", csv).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    let (status, _) = owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let live = owner.wait_for(&base, |c| c["state"] != "deploying").await;
    assert_eq!(live["state"], "live", "{live}");
    let collection: Address = live["collection_address"].as_str().unwrap().parse().unwrap();
    // The vault knows the campaign once its set-up transactions are through (the queue sends
    // them from the relayer's account, which the mint below uses too).
    let deadline = Instant::now() + Duration::from_secs(30);
    while platform.vault.campaignAdmin(U256::from(id)).call().await.unwrap().is_zero() {
        assert!(Instant::now() < deadline, "the vault never learned the campaign");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    setup.queue_idle().await;
    testing::mined(platform.stablecoin.mint(setup.relayer.address(), U256::from(200_000_000u64))).await;
    for reward in [small, large] {
        let (status, body) = owner
            .call(Method::POST, &format!("{base}/rewards/{reward}/fund"), Some(json!({ "amount": "100000000" })))
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    owner
        .wait_for(&format!("{base}/rewards"), |r| {
            r[0]["vault_balance"] == "100000000" && r[1]["vault_balance"] == "100000000"
        })
        .await;

    setup.queue_idle().await;
    let (ann, bob) = (anvil.addresses()[6], anvil.addresses()[7]);
    let nft = platform.collection(collection);
    testing::mined(nft.mint(ann, U256::from(2))).await;
    testing::mined(nft.mint(bob, U256::from(1))).await;
    Rewarded { campaign: id, base, small, large, perk, collection, ann, bob, service, setup }
}

impl Rewarded {
    pub(crate) async fn stop(self) {
        self.service.stop().await.unwrap();
        self.setup.stop().await;
    }
}

#[tokio::test]
async fn wallet_redemptions_pay_exactly_once_follow_the_holder_and_wait_for_kyc() {
    let world = rewarded(false).await;
    let Rewarded { ref setup, ref service, small, large, perk, collection, ann, bob, .. } = world;
    let (anvil, owner, platform) = (&setup.anvil, &setup.owner, &setup.platform);
    let (_, ann_token) = service.customer(ann).await;
    let (_, bob_token) = service.customer(bob).await;
    let (ann_c, bob_c) =
        (Customer { app: service, token: Some(ann_token) }, Customer { app: service, token: Some(bob_token) });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, rewards) = ann_c.call(Method::GET, "/customers/me/rewards", None).await;
        if rewards.as_array().is_some_and(|r| r.len() == 6) {
            let five = rewards.as_array().unwrap().iter().find(|r| r["reward_id"] == small && r["token_id"] == "1");
            assert_eq!(five.unwrap()["left"], 1, "{rewards}");
            let fifty = rewards.as_array().unwrap().iter().find(|r| r["reward_id"] == large).unwrap();
            assert_eq!(fifty["needs_kyc"], true);
            break;
        }
        assert!(Instant::now() < deadline, "the indexer never showed Ann's tokens: {rewards}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 500 concurrent claims of the 5-dollar reward for token 1: one redemption, one payout.
    let before = platform.stablecoin.balanceOf(ann).call().await.unwrap();
    let claims = (0..500).map(|_| ann_c.claim(small, 1, json!({})));
    let answers = futures_util::future::join_all(claims).await;
    let won: Vec<&Value> = answers.iter().filter(|(s, _)| *s == StatusCode::CREATED).map(|(_, b)| b).collect();
    assert_eq!(won.len(), 1, "exactly one claim is taken");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!((*status, body["code"].as_str()), (StatusCode::CONFLICT, Some("already-redeemed")), "{body}");
    }
    let redemption = won[0]["id"].as_i64().unwrap();
    assert_eq!(won[0]["state"], "submitted");
    let paid = ann_c.until(redemption, "completed").await;
    assert!(paid["tx_hash"].as_str().is_some_and(|h| h.len() == 66), "{paid}");
    assert_eq!(platform.stablecoin.balanceOf(ann).call().await.unwrap() - before, U256::from(5_000_000u64));
    let chain = testing::wallet(anvil, 0);
    let filter = Filter::new()
        .address(*platform.vault.address())
        .event_signature(RewardVault::RewardRedeemed::SIGNATURE_HASH)
        .from_block(0);
    let redeemed = chain.get_logs(&filter).await.unwrap();
    assert_eq!(redeemed.len(), 1, "one RewardRedeemed on chain");
    let (status, again) = ann_c.claim(small, 1, json!({})).await;
    assert_eq!((status, again["code"].as_str()), (StatusCode::CONFLICT, Some("already-redeemed")));

    // Bob does not hold token 1: refused, nothing paid.
    let (status, refused) = bob_c.claim(small, 1, json!({})).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::CONFLICT, Some("not-the-holder")), "{refused}");

    // Ann sends token 2 to Bob: Bob takes its perk (the code shown once), Ann no longer can.
    let as_ann = shared::contracts::CampaignNFT::new(collection, testing::wallet(anvil, 6));
    testing::mined(as_ann.transferFrom(ann, bob, U256::from(2))).await;
    let (status, refused) = ann_c.claim(perk, 2, json!({})).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::CONFLICT, Some("not-the-holder")), "{refused}");
    let (status, code) = bob_c.claim_when_indexed(perk, 2).await;
    assert_eq!(status, StatusCode::CREATED, "{code}");
    assert_eq!((code["state"].as_str(), code["code"].as_str()), (Some("completed"), Some("BACKSTAGE-1")));
    let (_, shown) = bob_c.call(Method::GET, &format!("/customers/me/redemptions/{}", code["id"]), None).await;
    assert_eq!(shown["code"], Value::Null, "a code is shown once");

    // Bob sends his own voucher for token 3: completed from the vault's event.
    let (status, issued) = bob_c.claim(small, 3, json!({ "submitted_by": "customer" })).await;
    assert_eq!((status, issued["state"].as_str()), (StatusCode::CREATED, Some("voucher_issued")), "{issued}");
    let v = &issued["voucher"];
    let voucher = RewardVault::Voucher {
        redemptionId: v["redemption_id"].as_str().unwrap().parse().unwrap(),
        campaignId: v["campaign_id"].as_str().unwrap().parse().unwrap(),
        tokenId: v["token_id"].as_str().unwrap().parse().unwrap(),
        recipient: v["recipient"].as_str().unwrap().parse().unwrap(),
        token: v["token"].as_str().unwrap().parse().unwrap(),
        amount: v["amount"].as_str().unwrap().parse().unwrap(),
        deadline: U256::from(v["deadline"].as_u64().unwrap()),
    };
    let as_bob = RewardVault::new(*platform.vault.address(), testing::wallet(anvil, 7));
    let signature: alloy::primitives::Bytes = v["signature"].as_str().unwrap().parse().unwrap();
    testing::mined(as_bob.redeem(voucher, signature)).await;
    bob_c.until(issued["id"].as_i64().unwrap(), "completed").await;
    assert_eq!(platform.stablecoin.balanceOf(bob).call().await.unwrap(), U256::from(5_000_000u64));

    // The 50-dollar reward waits for Ann's KYC; staff approve it; it pays once.
    let (status, waiting) = ann_c.claim(large, 1, json!({})).await;
    assert_eq!((status, waiting["state"].as_str()), (StatusCode::CREATED, Some("awaiting_kyc")), "{waiting}");
    assert!(waiting["reason"].as_str().unwrap().contains("KYC"));
    let details = json!({ "legal_name": "Ann Holder", "date_of_birth": "1990-12-10", "country": "FR",
                          "document_type": "passport", "document_number": "12AB34567" });
    assert_eq!(ann_c.call(Method::PUT, "/customers/me/kyc", Some(details)).await.0, StatusCode::CREATED);
    let upload = service
        .client
        .put(service.url("/customers/me/kyc/documents/front"))
        .bearer_auth(ann_c.token.as_deref().unwrap())
        .header("content-type", "image/png")
        .body(alloy::hex::decode(PNG).unwrap());
    assert_eq!(upload.send().await.unwrap().status(), StatusCode::CREATED);
    let (_, submitted) = ann_c.call(Method::POST, "/customers/me/kyc/submit", None).await;
    let (_, reviewer) = owner.app.account("support@brandmint.example", Some(PlatformRole::Support)).await;
    let approve = owner.app.client.post(owner.app.url(&format!("/kyc/submissions/{}/approve", submitted["id"])));
    assert_eq!(approve.bearer_auth(&reviewer).json(&json!({})).send().await.unwrap().status(), StatusCode::OK);
    let before = platform.stablecoin.balanceOf(ann).call().await.unwrap();
    ann_c.until(waiting["id"].as_i64().unwrap(), "completed").await;
    assert_eq!(platform.stablecoin.balanceOf(ann).call().await.unwrap() - before, U256::from(50_000_000u64));
    let redeemed = chain.get_logs(&filter).await.unwrap();
    assert_eq!(redeemed.len(), 3, "Ann's five, Bob's five, Ann's fifty");

    world.stop().await;
}

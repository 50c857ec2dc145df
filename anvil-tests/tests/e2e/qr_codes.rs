//! Printed QR codes and counter scans, against the real services and a private anvil with the
//! platform's contracts (the services reach it through a proxy that can hold broadcasts back):
//!
//! - a brand generates a batch; its printable ZIP opens, its manifest matches the database and
//!   each PNG decodes back to the code's URL;
//! - 500 concurrent claims of one single-use code pay once on chain, everyone else hears
//!   "already redeemed"; forged, tampered, revoked and expired codes are refused unpaid; a code
//!   that pays only signed-in wallets refuses a typed address;
//! - the payer killed after signing a payout and before its broadcast reached the node pays
//!   exactly once after the restart;
//! - a customer's counter code, scanned from a photo by the store's verifier, marks the perk
//!   used once; another store's verifier and a stale code are refused;
//! - the back office counts it all: the batch's codes by state, the dashboard's redemptions per
//!   reward, the export's rows.

use std::{
    io::Read,
    time::{Duration, Instant},
};

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    rpc::types::Filter,
    sol_types::SolEvent,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{auth::BrandRole, contracts::RewardVault, qr::CounterClaim};
use testkit::{self as testing, proxy::Hold};

use crate::redeeming::{Customer, Rewarded, rewarded};

/// The base of every printed code's URL in these tests (`PUBLIC_BASE_URL`).
const BASE_URL: &str = "https://nft.brandmint.example";

/// Every file of a ZIP, by name.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len())
        .map(|i| {
            let mut file = archive.by_index(i).unwrap();
            let mut contents = Vec::new();
            file.read_to_end(&mut contents).unwrap();
            (file.name().unwrap().into_owned(), contents)
        })
        .collect()
}

/// The text of the one QR code in a PNG or JPEG.
fn decode(image: &[u8]) -> String {
    let image = image::load_from_memory(image).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

fn random_address() -> Address {
    Address::from(rand::random::<[u8; 20]>())
}

/// The RewardRedeemed events the vault has emitted.
async fn payouts(world: &Rewarded) -> usize {
    let filter = Filter::new()
        .address(*world.setup.platform.vault.address())
        .event_signature(RewardVault::RewardRedeemed::SIGNATURE_HASH)
        .from_block(0);
    testing::wallet(&world.setup.anvil, 0).get_logs(&filter).await.unwrap().len()
}

/// Waits until the code's claim is in `state`; returns the code's view.
async fn code_until(anyone: &Customer<'_>, code: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, view) = anyone.call(Method::GET, &format!("/r/{code}"), None).await;
        assert_eq!(status, StatusCode::OK, "{view}");
        if view["claims"][0]["state"] == state {
            return view;
        }
        assert!(Instant::now() < deadline, "code {code} never got a {state} claim: {view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn printed_codes_and_counter_scans_pay_exactly_once_even_with_the_payer_killed_before_its_broadcast() {
    let world = rewarded(true).await;
    let Rewarded { ref setup, ref service, ref base, small, perk, .. } = world;
    let (owner, platform) = (&setup.owner, &setup.platform);
    let stablecoin = &platform.stablecoin;
    let anyone = Customer { app: service, token: None };

    // A batch of 4 single-use codes for the 5-dollar reward that may pay a typed address.
    let batch = json!({ "reward_id": small, "label": "Spring packaging", "size": 4, "typed_addresses": true });
    let (status, batch) = owner.call(Method::POST, &format!("{base}/qr-batches"), Some(batch)).await;
    assert_eq!(
        (status, batch["state"].as_str(), batch["codes"]["issued"].as_i64()),
        (StatusCode::CREATED, Some("ready"), Some(4)),
        "{batch}"
    );
    let batch_path = format!("{base}/qr-batches/{}", batch["id"]);

    // The printable ZIP: a manifest matching the database, a PNG per code decoding to its URL.
    let response = owner.download(&format!("{batch_path}/printable")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let files = unzip(&response.bytes().await.unwrap());
    assert_eq!(files.len(), 5, "the manifest and 4 PNGs");
    let (name, manifest) = &files[0];
    assert_eq!(name, "manifest.csv");
    let mut rows = csv::Reader::from_reader(manifest.as_slice());
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let stored: Vec<(i32, Vec<u8>, String)> =
        sqlx::query_as("SELECT seq, nonce, state FROM qr_codes WHERE batch_id = $1 ORDER BY seq")
            .bind(batch["id"].as_i64().unwrap())
            .fetch_all(owner.app.resources.db())
            .await
            .unwrap();
    assert_eq!(rows.len(), stored.len());
    let key = &owner.app.resources.config().qr_code_key;
    let mut codes = Vec::new();
    for (row, (seq, nonce, state)) in rows.iter().zip(&stored) {
        let code = key.brand_code(nonce.as_slice().try_into().unwrap());
        let url = format!("{BASE_URL}/r/{code}");
        assert_eq!(&row[0], seq.to_string().as_str());
        assert_eq!((&row[1], &row[2], &row[3]), (code.as_str(), url.as_str(), state.as_str()));
        let png = files.iter().find(|(name, _)| name == &row[4]).map(|(_, png)| png).unwrap();
        assert_eq!(decode(png), url, "{}", &row[4]);
        codes.push(code);
    }
    // One code on its own, as PNG and SVG.
    let one = owner.download(&format!("{batch_path}/codes/2/png")).await;
    assert_eq!(decode(&one.bytes().await.unwrap()), format!("{BASE_URL}/r/{}", codes[1]));
    let svg = owner.download(&format!("{batch_path}/codes/2/svg")).await;
    assert!(svg.text().await.unwrap().contains("<svg"));

    // The code's page: what it gives, claimable once.
    let (status, view) = anyone.call(Method::GET, &format!("/r/{}", codes[0]), None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(
        (view["state"].as_str(), view["uses_left"].as_i64(), view["amount"].as_str()),
        (Some("issued"), Some(1), Some("5000000"))
    );

    // 500 concurrent claims of code 1, each to its own typed address: one payout.
    let payouts_before = payouts(&world).await;
    let claimants: Vec<Address> = (0..500).map(|_| random_address()).collect();
    let claim_path = format!("/r/{}/claims", codes[0]);
    let claims = claimants.iter().map(|address| {
        let body = json!({ "address": address.to_checksum(None) });
        anyone.call(Method::POST, &claim_path, Some(body))
    });
    let answers = futures_util::future::join_all(claims).await;
    let won: Vec<usize> = (0..answers.len()).filter(|i| answers[*i].0 == StatusCode::CREATED).collect();
    assert_eq!(won.len(), 1, "exactly one claim is taken");
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!((*status, body["code"].as_str()), (StatusCode::CONFLICT, Some("already-redeemed")), "{body}");
    }
    let winner = claimants[won[0]];
    let paid = code_until(&anyone, &codes[0], "completed").await;
    assert_eq!(paid["state"], "paid");
    assert!(paid["claims"][0]["tx_hash"].as_str().is_some_and(|h| h.len() == 66), "{paid}");
    assert_eq!(stablecoin.balanceOf(winner).call().await.unwrap(), U256::from(5_000_000u64));
    assert_eq!(payouts(&world).await, payouts_before + 1, "one RewardRedeemed on chain");

    // Forged and tampered codes are refused from their tag; nothing is paid.
    let mut tampered = codes[1].clone().into_bytes();
    tampered[31] = if tampered[31] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "not-a-code", &"A".repeat(10_000)] {
        let body = json!({ "address": random_address().to_checksum(None) });
        let (status, refused) = anyone.call(Method::POST, &format!("/r/{bad}/claims"), Some(body)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{refused}");
        assert_eq!(anyone.call(Method::GET, &format!("/r/{bad}"), None).await.0, StatusCode::NOT_FOUND);
    }

    // Revoked (code 3) and expired (a batch past its date) codes are refused unpaid.
    let (status, revoked) = owner.call(Method::POST, &format!("{batch_path}/codes/3/revoke"), None).await;
    assert_eq!((status, revoked["codes"]["revoked"].as_i64()), (StatusCode::OK, Some(1)), "{revoked}");
    let typed = || json!({ "address": random_address().to_checksum(None) });
    let (status, refused) = anyone.call(Method::POST, &format!("/r/{}/claims", codes[2]), Some(typed())).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::CONFLICT, Some("code-revoked")), "{refused}");
    let soon = json!({ "reward_id": small, "label": "Expiring", "size": 1, "typed_addresses": true,
                       "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339() });
    let (_, expiring) = owner.call(Method::POST, &format!("{base}/qr-batches"), Some(soon)).await;
    // The hour passes.
    sqlx::query("UPDATE qr_batches SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(expiring["id"].as_i64().unwrap())
        .execute(owner.app.resources.db())
        .await
        .unwrap();
    let (_, expired_nonce): (i32, Vec<u8>) = sqlx::query_as("SELECT seq, nonce FROM qr_codes WHERE batch_id = $1")
        .bind(expiring["id"].as_i64().unwrap())
        .fetch_one(owner.app.resources.db())
        .await
        .unwrap();
    let expired = key.brand_code(expired_nonce.as_slice().try_into().unwrap());
    let (status, refused) = anyone.call(Method::POST, &format!("/r/{expired}/claims"), Some(typed())).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::CONFLICT, Some("code-expired")), "{refused}");
    assert_eq!(payouts(&world).await, payouts_before + 1, "nothing more paid");

    // The payer dies after signing code 2's payout, before the node has it; restarted, it pays
    // exactly once.
    let rpc = setup.rpc.as_ref().unwrap();
    rpc.hold(Hold::Swallow);
    let seen = rpc.broadcasts_seen();
    let (status, claimed) = anyone
        .call(Method::POST, &format!("/r/{}/claims", codes[1]), Some(json!({ "address": winner.to_checksum(None) })))
        .await;
    assert_eq!((status, claimed["state"].as_str()), (StatusCode::CREATED, Some("submitted")), "{claimed}");
    let redemption = claimed["id"].as_i64().unwrap();
    let db = owner.app.resources.db().clone();
    let tx_of = || {
        sqlx::query_as::<_, (i64, String)>(
            "SELECT t.id, t.state FROM chain_transactions t JOIN redemptions x ON x.chain_tx_id = t.id WHERE x.id = $1",
        )
        .bind(redemption)
        .fetch_one(&db)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(tx_of().await.unwrap().1 == "signed" && rpc.broadcasts_seen() > seen) {
        assert!(Instant::now() < deadline, "the payout was never signed and sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut world = world;
    world.setup.restart_background().await;
    world.setup.rpc.as_ref().unwrap().hold(Hold::Nothing);
    let world = world;
    let (owner, stablecoin) = (&world.setup.owner, &world.setup.platform.stablecoin);
    let key = &owner.app.resources.config().qr_code_key;
    let anyone = Customer { app: &world.service, token: None };
    let paid = code_until(&anyone, &codes[1], "completed").await;
    assert_eq!(paid["state"], "paid");
    assert_eq!(stablecoin.balanceOf(winner).call().await.unwrap(), U256::from(10_000_000u64), "paid once more");
    assert_eq!(payouts(&world).await, payouts_before + 2, "exactly one payout for code 2");
    let (tx, _) = tx_of().await.unwrap();
    let attempts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM chain_transaction_attempts WHERE chain_transaction_id = $1")
            .bind(tx)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(attempts, 1, "the stored signed bytes went out, not a new signature");

    // A batch for the perk that pays only signed-in wallets: a typed address is refused.
    let service = &world.service;
    let perks = json!({ "reward_id": perk, "label": "Poster", "size": 1 });
    let (_, perks) = owner.call(Method::POST, &format!("{}/qr-batches", world.base), Some(perks)).await;
    let (_, perk_nonce): (i32, Vec<u8>) = sqlx::query_as("SELECT seq, nonce FROM qr_codes WHERE batch_id = $1")
        .bind(perks["id"].as_i64().unwrap())
        .fetch_one(owner.app.resources.db())
        .await
        .unwrap();
    let poster = key.brand_code(perk_nonce.as_slice().try_into().unwrap());
    let anyone = Customer { app: service, token: None };
    let (status, _) = anyone.call(Method::POST, &format!("/r/{poster}/claims"), Some(typed())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (ann_id, ann_token) = service.customer(world.ann).await;
    let ann = Customer { app: service, token: Some(ann_token) };
    let (status, perk_claim) = ann.call(Method::POST, &format!("/r/{poster}/claims"), Some(json!({}))).await;
    assert_eq!(status, StatusCode::CREATED, "{perk_claim}");
    assert_eq!((perk_claim["state"].as_str(), perk_claim["code"].as_str()), (Some("completed"), Some("BACKSTAGE-1")));

    // At the counter: Ann shows a code for the perk with token 1; the verifier of store A scans
    // a photo of it. Store B's verifier is refused; the same code twice is used once.
    let brand = world.setup.brand;
    let (store_a, store_b) = (owner.app.store(brand, "Store A").await, owner.app.store(brand, "Store B").await);
    let (vera, vera_token) = owner.app.account("vera@acme.example", None).await;
    owner.app.member(brand, vera, BrandRole::Verifier, &[store_a]).await;
    let (victor, victor_token) = owner.app.account("victor@acme.example", None).await;
    owner.app.member(brand, victor, BrandRole::Verifier, &[store_b]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let shown = loop {
        let (status, shown) =
            ann.call(Method::GET, &format!("/customers/me/counter-codes?reward_id={perk}&token_id=1"), None).await;
        if status == StatusCode::OK {
            break shown;
        }
        assert!(Instant::now() < deadline, "no counter code: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(shown["svg"].as_str().unwrap().contains("<svg") && shown["refresh_after_secs"].as_u64() == Some(20));
    let code = shown["code"].as_str().unwrap();
    let photo = shared::qr::png(code).unwrap();
    let scan = |token: &str, store: i64, photo: Vec<u8>| {
        service
            .client
            .post(service.url(&format!("/brands/{brand}/stores/{store}/scans/photo")))
            .bearer_auth(token)
            .header("content-type", "image/png")
            .body(photo)
            .send()
    };
    let refused = scan(&victor_token, store_a, photo.clone()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "a verifier of another store");
    let scanned = scan(&vera_token, store_a, photo.clone()).await.unwrap();
    assert_eq!(scanned.status(), StatusCode::CREATED);
    let scanned: Value = scanned.json().await.unwrap();
    assert!(scanned["message"].as_str().unwrap().contains("hand over"), "{scanned}");
    assert_eq!(
        (scanned["redemption"]["state"].as_str(), scanned["redemption"]["store_id"].as_i64()),
        (Some("completed"), Some(store_a))
    );
    let again = service
        .client
        .post(service.url(&format!("/brands/{brand}/stores/{store_a}/scans")))
        .bearer_auth(&vera_token)
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.json::<Value>().await.unwrap()["code"], "already-redeemed");
    // A code older than its validity and grace (30 + 15 s) is refused.
    let stale = CounterClaim {
        customer_id: ann_id,
        wallet: world.ann,
        reward_id: perk,
        token_id: U256::from(2),
        issued_at: chrono::Utc::now().timestamp() - 46,
    };
    let stale = scan(&vera_token, store_a, shared::qr::png(&key.counter_code(&stale)).unwrap()).await.unwrap();
    assert_eq!(stale.status(), StatusCode::CONFLICT);
    assert_eq!(stale.json::<Value>().await.unwrap()["code"], "code-expired");
    let unreadable = scan(&vera_token, store_a, alloy::hex::decode(crate::operator::PNG).unwrap()).await.unwrap();
    assert_eq!(unreadable.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The back office counts it: the batch's codes, redemptions per reward, the export.
    let (_, batch) = owner.call(Method::GET, &batch_path, None).await;
    assert_eq!(batch["codes"], json!({ "issued": 1, "claimed": 0, "paid": 2, "expired": 0, "revoked": 1 }), "{batch}");
    assert_eq!((batch["redemptions"].as_i64(), batch["redemptions_completed"].as_i64()), (Some(2), Some(2)));
    let (_, batches) = owner.call(Method::GET, &format!("{}/qr-batches", world.base), None).await;
    assert_eq!(batches.as_array().unwrap().len(), 3);
    let (_, dashboard) =
        owner.call(Method::GET, &format!("/brands/{brand}/dashboard?campaign_id={}", world.campaign), None).await;
    let of = |reward: i64| {
        dashboard["rewards"].as_array().unwrap().iter().find(|r| r["reward_id"] == reward).unwrap().clone()
    };
    let (five, backstage) = (of(small), of(perk));
    assert_eq!(
        (five["claims"].as_i64(), five["completed"].as_i64(), five["by_code"].as_i64()),
        (Some(2), Some(2), Some(2)),
        "{five}"
    );
    assert_eq!(five["paid_amount"], "10000000");
    assert_eq!(
        (backstage["by_code"].as_i64(), backstage["at_counter"].as_i64(), backstage["completed"].as_i64()),
        (Some(1), Some(1), Some(2)),
        "{backstage}"
    );
    let export = owner
        .download(&format!("/brands/{brand}/exports/redemptions?campaign_id={}", world.campaign))
        .await
        .text()
        .await
        .unwrap();
    let vias: Vec<String> =
        csv::Reader::from_reader(export.as_bytes()).records().map(|r| r.unwrap()[7].to_owned()).collect();
    assert_eq!(vias, ["code", "code", "code", "counter"], "{export}");

    world.stop().await;
}

//! Royalty-share rewards end to end: a campaign whose holders get half of every royalty, a resale
//! through the real Seaport paying the royalty, the share accrued to the holders at the sale's
//! block, paid by `RewardVault.distribute` through the transaction queue once the sale is
//! confirmed and visible on chain, the same batch sent again refused by the vault; and a sale
//! reorged out before its confirmation, whose shares are reversed, never paid.

use alloy::{
    primitives::{Address, U256},
    providers::{Provider, ext::AnvilApi},
};
use fakes::seaport::{self, ERC721, NATIVE, consider, eth, offer};
use serde_json::{Value, json};
use shared::ids::BrandId;
use testkit::{self as testing};

use crate::{
    operator::{PNG, Platformed, platformed},
    sales::SEAPORT_DEPLOYER,
};

#[tokio::test]
async fn a_resale_pays_the_holders_share_of_the_royalty_through_the_vault_once() {
    let predicted = seaport::predicted(SEAPORT_DEPLOYER).to_checksum(None);
    // Two confirmations: a share is paid only once its sale is two blocks deep.
    let setup =
        platformed(|anvil| anvil.addresses()[0], &[("SEAPORT_ADDRESS", &predicted), ("INDEXER_CONFIRMATIONS", "2")])
            .await;
    let Platformed { ref anvil, ref owner, ref platform, brand, .. } = setup;
    let market = seaport::deploy(testing::wallet(anvil, 4)).await.unwrap();
    let resources = &owner.app.resources;
    let db = resources.db();

    // A campaign with a 5 % royalty, half of which goes to its holders.
    let receiver = anvil.addresses()[5];
    let campaigns = owner.api().campaigns(BrandId::new(brand));
    let body = json!({ "name": "Shared", "slug": "shared", "royalty_bps": 500, "royalty_receiver": receiver.to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": 100, "payment_methods": ["card"] }] });
    let created = campaigns.create(&body).await.unwrap();
    let reward: Value = owner
        .api()
        .send(
            reqwest::Method::POST,
            &format!("/brands/{brand}/campaigns/{}/rewards", created.id),
            Some(&json!({ "kind": "royalty_share", "name": "Holders' half", "share_bps": 5_000 })),
        )
        .await
        .unwrap();
    assert_eq!(reward["share_bps"], 5_000, "{reward}");
    campaigns.artwork(created.id, "image/png", alloy::hex::decode(PNG).unwrap()).await.unwrap();
    let live = campaigns.deployed(created.id).await;
    let collection: Address = live.rest["collection_address"].as_str().unwrap().parse().unwrap();
    let campaign_ref = U256::from(created.id.get());
    // The campaign's set-up calls (the vault's campaign admin among them) go out from account 0
    // after deployment; the mints below are sent from it too.
    setup.queue_idle().await;

    // Alice holds tokens 1–3, Bob token 4; the vault holds 1 ETH for the campaign's rewards
    // (the brand funds it: the royalty itself went to the brand's receiver).
    let (alice, buyer, bob) = (anvil.addresses()[6], anvil.addresses()[7], anvil.addresses()[8]);
    let nft = platform.collection(collection);
    testing::mined(nft.mint(alice, U256::from(3))).await;
    testing::mined(nft.mint(bob, U256::from(1))).await;
    assert!(!platform.vault.campaignAdmin(campaign_ref).call().await.unwrap().is_zero());
    let as_receiver = shared::contracts::RewardVault::new(*platform.vault.address(), testing::wallet(anvil, 5));
    testing::mined(as_receiver.fund(campaign_ref, Address::ZERO, eth(1_000)).value(eth(1_000))).await;

    // Alice sells token 1 to the buyer for 1 ETH through Seaport, paying the 5 % royalty.
    testing::mined(
        shared::contracts::CampaignNFT::new(collection, testing::wallet(anvil, 6))
            .setApprovalForAll(*market.address(), true),
    )
    .await;
    let chain = testing::wallet(anvil, 0);
    let now = chain.get_block(alloy::eips::BlockId::latest()).await.unwrap().unwrap().header.timestamp;
    let alice_key = testing::signer(anvil, 6);
    let listing = |token: u64, salt: u64| {
        seaport::signed(
            &market,
            &alice_key,
            vec![offer(ERC721, collection, token, U256::from(1))],
            vec![
                consider(NATIVE, Address::ZERO, 0, eth(950), alice),
                consider(NATIVE, Address::ZERO, 0, eth(50), receiver),
            ],
            now,
            salt,
        )
    };
    let as_buyer = seaport::binding::Seaport::new(*market.address(), testing::wallet(anvil, 7));
    let accruals = || async {
        sqlx::query_as::<_, (String, i64)>("SELECT state, count(*) FROM royalty_accruals GROUP BY state ORDER BY state")
            .fetch_all(db)
            .await
            .unwrap()
    };
    let until = |wanted: Vec<(String, i64)>| async move {
        for _ in 0..300 {
            if accruals().await == wanted {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("accruals never became {wanted:?}: {:?}", accruals().await);
    };

    // First, a sale of token 2 in blocks a reorg then drops, before it is confirmed: its shares
    // accrue, wait for the confirmation, and are reversed.
    let snapshot = chain.anvil_snapshot().await.unwrap();
    testing::mined(as_buyer.fulfillOrder(listing(2, 2).await.unwrap(), Default::default()).value(eth(1_000))).await;
    indexer::catch_up(resources).await.unwrap();
    until(vec![("accrued".into(), 3)]).await;
    chain.anvil_revert(snapshot).await.unwrap();
    chain.anvil_mine(Some(3), None).await.unwrap();
    indexer::catch_up(resources).await.unwrap();
    until(vec![("reversed".into(), 3)]).await;

    let order = listing(1, 1).await.unwrap();
    testing::mined(as_buyer.fulfillOrder(order, Default::default()).value(eth(1_000))).await;
    let balances = || async {
        let mut all = Vec::new();
        for holder in [alice, bob, buyer] {
            all.push(chain.get_balance(holder).await.unwrap());
        }
        all
    };
    let before = balances().await;

    // Indexed: the sale recorded, the share (0.025 ETH) accrued over the 4 tokens as held at the
    // end of the sale's block (Alice 2, Bob 1, the buyer 1); once two blocks deep, batched and
    // paid by the vault.
    indexer::catch_up(resources).await.unwrap();
    until(vec![("accrued".into(), 3), ("reversed".into(), 3)]).await;
    chain.anvil_mine(Some(2), None).await.unwrap();
    indexer::catch_up(resources).await.unwrap();
    let mut batch = None;
    for _ in 0..300 {
        batch = sqlx::query_as::<_, (i64, String)>("SELECT id, state FROM royalty_batches WHERE state = 'paid'")
            .fetch_optional(db)
            .await
            .unwrap();
        if batch.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (batch, _) = batch.expect("a paid batch within 30 s");
    let after = balances().await;
    let paid: Vec<U256> = after.iter().zip(&before).map(|(a, b)| *a - *b).collect();
    let quarter = eth(25) / U256::from(4);
    assert_eq!(paid, vec![quarter * U256::from(2), quarter, quarter], "Alice 2/4, Bob 1/4, the buyer 1/4 of 0.025 ETH");
    let left = platform.vault.campaignBalance(campaign_ref, Address::ZERO).call().await.unwrap();
    assert_eq!(left, eth(1_000) - eth(25), "the vault paid the share out of the campaign's funds");
    assert_eq!(accruals().await, vec![("paid".to_owned(), 3), ("reversed".to_owned(), 3)]);

    // The brand's royalty report shows the holders' share: paid, reversed, the batch's tx.
    let (status, report) =
        owner.call(reqwest::Method::GET, &format!("/brands/{brand}/royalties?campaign_id={}", created.id), None).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{report}");
    let shares = &report["holders_shares"];
    assert_eq!(shares.as_array().map(Vec::len), Some(1), "{report}");
    let paid_tx: Option<String> = sqlx::query_scalar(
        "SELECT '0x' || encode(t.tx_hash, 'hex') FROM royalty_batches b JOIN chain_transactions t ON t.id = b.chain_tx_id
         WHERE b.id = $1",
    )
    .bind(batch)
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(
        (&shares[0]["currency"], &shares[0]["sales"], &shares[0]["holders"], &shares[0]["batches_paid"]),
        (&json!("ETH"), &json!(2), &json!(3), &json!(1)),
        "{report}"
    );
    assert_eq!((&shares[0]["paid"], &shares[0]["pending"]), (&json!(eth(25).to_string()), &json!("0")));
    assert_eq!(shares[0]["reversed"], json!(eth(25).to_string()), "the reorged sale's share, never paid");
    assert_eq!(shares[0]["last_tx_hash"].as_str(), paid_tx.as_deref());

    // The distribution is on chain (the indexer has it), and the same batch id is refused.
    indexer::catch_up(resources).await.unwrap();
    let distributed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM chain_events WHERE kind = 'rewards_distributed' AND fields->>'batch_id' = $1",
    )
    .bind(batch.to_string())
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(distributed, 1);
    let again = platform
        .vault
        .distribute(
            campaign_ref,
            Address::ZERO,
            vec![alice],
            vec![U256::from(1)],
            U256::from(u64::try_from(batch).unwrap()),
        )
        .send()
        .await;
    assert!(again.is_err(), "the vault refuses a batch id it has paid");
    setup.stop().await;
}

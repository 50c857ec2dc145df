//! Royalty enforcement chosen in the back office, on anvil with the real Seaport: the deployed
//! collection names the platform's transfer validator and allowlists Seaport, so a Seaport sale
//! goes through and the owner moves their own token, while another operator is refused; turned
//! off through the API, the validator is cleared and that operator can move tokens; on again,
//! the validator is back without allowlisting anyone twice.

use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use fakes::seaport::{self, ERC721, NATIVE, consider, eth, offer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use shared::{
    contracts::{
        CampaignNFT::{self, CampaignNFTInstance},
        OperatorAllowlistValidator::OperatorAllowlistValidatorErrors as Errors,
    },
    ids::BrandId,
};
use testkit::{self as testing};

use crate::{
    operator::{PNG, platformed},
    sales::SEAPORT_DEPLOYER,
};

/// Waits (30 s at most) until the collection's validator is `expected`: the queue's work.
async fn validator_becomes(nft: &CampaignNFTInstance<alloy::providers::DynProvider>, expected: Address) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let validator = nft.getTransferValidator().call().await.unwrap();
        if validator == expected {
            return;
        }
        assert!(Instant::now() < deadline, "the collection's validator is {validator}, not {expected}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_enforcing_campaign_lets_seaport_sell_and_refuses_other_operators_until_turned_off() {
    let predicted = seaport::predicted(SEAPORT_DEPLOYER).to_checksum(None);
    let setup =
        platformed(|anvil| anvil.addresses()[0], &[("ROYALTY_ENFORCEMENT_OPERATORS", predicted.as_str())]).await;
    let (anvil, owner, platform) = (&setup.anvil, &setup.owner, &setup.platform);
    let market = seaport::deploy(testing::wallet(anvil, 4)).await.unwrap();
    assert_eq!(market.address().to_checksum(None), predicted);
    let validator = *platform.validator.address();

    // The brand chooses enforcement when creating the campaign, and deploys it.
    let campaigns = owner.api().campaigns(BrandId::new(setup.brand));
    let receiver = anvil.addresses()[5];
    let body = json!({ "name": "Enforced", "slug": "enforced", "royalty_bps": 500, "royalty_enforcement": true,
        "royalty_receiver": receiver.to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": 100, "payment_methods": ["card"] }] });
    let created = campaigns.create(&body).await.unwrap();
    assert_eq!(created.rest["royalty_enforcement"], true);
    campaigns.artwork(created.id, "image/png", alloy::hex::decode(PNG).unwrap()).await.unwrap();
    let live = campaigns.deployed(created.id).await;
    assert_eq!(live.state, "live");
    let collection: Address = live.rest["collection_address"].as_str().unwrap().parse().unwrap();
    // The campaign's set-up calls go out from account 0 after deployment; the mints below too.
    setup.queue_idle().await;
    let nft = platform.collection(collection);
    validator_becomes(&nft, validator).await;
    assert!(platform.validator.isAllowed(collection, *market.address()).call().await.unwrap());

    // A holder with four tokens, who approved Seaport and another operator (account 8).
    let (seller_key, buyer) = (testing::signer(anvil, 6), anvil.addresses()[7]);
    let seller = seller_key.address();
    let first = nft.nextTokenId().call().await.unwrap().to::<u64>();
    testing::mined(nft.mint(seller, U256::from(4))).await;
    let as_seller = CampaignNFT::new(collection, testing::wallet(anvil, 6));
    testing::mined(as_seller.setApprovalForAll(*market.address(), true)).await;
    let other = anvil.addresses()[8];
    testing::mined(as_seller.setApprovalForAll(other, true)).await;
    let as_other = CampaignNFT::new(collection, testing::wallet(anvil, 8));

    // The other operator is refused, with the validator's reason.
    let refused = as_other.transferFrom(seller, other, U256::from(first)).call().await.unwrap_err();
    assert!(
        matches!(refused.as_decoded_interface_error::<Errors>(), Some(Errors::OperatorNotAllowed(ref e))
            if e.collection == collection && e.operator == other),
        "{refused}"
    );
    // A Seaport listing paying the royalty sells; the owner moves a token of their own.
    let chain = testing::wallet(anvil, 0);
    let now = alloy::providers::Provider::get_block(&chain, alloy::eips::BlockId::latest())
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    let order = seaport::signed(
        &market,
        &seller_key,
        vec![offer(ERC721, collection, first + 1, U256::from(1))],
        vec![
            consider(NATIVE, Address::ZERO, 0, eth(950), seller),
            consider(NATIVE, Address::ZERO, 0, eth(50), receiver),
        ],
        now,
        1,
    )
    .await
    .unwrap();
    let as_buyer = seaport::binding::Seaport::new(*market.address(), testing::wallet(anvil, 7));
    testing::mined(as_buyer.fulfillOrder(order, Default::default()).value(eth(1_000))).await;
    assert_eq!(nft.ownerOf(U256::from(first + 1)).call().await.unwrap(), buyer);
    testing::mined(as_seller.transferFrom(seller, buyer, U256::from(first + 2))).await;
    assert_eq!(nft.ownerOf(U256::from(first + 2)).call().await.unwrap(), buyer);

    // Turned off through the API: the validator is cleared and the other operator moves a token.
    let path = format!("/brands/{}/campaigns/{}", setup.brand, created.id.get());
    let (status, changed) = owner.call(Method::PATCH, &path, Some(json!({ "royalty_enforcement": false }))).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["royalty_enforcement"], false);
    validator_becomes(&nft, Address::ZERO).await;
    testing::mined(as_other.transferFrom(seller, other, U256::from(first))).await;
    assert_eq!(nft.ownerOf(U256::from(first)).call().await.unwrap(), other);

    // On again: the validator is back; the allowlist entry was not sent a second time, and
    // repeating the same choice sends nothing.
    for _ in 0..2 {
        let (status, changed) = owner.call(Method::PATCH, &path, Some(json!({ "royalty_enforcement": true }))).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
    }
    validator_becomes(&nft, validator).await;
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM chain_transactions WHERE idempotency_key LIKE $1 ORDER BY id")
            .bind(format!("campaign-%:{}:%", created.id.get()))
            .fetch_all(owner.app.resources.db())
            .await
            .unwrap();
    let id = created.id.get();
    let market_address = market.address();
    assert_eq!(
        keys.iter().filter(|k| k.contains("allow:") || k.starts_with("campaign-enforcement")).collect::<Vec<_>>(),
        [
            &format!("campaign-setup:{id}:allow:{market_address}"),
            &format!("campaign-enforcement:{id}:0"),
            &format!("campaign-enforcement:{id}:1"),
            &format!("campaign-enforcement:{id}:2"),
        ],
        "{keys:?}"
    );
    let refused = as_other.transferFrom(seller, other, U256::from(first + 3)).call().await.unwrap_err();
    assert!(refused.as_decoded_interface_error::<Errors>().is_some(), "enforcement is back on: {refused}");
}

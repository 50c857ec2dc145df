//! Secondary sales through the real Seaport 1.6 on anvil: a listing filled in ETH paying the full
//! royalty through OpenSea's fee recipient, one paying none, an offer accepted in the
//! stablecoin, a bundle, and a `matchOrders` pair, each decoded into exact rows and ledger
//! entries; then a reorg of the block holding a sale takes it back (`sale.reverted`, the ledger
//! as before it), and a fresh index of the surviving chain has the same sales.

use alloy::{
    primitives::{Address, B256, U256},
    providers::{Provider, ext::AnvilApi},
};
use fakes::marketplaces::{Feed, MarketplaceFake, Reported};
use fakes::seaport::{self, ERC20, ERC721, NATIVE, consider, eth, offer};
use serde_json::json;
use shared::{contracts::TestStablecoin, ids::BrandId};
use sqlx::PgPool;
use testkit::{self as testing};

use crate::operator::{PNG, Platformed, platformed};

const OPENSEA_FEES: Address = alloy::primitives::address!("0x0000a26b00c1F0DF003000390027140000fAa719");

fn usd(units: u64) -> U256 {
    U256::from(units) * U256::from(1_000_000u64)
}

type SaleRow = (String, String, String, Vec<u8>, Vec<u8>, Option<Vec<u8>>, String, String, String, String, String, i32);

/// Every sale: side, marketplace, token, seller, buyer, currency, price, fee, proceeds,
/// expected and received royalty, bps paid.
async fn sales(db: &PgPool) -> Vec<SaleRow> {
    sqlx::query_as(
        "SELECT side, marketplace, token_id::text, seller, buyer, payment_token, price::text, marketplace_fee::text,
                seller_proceeds::text, royalty_expected::text, royalty_received::text, royalty_bps_paid
         FROM secondary_sales ORDER BY block_number, log_index, token_id",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// Marketplace, currency, sales, bps paid in full, shortfall, bps received of expected.
type ReportRow<'a> = (&'a str, &'a str, i64, i64, &'a str, Option<i64>);

type LedgerRow = (String, Vec<u8>, i64, i64, String, String, String, String, String);

async fn ledger(db: &PgPool) -> Vec<LedgerRow> {
    sqlx::query_as(
        "SELECT marketplace, payment_token, sum(sales)::bigint, sum(paid_in_full)::bigint, sum(volume)::text,
                sum(marketplace_fee)::text, sum(expected)::text, sum(received)::text, sum(shortfall)::text
         FROM royalty_ledger GROUP BY 1, 2 HAVING sum(sales) > 0 ORDER BY 1, 2",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

/// Anvil's fifth development account, which deploys Seaport first thing (so its address is
/// known before the chain starts, for the indexer's configuration).
pub(crate) const SEAPORT_DEPLOYER: Address = alloy::primitives::address!("0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65");

/// The indexer's own tables, emptied to index the chain again from genesis.
const INDEXED: &str = "TRUNCATE indexer_chains, indexed_blocks, indexed_collections, chain_events, token_transfers,
                       token_owners, collection_holders, secondary_sales, royalty_ledger";

/// Indexes the chain and decodes its sales. The background's daemons run too, and a batch one of
/// them holds is skipped here: wait until no Seaport log is left undecoded.
async fn settled(resources: &shared::service::Resources) {
    for _ in 0..100 {
        indexer::catch_up(resources).await.unwrap();
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM chain_events WHERE kind = 'seaport_order_fulfilled' AND NOT decoded",
        )
        .fetch_one(resources.db())
        .await
        .unwrap();
        if left == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("Seaport logs left undecoded after 10 s");
}

/// A live campaign named `slug` with a 5 % royalty to anvil's account 5: its id and collection.
async fn resold_campaign(setup: &Platformed, slug: &str) -> (shared::ids::CampaignId, Address) {
    let campaigns = setup.owner.api().campaigns(BrandId::new(setup.brand));
    let body = json!({ "name": slug, "slug": slug, "royalty_bps": 500,
        "royalty_receiver": setup.anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": 100, "payment_methods": ["card"] }] });
    let created = campaigns.create(&body).await.unwrap();
    campaigns.artwork(created.id, "image/png", alloy::hex::decode(PNG).unwrap()).await.unwrap();
    let live = campaigns.deployed(created.id).await;
    // The campaign's set-up calls go out from account 0 after deployment; tests mint from it.
    setup.queue_idle().await;
    (created.id, live.rest["collection_address"].as_str().unwrap().parse().unwrap())
}

#[tokio::test]
async fn seaport_sales_are_decoded_into_exact_rows_and_a_reorged_sale_is_taken_back() {
    let predicted = seaport::predicted(SEAPORT_DEPLOYER).to_checksum(None);
    let setup = platformed(|anvil| anvil.addresses()[0], &[("SEAPORT_ADDRESS", &predicted)]).await;
    let Platformed { ref anvil, ref owner, ref platform, .. } = setup;
    assert_eq!(anvil.addresses()[4], SEAPORT_DEPLOYER);
    let market = seaport::deploy(testing::wallet(anvil, 4)).await.unwrap();
    let market_address = *market.address();
    assert_eq!(market_address.to_checksum(None), predicted);
    let resources = &owner.app.resources;
    let db = resources.db();

    let receiver = anvil.addresses()[5];
    let (_, collection) = resold_campaign(&setup, "resold").await;

    let (seller_key, buyer_key) = (testing::signer(anvil, 6), testing::signer(anvil, 7));
    let (seller, buyer) = (seller_key.address(), buyer_key.address());
    let nft = platform.collection(collection);
    testing::mined(nft.mint(seller, U256::from(6))).await;
    let as_seller = shared::contracts::CampaignNFT::new(collection, testing::wallet(anvil, 6));
    testing::mined(as_seller.setApprovalForAll(market_address, true)).await;
    let usd_token = *platform.stablecoin.address();
    for index in [6, 7] {
        let coin = TestStablecoin::new(usd_token, testing::wallet(anvil, index));
        testing::mined(coin.mint(anvil.addresses()[index], usd(10_000))).await;
        testing::mined(coin.approve(market_address, U256::MAX)).await;
    }
    let chain = testing::wallet(anvil, 0);
    let now = chain.get_block(alloy::eips::BlockId::latest()).await.unwrap().unwrap().header.timestamp;
    let as_buyer = seaport::binding::Seaport::new(market_address, testing::wallet(anvil, 7));
    let as_seller_market = seaport::binding::Seaport::new(market_address, testing::wallet(anvil, 6));

    // A. Listing of token 1 for 1 ETH through OpenSea's fee recipient, full royalty.
    let order = seaport::signed(
        &market,
        &seller_key,
        vec![offer(ERC721, collection, 1, U256::from(1))],
        vec![
            consider(NATIVE, Address::ZERO, 0, eth(925), seller),
            consider(NATIVE, Address::ZERO, 0, eth(25), OPENSEA_FEES),
            consider(NATIVE, Address::ZERO, 0, eth(50), receiver),
        ],
        now,
        1,
    )
    .await
    .unwrap();
    testing::mined(as_buyer.fulfillOrder(order, Default::default()).value(eth(1_000))).await;
    // B. Listing of token 2 for 0.2 ETH paying no royalty.
    let order = seaport::signed(
        &market,
        &seller_key,
        vec![offer(ERC721, collection, 2, U256::from(1))],
        vec![consider(NATIVE, Address::ZERO, 0, eth(200), seller)],
        now,
        2,
    )
    .await
    .unwrap();
    testing::mined(as_buyer.fulfillOrder(order, Default::default()).value(eth(200))).await;
    // C. The buyer's offer of 1,000 TUSD for token 3 (royalty 50 TUSD), accepted by the seller.
    let order = seaport::signed(
        &market,
        &buyer_key,
        vec![offer(ERC20, usd_token, 0, usd(1_000))],
        vec![consider(ERC721, collection, 3, U256::from(1), buyer), consider(ERC20, usd_token, 0, usd(50), receiver)],
        now,
        3,
    )
    .await
    .unwrap();
    testing::mined(as_seller_market.fulfillOrder(order, Default::default())).await;
    // D. A bundle of tokens 4 and 5 for 0.3 ETH with its royalty.
    let order = seaport::signed(
        &market,
        &seller_key,
        vec![offer(ERC721, collection, 4, U256::from(1)), offer(ERC721, collection, 5, U256::from(1))],
        vec![
            consider(NATIVE, Address::ZERO, 0, eth(285), seller),
            consider(NATIVE, Address::ZERO, 0, eth(15), receiver),
        ],
        now,
        4,
    )
    .await
    .unwrap();
    testing::mined(as_buyer.fulfillOrder(order, Default::default()).value(eth(300))).await;
    settled(resources).await;
    let before_match = ledger(db).await;

    // E. matchOrders: the seller's listing of token 6 for 500 TUSD and the buyer's bid, matched by
    //    a third party — in blocks that a reorg then drops.
    let snapshot = chain.anvil_snapshot().await.unwrap();
    let listing = seaport::signed(
        &market,
        &seller_key,
        vec![offer(ERC721, collection, 6, U256::from(1))],
        vec![consider(ERC20, usd_token, 0, usd(475), seller), consider(ERC20, usd_token, 0, usd(25), receiver)],
        now,
        5,
    )
    .await
    .unwrap();
    let bid = seaport::signed(
        &market,
        &buyer_key,
        vec![offer(ERC20, usd_token, 0, usd(475)), offer(ERC20, usd_token, 0, usd(25))],
        vec![consider(ERC721, collection, 6, U256::from(1), buyer)],
        now,
        6,
    )
    .await
    .unwrap();
    let component = |order: u64, item: u64| seaport::binding::Seaport::FulfillmentComponent {
        orderIndex: U256::from(order),
        itemIndex: U256::from(item),
    };
    let fulfillments = vec![
        seaport::binding::Seaport::Fulfillment {
            offerComponents: vec![component(1, 0)],
            considerationComponents: vec![component(0, 0)],
        },
        seaport::binding::Seaport::Fulfillment {
            offerComponents: vec![component(1, 1)],
            considerationComponents: vec![component(0, 1)],
        },
        seaport::binding::Seaport::Fulfillment {
            offerComponents: vec![component(0, 0)],
            considerationComponents: vec![component(1, 0)],
        },
    ];
    testing::mined(
        seaport::binding::Seaport::new(market_address, testing::wallet(anvil, 8))
            .matchOrders(vec![listing, bid], fulfillments),
    )
    .await;
    assert_eq!(nft.ownerOf(U256::from(6)).call().await.unwrap(), buyer);
    settled(resources).await;

    let (s, b, tusd) = (seller.to_vec(), buyer.to_vec(), Some(usd_token.to_vec()));
    let row =
        |side: &str, market: &str, token: u64, currency: Option<Vec<u8>>, amounts: [U256; 5], bps: i32| -> SaleRow {
            let [price, fee, proceeds, expected, received] = amounts.map(|a| a.to_string());
            (
                side.into(),
                market.into(),
                token.to_string(),
                s.clone(),
                b.clone(),
                currency,
                price,
                fee,
                proceeds,
                expected,
                received,
                bps,
            )
        };
    let z = U256::ZERO;
    let expected = vec![
        row("listing", "opensea", 1, None, [eth(1_000), eth(25), eth(925), eth(50), eth(50)], 500),
        row("listing", "seaport", 2, None, [eth(200), z, eth(200), eth(10), z], 0),
        row("offer", "seaport", 3, tusd.clone(), [usd(1_000), z, usd(950), usd(50), usd(50)], 500),
        row(
            "listing",
            "seaport",
            4,
            None,
            [eth(150), z, eth(142) + eth(1) / U256::from(2), eth(15) / U256::from(2), eth(15) / U256::from(2)],
            500,
        ),
        row(
            "listing",
            "seaport",
            5,
            None,
            [eth(150), z, eth(142) + eth(1) / U256::from(2), eth(15) / U256::from(2), eth(15) / U256::from(2)],
            500,
        ),
        row("listing", "seaport", 6, tusd.clone(), [usd(500), z, usd(475), usd(25), usd(25)], 500),
    ];
    assert_eq!(sales(db).await, expected);
    let zero = Address::ZERO.to_vec();
    let totals = |market: &str, token: &[u8], n: i64, full: i64, a: [U256; 5]| -> LedgerRow {
        let [volume, fee, expected, received, shortfall] = a.map(|x| x.to_string());
        (market.into(), token.to_vec(), n, full, volume, fee, expected, received, shortfall)
    };
    assert_eq!(
        ledger(db).await,
        vec![
            totals("opensea", &zero, 1, 1, [eth(1_000), eth(25), eth(50), eth(50), z]),
            totals("seaport", &zero, 3, 2, [eth(500), z, eth(25), eth(15), eth(10)]),
            totals("seaport", usd_token.as_slice(), 2, 2, [usd(1_500), z, usd(75), usd(75), z]),
        ]
    );

    // The brand's royalty report reads the same ledger.
    let report: serde_json::Value = owner.api().get(&format!("/brands/{}/royalties", setup.brand)).await.unwrap();
    let rows: Vec<ReportRow> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["marketplace"].as_str().unwrap(),
                r["currency"].as_str().unwrap(),
                r["sales"].as_i64().unwrap(),
                r["paid_in_full_bps"].as_i64().unwrap(),
                r["shortfall"].as_str().unwrap(),
                r["received_bps"].as_i64(),
            )
        })
        .collect();
    let (ten_milli, usd_name) = (eth(10).to_string(), usd_token.to_checksum(None));
    assert_eq!(
        rows,
        vec![
            ("opensea", "ETH", 1, 10_000, "0", Some(10_000)),
            ("seaport", "ETH", 3, 6_666, ten_milli.as_str(), Some(6_000)),
            ("seaport", usd_name.as_str(), 2, 10_000, "0", Some(10_000)),
        ],
        "{report}"
    );

    // The reorg: the matched sale's block is dropped for an empty, longer branch.
    chain.anvil_revert(snapshot).await.unwrap();
    chain.anvil_mine(Some(3), None).await.unwrap();
    settled(resources).await;
    let reverted: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE event_type = 'sale.reverted'")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(reverted, 1, "the dropped sale announced reverted once");
    assert_eq!(ledger(db).await, before_match, "the ledger as before the dropped sale");
    assert_eq!(sales(db).await, expected[..5].to_vec());

    // Indexed again from genesis: the same sales and ledger.
    let (kept_sales, kept_ledger) = (sales(db).await, ledger(db).await);
    sqlx::query(INDEXED).execute(db).await.unwrap();
    settled(resources).await;
    assert_eq!((sales(db).await, ledger(db).await), (kept_sales, kept_ledger));
    setup.stop().await;
}

/// OpenSea and Rarible polled against their local fakes, which report what happened on the chain:
/// pages followed across cursors, a 429 waited out for its `Retry-After`, a sale both on chain and
/// in the API is one sale with two sources, Rarible's `reverted` honoured, and each gap
/// direction listed (a chain sale Rarible never reported, an OpenSea sale the chain does not
/// have), none of it counted twice in the ledger. A second poll changes nothing.
#[tokio::test]
async fn marketplace_feeds_are_polled_deduplicated_against_the_chain_and_their_gaps_listed() {
    let predicted = seaport::predicted(SEAPORT_DEPLOYER);
    let feeds = MarketplaceFake::start(None, predicted).await.unwrap();
    let (url, key) = (feeds.url().to_string(), MarketplaceFake::API_KEY);
    let predicted = predicted.to_checksum(None);
    let setup = platformed(
        |anvil| anvil.addresses()[0],
        &[
            ("SEAPORT_ADDRESS", &predicted),
            ("OPENSEA_API_URL", &url),
            ("OPENSEA_API_KEY", key),
            ("RARIBLE_API_URL", &url),
            ("RARIBLE_API_KEY", key),
        ],
    )
    .await;
    let Platformed { ref anvil, ref owner, ref platform, .. } = setup;
    feeds.set_chain(anvil.endpoint_url());
    let market = seaport::deploy(testing::wallet(anvil, 4)).await.unwrap();
    let market_address = *market.address();
    let resources = &owner.app.resources;
    let db = resources.db();

    let receiver = anvil.addresses()[5];
    let (campaign, collection) = resold_campaign(&setup, "polled").await;
    feeds.name_collection("polled", collection);
    feeds.set_decimals(*platform.stablecoin.address(), 6);
    feeds.set_page_max(2);
    feeds.rate_limit(Feed::OpenSea, 3, 1);

    // Four listings filled in ETH, tokens 1 to 4.
    let (seller_key, buyer) = (testing::signer(anvil, 6), anvil.addresses()[7]);
    testing::mined(platform.collection(collection).mint(seller_key.address(), U256::from(4))).await;
    testing::mined(
        shared::contracts::CampaignNFT::new(collection, testing::wallet(anvil, 6))
            .setApprovalForAll(market_address, true),
    )
    .await;
    let chain = testing::wallet(anvil, 0);
    let now = chain.get_block(alloy::eips::BlockId::latest()).await.unwrap().unwrap().header.timestamp;
    let as_buyer = seaport::binding::Seaport::new(market_address, testing::wallet(anvil, 7));
    let mut txs = Vec::new();
    for token in 1..=4u64 {
        let order = seaport::signed(
            &market,
            &seller_key,
            vec![offer(ERC721, collection, token, U256::from(1))],
            vec![
                consider(NATIVE, Address::ZERO, 0, eth(95), seller_key.address()),
                consider(NATIVE, Address::ZERO, 0, eth(5), receiver),
            ],
            now,
            token,
        )
        .await
        .unwrap();
        let receipt = testing::mined(as_buyer.fulfillOrder(order, Default::default()).value(eth(100))).await;
        txs.push(receipt.transaction_hash);
    }
    // Rarible never reports token 1's sale and reports token 2's as reverted; OpenSea reports
    // one that never happened.
    feeds.hide(Feed::Rarible, txs[0], U256::from(1));
    feeds.revert(txs[1], U256::from(2));
    let phantom = B256::repeat_byte(0x77);
    feeds.add(
        Feed::OpenSea,
        Reported {
            tx_hash: phantom,
            block_hash: B256::repeat_byte(0x78),
            block_number: 1,
            log_index: 0,
            order_hash: B256::repeat_byte(0x79),
            collection,
            token_id: U256::from(9),
            seller: seller_key.address(),
            buyer,
            currency: Address::ZERO,
            price: eth(42),
            timestamp: now,
        },
    );

    settled(resources).await;
    let changed = indexer::poll_marketplaces(resources).await.unwrap();
    assert_eq!(changed, 4 + 1 + 3, "4 + 1 OpenSea reports, 3 Rarible ones");
    let (asked, refused) = feeds.requests(Feed::OpenSea);
    assert!(
        refused >= 1 && asked >= 4,
        "OpenSea's pages (2 a page) and at least one 429: {asked} asked, {refused} refused"
    );
    assert_eq!(indexer::poll_marketplaces(resources).await.unwrap(), 0, "a second poll changes nothing");
    // A campaign OpenSea does not know (404 for its slug) is skipped, not a failure.
    resold_campaign(&setup, "unlisted").await;
    assert_eq!(indexer::poll_marketplaces(resources).await.unwrap(), 0, "an unlisted collection has no sales");

    let service = testkit::TestApp::spawn_with(indexer::SERVICE, resources.config().clone()).await;
    let sales: serde_json::Value = service.public_api().get(&format!("/campaigns/{}/sales", campaign)).await.unwrap();
    let sources: Vec<(String, Vec<String>)> = sales["sales"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|s| {
            let sources = s["sources"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect();
            (s["token_id"].as_str().unwrap().to_owned(), sources)
        })
        .collect();
    let both = |t: &str| (t.to_owned(), vec!["chain".to_owned(), "opensea".to_owned()]);
    let all = |t: &str| (t.to_owned(), vec!["chain".to_owned(), "opensea".to_owned(), "rarible".to_owned()]);
    assert_eq!(sources, vec![both("1"), both("2"), all("3"), all("4")], "one row per sale, with its sources");
    let gaps: serde_json::Value =
        service.public_api().get(&format!("/campaigns/{}/sales/gaps", campaign)).await.unwrap();
    let unreported: Vec<(&str, &str)> = gaps["unreported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["source"].as_str().unwrap(), g["sale"]["token_id"].as_str().unwrap()))
        .collect();
    assert_eq!(unreported, vec![("rarible", "1"), ("rarible", "2")], "{gaps}");
    let unmatched: Vec<(&str, &str)> = gaps["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["source"].as_str().unwrap(), g["token_id"].as_str().unwrap()))
        .collect();
    assert_eq!(unmatched, vec![("opensea", "9")], "{gaps}");
    let counted: (i64, String) =
        sqlx::query_as("SELECT sum(sales)::bigint, sum(volume)::text FROM royalty_ledger").fetch_one(db).await.unwrap();
    assert_eq!(counted, (4, (eth(100) * U256::from(4)).to_string()), "the ledger counts the chain's sales once");
    service.stop().await.unwrap();
    setup.stop().await;
}

/// A collection offer for three tokens (any of the collection's, 100 TUSD each with a 5 %
/// royalty), filled a third at a time: each fill is a sale of its own at a third of the price.
#[tokio::test]
async fn a_collection_offer_filled_in_parts_is_one_sale_per_fill() {
    use seaport::binding::Seaport::{AdvancedOrder, CriteriaResolver};

    let predicted = seaport::predicted(SEAPORT_DEPLOYER).to_checksum(None);
    let setup = platformed(|anvil| anvil.addresses()[0], &[("SEAPORT_ADDRESS", &predicted)]).await;
    let Platformed { ref anvil, ref owner, ref platform, .. } = setup;
    let market = seaport::deploy(testing::wallet(anvil, 4)).await.unwrap();
    let resources = &owner.app.resources;
    let receiver = anvil.addresses()[5];
    let (_, collection) = resold_campaign(&setup, "offered").await;
    let (seller, buyer_key) = (anvil.addresses()[6], testing::signer(anvil, 7));
    let buyer = buyer_key.address();
    let nft = platform.collection(collection);
    testing::mined(nft.mint(seller, U256::from(3))).await;
    let as_seller = shared::contracts::CampaignNFT::new(collection, testing::wallet(anvil, 6));
    testing::mined(as_seller.setApprovalForAll(*market.address(), true)).await;
    let usd_token = *platform.stablecoin.address();
    for index in [6, 7] {
        let coin = TestStablecoin::new(usd_token, testing::wallet(anvil, index));
        testing::mined(coin.mint(anvil.addresses()[index], usd(1_000))).await;
        testing::mined(coin.approve(*market.address(), U256::MAX)).await;
    }
    let now =
        testing::wallet(anvil, 0).get_block(alloy::eips::BlockId::latest()).await.unwrap().unwrap().header.timestamp;

    let mut parameters = seaport::parameters(
        buyer,
        vec![offer(ERC20, usd_token, 0, usd(300))],
        vec![
            consider(seaport::ERC721_WITH_CRITERIA, collection, 0, U256::from(3), buyer),
            consider(ERC20, usd_token, 0, usd(15), receiver),
        ],
        now,
        1,
    );
    parameters.orderType = seaport::PARTIAL_OPEN;
    let order = seaport::sign(&market, &buyer_key, parameters).await.unwrap();
    let as_seller_market = seaport::binding::Seaport::new(*market.address(), testing::wallet(anvil, 6));
    for token in [1u64, 2] {
        let third = AdvancedOrder {
            parameters: order.parameters.clone(),
            numerator: alloy::primitives::Uint::from(1),
            denominator: alloy::primitives::Uint::from(3),
            signature: order.signature.clone(),
            extraData: Default::default(),
        };
        // The seller names the token for the offer's "any token" (side 1: consideration).
        let resolver = CriteriaResolver {
            orderIndex: U256::ZERO,
            side: 1,
            index: U256::ZERO,
            identifier: U256::from(token),
            criteriaProof: vec![],
        };
        testing::mined(as_seller_market.fulfillAdvancedOrder(third, vec![resolver], B256::ZERO, Address::ZERO)).await;
        assert_eq!(nft.ownerOf(U256::from(token)).call().await.unwrap(), buyer);
    }
    let hash = seaport::order_hash(&market, &order.parameters).await.unwrap();
    let status = market.getOrderStatus(hash).call().await.unwrap();
    assert_eq!((status.totalFilled.to::<u64>(), status.totalSize.to::<u64>()), (2, 3), "two thirds filled");
    settled(resources).await;

    let (s, b, tusd) = (seller.to_vec(), buyer.to_vec(), Some(usd_token.to_vec()));
    let z = U256::ZERO.to_string();
    let fill = |token: u64| -> SaleRow {
        let [price, proceeds, royalty] = [usd(100), usd(95), usd(5)].map(|a| a.to_string());
        (
            "offer".into(),
            "seaport".into(),
            token.to_string(),
            s.clone(),
            b.clone(),
            tusd.clone(),
            price,
            z.clone(),
            proceeds,
            royalty.clone(),
            royalty,
            500,
        )
    };
    assert_eq!(sales(resources.db()).await, vec![fill(1), fill(2)]);
    let volume = (usd(200).to_string(), usd(10).to_string());
    assert_eq!(
        ledger(resources.db()).await,
        vec![("seaport".into(), usd_token.to_vec(), 2, 2, volume.0, z.clone(), volume.1.clone(), volume.1, z)]
    );
    setup.stop().await;
}

//! Wallet checkout on anvil: an order priced by the FX stubs, the platform-signed quote sent by
//! a buyer's wallet to the Checkout contract, the order fulfilled from the `OrderPaid` event;
//! an expired quote refused on chain; Binance refusing (451) and both sources down.

use alloy::{
    primitives::{Address, Bytes, U256},
    providers::{Provider, ext::AnvilApi},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::{
    contracts::Checkout,
    fakes::fx::{Failure, FxStub, Venue},
    testing,
};

use crate::operator::{PNG, Platformed, platformed};

async fn place(setup: &Platformed, item: i64, buyer: Address, method: &str) -> (StatusCode, Value) {
    let body = json!({ "item_id": item, "quantity": 2, "email": "buyer@example.com",
                       "wallet_address": buyer.to_checksum(None), "method": method });
    let response = setup.payment.client.post(setup.payment.url("/orders")).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// `Checkout.buy` from the buyer's wallet with the order's quote.
async fn pay(setup: &Platformed, buyer: usize, payment: &Value) -> Result<(), String> {
    let quote = &payment["quote"];
    let checkout =
        Checkout::new(payment["checkout"].as_str().unwrap().parse().unwrap(), testing::wallet(&setup.anvil, buyer));
    let quote = Checkout::Quote {
        orderId: quote["order_id"].as_str().unwrap().parse().unwrap(),
        buyer: quote["buyer"].as_str().unwrap().parse().unwrap(),
        collection: quote["collection"].as_str().unwrap().parse().unwrap(),
        quantity: U256::from(quote["quantity"].as_u64().unwrap()),
        payToken: quote["pay_token"].as_str().unwrap().parse().unwrap(),
        amount: quote["amount"].as_str().unwrap().parse().unwrap(),
        deadline: U256::from(quote["deadline"].as_u64().unwrap()),
    };
    let signature: Bytes = payment["signature"].as_str().unwrap().parse().unwrap();
    let value = quote.amount;
    match checkout.buy(quote, signature).value(value).send().await {
        Ok(pending) => pending.get_receipt().await.map(drop).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn a_wallet_pays_the_signed_quote_on_chain_and_the_order_is_fulfilled() {
    let fx = FxStub::start().await.unwrap();
    let url = fx.url().to_string();
    let setup =
        platformed(|anvil| anvil.addresses()[0], &[("BINANCE_API_URL", &url), ("FX_SECOND_SOURCE_URL", &url)]).await;
    let Platformed { ref anvil, ref platform, ref owner, brand, .. } = setup;

    // A live campaign with an item at 1,500 EUR payable in ETH.
    let campaign = json!({ "name": "Wallet Drop", "slug": "wallet", "royalty_bps": 0,
        "royalty_receiver": anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 150_000, "currency": "EUR", "supply": 10, "payment_methods": ["eth", "card"] }] });
    let (_, campaign) = owner.call(Method::POST, &format!("/brands/{brand}/campaigns"), Some(campaign)).await;
    let base = format!("/brands/{brand}/campaigns/{}", campaign["id"]);
    owner.upload(&format!("{base}/artwork"), "image/png", alloy::hex::decode(PNG).unwrap()).await;
    owner.call(Method::POST, &format!("{base}/deploy"), None).await;
    let live = owner.wait_for(&base, |c| c["state"] != "deploying").await;
    assert_eq!(live["state"], "live", "{live}");
    // The checkout pays the brand: its treasury is set up after deployment, through the queue.
    let collection: Address = live["collection_address"].as_str().unwrap().parse().unwrap();
    for _ in 0..100 {
        if !platform.checkout.treasuryOf(collection).call().await.unwrap().is_zero() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let item = live["items"][0]["id"].as_i64().unwrap();

    // Two passes = 3,000 EUR = 1 ETH at the stub's 3,000 EUR, plus the 1 % spread.
    let buyer = anvil.addresses()[8];
    let (status, order) = place(&setup, item, buyer, "eth").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let payment = &order["wallet_payment"];
    assert_eq!(payment["source"], "binance");
    assert_eq!(payment["quote"]["amount"], "1010000000000000000");
    assert_eq!(payment["quote"]["pay_token"], Address::ZERO.to_checksum(None));
    let provider = testing::wallet(anvil, 0);
    let treasury_before = provider.get_balance(anvil.addresses()[5]).await.unwrap();
    pay(&setup, 8, payment).await.unwrap();
    let path = format!("/orders/{}", order["id"].as_str().unwrap());
    let mut fulfilled = Value::Null;
    for _ in 0..100 {
        fulfilled = setup.payment.get(&path).await.json().await.unwrap();
        if fulfilled["state"] == "fulfilled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(fulfilled["state"], "fulfilled", "{fulfilled}");
    let nft = platform.collection(collection);
    assert_eq!(nft.ownerOf(U256::from(1)).call().await.unwrap(), buyer);
    assert_eq!(nft.ownerOf(U256::from(2)).call().await.unwrap(), buyer);
    assert_eq!(
        provider.get_balance(anvil.addresses()[5]).await.unwrap() - treasury_before,
        U256::from(1_010_000_000_000_000_000u128),
        "the brand's treasury received the payment"
    );

    // A quote past its deadline is refused by the contract; the order then expires.
    let (_, late) = place(&setup, item, anvil.addresses()[7], "eth").await;
    provider.anvil_increase_time(400).await.unwrap();
    let refused = pay(&setup, 7, &late["wallet_payment"]).await.unwrap_err();
    assert!(refused.contains("revert") || refused.contains("Expired"), "{refused}");
    sqlx::query("UPDATE orders SET expires_at = now() - interval '1 second' WHERE public_id = $1")
        .bind(late["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap())
        .execute(setup.payment.resources.db())
        .await
        .unwrap();
    let mut conn = setup.payment.resources.db().acquire().await.unwrap();
    payment::expire_due(&mut conn).await.unwrap();
    let late: Value =
        setup.payment.get(&format!("/orders/{}", late["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(late["state"], "expired");

    // Binance refuses this location (451): the second source prices the order.
    fx.fail(Venue::Binance, Failure::Restricted);
    let (status, second) = place(&setup, item, anvil.addresses()[6], "eth").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["wallet_payment"]["source"], "coinbase");

    // Both down: a clear 503, no quote, and the units are not held.
    fx.fail(Venue::Coinbase, Failure::ServerError);
    let (status, problem) = place(&setup, item, anvil.addresses()[4], "eth").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("no quote"), "{problem}");
    let (quotes, reserved): (i64, i32) =
        sqlx::query_as("SELECT (SELECT count(*) FROM fx_quotes), (SELECT reserved FROM campaign_items WHERE id = $1)")
            .bind(item)
            .fetch_one(setup.payment.resources.db())
            .await
            .unwrap();
    assert_eq!((quotes, reserved), (3, 4), "the failed order holds nothing: 2 sold + 2 for the Coinbase quote");
    setup.stop().await;
}

//! `brandmint demo`: the platform's journeys run against a running platform (`cargo xtask dev`),
//! printing each step as it happens with its ids, transaction hashes and the page to open, so a
//! newcomer can watch the whole platform work in a few minutes:
//!
//! 1. a brand and its campaign set up through the back office, deployed through the queue;
//! 2. a buyer pays by card on Stripe's hosted page (the local emulator's) and gets the token;
//! 3. a buyer pays from a wallet (ETH at a quoted price, `Checkout.buy`) and gets the token;
//! 4. a printed QR code is claimed to a typed address and paid by the reward vault;
//! 5. the card buyer signs in with the wallet (SIWE) and redeems the token's reward;
//! 6. the card buyer resells the token on Seaport (the local one `deploy-local` put beside the
//!    platform), paying the campaign's royalty; the indexer records the sale, and half of the
//!    royalty goes to the collection's holders through the reward vault.
//!
//! Everything goes through the public APIs and the chain, as clients and wallets would; the
//! wallets are anvil's dev accounts (their keys are public).

use std::time::{Duration, Instant};

use alloy::{
    network::TransactionBuilder,
    primitives::{Address, B256, Bytes, U256},
    providers::Provider,
    rpc::types::TransactionRequest,
    signers::{SignerSync, local::PrivateKeySigner},
};
use anyhow::{Context, bail};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use shared::contracts::{CampaignNFT, RewardVault};

/// Where the platform runs.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub backoffice: String,
    pub payment: String,
    pub redemption: String,
    pub rpc: String,
}

/// anvil's dev accounts 7 and 8 (public keys of a local chain): the two buyers.
const CARD_BUYER_KEY: &str = "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356";
const WALLET_BUYER_KEY: &str = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97";
/// anvil's account 6 (a public key of a local chain): the demo brand's treasury, which
/// receives payments and royalties and funds its holders' share in the vault.
const TREASURY_KEY: &str = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e";
/// The resale: 0.1 ETH, 5 % of it the royalty (the campaign's `royalty_bps`).
const RESALE_WEI: u128 = 100_000_000_000_000_000;
const ROYALTY_BPS: u128 = 500;
/// What the treasury puts in the vault for the holders' share.
const HOLDERS_FUND_WEI: u128 = 10_000_000_000_000_000;

struct Session {
    client: Client,
    token: Option<String>,
}

impl Session {
    async fn send(&self, method: Method, url: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.client.request(method.clone(), url).header("accept", "application/json");
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.with_context(|| format!("{method} {url}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {url}: {status} {body}");
        }
        Ok(body)
    }

    /// Polls `url` until `done` holds (90 s at most), printing each new `field` value.
    async fn follow(&self, url: &str, field: &str, done: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut last = String::new();
        loop {
            let now = self.send(Method::GET, url, None).await?;
            let value = field.split('.').fold(&now, |v, key| key.parse().map_or(&v[key], |n: usize| &v[n])).to_string();
            if value != last {
                say(&format!("    … {field} {value}"));
                last = value;
            }
            if done(&now) {
                return Ok(now);
            }
            if Instant::now() > deadline {
                bail!("{url} did not get there in 90 s: {now}");
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    }
}

#[allow(clippy::print_stdout)] // the walk-through is what it prints
fn say(line: &str) {
    println!("{line}");
}

/// Runs the walk-through as the admin `email`/`password`.
pub async fn run(at: &Endpoints, email: &str, password: &str) -> anyhow::Result<()> {
    shared::chain::install_crypto_provider();
    let client = Client::builder().timeout(Duration::from_secs(30)).build()?;
    let anonymous = Session { client: client.clone(), token: None };
    let signed_in = anonymous
        .send(
            Method::POST,
            &format!("{}/auth/sign-in", at.backoffice),
            Some(json!({ "email": email, "password": password })),
        )
        .await
        .context("signing in as the admin (is `cargo xtask dev` running?)")?;
    let admin = Session { client: client.clone(), token: signed_in["access_token"].as_str().map(str::to_owned) };
    // Names of this run's brand and campaign (the slug must be new).
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() % 1_000_000;
    let treasury: PrivateKeySigner = TREASURY_KEY.parse()?;

    say("\n1. A brand sets up a campaign in the back office, and the platform deploys it");
    let brand = admin
        .send(Method::POST, &format!("{}/brands", at.backoffice),
              Some(json!({ "name": format!("Walk-through {stamp}"), "owner_email": format!("owner-{stamp}@demo.brandmint.local") })))
        .await?;
    let brand = brand["id"].as_i64().context("brand id")?;
    admin
        .send(
            Method::PATCH,
            &format!("{}/brands/{brand}", at.backoffice),
            Some(json!({ "treasury_address": treasury.address().to_checksum(None) })),
        )
        .await?;
    say(&format!("   brand {brand}: {}/brands/{brand}", at.backoffice));
    let campaign = json!({ "name": format!("Walk-through drop {stamp}"), "slug": format!("walk-{stamp}"), "royalty_bps": 500,
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "EUR", "supply": 100, "payment_methods": ["card", "eth"] }] });
    let campaign =
        admin.send(Method::POST, &format!("{}/brands/{brand}/campaigns", at.backoffice), Some(campaign)).await?;
    let id = campaign["id"].as_i64().context("campaign id")?;
    let item = campaign["items"][0]["id"].as_i64().context("item id")?;
    let base = format!("{}/brands/{brand}/campaigns/{id}", at.backoffice);
    let reward = admin
        .send(
            Method::POST,
            &format!("{base}/rewards"),
            Some(
                json!({ "kind": "token", "name": "5 tUSD", "token": "stablecoin", "amount_per_redemption": "5000000" }),
            ),
        )
        .await?;
    let reward = reward["id"].as_i64().context("reward id")?;
    admin
        .send(
            Method::POST,
            &format!("{base}/rewards"),
            Some(json!({ "kind": "royalty_share", "name": "Holders' half", "share_bps": 5_000 })),
        )
        .await?;
    let artwork = client
        .put(format!("{base}/artwork"))
        .bearer_auth(admin.token.as_deref().unwrap_or_default())
        .header("content-type", "image/png")
        .body(include_bytes!("../assets/demo-artwork.png").to_vec())
        .send()
        .await?;
    if !artwork.status().is_success() {
        bail!("the artwork upload answered {}", artwork.status());
    }
    say(&format!(
        "   campaign {id} with item {item}, a 5 tUSD reward ({reward}) and half of every royalty to its holders; \
         deploying…"
    ));
    admin.send(Method::POST, &format!("{base}/deploy"), None).await?;
    let live = admin.follow(&base, "state", |c| c["state"] != "deploying").await?;
    if live["state"] != "live" {
        bail!("the deployment failed: {}", live["deployment"]);
    }
    say(&format!(
        "   live: collection {} (transaction {})\n   page: {base}",
        live["collection_address"].as_str().unwrap_or("?"),
        live["deployment"]["tx_hash"].as_str().unwrap_or("?")
    ));
    admin.send(Method::POST, &format!("{base}/rewards/{reward}/fund"), Some(json!({ "amount": "100000000" }))).await?;
    say("   100 tUSD sent to the reward vault for it (through the transaction queue)");

    say("\n2. A buyer pays by card on Stripe's hosted page");
    let card_buyer: PrivateKeySigner = CARD_BUYER_KEY.parse()?;
    let order = anonymous
        .send(
            Method::POST,
            &format!("{}/orders", at.payment),
            Some(json!({ "item_id": item, "quantity": 1, "email": "card-buyer@demo.brandmint.local",
                           "wallet_address": card_buyer.address().to_checksum(None), "method": "card" })),
        )
        .await?;
    let order_id = order["id"].as_str().context("order id")?.to_owned();
    let hosted =
        anonymous.send(Method::POST, &format!("{}/orders/{order_id}/checkout-session", at.payment), None).await?;
    let page = hosted["url"].as_str().context("hosted page")?;
    say(&format!("   order {order_id}; hosted page {page}"));
    let paid = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(page)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("payment_method=pm_card_visa")
        .send()
        .await?;
    say(&format!("   paid with the test Visa ({}), back to the order's page", paid.status()));
    let order_url = format!("{}/orders/{order_id}", at.payment);
    let done = anonymous.follow(&order_url, "state", |o| o["state"] == "fulfilled" || o["state"] == "failed").await?;
    let card_token = done["first_token_id"].as_str().unwrap_or("?").to_owned();
    say(&format!("   token #{card_token} minted to {}\n   page: {order_url}", card_buyer.address()));

    say("\n3. A buyer pays from a wallet, in ETH at a quoted price");
    let wallet_buyer: PrivateKeySigner = WALLET_BUYER_KEY.parse()?;
    let order = anonymous
        .send(
            Method::POST,
            &format!("{}/orders", at.payment),
            Some(json!({ "item_id": item, "quantity": 1, "email": "wallet-buyer@demo.brandmint.local",
                           "wallet_address": wallet_buyer.address().to_checksum(None), "method": "eth" })),
        )
        .await?;
    let wallet_order = order["id"].as_str().context("order id")?.to_owned();
    let quote = &order["wallet_payment"];
    say(&format!(
        "   order {wallet_order}: {} wei at {} EUR/ETH ({}), quote valid until {}",
        quote["quote"]["amount"].as_str().unwrap_or("?"),
        quote["rate"].as_str().unwrap_or("?"),
        quote["source"].as_str().unwrap_or("?"),
        quote["expires_at"].as_str().unwrap_or("?")
    ));
    let provider = crate::local::wallet(wallet_buyer.clone(), &at.rpc.parse()?);
    for tx in order["wallet_payment"]["transactions"].as_array().into_iter().flatten() {
        let to: Address = tx["to"].as_str().context("to")?.parse()?;
        let data: Bytes = tx["data"].as_str().context("data")?.parse()?;
        let value = U256::from_str_radix(tx["value"].as_str().unwrap_or("0x0").trim_start_matches("0x"), 16)?;
        let request = TransactionRequest::default().with_to(to).with_input(data).with_value(value);
        let receipt = provider.send_transaction(request).await?.get_receipt().await?;
        say(&format!("   {}: transaction {}", tx["purpose"].as_str().unwrap_or("sent"), receipt.transaction_hash));
    }
    let wallet_url = format!("{}/orders/{wallet_order}", at.payment);
    let done = anonymous.follow(&wallet_url, "state", |o| o["state"] == "fulfilled" || o["state"] == "failed").await?;
    say(&format!("   token #{} minted\n   page: {wallet_url}", done["first_token_id"].as_str().unwrap_or("?")));

    say("\n4. A customer scans a printed QR code and is paid");
    let batch = admin
        .send(
            Method::POST,
            &format!("{base}/qr-batches"),
            Some(json!({ "reward_id": reward, "label": "Walk-through", "size": 1, "typed_addresses": true })),
        )
        .await?;
    let zip = client
        .get(format!("{base}/qr-batches/{}/printable", batch["id"]))
        .bearer_auth(admin.token.as_deref().unwrap_or_default())
        .send()
        .await?
        .bytes()
        .await?;
    let code = printed_code(&zip)?;
    say(&format!("   batch {}; code page {}/r/{code}", batch["id"], at.redemption));
    let customer = "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955"; // anvil's account 7… any address will do
    let claim = anonymous
        .send(Method::POST, &format!("{}/r/{code}/claims", at.redemption), Some(json!({ "address": customer })))
        .await?;
    say(&format!("   claimed (redemption {})", claim["id"]));
    let paid = anonymous.follow(&format!("{}/r/{code}", at.redemption), "state", |c| c["state"] != "claimed").await?;
    say(&format!(
        "   code {}: {}",
        paid["state"].as_str().unwrap_or("?"),
        paid["claims"][0]["tx_hash"].as_str().unwrap_or("")
    ));

    say("\n5. The card buyer signs in with the wallet and redeems the token's reward");
    let nonce = anonymous
        .send(Method::GET, &format!("{}/auth/siwe/nonce?address={}", at.redemption, card_buyer.address()), None)
        .await?;
    let message = nonce["message"].as_str().context("the message to sign")?.to_owned();
    let signature = card_buyer.sign_message_sync(message.as_bytes())?;
    let token = anonymous
        .send(
            Method::POST,
            &format!("{}/auth/siwe", at.redemption),
            Some(json!({ "message": message, "signature": format!("0x{}", alloy::hex::encode(signature.as_bytes())) })),
        )
        .await?;
    let customer = Session { client: client.clone(), token: token["access_token"].as_str().map(str::to_owned) };
    let redemption = customer
        .send(
            Method::POST,
            &format!("{}/customers/me/redemptions", at.redemption),
            Some(json!({ "reward_id": reward, "token_id": card_token })),
        )
        .await?;
    let rid = redemption["id"].as_i64().context("redemption id")?;
    let url = format!("{}/customers/me/redemptions/{rid}", at.redemption);
    let done = customer.follow(&url, "state", |r| matches!(r["state"].as_str(), Some("completed" | "failed"))).await?;
    say(&format!(
        "   redemption {rid} {}: transaction {}",
        done["state"].as_str().unwrap_or("?"),
        done["tx_hash"].as_str().unwrap_or("?")
    ));

    let collection: Address = live["collection_address"].as_str().context("collection address")?.parse()?;
    resale(at, &admin, Resale { brand, campaign: id, collection, token: &card_token, treasury }).await?;

    say(&format!(
        "\nWhat the brand sees: {}/brands/{brand}/dashboard?campaign_id={id} (charts), {}/brands/{brand}/orders, \
         {}/brands/{brand}/audit — sign in as {email}.",
        at.backoffice, at.payment, at.backoffice
    ));
    Ok(())
}

/// The code of a printable batch's one code, from its ZIP's `manifest.csv` (seq, code, …).
fn printed_code(zip: &[u8]) -> anyhow::Result<String> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip))?;
    let mut manifest = String::new();
    archive.by_name("manifest.csv")?.read_to_string(&mut manifest)?;
    let row = manifest.lines().nth(1).context("an empty manifest")?;
    row.split(',').nth(1).map(str::to_owned).context("no code in the manifest")
}

/// What step 6 resells.
struct Resale<'a> {
    brand: i64,
    campaign: i64,
    collection: Address,
    token: &'a str,
    treasury: PrivateKeySigner,
}

/// Step 6: the brand funds its holders' share, the card buyer sells the token on Seaport to the
/// wallet buyer with the royalty, and the royalty report follows the sale and the payout.
async fn resale(at: &Endpoints, admin: &Session, sale: Resale<'_>) -> anyhow::Result<()> {
    use fakes::seaport::{ERC721, NATIVE, consider, offer};
    say("\n6. The card buyer resells the token on Seaport; half of the royalty goes to the holders");
    let rpc: reqwest::Url = at.rpc.parse()?;
    let local = crate::local::LocalAddresses::predicted()?;
    let treasury_address = sale.treasury.address();
    let vault = RewardVault::new(local.vault, crate::local::wallet(sale.treasury, &rpc));
    let fund = U256::from(HOLDERS_FUND_WEI);
    let funded =
        vault.fund(U256::from(sale.campaign), Address::ZERO, fund).value(fund).send().await?.get_receipt().await?;
    say(&format!(
        "   the treasury put {fund} wei in the vault for the holders (transaction {})",
        funded.transaction_hash
    ));

    let seller: PrivateKeySigner = CARD_BUYER_KEY.parse()?;
    let buyer: PrivateKeySigner = WALLET_BUYER_KEY.parse()?;
    let token: u64 = sale.token.parse().context("the card buyer's token id")?;
    let as_seller = crate::local::wallet(seller.clone(), &rpc);
    let approved = CampaignNFT::new(sale.collection, as_seller.clone())
        .setApprovalForAll(local.seaport, true)
        .send()
        .await?
        .get_receipt()
        .await?;
    say(&format!("   the seller lets Seaport move the token (transaction {})", approved.transaction_hash));
    let price = U256::from(RESALE_WEI);
    let royalty = price * U256::from(ROYALTY_BPS) / U256::from(10_000);
    let now = as_seller.get_block_number().await?;
    let now = as_seller.get_block_by_number(now.into()).await?.context("the latest block")?.header.timestamp;
    let market = fakes::seaport::binding::Seaport::new(local.seaport, as_seller);
    let listing = fakes::seaport::signed(
        &market,
        &seller,
        vec![offer(ERC721, sale.collection, token, U256::from(1))],
        vec![
            consider(NATIVE, Address::ZERO, 0, price - royalty, seller.address()),
            consider(NATIVE, Address::ZERO, 0, royalty, treasury_address),
        ],
        now,
        token,
    )
    .await?;
    let as_buyer = fakes::seaport::binding::Seaport::new(local.seaport, crate::local::wallet(buyer.clone(), &rpc));
    let bought = as_buyer.fulfillOrder(listing, B256::ZERO).value(price).send().await?.get_receipt().await?;
    if !bought.status() {
        bail!("Seaport refused the sale (transaction {})", bought.transaction_hash);
    }
    say(&format!(
        "   token #{token} sold to {} for {price} wei, {royalty} wei of it the royalty to the treasury (transaction {})",
        buyer.address(),
        bought.transaction_hash
    ));

    let report = format!("{}/brands/{}/royalties?campaign_id={}", at.backoffice, sale.brand, sale.campaign);
    let paid = admin
        .follow(&report, "holders_shares.0.paid", |r| {
            r["holders_shares"][0]["batches_paid"].as_i64().is_some_and(|n| n > 0)
        })
        .await?;
    let row = &paid["rows"][0];
    say(&format!(
        "   recorded: {} sale on {}, royalty expected {} wei, received {} wei",
        row["sales"],
        row["marketplace"].as_str().unwrap_or("?"),
        row["expected"].as_str().unwrap_or("?"),
        row["received"].as_str().unwrap_or("?")
    ));
    let shares = &paid["holders_shares"][0];
    say(&format!(
        "   the vault paid the holders {} wei (holders: {}; transaction {})\n   page: {report}",
        shares["paid"].as_str().unwrap_or("?"),
        shares["holders"],
        shares["last_tx_hash"].as_str().unwrap_or("?")
    ));
    Ok(())
}

//! `brandmint seed-demo`: demo data for `cargo xtask dev`, made the way an operator would make
//! it — through the back office's API as the platform admin: a brand with a treasury and a
//! store, a campaign with two items, a token reward and a perk with codes, its artwork, and the
//! deployment (through the transaction queue) until it is live, then the reward funded and a
//! batch of printed QR codes for it.
//! Idempotent: a brand named [`DEMO_BRAND`] already there is left as it is.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{Client, Method};
use serde_json::{Value, json};

/// The demo brand's name (how a second run recognises it).
pub const DEMO_BRAND: &str = "Brandmint Demo";
/// anvil's account 0: the platform's relayer, and the demo brand's treasury.
const TREASURY: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

struct Api {
    client: Client,
    base: String,
    token: String,
}

impl Api {
    async fn send(&self, method: Method, path: &str, body: Option<(&str, Vec<u8>)>) -> anyhow::Result<Value> {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some((content_type, bytes)) = body {
            request = request.header("content-type", content_type).body(bytes);
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {body}");
        }
        Ok(body)
    }

    async fn json(&self, method: Method, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(method, path, Some(("application/json", serde_json::to_vec(&body)?))).await
    }
}

/// Seeds the demo through the back office at `base` (e.g. `http://127.0.0.1:8081`); returns a
/// printable summary.
pub async fn seed(base: &str, email: &str, password: &str) -> anyhow::Result<String> {
    shared::chain::install_crypto_provider();
    let client = Client::new();
    let signed_in: Value = client
        .post(format!("{base}/auth/sign-in"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?
        .error_for_status()
        .context("signing in as the demo admin")?
        .json()
        .await?;
    let token = signed_in["access_token"].as_str().context("no access token")?.to_owned();
    let api = Api { client, base: base.to_owned(), token };

    let brands = api.send(Method::GET, "/brands", None).await?;
    if let Some(brand) = brands.as_array().into_iter().flatten().find(|b| b["name"] == DEMO_BRAND) {
        return Ok(format!("  demo brand   {} (id {}), seeded before", DEMO_BRAND, brand["id"]));
    }
    let brand = api
        .json(Method::POST, "/brands", json!({ "name": DEMO_BRAND, "owner_email": "owner@demo.brandmint.local" }))
        .await?;
    let brand = brand["id"].as_i64().context("brand id")?;
    let profile = json!({ "treasury_address": TREASURY, "website": "https://demo.brandmint.local",
                          "description": "A brand to try Brandmint with." });
    api.json(Method::PATCH, &format!("/brands/{brand}"), profile).await?;
    api.json(Method::POST, &format!("/brands/{brand}/stores"), json!({ "name": "Flagship store" })).await?;

    let campaign = json!({
        "name": "Brandmint Demo Drop",
        "slug": "demo-drop",
        "description": "The demo collection: each token unlocks 5 tUSD and a free coffee.",
        "royalty_bps": 500,
        "items": [
            { "name": "Standard pass", "price_minor": 2_500, "currency": "EUR", "supply": 900,
              "per_wallet_limit": 10, "payment_methods": ["card", "eth", "stablecoin"] },
            { "name": "Gold pass", "price_minor": 9_900, "currency": "EUR", "supply": 100,
              "per_wallet_limit": 2, "payment_methods": ["card", "eth"] },
        ],
    });
    let campaign = api.json(Method::POST, &format!("/brands/{brand}/campaigns"), campaign).await?;
    let id = campaign["id"].as_i64().context("campaign id")?;
    let base_path = format!("/brands/{brand}/campaigns/{id}");
    let cash = json!({ "kind": "token", "name": "5 tUSD", "token": "stablecoin", "amount_per_redemption": "5000000" });
    let cash = api.json(Method::POST, &format!("{base_path}/rewards"), cash).await?;
    let coffee = api
        .json(Method::POST, &format!("{base_path}/rewards"), json!({ "kind": "perk", "name": "Free coffee" }))
        .await?;
    let codes: String = (1..=50).map(|n| format!("COFFEE-{n:04}\n")).collect();
    api.send(
        Method::POST,
        &format!("{base_path}/rewards/{}/codes", coffee["id"]),
        Some(("text/csv", codes.into_bytes())),
    )
    .await?;
    let artwork = include_bytes!("../assets/demo-artwork.png").to_vec();
    api.send(Method::PUT, &format!("{base_path}/artwork"), Some(("image/png", artwork))).await?;

    api.send(Method::POST, &format!("{base_path}/deploy"), None).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let live = loop {
        let campaign = api.send(Method::GET, &base_path, None).await?;
        match campaign["state"].as_str() {
            Some("live") => break campaign,
            Some("deploy_failed") => bail!("the demo campaign's deployment failed: {}", campaign["deployment"]),
            _ if Instant::now() > deadline => bail!("the demo campaign was not live after 60 s: {campaign}"),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    };
    // 10,000 tUSD for the token reward.
    let fund = json!({ "amount": "10000000000" });
    api.json(Method::POST, &format!("{base_path}/rewards/{}/fund", cash["id"]), fund).await?;
    // 20 printed codes for the token reward, payable to a typed address.
    let batch = json!({ "reward_id": cash["id"], "label": "Demo packaging", "size": 20, "typed_addresses": true });
    let batch = api.json(Method::POST, &format!("{base_path}/qr-batches"), batch).await?;
    Ok(format!(
        "  demo brand   {DEMO_BRAND} (id {brand}), owner invited as owner@demo.brandmint.local (see the mailbox)\n  \
         demo drop    campaign {id} live at {} (metadata {base}/metadata/{id}/<token>), vault funding queued\n  \
         demo codes   20 printed QR codes: {base}{base_path}/qr-batches/{}/printable (claim on the redemption \
         service at /r/<code>)",
        live["collection_address"].as_str().unwrap_or("?"),
        batch["id"],
    ))
}

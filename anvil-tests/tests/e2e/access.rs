//! The authorization matrix and Sign-In with Ethereum, across every service.
//!
//! The matrix enumerates every operation of every service from its OpenAPI document (so a new
//! route cannot be missed: each must carry `x-permission` or `x-public`, which only the
//! `require`/`public` route helpers set), calls it as every kind of principal on their own
//! brand and on another brand, and compares the outcome with what the permission table says.

use std::collections::BTreeMap;

use alloy::{
    primitives::{Address, Bytes},
    signers::{Signer, local::PrivateKeySigner},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::auth::{
    BrandRole, Permission, PlatformRole,
    access::{self, Subject},
    acl::{self, Scope},
};
use testkit::{self as testing, TestApp, TestDb};

/// How the wall answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Allowed,
    Unauthenticated,
    Forbidden,
    /// 404 "no such brand": the brand is not the caller's to know about.
    Hidden,
}

#[derive(Debug, Clone)]
pub(crate) enum Who {
    Anonymous,
    Platform(PlatformRole),
    Member(BrandRole),
    Customer,
    ApiKey(Vec<Permission>),
}

/// What the permission table says `who` gets for `permission` on its own brand or another.
fn expected(who: &Who, permission: Option<Permission>, own_brand: bool) -> Outcome {
    let Some(permission) = permission else { return Outcome::Allowed };
    let platform_holds = |role: Option<PlatformRole>| {
        acl::ACCOUNT_GRANTS.contains(&permission) || role.is_some_and(|r| acl::platform_grants(r).contains(&permission))
    };
    match (who, permission.scope()) {
        (Who::Anonymous, _) => Outcome::Unauthenticated,
        (Who::Customer, Scope::Platform) if acl::CUSTOMER_GRANTS.contains(&permission) => Outcome::Allowed,
        (Who::Customer, Scope::Platform) | (Who::ApiKey(_), Scope::Platform) => Outcome::Forbidden,
        (Who::Customer, Scope::Brand) => Outcome::Hidden,
        (Who::ApiKey(_), Scope::Brand) if !own_brand => Outcome::Hidden,
        (Who::ApiKey(held), Scope::Brand) if held.contains(&permission) => Outcome::Allowed,
        (Who::ApiKey(_), Scope::Brand) => Outcome::Forbidden,
        (Who::Platform(role), Scope::Platform) if platform_holds(Some(*role)) => Outcome::Allowed,
        (Who::Member(_), Scope::Platform) if platform_holds(None) => Outcome::Allowed,
        (Who::Platform(_) | Who::Member(_), Scope::Platform) => Outcome::Forbidden,
        (Who::Platform(role), Scope::Brand) if acl::platform_grants(*role).contains(&permission) => Outcome::Allowed,
        (Who::Platform(_), Scope::Brand) => Outcome::Forbidden,
        (Who::Member(role), Scope::Brand) if own_brand && acl::brand_grants(*role).contains(&permission) => {
            Outcome::Allowed
        }
        (Who::Member(_), Scope::Brand) if own_brand => Outcome::Forbidden,
        (Who::Member(_), Scope::Brand) => Outcome::Hidden,
    }
}

async fn observe(response: reqwest::Response) -> (Outcome, StatusCode) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let outcome = match status {
        StatusCode::UNAUTHORIZED => Outcome::Unauthenticated,
        StatusCode::FORBIDDEN => Outcome::Forbidden,
        StatusCode::NOT_FOUND if body["detail"] == "no such brand" => Outcome::Hidden,
        _ => Outcome::Allowed,
    };
    (outcome, status)
}

/// Brand A (with stores A1, A2) and brand B (store B1); one principal of every kind.
pub(crate) struct World {
    pub(crate) brand_a: i64,
    pub(crate) brand_b: i64,
    pub(crate) store_a1: i64,
    pub(crate) store_a2: i64,
    pub(crate) store_b1: i64,
    pub(crate) principals: Vec<(Who, Option<String>)>,
}

pub(crate) async fn world(app: &TestApp) -> World {
    let (brand_a, brand_b) = (app.brand("A").await, app.brand("B").await);
    let (store_a1, store_a2, store_b1) =
        (app.store(brand_a, "A1").await, app.store(brand_a, "A2").await, app.store(brand_b, "B1").await);
    let mut principals = vec![(Who::Anonymous, None)];
    for role in [PlatformRole::Admin, PlatformRole::Support, PlatformRole::Developer] {
        let (_, token) = app.account(&format!("{}@brandmint.example", role.as_str()), Some(role)).await;
        principals.push((Who::Platform(role), Some(token)));
    }
    for role in [BrandRole::Owner, BrandRole::Manager, BrandRole::Staff, BrandRole::Verifier] {
        let (id, token) = app.account(&format!("{}@a.example", role.as_str()), None).await;
        let stores = if role == BrandRole::Verifier { vec![store_a1] } else { vec![] };
        app.member(brand_a, id, role, &stores).await;
        principals.push((Who::Member(role), Some(token)));
    }
    // A customer signed in with a wallet (the SIWE test below goes through the real flow).
    let db = app.resources.db();
    let customer: i64 = sqlx::query_scalar("INSERT INTO customers (wallet_address) VALUES ($1) RETURNING id")
        .bind(Address::repeat_byte(7).as_slice())
        .fetch_one(db)
        .await
        .unwrap();
    let sid = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO sessions (id, customer_id, method, expires_at) VALUES ($1, $2, 'siwe', now() + interval '1 hour')",
    )
    .bind(sid)
    .bind(customer)
    .execute(db)
    .await
    .unwrap();
    let (token, _) = access::issue(&app.resources.config().auth, Subject::Customer(customer), sid).unwrap();
    principals.push((Who::Customer, Some(token)));
    // An API key of brand A with every permission a key may hold.
    let held: Vec<Permission> = acl::all_permissions().filter(|p| p.grantable_to_api_key()).collect();
    let mut conn = db.acquire().await.unwrap();
    let (_, key) = shared::auth::api_keys::create(&mut conn, shared::ids::BrandId::new(brand_a), "server", &held, None)
        .await
        .unwrap();
    principals.push((Who::ApiKey(held), Some(key)));
    World { brand_a, brand_b, store_a1, store_a2, store_b1, principals }
}

/// Every operation of a service: (method, path template, permission or None for public).
pub(crate) fn operations(spec: shared::ServiceSpec) -> Vec<(Method, String, Option<Permission>)> {
    let api = shared::service::openapi(spec);
    let mut found = Vec::new();
    for (path, item) in &api.paths.paths {
        let ops = [
            (Method::GET, &item.get),
            (Method::POST, &item.post),
            (Method::PUT, &item.put),
            (Method::PATCH, &item.patch),
            (Method::DELETE, &item.delete),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            let ext = op.extensions.as_ref();
            let permission = ext.and_then(|e| e.get(shared::auth::X_PERMISSION)).and_then(Value::as_str);
            let public = ext.and_then(|e| e.get(shared::auth::X_PUBLIC)).is_some();
            assert!(
                permission.is_some() != public,
                "{} {method} {path}: every route must be added with auth::require or auth::public",
                spec.name
            );
            found.push((method, path.clone(), permission.map(|p| p.parse().unwrap())));
        }
    }
    found
}

#[tokio::test]
async fn every_route_of_every_service_answers_every_principal_as_the_permission_table_says() {
    let db = TestDb::create().await;
    let rpc = testing::required_env("RPC_URL");
    let mut apps = Vec::new();
    for spec in cli::SERVICES {
        // Permissions, not the per-IP budget: every call comes from this one address.
        let config = testing::config(&db.url, &rpc, &[("RATE_LIMIT_IP_PER_MINUTE", "1000000")]);
        apps.push((spec, TestApp::spawn_with(spec, config).await));
    }
    let world = world(&apps[0].1).await;
    let mut checked = 0;
    let mut mismatches = BTreeMap::new();
    for (spec, app) in &apps {
        for (method, template, permission) in operations(*spec) {
            for own in [true, false] {
                if !template.contains("{brand_id}") && !own {
                    continue;
                }
                let (brand, store) =
                    if own { (world.brand_a, world.store_a1) } else { (world.brand_b, world.store_b1) };
                let path = template
                    .replace("{brand_id}", &brand.to_string())
                    .replace("{store_id}", &store.to_string())
                    .replace("{session_id}", &uuid::Uuid::nil().to_string())
                    .replace("{account_id}", "999999")
                    .replace("{invite_id}", "999999")
                    .replace("{key_id}", "999999")
                    .replace("{kyc_id}", "999999")
                    .replace("{document_id}", "999999")
                    .replace("{kind}", "front")
                    .replace("{campaign_id}", "999999")
                    .replace("{reward_id}", "999999")
                    .replace("{voucher_id}", "999999")
                    .replace("{redemption_id}", "999999")
                    .replace("{batch_id}", "999999")
                    .replace("{seq}", "1")
                    .replace("{format}", "png")
                    .replace("{code}", "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
                    .replace("{token_id}", "1")
                    .replace("{order_id}", &uuid::Uuid::nil().to_string())
                    .replace("{endpoint_id}", "999999")
                    .replace("{delivery_id}", "999999")
                    .replace("{tx_id}", "999999")
                    .replace("{chain_id}", "31337")
                    .replace("{collection}", "0x0000000000000000000000000000000000000001");
                assert!(!path.contains('{'), "{template}: add a fixture for its path parameter");
                for (who, token) in &world.principals {
                    let mut request = app.client.request(method.clone(), app.url(&path));
                    if let Some(token) = token {
                        request = request.bearer_auth(token);
                    }
                    if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
                        request = request.json(&json!({}));
                    }
                    let (outcome, status) = observe(request.send().await.unwrap()).await;
                    let want = expected(who, permission, own);
                    checked += 1;
                    if outcome != want {
                        mismatches.insert(
                            format!("{} {method} {path} as {who:?}", spec.name),
                            format!("expected {want:?}, got {outcome:?} ({status})"),
                        );
                    }
                }
            }
        }
    }
    assert!(mismatches.is_empty(), "{} of {checked} calls disagree with the table: {mismatches:#?}", mismatches.len());
    assert!(checked > 300, "only {checked} calls");
    eprintln!("authorization matrix: {checked} calls, all as the table says");

    // Verifiers are store-scoped: their own brand's other store is refused.
    let verifier = world.principals.iter().find(|(who, _)| matches!(who, Who::Member(BrandRole::Verifier))).unwrap();
    let redemption = &apps.iter().find(|(spec, _)| spec.name == "redemption").unwrap().1;
    let scanner = |store: i64| format!("/brands/{}/stores/{store}/scanner", world.brand_a);
    let get =
        |path: String| redemption.client.get(redemption.url(&path)).bearer_auth(verifier.1.as_ref().unwrap()).send();
    assert_eq!(get(scanner(world.store_a1)).await.unwrap().status(), StatusCode::OK);
    assert_eq!(get(scanner(world.store_a2)).await.unwrap().status(), StatusCode::FORBIDDEN);
    // Brand A's staff naming brand B's store under brand A: no such store.
    let staff = world.principals.iter().find(|(who, _)| matches!(who, Who::Member(BrandRole::Staff))).unwrap();
    let cross = redemption.client.get(redemption.url(&scanner(world.store_b1))).bearer_auth(staff.1.as_ref().unwrap());
    assert_eq!(cross.send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

/// An EIP-4361 message for `address`.
fn siwe_message(domain: &str, address: Address, chain_id: u64, nonce: &str, expires_in_secs: i64) -> String {
    let now = chrono::Utc::now();
    let iso = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    format!(
        "{domain} wants you to sign in with your Ethereum account:\n{address}\n\nSign in to redeem your rewards.\n\n\
         URI: https://{domain}/login\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {}\n\
         Expiration Time: {}",
        iso(now - chrono::Duration::seconds(5)),
        iso(now + chrono::Duration::seconds(expires_in_secs)),
    )
}

#[tokio::test]
async fn customers_sign_in_with_their_wallet_and_every_forgery_is_refused() {
    let anvil = testing::anvil();
    let db = TestDb::create().await;
    // More attempts than the default 10 a minute: this test is about forgeries, not rate limits.
    let extra = [("SIWE_DOMAIN", "shop.example"), ("RATE_LIMIT_AUTH_MAX", "100")];
    let config = testing::config(&db.url, &anvil.endpoint(), &extra);
    let app = TestApp::spawn_with(redemption::SERVICE, config).await;
    let chain_id = anvil.chain_id();
    let nonce = || async {
        let body: Value = app.get("/auth/siwe/nonce").await.json().await.unwrap();
        assert_eq!(body["domain"], "shop.example");
        assert_eq!(body["chain_id"], chain_id);
        body["nonce"].as_str().unwrap().to_owned()
    };
    let sign_in = |message: String, signature: Bytes| {
        app.client.post(app.url("/auth/siwe")).json(&json!({ "message": message, "signature": signature })).send()
    };
    let sign = |signer: &PrivateKeySigner, message: &str| {
        let (signer, message) = (signer.clone(), message.to_owned());
        async move { Bytes::from(signer.sign_message(message.as_bytes()).await.unwrap().as_bytes().to_vec()) }
    };
    let holder: PrivateKeySigner = testing::signer(&anvil, 3);

    // A valid signature from an anvil account signs in, bound to the address.
    let message = siwe_message("shop.example", holder.address(), chain_id, &nonce().await, 300);
    let signature = sign(&holder, &message).await;
    let response = sign_in(message.clone(), signature.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["address"], holder.address().to_checksum(None));
    let me = app.client.get(app.url("/customers/me")).bearer_auth(token["access_token"].as_str().unwrap());
    let me: Value = me.send().await.unwrap().json().await.unwrap();
    assert_eq!(me["address"], holder.address().to_checksum(None));

    // The same message again: its nonce is spent.
    assert_eq!(sign_in(message, signature).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Another domain (a phishing site relaying our nonce).
    let phishing = siwe_message("shop.example.evil", holder.address(), chain_id, &nonce().await, 300);
    assert_eq!(
        sign_in(phishing.clone(), sign(&holder, &phishing).await).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Another chain.
    let other_chain = siwe_message("shop.example", holder.address(), 1, &nonce().await, 300);
    assert_eq!(
        sign_in(other_chain.clone(), sign(&holder, &other_chain).await).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Expired.
    let expired = siwe_message("shop.example", holder.address(), chain_id, &nonce().await, -1);
    assert_eq!(
        sign_in(expired.clone(), sign(&holder, &expired).await).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // A nonce the server never issued.
    let invented = siwe_message("shop.example", holder.address(), chain_id, "inventedNonce123", 300);
    assert_eq!(
        sign_in(invented.clone(), sign(&holder, &invented).await).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // Signed by another key.
    let mallory = testing::signer(&anvil, 4);
    let message = siwe_message("shop.example", holder.address(), chain_id, &nonce().await, 300);
    assert_eq!(
        sign_in(message.clone(), sign(&mallory, &message).await).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // …and that nonce was not burnt by the forgery: the holder can still use it.
    assert_eq!(sign_in(message.clone(), sign(&holder, &message).await).await.unwrap().status(), StatusCode::OK);

    // A contract wallet (EIP-1271) whose owner is the holder.
    let deployer = testing::wallet(&anvil, 0);
    let contract = shared::contracts::TestSmartWallet::deploy(deployer, holder.address()).await.unwrap();
    let wallet = *contract.address();
    let message = siwe_message("shop.example", wallet, chain_id, &nonce().await, 300);
    assert_eq!(
        sign_in(message.clone(), sign(&mallory, &message).await).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let response = sign_in(message.clone(), sign(&holder, &message).await).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["address"], wallet.to_checksum(None));

    // Garbage is a clear client error, never a 500.
    let garbage = sign_in("not a siwe message".into(), Bytes::from_static(b"xx")).await.unwrap();
    assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
    let bad_hex = app.client.post(app.url("/auth/siwe")).json(&json!({ "message": "m", "signature": "0xzz" })).send();
    assert_eq!(bad_hex.await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);
}

//! The pages, in a real headless Chromium against the real services and a private anvil: a
//! customer who scanned a printed QR code opens its page on a phone, signs in with the wallet in
//! the browser and is paid; another types an address on a desktop and is paid; a code that is
//! not ours gets a page that says so. Every page is screenshotted, and checked for console
//! errors, failed requests and accessibility violations.

use alloy::primitives::U256;
use reqwest::Method;
use serde_json::json;
use testkit as testing;

use crate::{
    browser::{Browser, Viewport},
    redeeming::{Rewarded, rewarded},
};

#[tokio::test]
async fn a_customer_opens_a_printed_code_and_is_paid_with_the_browsers_wallet_or_a_typed_address() {
    let world = rewarded(false).await;
    let Rewarded { ref setup, ref service, ref base, small, .. } = world;
    let (owner, stablecoin) = (&setup.owner, &setup.platform.stablecoin);
    let batch = json!({ "reward_id": small, "label": "Page test", "size": 2, "typed_addresses": true });
    let (_, batch) = owner.call(Method::POST, &format!("{base}/qr-batches"), Some(batch)).await;
    let nonces: Vec<Vec<u8>> = sqlx::query_scalar("SELECT nonce FROM qr_codes WHERE batch_id = $1 ORDER BY seq")
        .bind(batch["id"].as_i64().unwrap())
        .fetch_all(owner.app.resources.db())
        .await
        .unwrap();
    let key = &owner.app.resources.config().qr_code_key;
    let codes: Vec<String> = nonces.iter().map(|n| key.brand_code(n.as_slice().try_into().unwrap())).collect();

    // On a phone, with the wallet in the browser.
    let browser = Browser::start("printed-code", Viewport::Phone).await;
    let page = service.url(&format!("/r/{}", codes[0]));
    browser.open(&page).await;
    assert_eq!(browser.text("h1").await, "Five");
    assert_eq!(browser.text(".amount").await, "5.00 USD in stablecoin");
    browser.check("the code's page").await;
    browser.screenshot("code").await;
    let ann = testing::signer(&setup.anvil, 6);
    let before = stablecoin.balanceOf(ann.address()).call().await.unwrap();
    browser.inject_wallet().await;
    browser.click("#connect").await;
    browser.serve_wallet(&ann, &setup.anvil.endpoint(), 2).await;
    let paid = browser.wait_text("#status", "Paid").await;
    assert!(paid.contains("0x"), "the transaction is shown: {paid}");
    browser.check("the code's page, paid").await;
    browser.screenshot("paid").await;
    assert_eq!(stablecoin.balanceOf(ann.address()).call().await.unwrap() - before, U256::from(5_000_000u64));
    // Opened again, it says it was redeemed and paid.
    browser.open(&page).await;
    browser.wait_text("#status", "redeemed and paid").await;
    assert!(browser.text("main").await.contains("Five"));
    browser.check("a paid code's page").await;
    browser.screenshot("redeemed").await;
    browser.close().await;

    // On a desktop, to a typed address.
    let browser = Browser::start("printed-code", Viewport::Desktop).await;
    browser.open(&service.url(&format!("/r/{}", codes[1]))).await;
    let bob = setup.anvil.addresses()[7];
    let before = stablecoin.balanceOf(bob).call().await.unwrap();
    browser.fill("#address", &bob.to_checksum(None)).await;
    browser.screenshot("typed").await;
    browser.click("#typed button").await;
    browser.wait_text("#status", "Paid").await;
    browser.check("the code's page, paid to a typed address").await;
    browser.screenshot("paid-typed").await;
    assert_eq!(stablecoin.balanceOf(bob).call().await.unwrap() - before, U256::from(5_000_000u64));
    // A code that is not ours: a page that says so (its 404 is the point, so only a screenshot).
    browser.open(&service.url("/r/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")).await;
    assert_eq!(browser.text("h1").await, "This code does not work");
    browser.screenshot("unknown").await;
    browser.close().await;

    world.stop().await;
}

#[tokio::test]
async fn a_customer_shows_a_counter_code_on_a_phone_and_the_stores_verifier_scans_a_picture_of_it() {
    let world = rewarded(false).await;
    let Rewarded { ref setup, ref service, perk, .. } = world;
    let owner = &setup.owner;
    let brand = setup.brand;
    let store = owner.app.store(brand, "Counter store").await;
    let (vera, _) = owner.app.account("vera@acme.example", None).await;
    owner.app.member(brand, vera, shared::auth::BrandRole::Verifier, &[store]).await;

    let browser = Browser::start("counter", Viewport::Phone).await;
    browser.open(&service.url("/counter")).await;
    browser.check("the counter page, signed out").await;
    browser.screenshot("signed-out").await;
    browser.inject_wallet().await;
    browser.click("#connect").await;
    browser.serve_wallet(&testing::signer(&setup.anvil, 6), &setup.anvil.endpoint(), 2).await;
    // Signed in (the page session's cookie), the page lists what Ann's tokens give.
    browser.wait_text("h1", "Your rewards").await;
    let link = format!("a[href='/counter?reward_id={perk}&token_id=1']");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !browser.exists(&link).await {
        assert!(std::time::Instant::now() < deadline, "the perk for token 1 is never offered");
        browser.open(&service.url("/counter")).await;
    }
    browser.check("the counter page, rewards").await;

    // The page session: the token out of scripts' reach, both cookies Secure and SameSite=Strict;
    // a state-changing call on the cookie alone is refused unless it echoes the CSRF cookie.
    let (session, http_only, secure, strict) = browser.cookie("bm_session").await;
    assert!(http_only && secure && strict, "bm_session: HttpOnly {http_only}, Secure {secure}, Strict {strict}");
    let (csrf, csrf_http_only, csrf_secure, csrf_strict) = browser.cookie("bm_csrf").await;
    assert!(!csrf_http_only && csrf_secure && csrf_strict, "the page's script reads bm_csrf");
    let claim = |csrf_header: Option<&str>| {
        let mut request = service
            .client
            .post(service.url("/customers/me/redemptions"))
            .header("cookie", format!("bm_session={session}; bm_csrf={csrf}"))
            .json(&serde_json::json!({ "reward_id": 0, "token_id": "1" }));
        if let Some(header) = csrf_header {
            request = request.header("x-csrf-token", header);
        }
        request.send()
    };
    assert_eq!(claim(None).await.unwrap().status(), reqwest::StatusCode::FORBIDDEN, "no CSRF header");
    assert_eq!(claim(Some("forged")).await.unwrap().status(), reqwest::StatusCode::FORBIDDEN, "a wrong one");
    assert_eq!(claim(Some(&csrf)).await.unwrap().status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY, "past the wall");
    browser.screenshot("rewards").await;
    browser.click(&link).await;
    browser.wait_text("h1", "Show this at the counter").await;
    browser.check("the counter page, the code").await;
    browser.screenshot("code").await;

    // The verifier photographs the phone's screen and uploads it on the store's scanner page.
    let picture = std::env::temp_dir().join(format!("brandmint-counter-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&picture, browser.element_screenshot("#qr").await).unwrap();
    let scanner_url = service.url(&format!("/staff/scanner?brand_id={brand}&store_id={store}"));
    let staff = Browser::start("scanner", Viewport::Phone).await;
    staff.open(&scanner_url).await;
    staff.wait_visible("#signin-form").await;
    staff.check("the scanner, signed out").await;
    staff.screenshot("sign-in").await;
    staff.fill("#email", "vera@acme.example").await;
    staff.fill("#password", testing::TEST_PASSWORD).await;
    staff.click("#signin-form button").await;
    staff.wait_text("#store", "Counter store").await;
    staff.fill("#photo", picture.to_str().unwrap()).await;
    let said = staff.wait_text("#result", "hand over").await;
    assert!(said.contains("Backstage"), "{said}");
    staff.check("the scanner, redeemed").await;
    staff.screenshot("redeemed").await;
    // The same code again: told so, big.
    staff.fill("#photo", picture.to_str().unwrap()).await;
    staff.wait_text("#result", "already redeemed").await;
    staff.screenshot("already-redeemed").await;
    staff.close().await;
    // A verifier of another store is told they cannot scan here.
    let other = owner.app.store(brand, "Other store").await;
    let (victor, _) = owner.app.account("victor@acme.example", None).await;
    owner.app.member(brand, victor, shared::auth::BrandRole::Verifier, &[other]).await;
    let staff = Browser::start("scanner", Viewport::Desktop).await;
    staff.open(&scanner_url).await;
    staff.wait_visible("#signin-form").await;
    staff.fill("#email", "victor@acme.example").await;
    staff.fill("#password", testing::TEST_PASSWORD).await;
    staff.click("#signin-form button").await;
    staff.wait_text("#result", "cannot scan at this store").await;
    staff.screenshot("another-store").await;
    staff.close().await;
    drop(std::fs::remove_file(&picture));
    browser.close().await;
    world.stop().await;
}

#[tokio::test]
async fn a_customer_verifies_their_identity_on_a_phone_and_sees_it_approved() {
    let anvil = testing::anvil();
    let db = testing::TestDb::create().await;
    let config = testing::config(&db.url, &anvil.endpoint(), &[]);
    let service = testing::TestApp::spawn_with(redemption::SERVICE, config.clone()).await;
    let backoffice = testing::TestApp::spawn_with(backoffice::SERVICE, config).await;

    let browser = Browser::start("kyc", Viewport::Phone).await;
    browser.open(&service.url("/kyc")).await;
    browser.check("the KYC page, signed out").await;
    browser.inject_wallet().await;
    browser.click("#connect").await;
    browser.serve_wallet(&testing::signer(&anvil, 6), &anvil.endpoint(), 2).await;
    browser.wait_visible("#details").await;
    browser.check("the KYC page, empty").await;
    browser.screenshot("empty").await;
    browser.fill("#legal_name", "Ann Holder").await;
    browser.fill("#date_of_birth", "1990-12-10").await;
    browser.fill("#country", "FR").await;
    browser.fill("#document_number", "12AB34567").await;
    browser.click("#details button").await;
    browser.wait_text("#status", "Add the pictures").await;
    // A picture of the passport's photo page (any PNG will do for the platform's checks).
    let picture = std::env::temp_dir().join(format!("brandmint-passport-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&picture, shared::qr::png("passport").unwrap()).unwrap();
    browser.fill("#document-front", picture.to_str().unwrap()).await;
    browser.wait_text("label[for=document-front]", "(added)").await;
    browser.check("the KYC page, a draft").await;
    browser.screenshot("draft").await;
    browser.click("#submit-kyc").await;
    browser.wait_text("#status", "awaiting review").await;
    browser.check("the KYC page, submitted").await;
    browser.screenshot("submitted").await;

    // Support approves it on the back office's review queue.
    backoffice.account("support@brandmint.example", Some(shared::auth::PlatformRole::Support)).await;
    let support = Browser::start("kyc-review", Viewport::Desktop).await;
    crate::staff_pages::sign_in(&support, &backoffice, "support@brandmint.example", "/").await;
    support.click("a[href='/kyc/submissions']").await;
    support.wait_text("h1", "KYC review").await;
    support.wait_text("tbody", "Ann Holder").await;
    support.check("the review queue").await;
    support.screenshot("queue").await;
    support.click("tbody a").await;
    support.wait_text("#kyc-state", "pending").await;
    // The picture is shown to the reviewer (decrypted for them, and the view audited).
    support.wait_visible("img.document").await;
    support.check("a submission to review").await;
    support.screenshot("submission").await;
    support.fill("#approve-note", "Passport matches").await;
    support.click("#approve button").await;
    support.wait_text("#kyc-state", "approved").await;
    assert!(!support.exists("#approve").await, "a decided submission offers no decision");
    support.check("an approved submission").await;
    support.screenshot("approved").await;
    support.close().await;

    // An admin reads the audit log: the reviewer's views and decision, the chain intact.
    backoffice.account("admin@brandmint.example", Some(shared::auth::PlatformRole::Admin)).await;
    let admin = Browser::start("audit-log", Viewport::Desktop).await;
    crate::staff_pages::sign_in(&admin, &backoffice, "admin@brandmint.example", "/").await;
    admin.click("a[href='/audit']").await;
    admin.wait_text("h1", "Audit log").await;
    admin.wait_text("#chain", "Intact").await;
    let log = admin.text("#audit").await;
    for action in ["kyc.viewed", "kyc.document-viewed", "kyc.approved"] {
        assert!(log.contains(action), "{action} is in the audit log: {log}");
    }
    admin.check("the audit log").await;
    admin.screenshot("audit-log").await;
    admin.close().await;

    browser.open(&service.url("/kyc")).await;
    browser.wait_text("#status", "Verified").await;
    browser.check("the KYC page, approved").await;
    browser.screenshot("approved").await;
    browser.close().await;
    drop(std::fs::remove_file(&picture));
    service.stop().await.unwrap();
    backoffice.stop().await.unwrap();
}

#[tokio::test]
async fn a_buyer_pays_from_the_browsers_wallet_on_the_campaign_page_and_sees_the_minted_token() {
    let fx = fakes::fx::FxStub::start().await.unwrap();
    let url = fx.url().to_string();
    let setup = crate::operator::platformed(
        |anvil| anvil.addresses()[0],
        &[("BINANCE_API_URL", &url), ("FX_SECOND_SOURCE_URL", &url)],
    )
    .await;
    let campaign = json!({ "name": "Browser Drop", "slug": "browser-drop", "royalty_bps": 0,
        "royalty_receiver": setup.anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 150_000, "currency": "EUR", "supply": 10,
                    "payment_methods": ["eth", "card"] }] });
    let live = crate::checkout::live_campaign(&setup.owner, setup.brand, &campaign).await;
    crate::checkout::treasury_known(&setup, &live).await;
    let item = live.items[0].id;

    let browser = Browser::start("checkout", Viewport::Desktop).await;
    browser.open(&setup.payment.url("/shop/browser-drop")).await;
    assert_eq!(browser.text("h1").await, "Browser Drop");
    browser.check("the campaign page").await;
    browser.screenshot("campaign").await;
    let buyer = testing::signer(&setup.anvil, 8);
    browser.fill(&format!("#email-{item}"), "buyer@example.com").await;
    browser.fill(&format!("#wallet-{item}"), &buyer.address().to_checksum(None)).await;
    browser.click("form.buy input[value=eth]").await;
    browser.click("form.buy button[type=submit]").await;
    browser.wait_text("h1", "Your order").await;
    browser.wait_visible("#pay").await;
    assert!(browser.text("#pay-card .amount").await.ends_with(" ETH"));
    browser.check("the order page, to pay").await;
    browser.screenshot("order").await;
    browser.inject_wallet().await;
    browser.click("#pay").await;
    browser.serve_wallet(&buyer, &setup.anvil.endpoint(), 2).await;
    browser.wait_text("#state", "token is minted").await;
    browser.wait_visible("#token").await;
    assert!(browser.text("#token").await.contains("token #"));
    browser.check("the order page, minted").await;
    browser.screenshot("minted").await;
    browser.close().await;
    setup.stop().await;
}

#[tokio::test]
async fn a_buyer_pays_by_card_on_the_hosted_page_sees_the_token_and_the_brand_refunds_it_from_the_orders_page() {
    let stripe = fakes::stripe::StripeEmulator::start("sk_test_brandmint").await.unwrap();
    let setup = crate::checkout::card_platform(&stripe).await;
    let campaign = json!({ "name": "Card Page Drop", "slug": "card-page-drop", "royalty_bps": 0,
        "royalty_receiver": setup.anvil.addresses()[5].to_checksum(None),
        "items": [{ "name": "Pass", "price_minor": 2_500, "currency": "USD", "supply": 5,
                    "payment_methods": ["card"] }] });
    let live = crate::checkout::live_campaign(&setup.owner, setup.brand, &campaign).await;
    crate::checkout::treasury_known(&setup, &live).await;
    let item = live.items[0].id;

    // On a phone: the campaign page, the card form, Stripe's hosted page, back to the order.
    let browser = Browser::start("card-checkout", Viewport::Phone).await;
    browser.open(&setup.payment.url("/shop/card-page-drop")).await;
    assert_eq!(browser.text(".amount").await, "25.00 USD");
    browser.fill(&format!("#email-{item}"), "card-buyer@example.com").await;
    let buyer = setup.anvil.addresses()[8];
    browser.fill(&format!("#wallet-{item}"), &buyer.to_checksum(None)).await;
    browser.click("form.buy button[type=submit]").await;
    // The emulator's hosted page (a third party's page: screenshotted, not held to our checks).
    browser.wait_visible("form[action^='/pay/']").await;
    browser.screenshot("hosted-page").await;
    browser.click("form button[type=submit]").await;
    browser.wait_text("h1", "Your order").await;
    browser.wait_text("#state", "token is minted").await;
    let token = browser.text("#token").await;
    assert!(token.contains("token #1"), "{token}");
    browser.check("the order page after paying by card").await;
    browser.screenshot("minted").await;
    browser.close().await;
    let order: String = sqlx::query_scalar("SELECT public_id::text FROM orders ORDER BY created_at DESC LIMIT 1")
        .fetch_one(setup.owner.app.resources.db())
        .await
        .unwrap();
    let owner_of = setup.platform.collection(live.rest["collection_address"].as_str().unwrap().parse().unwrap());
    assert_eq!(owner_of.ownerOf(alloy::primitives::U256::from(1)).call().await.unwrap(), buyer);

    // The brand's owner refunds it from the order's page on the payment service.
    let staff = Browser::start("card-checkout", Viewport::Desktop).await;
    let page = format!("/brands/{}/orders/{order}", setup.brand);
    crate::staff_pages::sign_in(&staff, &setup.payment, "owner@acme.example", &page).await;
    staff.wait_text("h1", "Order").await;
    staff.check("the order's staff page").await;
    staff.screenshot("staff-order").await;
    staff.click("#refund-confirm").await;
    staff.click("#refund-title ~ form button[type=submit]").await;
    staff.wait_text(".badge", "refunded").await;
    staff.check("the order's staff page, refunded").await;
    staff.screenshot("refunded").await;
    staff.open(&setup.payment.url(&format!("/brands/{}/orders", setup.brand))).await;
    staff.wait_text("tbody", "refunded").await;
    staff.check("the orders page").await;
    staff.screenshot("orders").await;
    staff.close().await;
    let state: String = sqlx::query_scalar("SELECT state FROM orders WHERE public_id::text = $1")
        .bind(&order)
        .fetch_one(setup.owner.app.resources.db())
        .await
        .unwrap();
    assert_eq!(state, "refunded");
    setup.stop().await;
    stripe.shutdown().await;
}

//! The back office's pages in a real headless Chromium against the real services and a private
//! anvil: a brand owner signs in, sets the treasury, creates a campaign, uploads its artwork,
//! adds a reward and deploys it, watching the deployment go live; then prints QR codes and reads
//! the dashboard, the orders, the royalty report, webhooks and the brand's audit log. Staff pages
//! refuse what the reader may not see, and a page without a session sends the browser to sign in.

use reqwest::StatusCode;
use testkit as testing;

use crate::{
    browser::{Browser, Viewport},
    operator::{Platformed, platformed},
};

#[tokio::test]
async fn a_brand_owner_creates_and_deploys_a_campaign_through_the_back_office_pages() {
    let setup = platformed(|anvil| anvil.addresses()[0], &[]).await;
    let Platformed { ref anvil, ref owner, brand, .. } = setup;
    let backoffice = &owner.app;

    for viewport in [Viewport::Desktop, Viewport::Phone] {
        let browser = Browser::start("back-office", viewport).await;
        // Not signed in: sent to sign in, and back to where they were going afterwards.
        browser.open(&backoffice.url(&format!("/brands/{brand}"))).await;
        browser.wait_visible("#signin").await;
        browser.check("the sign-in page").await;
        browser.screenshot("sign-in").await;
        browser.fill("#password", "not the password").await;
        browser.fill("#email", "owner@acme.example").await;
        browser.click("#signin button").await;
        browser.wait_text("#signin .status", "Wrong email or password").await;
        browser.forget_console().await;
        browser.fill("#password", testing::TEST_PASSWORD).await;
        browser.click("#signin button").await;
        browser.wait_text("h1", "Acme").await;
        browser.check("the brand page").await;
        browser.screenshot("brand").await;
        browser.open(&backoffice.url("/")).await;
        browser.wait_text("h1", "Brands").await;
        assert!(browser.exists(&format!("a[href='/brands/{brand}']")).await);
        browser.check("the home page").await;
        browser.screenshot("home").await;
        browser.close().await;
    }

    let browser = Browser::start("back-office", Viewport::Desktop).await;
    sign_in(&browser, backoffice, "owner@acme.example", &format!("/brands/{brand}")).await;
    // The treasury, through the brand's form.
    let treasury = anvil.addresses()[5].to_checksum(None);
    browser.fill("#treasury", &treasury).await;
    browser.click("form[data-method=PATCH] button").await;
    browser.wait_text("dd.hash", &treasury).await;
    // A bad address is refused in words, and nothing changes.
    browser.fill("#treasury", "0x1234").await;
    browser.click("form[data-method=PATCH] button").await;
    browser.wait_text("form[data-method=PATCH] .status", "treasury_address").await;
    browser.forget_console().await;
    browser.screenshot("brand-refused").await;

    // A new campaign, through the campaigns page.
    browser.open(&backoffice.url(&format!("/brands/{brand}/campaigns"))).await;
    browser.check("the campaigns page, empty").await;
    browser.fill("#name", "Page Drop").await;
    browser.fill("#slug", "page-drop").await;
    browser.fill("#description", "Made on the back office's pages.").await;
    browser.fill("#royalty", "750").await;
    browser.fill("#item-name", "Gold pass").await;
    browser.fill("#item-price", "4900").await;
    browser.fill("#item-supply", "100").await;
    browser.screenshot("new-campaign").await;
    browser.click("form[data-api$='/campaigns'] button[type=submit]").await;
    browser.wait_text("h1", "Page Drop").await;
    browser.wait_text("#campaign-state", "draft").await;
    browser.check("a draft campaign").await;
    browser.screenshot("draft").await;
    // Deploying before the artwork is there: told what is missing.
    browser.click("#deploy button").await;
    browser.wait_text("#deploy .status", "artwork").await;
    browser.forget_console().await;

    // The artwork, a reward, then the deployment followed until live.
    let picture = std::env::temp_dir().join(format!("brandmint-artwork-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&picture, shared::qr::png("artwork").unwrap()).unwrap();
    browser.fill("#artwork-file", picture.to_str().unwrap()).await;
    browser.click("#artwork button").await;
    browser.wait_text("#artwork-title + p", "Uploaded (image/png)").await;
    browser.fill("#reward-name", "Beach cash").await;
    browser.click("#reward-token option[value=stablecoin]").await;
    browser.fill("#reward-amount", "5000000").await;
    browser.click("#new-reward button").await;
    browser.wait_text("#rewards-title ~ article", "5.00 USD (stablecoin)").await;
    browser.check("a campaign ready to deploy").await;
    browser.screenshot("ready").await;
    browser.click("#deploy button").await;
    browser.wait_visible("#deployment").await;
    browser.screenshot("deploying").await;
    let live = browser.wait_text("#campaign-state", "live").await;
    assert_eq!(live, "live");
    assert!(browser.text("#collection").await.starts_with("0x"));
    browser.check("a live campaign").await;
    browser.screenshot("live").await;
    let campaign: i64 = sqlx::query_scalar("SELECT id FROM campaigns WHERE slug = 'page-drop'")
        .fetch_one(backoffice.resources.db())
        .await
        .unwrap();
    let state: String = sqlx::query_scalar("SELECT state FROM contract_deployments WHERE campaign_id = $1")
        .bind(campaign)
        .fetch_one(backoffice.resources.db())
        .await
        .unwrap();
    assert_eq!(state, "confirmed");

    // Printed codes: a batch generated and offered as a ZIP.
    browser.fill("#batch-label", "Shop window").await;
    browser.fill("#batch-size", "3").await;
    browser.click("#new-batch button").await;
    browser.wait_text("#codes-title ~ div table", "Shop window").await;
    assert!(browser.exists("a[href$='/printable']").await);
    browser.check("a campaign with printed codes").await;
    browser.screenshot("codes").await;

    // Every other page of the brand opens clean.
    for (path, title, name) in [
        (format!("/brands/{brand}/dashboard?campaign_id={campaign}"), "Dashboard", "dashboard"),
        (format!("/brands/{brand}/royalties"), "Royalties", "royalties"),
        (format!("/brands/{brand}/webhooks"), "Webhooks", "webhooks"),
        (format!("/brands/{brand}/audit"), "Audit log", "audit"),
    ] {
        browser.open(&backoffice.url(&path)).await;
        browser.wait_text("h1", title).await;
        browser.check(name).await;
        browser.screenshot(name).await;
    }
    // The brand's own audit log tells the story of the campaign.
    let log = browser.text("#audit").await;
    for action in ["brand.updated", "campaign.created", "campaign.artwork_uploaded", "reward.created"] {
        assert!(log.contains(action), "{action} is in the brand's audit log");
    }
    browser.open(&setup.payment.url(&format!("/brands/{brand}/orders"))).await;
    browser.wait_text("h1", "Orders").await;
    browser.check("orders").await;
    browser.screenshot("orders").await;
    // A platform page the owner may not open: a page saying so, with its status.
    browser.open(&backoffice.url("/audit")).await;
    browser.wait_text("h1", "Not allowed").await;
    browser.screenshot("not-allowed").await;
    browser.forget_console().await;
    let html = reqwest::Client::new()
        .get(backoffice.url("/audit"))
        .header("accept", "text/html")
        .bearer_auth(&owner.token)
        .send()
        .await
        .unwrap();
    assert_eq!(html.status(), StatusCode::FORBIDDEN);

    // The same pages on a phone.
    let phone = Browser::start("back-office", Viewport::Phone).await;
    sign_in(&phone, backoffice, "owner@acme.example", "/").await;
    for (path, title, name) in [
        (format!("/brands/{brand}/campaigns"), "Campaigns", "campaigns"),
        (format!("/brands/{brand}/campaigns/{campaign}"), "Page Drop", "live"),
        (format!("/brands/{brand}/dashboard?campaign_id={campaign}"), "Dashboard", "dashboard"),
        (format!("/brands/{brand}/royalties"), "Royalties", "royalties"),
        (format!("/brands/{brand}/webhooks"), "Webhooks", "webhooks"),
        (format!("/brands/{brand}/audit"), "Audit log", "audit"),
    ] {
        phone.open(&backoffice.url(&path)).await;
        phone.wait_text("h1", title).await;
        phone.check(name).await;
        phone.screenshot(name).await;
    }
    phone.open(&setup.payment.url(&format!("/brands/{brand}/orders"))).await;
    phone.wait_text("h1", "Orders").await;
    phone.check("orders").await;
    phone.screenshot("orders").await;
    phone.close().await;

    // Signing out ends the session: the next page asks to sign in again.
    browser.open(&backoffice.url(&format!("/brands/{brand}"))).await;
    browser.click("header form[data-api='/auth/sign-out'] button").await;
    browser.wait_visible("#signin").await;
    browser.open(&backoffice.url(&format!("/brands/{brand}"))).await;
    browser.wait_visible("#signin").await;
    browser.close().await;
    drop(std::fs::remove_file(&picture));
    setup.stop().await;
}

/// Signs `email` in on the sign-in page, going on to `next`.
pub(crate) async fn sign_in(browser: &Browser, app: &testing::TestApp, email: &str, next: &str) {
    let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    browser.open(&app.url(&format!("/sign-in?next={encoded}"))).await;
    browser.fill("#email", email).await;
    browser.fill("#password", testing::TEST_PASSWORD).await;
    browser.click("#signin button").await;
    browser.wait_text("header", "Sign out").await;
}

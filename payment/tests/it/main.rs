//! Integration tests of the payment API against the real PostgreSQL started by
//! `cargo xtask test`. One binary for the crate, one module per area.

#![allow(clippy::unwrap_used)] // tests fail loudly by design

mod card;
mod fx;
mod orders;
mod stripe;

use fakes::stripe::StripeEmulator;
use testkit::{self as testing, TestApp, TestDb};

/// The Stripe webhook secret tests configure.
pub(crate) const WEBHOOK_SECRET: &str = "whsec_dGVzdHMtb25seS13ZWJob29rLXNlY3JldA";

/// The payment service against a fresh database and a Stripe emulator that delivers its
/// webhooks to it.
pub(crate) async fn payment_app(extra: &[(&str, &str)]) -> (TestApp, StripeEmulator) {
    let stripe = StripeEmulator::start("sk_test_brandmint").await.unwrap();
    let db = TestDb::create().await;
    let mut vars = vec![
        ("STRIPE_SECRET_KEY", "sk_test_brandmint"),
        ("STRIPE_API_BASE", stripe.base_url()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ];
    vars.extend_from_slice(extra);
    let app =
        TestApp::spawn_with(payment::SERVICE, testing::config(&db.url, &testing::required_env("RPC_URL"), &vars)).await;
    stripe.set_webhook(app.url("/webhooks/stripe").parse().unwrap(), WEBHOOK_SECRET);
    (app, stripe)
}

//! `brandmint`: every service in one process, for local use, plus operator commands:
//!
//! * `brandmint deploy-local` deploys the contracts to the local chain in `RPC_URL` and prints
//!   their addresses as `NAME=0x…` lines (what `cargo xtask dev` does first);
//! * `brandmint seed-demo <back office URL>` creates the demo brand and campaign through the
//!   back office's API as the admin in `BRANDMINT_ADMIN_EMAIL` / `BRANDMINT_ADMIN_PASSWORD`;
//! * `brandmint fakes <payment URL>` runs the local stand-ins of Stripe (a stateful emulator
//!   delivering signed webhooks to the payment service) and of the FX sources, prints their
//!   settings as `NAME=value` lines, then serves until stopped (what `cargo xtask dev` runs);
//! * `brandmint create-admin <email>` creates a platform admin (password from
//!   `BRANDMINT_ADMIN_PASSWORD`) in `DATABASE_URL` — there is no public sign-up;
//! * `brandmint audit-verify` recomputes the audit log's hash chain and exits 1 naming the first
//!   broken row.

#![allow(clippy::print_stdout)] // prints the deployed addresses and reports

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => shared::service::run(&anvil_tests::SERVICES).await,
        ["deploy-local"] => {
            let rpc_url = std::env::var("RPC_URL").map_err(|_| anyhow::anyhow!("RPC_URL is not set"))?;
            println!("{}", anvil_tests::local::deploy(&rpc_url).await?);
            Ok(())
        }
        ["fakes", payment] => {
            use std::io::Write;
            shared::chain::install_crypto_provider();
            let stripe = fakes::stripe::StripeEmulator::start(LOCAL_STRIPE_KEY).await?;
            let webhook = format!("{}/webhooks/stripe", payment.trim_end_matches('/'));
            stripe.set_webhook(webhook.parse()?, LOCAL_WEBHOOK_SECRET);
            let fx = fakes::fx::FxStub::start().await?;
            println!("STRIPE_API_BASE={}", stripe.base_url());
            println!("STRIPE_SECRET_KEY={LOCAL_STRIPE_KEY}");
            println!("STRIPE_WEBHOOK_SECRET={LOCAL_WEBHOOK_SECRET}");
            println!("BINANCE_API_URL={}", fx.url());
            println!("FX_SECOND_SOURCE_URL={}", fx.url());
            println!();
            std::io::stdout().flush()?;
            let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            stripe.shutdown().await;
            Ok(())
        }
        ["seed-demo", backoffice] => {
            let email = std::env::var("BRANDMINT_ADMIN_EMAIL").context("BRANDMINT_ADMIN_EMAIL")?;
            let password = std::env::var("BRANDMINT_ADMIN_PASSWORD").context("BRANDMINT_ADMIN_PASSWORD")?;
            println!("{}", anvil_tests::demo::seed(backoffice.trim_end_matches('/'), &email, &password).await?);
            Ok(())
        }
        ["create-admin", email] => {
            let password = std::env::var("BRANDMINT_ADMIN_PASSWORD")
                .map_err(|_| anyhow::anyhow!("set BRANDMINT_ADMIN_PASSWORD to the new admin's password"))?;
            let mut conn = database().await?;
            match shared::auth::create_account(
                &mut conn,
                email,
                password.into(),
                Some(shared::auth::PlatformRole::Admin),
            )
            .await
            {
                Ok(account) => println!("admin account {} created for {}", account.id, account.email),
                Err(shared::auth::Error::EmailTaken) => println!("an account for {email} exists already; left as is"),
                Err(e) => return Err(e).context("creating the admin"),
            }
            Ok(())
        }
        ["audit-verify"] => {
            let mut conn = database().await?;
            let report = shared::audit::verify(&mut conn).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.first_broken.is_some() {
                std::process::exit(1);
            }
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: brandmint [deploy-local | fakes <payment URL> | seed-demo <back office URL> | create-admin <email> | audit-verify]"
        ),
    }
}

/// The local Stripe emulator's keys (test values; the emulator is never a production setting).
const LOCAL_STRIPE_KEY: &str = "sk_test_brandmint_local";
const LOCAL_WEBHOOK_SECRET: &str = "whsec_YnJhbmRtaW50LWxvY2FsLXdlYmhvb2tz";

/// A migrated connection to `DATABASE_URL`.
async fn database() -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("DATABASE_URL is not set"))?;
    let mut conn = sqlx::PgConnection::connect(&url).await.context("connecting to DATABASE_URL")?;
    shared::db::MIGRATOR.run(&mut conn).await.context("applying migrations")?;
    Ok(conn)
}

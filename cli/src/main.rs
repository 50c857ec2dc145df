//! `brandmint`: the platform's operator command, and every service in one process for local use.
//!
//! ```text
//! brandmint [serve]                       every service in this process, until SIGINT/SIGTERM
//! brandmint create-admin <email>          a platform admin (password from BRANDMINT_ADMIN_PASSWORD)
//! brandmint audit-verify                  recomputes the audit log's hash chain; exit 1 if broken
//! brandmint deploy-local                  the platform's contracts on the local chain in RPC_URL
//! brandmint seed-demo <back-office-url>   the demo brand and campaign, through the back office's API
//! brandmint fakes <payment-url>           the local Stripe emulator, FX stubs and marketplace feeds, until stopped
//! brandmint demo <backoffice> <payment> <redemption>   the journeys, step by step, against a running platform
//! ```
//!
//! Configuration comes from the environment, as for every service (see `.env.example`).

#![allow(clippy::print_stdout)] // prints the deployed addresses and reports

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The Brandmint platform: every service in one process, and the operator's commands.
#[derive(Debug, Parser)]
#[command(name = "brandmint", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every service (back office, payment, redemption, indexer) in this process (the default).
    Serve,
    /// Creates a platform admin in DATABASE_URL; the password comes from BRANDMINT_ADMIN_PASSWORD
    /// (there is no public sign-up). An existing account is left as it is.
    CreateAdmin {
        /// The admin's e-mail address.
        email: String,
    },
    /// Recomputes the audit log's hash chain in DATABASE_URL; exits 1 naming the first altered row.
    AuditVerify,
    /// Deploys the platform's contracts to the local chain in RPC_URL and prints their addresses
    /// as NAME=0x… lines (what `cargo xtask dev` does first).
    DeployLocal,
    /// Creates the demo brand and campaign through the back office's API as the admin in
    /// BRANDMINT_ADMIN_EMAIL / BRANDMINT_ADMIN_PASSWORD.
    SeedDemo {
        /// The back office's base URL, e.g. http://127.0.0.1:8081.
        backoffice: String,
    },
    /// Walks through the journeys against a running platform (`cargo xtask dev`), printing each
    /// step with its ids, transactions and pages: a brand's campaign deployed, card and wallet
    /// checkouts, a printed code and a wallet redemption. As the admin in BRANDMINT_ADMIN_EMAIL /
    /// BRANDMINT_ADMIN_PASSWORD; the chain in RPC_URL.
    Demo { backoffice: String, payment: String, redemption: String },
    /// Runs the local stand-ins of Stripe (delivering signed webhooks to the payment service) and
    /// of the FX sources, prints their settings as NAME=value lines, and serves until stopped.
    Fakes {
        /// The payment service's base URL, e.g. http://127.0.0.1:8082.
        payment: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command.unwrap_or(Command::Serve) {
        Command::Serve => shared::service::run(&cli::SERVICES).await,
        Command::DeployLocal => {
            let rpc_url = std::env::var("RPC_URL").map_err(|_| anyhow::anyhow!("RPC_URL is not set"))?;
            println!("{}", cli::local::deploy(&rpc_url).await?);
            Ok(())
        }
        Command::Fakes { payment } => fakes(&payment).await,
        Command::Demo { backoffice, payment, redemption } => {
            let email = std::env::var("BRANDMINT_ADMIN_EMAIL").context("BRANDMINT_ADMIN_EMAIL")?;
            let password = std::env::var("BRANDMINT_ADMIN_PASSWORD").context("BRANDMINT_ADMIN_PASSWORD")?;
            let rpc = std::env::var("RPC_URL").context("RPC_URL")?;
            let trim = |url: String| url.trim_end_matches('/').to_owned();
            let at = cli::walkthrough::Endpoints {
                backoffice: trim(backoffice),
                payment: trim(payment),
                redemption: trim(redemption),
                rpc,
            };
            cli::walkthrough::run(&at, &email, &password).await
        }
        Command::SeedDemo { backoffice } => {
            let email = std::env::var("BRANDMINT_ADMIN_EMAIL").context("BRANDMINT_ADMIN_EMAIL")?;
            let password = std::env::var("BRANDMINT_ADMIN_PASSWORD").context("BRANDMINT_ADMIN_PASSWORD")?;
            println!("{}", cli::demo::seed(backoffice.trim_end_matches('/'), &email, &password).await?);
            Ok(())
        }
        Command::CreateAdmin { email } => {
            let password = std::env::var("BRANDMINT_ADMIN_PASSWORD")
                .map_err(|_| anyhow::anyhow!("set BRANDMINT_ADMIN_PASSWORD to the new admin's password"))?;
            let mut conn = database().await?;
            let admin = Some(shared::auth::PlatformRole::Admin);
            match shared::auth::create_account(&mut conn, &email, password.into(), admin).await {
                Ok(account) => println!("admin account {} created for {}", account.id, account.email),
                Err(shared::auth::Error::EmailTaken) => println!("an account for {email} exists already; left as is"),
                Err(e) => return Err(e).context("creating the admin"),
            }
            Ok(())
        }
        Command::AuditVerify => {
            let mut conn = database().await?;
            let report = shared::audit::verify(&mut conn).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.first_broken.is_some() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// The local Stripe emulator's keys (test values; the emulator is never a production setting).
const LOCAL_STRIPE_KEY: &str = "sk_test_brandmint_local";
const LOCAL_WEBHOOK_SECRET: &str = "whsec_YnJhbmRtaW50LWxvY2FsLXdlYmhvb2tz";

async fn fakes(payment: &str) -> anyhow::Result<()> {
    use std::io::Write;
    shared::chain::install_crypto_provider();
    let stripe = fakes::stripe::StripeEmulator::start(LOCAL_STRIPE_KEY).await?;
    let webhook = format!("{}/webhooks/stripe", payment.trim_end_matches('/'));
    stripe.set_webhook(webhook.parse()?, LOCAL_WEBHOOK_SECRET);
    let fx = fakes::fx::FxStub::start().await?;
    // The marketplaces report the Seaport sales of the local chain (the canonical address unless
    // the environment names another).
    let rpc = std::env::var("RPC_URL").ok().and_then(|url| url.parse().ok());
    let seaport = std::env::var("SEAPORT_ADDRESS")
        .ok()
        .and_then(|a| a.parse().ok())
        .unwrap_or(alloy::primitives::address!("0x0000000000000068F116a894984e2DB1123eB395"));
    let marketplaces = fakes::marketplaces::MarketplaceFake::start(rpc, seaport).await?;
    println!("STRIPE_API_BASE={}", stripe.base_url());
    println!("STRIPE_SECRET_KEY={LOCAL_STRIPE_KEY}");
    println!("STRIPE_WEBHOOK_SECRET={LOCAL_WEBHOOK_SECRET}");
    println!("BINANCE_API_URL={}", fx.url());
    println!("FX_SECOND_SOURCE_URL={}", fx.url());
    println!("OPENSEA_API_URL={}", marketplaces.url());
    println!("OPENSEA_API_KEY={}", fakes::marketplaces::MarketplaceFake::API_KEY);
    println!("RARIBLE_API_URL={}", marketplaces.url());
    println!("RARIBLE_API_KEY={}", fakes::marketplaces::MarketplaceFake::API_KEY);
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

/// A migrated connection to `DATABASE_URL`.
async fn database() -> anyhow::Result<sqlx::PgConnection> {
    use sqlx::Connection;
    let url = std::env::var("DATABASE_URL").map_err(|_| anyhow::anyhow!("DATABASE_URL is not set"))?;
    let mut conn = sqlx::PgConnection::connect(&url).await.context("connecting to DATABASE_URL")?;
    shared::db::MIGRATOR.run(&mut conn).await.context("applying migrations")?;
    Ok(conn)
}

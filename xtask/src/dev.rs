//! `cargo xtask dev`: the whole platform on this machine. Installs the npm toolchain, starts
//! PostgreSQL and anvil, builds and starts every service in one process, waits until each is
//! ready and prints where everything is. Ctrl-C (or SIGTERM) stops the services gracefully,
//! then PostgreSQL and anvil.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::{
    infra::{self, CHAIN_ID, Endpoints, Instance},
    util::{self, root, step},
};

/// The platform admin `cargo xtask dev` creates (local only; the database is throwaway).
const DEMO_ADMIN: &str = "admin@brandmint.local";
const DEMO_ADMIN_PASSWORD: &str = "brandmint-dev-admin";

/// (service, listen address) as passed to the platform.
const SERVICES: [(&str, &str, &str); 4] = [
    ("backoffice", "BACKOFFICE_ADDR", "127.0.0.1:8081"),
    ("payment", "PAYMENT_ADDR", "127.0.0.1:8082"),
    ("redemption", "REDEMPTION_ADDR", "127.0.0.1:8083"),
    ("indexer", "INDEXER_ADDR", "127.0.0.1:8084"),
];

pub fn run() -> Result<()> {
    let stopping = Arc::new(AtomicBool::new(false));
    let child_pid = Arc::new(AtomicU32::new(0));
    {
        let (stopping, child_pid) = (stopping.clone(), child_pid.clone());
        ctrlc::set_handler(move || {
            stopping.store(true, Ordering::SeqCst);
            // A terminal Ctrl-C already reached the platform (same process group); SIGTERM
            // covers `kill <xtask>`. Either way the platform shuts down gracefully.
            let pid = child_pid.load(Ordering::SeqCst);
            if pid != 0 {
                drop(Command::new("kill").args(["-TERM", &pid.to_string()]).status());
            }
        })?;
    }
    util::npm_install()?;
    step("infrastructure (PostgreSQL + anvil, dev instance)");
    let endpoints = infra::up(Instance::Dev)?;
    let result = serve(&endpoints, &stopping, &child_pid);
    step("stopping infrastructure");
    infra::down(Instance::Dev)?;
    result
}

fn serve(endpoints: &Endpoints, stopping: &AtomicBool, child_pid: &AtomicU32) -> Result<()> {
    step("building the platform");
    util::run(Command::new(env!("CARGO")).current_dir(root()).args([
        "build",
        "--locked",
        "-p",
        "cli",
        "--bin",
        "brandmint",
    ]))?;
    if stopping.load(Ordering::SeqCst) {
        return Ok(());
    }
    step("contracts on the local chain");
    let deployed = util::output(
        Command::new(target_dir().join("debug/brandmint")).arg("deploy-local").env("RPC_URL", &endpoints.rpc_url),
    )?;
    step("demo admin account");
    util::run(
        Command::new(target_dir().join("debug/brandmint"))
            .args(["create-admin", DEMO_ADMIN])
            .env("DATABASE_URL", &endpoints.database_url)
            .env("BRANDMINT_ADMIN_PASSWORD", DEMO_ADMIN_PASSWORD),
    )?;
    step("local stand-ins for Stripe, the FX sources and the marketplaces' sale feeds");
    let payment = std::env::var("PAYMENT_ADDR").unwrap_or_else(|_| SERVICES[1].2.to_owned());
    // The marketplaces' feeds report the sales of the local Seaport (`SEAPORT_ADDRESS`).
    let mut fakes = Command::new(target_dir().join("debug/brandmint"))
        .args(["fakes", &format!("http://{payment}")])
        .env("RPC_URL", &endpoints.rpc_url)
        .envs(deployed.lines().filter_map(|line| line.split_once('=')))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start the fakes")?;
    let fakes_env = read_settings(&mut fakes)?;
    let result = run_platform(endpoints, stopping, child_pid, &deployed, &fakes_env);
    util::terminate(fakes.id(), Duration::from_secs(5));
    drop(fakes.wait());
    result
}

/// The `NAME=value` lines a helper prints before a blank line.
fn read_settings(child: &mut std::process::Child) -> Result<Vec<(String, String)>> {
    use std::io::BufRead;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut settings = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        match line.split_once('=') {
            Some((name, value)) => settings.push((name.to_owned(), value.to_owned())),
            None => break,
        }
    }
    Ok(settings)
}

fn run_platform(
    endpoints: &Endpoints,
    stopping: &AtomicBool,
    child_pid: &AtomicU32,
    deployed: &str,
    fakes: &[(String, String)],
) -> Result<()> {
    let mut platform = Command::new(target_dir().join("debug/brandmint"));
    platform
        .env("APP_ENV", "local")
        .env("DATABASE_URL", &endpoints.database_url)
        .env("RPC_URL", &endpoints.rpc_url)
        .env("CHAIN_ID", CHAIN_ID.to_string())
        // anvil's first funded account signs the platform's transactions locally.
        .env("TX_SIGNER_PRIVATE_KEYS", "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
        .env("TXQUEUE_STUCK_AFTER_SECS", "15")
        .env("MAIL_DIR", "target/dev-mailbox")
        .env("STORAGE_DIR", "target/dev-storage")
        // Webhook receivers on this machine are fine locally (never in production).
        .env("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        // A fresh signing key per run (tokens do not outlive it) unless the developer set one.
        .env("JWT_SECRET", std::env::var("JWT_SECRET").map_or_else(|_| random_hex(32), Ok)?);
    for (_, var, default) in SERVICES {
        platform.env(var, std::env::var(var).unwrap_or_else(|_| default.to_owned()));
    }
    // The contract addresses `deploy-local` printed (`NAME=0x…`), and where the fakes listen.
    for (name, address) in deployed.lines().filter_map(|line| line.split_once('=')) {
        platform.env(name, address);
    }
    for (name, value) in fakes {
        platform.env(name, value);
    }
    // anvil's account 1 signs checkout quotes and account 2 reward vouchers (the suite's quote
    // and voucher signers, see `deploy-local`).
    platform.env("QUOTE_SIGNER_PRIVATE_KEY", "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
    platform.env("VOUCHER_SIGNER_PRIVATE_KEY", "0x5de4111afa1a4b94908f83103e29f0502e07e17ba31d7b643d5d5f24e5b6d1ca");
    let backoffice = std::env::var("BACKOFFICE_ADDR").unwrap_or_else(|_| SERVICES[0].2.to_owned());
    // No router in front locally: each service's pages and links at its own port.
    platform.env("PUBLIC_BASE_URL", format!("http://{backoffice}"));
    platform.env("APP_BASE_URL", format!("http://{backoffice}"));
    for (name, var, default) in &SERVICES[..3] {
        let addr = std::env::var(var).unwrap_or_else(|_| (*default).to_owned());
        platform.env(format!("{}_PUBLIC_URL", name.to_uppercase()), format!("http://{addr}"));
    }
    let mut child = platform.spawn().context("cannot start the platform")?;
    child_pid.store(child.id(), Ordering::SeqCst);

    let addrs: Vec<(&str, SocketAddr)> = SERVICES
        .iter()
        .map(|(name, var, default)| {
            let addr = std::env::var(var).unwrap_or_else(|_| (*default).to_owned());
            Ok((*name, addr.parse().with_context(|| format!("{var}={addr}"))?))
        })
        .collect::<Result<_>>()?;
    for (name, addr) in &addrs {
        let ready = util::wait_for(name, Duration::from_secs(90), || {
            stopping.load(Ordering::SeqCst)
                || matches!(child.try_wait(), Ok(Some(_)))
                || util::http(*addr, "GET", "/health/ready", None).is_ok_and(|(status, _)| status == 200)
        });
        if let Err(e) = ready {
            println!("{e}; see the log above");
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("the platform exited ({status}) before it was ready");
        }
    }
    let mut demo = String::new();
    if !stopping.load(Ordering::SeqCst) {
        step("demo brand and campaign, through the back office");
        match util::output(
            Command::new(target_dir().join("debug/brandmint"))
                .args(["seed-demo", &format!("http://{backoffice}")])
                .env("BRANDMINT_ADMIN_EMAIL", DEMO_ADMIN)
                .env("BRANDMINT_ADMIN_PASSWORD", DEMO_ADMIN_PASSWORD),
        ) {
            Ok(summary) => demo = summary,
            Err(e) => println!("demo data not seeded: {e:#}"),
        }
    }
    if !stopping.load(Ordering::SeqCst) {
        println!("\nBrandmint is running. Ctrl-C stops everything.\n");
        println!("  {:<11} {:<24} docs / metrics / readiness", "service", "API");
        for (name, addr) in &addrs {
            println!("  {name:<11} http://{addr:<17} http://{addr}/docs  /metrics  /health/ready");
        }
        if let Some((_, backoffice)) = addrs.iter().find(|(name, _)| *name == "backoffice") {
            println!("\n  pages (back office; sign in as the admin below):");
            println!("    sign in, then your brands  http://{backoffice}/");
            println!("    a brand's campaigns        http://{backoffice}/brands/<id>/campaigns");
            println!("    its dashboard (charts)     http://{backoffice}/brands/<id>/dashboard");
            println!("    its royalty report         http://{backoffice}/brands/<id>/royalties");
            println!("    its webhooks               http://{backoffice}/brands/<id>/webhooks");
            println!("    KYC review queue           http://{backoffice}/kyc/submissions");
            println!("    audit log                  http://{backoffice}/audit");
        }
        if let Some((_, payment)) = addrs.iter().find(|(name, _)| *name == "payment") {
            println!("\n  pages (payment service):");
            println!("    the demo campaign          http://{payment}/shop/<slug>  (slugs: GET /catalog)");
            println!("    an order                   http://{payment}/orders/<id>");
            println!("    a brand's orders, refunds  http://{payment}/brands/<id>/orders");
        }
        if let Some((_, redemption)) = addrs.iter().find(|(name, _)| *name == "redemption") {
            println!("\n  pages (redemption service):");
            println!("    a printed code's page      http://{redemption}/r/<code>  (codes: the demo batch's ZIP)");
            println!("    show at the counter        http://{redemption}/counter");
            println!("    verify your identity       http://{redemption}/kyc");
            println!("    staff scanner              http://{redemption}/staff/scanner?brand_id=<id>&store_id=<id>");
        }
        println!("\n  PostgreSQL  {}", endpoints.database_url);
        println!("  anvil       {} (chain id {CHAIN_ID})", endpoints.rpc_url);
        println!("  admin       {DEMO_ADMIN} / {DEMO_ADMIN_PASSWORD} (the pages' /sign-in, or POST /auth/sign-in)");
        println!(
            "  mailbox     {} (invitations, password resets)",
            std::path::Path::new("target/dev-mailbox").display()
        );
        println!("\n  contracts (chain id {CHAIN_ID}):");
        for line in deployed.lines() {
            println!("    {line}");
        }
        println!("{}", demo.trim_end());
        println!(
            "\n  Stripe and the FX sources are local fakes ({}); pay card orders with pm_card_visa.",
            fakes.iter().find(|(name, _)| name == "STRIPE_API_BASE").map_or("?", |(_, url)| url.as_str())
        );
    }
    let status = child.wait()?;
    child_pid.store(0, Ordering::SeqCst);
    if !status.success() && !stopping.load(Ordering::SeqCst) {
        bail!("the platform exited with {status}");
    }
    Ok(())
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

/// `len` random bytes from the OS as hex.
fn random_hex(len: usize) -> Result<String> {
    use std::io::Read;
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).context("/dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// `cargo xtask demo`: `brandmint demo` against the platform `cargo xtask dev` runs.
pub fn demo() -> Result<()> {
    let Some(rpc) = infra::running_anvil(Instance::Dev)? else {
        bail!("the platform is not running: start `cargo xtask dev` in another terminal first");
    };
    util::run(Command::new(env!("CARGO")).current_dir(root()).args([
        "build",
        "--locked",
        "-p",
        "cli",
        "--bin",
        "brandmint",
    ]))?;
    let addr = |n: usize| {
        let (_, var, default) = SERVICES[n];
        format!("http://{}", std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    };
    util::run(
        Command::new(target_dir().join("debug/brandmint"))
            .args(["demo", &addr(0), &addr(1), &addr(2)])
            .env("RPC_URL", rpc)
            .env("BRANDMINT_ADMIN_EMAIL", DEMO_ADMIN)
            .env("BRANDMINT_ADMIN_PASSWORD", DEMO_ADMIN_PASSWORD),
    )
}

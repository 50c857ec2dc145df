//! `cargo xtask test`: every check CI runs, in the order that fails fastest, with timings.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Result;

use crate::{
    infra::{self, Instance},
    schemathesis, sqlx_prepare,
    util::{self, npm_bin, root, step},
};

pub fn run(repeat: u32) -> Result<()> {
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut timed = |name: &'static str, f: &mut dyn FnMut() -> Result<()>| -> Result<()> {
        step(name);
        let start = Instant::now();
        let result = f();
        timings.push((name, start.elapsed()));
        result
    };

    timed("cargo fmt --check", &mut || util::run(cargo().args(["fmt", "--all", "--", "--check"])))?;
    timed("npm toolchain", &mut util::npm_install)?;
    timed("headless Chromium and ChromeDriver (browser tests)", &mut browser)?;
    timed("schemathesis in a virtualenv (API fuzzing test)", &mut schemathesis::install)?;
    timed("contracts: forge build, artifacts check, forge test", &mut contracts)?;
    timed("cargo clippy -D warnings", &mut || {
        util::run(cargo().args(["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]))
    })?;

    timed("docker-compose.yml: compose's own validation", &mut compose_config)?;
    // The compose-environment test starts the binaries the Dockerfile ships.
    timed("cargo build (the shipped binaries)", &mut || {
        util::run(cargo().args([
            "build",
            "--locked",
            "-p",
            "backoffice",
            "-p",
            "payment",
            "-p",
            "redemption",
            "-p",
            "indexer",
            "-p",
            "cli",
        ]))
    })?;

    step("infrastructure (PostgreSQL + anvil, test instance)");
    let endpoints = infra::up(Instance::Test)?;
    let outcome = (|| {
        timed(".sqlx freshness", &mut || sqlx_prepare::prepare(&endpoints.database_url, true))?;
        // `--repeat N` runs the suite N times in a row (flakiness shows as a run that fails);
        // every run is reported, then the first failure, if any, fails the command.
        let mut first_failure = None;
        for run in 1..=repeat {
            let name = match repeat {
                1 => "cargo tests (unit, integration, anvil end-to-end)",
                _ => String::leak(format!("cargo tests (unit, integration, anvil end-to-end), run {run} of {repeat}")),
            };
            let result = timed(name, &mut || {
                let mut cmd = cargo();
                if nextest_available() {
                    cmd.args(["nextest", "run", "--workspace", "--locked", "--no-fail-fast"]);
                } else {
                    cmd.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
                }
                cmd.env("DATABASE_URL", &endpoints.database_url)
                    .env("RPC_URL", &endpoints.rpc_url)
                    .env("ANVIL_BIN", npm_bin("anvil"))
                    .env("SCHEMATHESIS_BIN", schemathesis::bin());
                util::run(&mut cmd)
            });
            if let Err(e) = result {
                println!("run {run} of {repeat} failed: {e:#}");
                first_failure.get_or_insert(e);
            }
        }
        first_failure.map_or(Ok(()), Err)
    })();
    infra::down(Instance::Test)?;

    println!("\n{:<55} {:>9}", "step", "seconds");
    for (name, elapsed) in &timings {
        println!("{name:<55} {:>9.1}", elapsed.as_secs_f64());
    }
    println!("{:<55} {:>9.1}", "total", started.elapsed().as_secs_f64());
    outcome?;
    println!("\nall checks passed");
    Ok(())
}

/// Validates `docker-compose.yml` with Compose's own parser (`docker-compose config`, Debian's
/// package; no Docker engine needed), with test values for the secrets it requires. Installed
/// with apt when running as root (CI); elsewhere skipped with a note when it is missing.
fn compose_config() -> Result<()> {
    if util::which("docker-compose").is_none()
        && !util::apt_install(&["docker-compose"], "validating the compose file")?
    {
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("brandmint-compose-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let env = dir.join("test.env");
    std::fs::write(
        &env,
        "JWT_SECRET=compose-check\nKYC_ENCRYPTION_KEY=compose-check\nQR_CODE_KEY=compose-check\nSTRIPE_SECRET_KEY=sk_test_x\nSTRIPE_WEBHOOK_SECRET=whsec_x\n",
    )?;
    let compose = root().join("docker-compose.yml");
    let result = util::run(
        Command::new("docker-compose").arg("--env-file").arg(&env).arg("-f").arg(&compose).args(["config", "-q"]),
    );
    drop(std::fs::remove_dir_all(&dir));
    result
}

/// Debian's Chromium and its WebDriver, which the browser tests drive; installed when missing.
/// Without them (not root, no apt) the browser tests fail and say what to install.
fn browser() -> Result<()> {
    if util::which("chromium").is_some() && util::which("chromedriver").is_some() {
        return Ok(());
    }
    util::apt_install(&["chromium", "chromium-driver"], "the browser tests").map(drop)
}

/// A cargo command reading the committed `.sqlx` data.
fn cargo() -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root()).env("SQLX_OFFLINE", "true").env_remove("SQLX_OFFLINE_DIR");
    cmd
}

fn nextest_available() -> bool {
    Command::new(env!("CARGO")).args(["nextest", "--version"]).output().is_ok_and(|o| o.status.success())
}

/// Builds the contracts, checks the committed artifacts match the sources, runs forge tests.
fn contracts() -> Result<()> {
    let forge = || {
        let mut cmd = Command::new(npm_bin("forge"));
        cmd.current_dir(root());
        cmd
    };
    util::run(forge().args(["build", "--root", "contracts"]))?;
    let export = root().join("contracts/scripts/export-artifacts.mjs");
    if export.exists() {
        util::run(Command::new("node").current_dir(root()).arg(export).arg("--check"))?;
    }
    util::run(forge().args(["test", "--root", "contracts"]))
}

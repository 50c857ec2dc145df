//! `cargo xtask bench <name>`: benchmarks that print a table. Each is a `harness = false`
//! bench target of `anvil-tests` (`anvil-tests/benches/<name>.rs`, dashes as underscores), run
//! in release mode against the same real components as the tests (PostgreSQL, anvil), which this
//! command starts and stops. None asserts a speed; they print figures.

use std::process::Command;

use anyhow::{Result, bail};

use crate::{
    infra::{self, Instance},
    util::{self, npm_bin, root},
};

/// (name, what it measures).
const BENCHMARKS: &[(&str, &str)] = &[
    ("gas", "receipt gas of batch mints, checkout, voucher redeem and distribute vs an OZ ERC721 mint"),
    ("tx-queue", "tx/s submitted and confirmed through the transaction queue from one signer"),
    ("checkout", "card orders/s and p50/p99 against one hot item over loopback, next to pgbench's TPS"),
    ("indexer", "events/s indexed from genesis into PostgreSQL next to raw eth_getLogs, tail latency, peak RSS"),
    ("royalties", "the royalty report for a campaign and platform-wide over 10M sales; sales recorded/s"),
    ("qr", "PNG codes/s per core, a 10,000-code printable batch generated and downloaded, code claims/s"),
    ("chaos", "20 seeded rounds of journeys while service processes are kill -9ed; violations counted (all 0)"),
    ("soak", "10 minutes of mixed journeys at half the measured capacity; p99 and each process's memory per minute"),
    ("replicas", "checkout throughput with 3 replicas of every service next to 1 (the ratio), then journeys on the 3"),
];

pub fn run(name: Option<&str>) -> Result<()> {
    let Some(name) = name else {
        println!("benchmarks: cargo xtask bench <name>");
        for (name, about) in BENCHMARKS {
            println!("  {name:<12} {about}");
        }
        return Ok(());
    };
    if !BENCHMARKS.iter().any(|(known, _)| *known == name) {
        let known: Vec<&str> = BENCHMARKS.iter().map(|(n, _)| *n).collect();
        bail!("unknown benchmark `{name}`; known: {known:?}");
    }
    util::npm_install()?;
    if ["chaos", "soak", "replicas"].contains(&name) {
        // The services run as their shipped binaries, next to the bench in target/release.
        util::run(Command::new(env!("CARGO")).current_dir(root()).args([
            "build",
            "--locked",
            "--release",
            "-p",
            "backoffice",
            "-p",
            "payment",
            "-p",
            "redemption",
            "-p",
            "indexer",
        ]))?;
    }
    let endpoints = infra::up(Instance::Test)?;
    let result = util::run(
        Command::new(env!("CARGO"))
            .current_dir(root())
            .args(["bench", "--locked", "-p", "anvil-tests", "--bench", &name.replace('-', "_")])
            .env("SQLX_OFFLINE", "true")
            .env("DATABASE_URL", &endpoints.database_url)
            .env("RPC_URL", &endpoints.rpc_url)
            .env("ANVIL_BIN", npm_bin("anvil")),
    );
    infra::down(Instance::Test)?;
    result
}

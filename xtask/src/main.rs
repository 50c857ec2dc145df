//! Developer commands for the Brandmint workspace (the cargo-xtask convention).
//!
//! ```text
//! cargo xtask dev                 run the whole platform locally (Ctrl-C stops all of it)
//! cargo xtask demo                the journeys, step by step, against a running `cargo xtask dev`
//! cargo xtask test [--repeat N]   every check and test CI runs (the suite N times in a row)
//! cargo xtask bench <name>        a benchmark that prints a table
//! cargo xtask infra up|down|status [dev|test]
//!                                 the throwaway PostgreSQL cluster and anvil node on their own
//! cargo xtask sqlx-prepare [--check]
//!                                 refresh (or verify) the committed .sqlx query data
//! ```

#![allow(clippy::print_stdout)] // a command-line tool talks on stdout
#![allow(unreachable_pub)] // a binary: `pub` marks what a module offers the others

mod bench;
mod dev;
mod infra;
mod schemathesis;
mod sqlx_prepare;
mod test;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

/// Developer commands for the Brandmint workspace.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about, long_about = None)]
struct Xtask {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Runs the whole platform locally: PostgreSQL, anvil, contracts, every service, demo data
    /// (Ctrl-C stops all of it).
    Dev,
    /// Walks through the journeys against a running `cargo xtask dev` (another terminal): a
    /// campaign deployed, card and wallet checkouts, a printed code and a wallet redemption,
    /// each step printed with its ids, transactions and the page to open.
    Demo,
    /// Every check and test CI runs, with timings.
    Test {
        /// Run the test suite this many times in a row (to show it is not flaky).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        repeat: u32,
    },
    /// A benchmark that prints a table; without a name, lists them.
    Bench {
        /// checkout, gas, tx-queue, …
        name: Option<String>,
    },
    /// The throwaway PostgreSQL cluster and anvil node on their own.
    Infra {
        action: InfraAction,
        #[arg(value_enum, default_value = "dev")]
        instance: InstanceArg,
    },
    /// Refreshes (or, with --check, verifies) the committed .sqlx query data.
    SqlxPrepare {
        /// Fail if .sqlx is stale instead of rewriting it.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InfraAction {
    Up,
    Down,
    Status,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InstanceArg {
    Dev,
    Test,
}

fn main() -> Result<()> {
    // A usage mistake prints the usage and exits 2 (clap's convention); `--help` at every level.
    match Xtask::parse().command {
        Task::Dev => dev::run(),
        Task::Demo => dev::demo(),
        Task::Test { repeat } => test::run(repeat),
        Task::Bench { name } => bench::run(name.as_deref()),
        Task::Infra { action, instance } => {
            let action = match action {
                InfraAction::Up => "up",
                InfraAction::Down => "down",
                InfraAction::Status => "status",
            };
            let instance = match instance {
                InstanceArg::Dev => infra::Instance::Dev,
                InstanceArg::Test => infra::Instance::Test,
            };
            infra::command(action, instance)
        }
        Task::SqlxPrepare { check } => sqlx_prepare::run(check),
    }
}

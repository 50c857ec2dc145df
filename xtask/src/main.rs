//! Developer commands for the Brandmint workspace (the cargo-xtask convention).
//!
//! ```text
//! cargo xtask dev                 run the whole platform locally (Ctrl-C stops all of it)
//! cargo xtask test                every check and test CI runs
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
mod sqlx_prepare;
mod test;
mod util;

use anyhow::{Result, bail};

const USAGE: &str =
    "usage: cargo xtask <dev | test | bench <name> | infra up|down|status [dev|test] | sqlx-prepare [--check]>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["dev"] => dev::run(),
        ["test"] => test::run(),
        ["bench"] => bench::run(None),
        ["bench", name] => bench::run(Some(name)),
        ["infra", action] => infra::command(action, infra::Instance::Dev),
        ["infra", action, instance] => infra::command(action, instance.parse()?),
        ["sqlx-prepare"] => sqlx_prepare::run(false),
        ["sqlx-prepare", "--check"] => sqlx_prepare::run(true),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

//! `cargo xtask bench <name>`: benchmarks that print a table. Each runs against the same real
//! components as the tests (PostgreSQL, anvil) and prints its figures; none asserts a speed.

use anyhow::{Result, bail};

/// (name, what it measures).
const BENCHMARKS: &[(&str, &str)] = &[];

pub fn run(name: Option<&str>) -> Result<()> {
    match name {
        None => {
            println!("benchmarks: cargo xtask bench <name>");
            for (name, about) in BENCHMARKS {
                println!("  {name:<12} {about}");
            }
            Ok(())
        }
        Some(other) => {
            let known: Vec<&str> = BENCHMARKS.iter().map(|(n, _)| *n).collect();
            bail!("unknown benchmark `{other}`; known: {known:?}")
        }
    }
}

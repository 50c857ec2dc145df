//! `cargo xtask bench chaos`: twenty seeded rounds of the chaos journeys (every service its own
//! process, `kill -9`ed and restarted at random points, a 30-second RPC outage and a PostgreSQL
//! restart among them) on one cluster, then the counts: what was done, and the violations
//! (double mints, double payouts, captures without a token, oversold units, outbox events lost),
//! which must all be zero. `CHAOS_ROUNDS` and `CHAOS_REPLICAS` change the defaults (20, 1).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark: fails loudly, prints figures

// The journeys and checks are the chaos tests' own (`cargo xtask test` runs three rounds).
#[path = "../tests/e2e/chaos.rs"]
#[allow(dead_code)]
mod chaos;

#[tokio::main]
async fn main() {
    let rounds: u64 = std::env::var("CHAOS_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let replicas: usize = std::env::var("CHAOS_REPLICAS").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let seeds: Vec<u64> = (1..=rounds).collect();
    let started = std::time::Instant::now();
    let report = chaos::run(&seeds, replicas, true).await;
    println!("{rounds} rounds, {replicas} replica(s) per service, {:.0} s", started.elapsed().as_secs_f64());
    report.print();
    assert_eq!(report.violations(), 0, "{report:#?}");
}

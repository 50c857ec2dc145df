//! `cargo xtask bench replicas`: checkout throughput with three replicas of every service next
//! to one, and a few minutes of the chaos journeys (no kills) on the three.
//!
//! For each of 1 and 3 replicas, a fresh cluster (`testkit::cluster`: the shipped binaries, their
//! own PostgreSQL) measures card orders placed and paid per second with 16 buyers in flight for
//! `REPLICAS_SECONDS` (30); the ratio is printed. Then `REPLICAS_ROUNDS` (12) rounds of journeys
//! run on the three-replica cluster — deployments, card and wallet checkouts, a resale and its
//! holders' distribution, printed-code redemptions — and the report shows that no daemon run
//! overlapped another (the leases), no work was done twice and the signer's nonces have no gap.
//! On a machine with fewer cores than processes, the ratio is bounded by the cores, not the
//! replicas: the figure is printed, never asserted.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)] // a benchmark: fails loudly, prints rates

// The cluster, the journeys and the checks are the chaos tests' own.
#[path = "../tests/e2e/chaos.rs"]
#[allow(dead_code)]
mod chaos;

use std::{sync::Arc, time::Duration};

#[tokio::main]
async fn main() {
    let var = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let period = Duration::from_secs(var("REPLICAS_SECONDS", 30));
    let rounds = var("REPLICAS_ROUNDS", 12);
    println!("{} cores; 16 buyers in flight for {} s per cluster", cores(), period.as_secs());

    let mut rates = Vec::new();
    for replicas in [1, 3] {
        let world = Arc::new(chaos::set_up(replicas).await);
        let (_, item, _) = chaos::open_campaign(&world, "throughput", 1_000_000).await;
        let before = cpu(&world);
        let rate = chaos::capacity(&world, item, 16, period).await;
        let after = cpu(&world);
        println!("{replicas} replica(s) of every service: {rate:.1} card orders/s placed and paid");
        // Where the CPU went meanwhile: the machine's busy share, each service's processes.
        let busy = (after.machine.0 - before.machine.0) as f64 / (after.machine.1 - before.machine.1).max(1) as f64;
        let used: Vec<String> = after
            .services
            .iter()
            .zip(&before.services)
            .map(|((service, end), (_, start))| format!("{service} {:.1} s", (end - start) as f64 / 100.0))
            .collect();
        println!("  CPU: the machine {:.0} % busy; service processes: {}", busy * 100.0, used.join(", "));
        rates.push(rate);
        let mut world = Arc::into_inner(world).expect("the workers are done");
        if replicas == 3 {
            let seeds: Vec<u64> = (1..=rounds).collect();
            let started = std::time::Instant::now();
            let report = chaos::run_on(&mut world, &seeds, false).await;
            println!(
                "\n{rounds} rounds of journeys on 3 replicas of every service in {:.0} s:",
                started.elapsed().as_secs_f64()
            );
            report.print();
            assert_eq!(report.violations(), 0, "{report:#?}");
        }
        world.shut_down().await;
    }
    println!("\nthroughput, 3 replicas / 1 replica: {:.2}", rates[1] / rates[0]);
}

/// CPU time so far: the machine's (busy, total) and each service's processes', in ticks.
struct Cpu {
    machine: (u64, u64),
    services: Vec<(&'static str, u64)>,
}

fn cpu(world: &chaos::World) -> Cpu {
    let processes = world.cluster.as_ref().map(|c| c.processes.as_slice()).unwrap_or_default();
    let services = testkit::cluster::SERVICES
        .iter()
        .map(|(service, _)| {
            let ticks = processes.iter().filter(|p| p.service == *service).filter_map(|p| p.cpu_ticks()).sum();
            (*service, ticks)
        })
        .collect();
    Cpu { machine: testkit::cluster::machine_cpu_ticks().unwrap_or((0, 1)), services }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

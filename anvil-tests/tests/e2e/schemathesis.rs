//! API fuzzing with Schemathesis (the property-based OpenAPI fuzzer, from PyPI): every service's
//! `/openapi.json` is fuzzed as a platform admin and as a brand owner, with valid and invalid
//! data, and every answer is checked against the document: no 5xx, no status code the
//! operation does not declare, no body that contradicts its schema (so every refusal is the
//! documented problem document).
//!
//! `cargo xtask test` installs the pinned Schemathesis in a virtualenv and passes its program in
//! `SCHEMATHESIS_BIN`. A failure prints Schemathesis's report, with a `curl` line reproducing
//! each failing request; the run is seeded, so it is the same on every machine.

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use shared::auth::{BrandRole, PlatformRole};
use testkit::{self as testing, TestApp, TestDb};

use crate::access::{self, Who};

/// Test cases per operation and phase: enough to reach every field's validation, few enough that
/// the eight runs fit in a CI step.
const MAX_EXAMPLES: &str = "10";
/// The fixed seed: a failure reproduces with the same requests.
const SEED: &str = "20261207";
/// What every answer is checked for.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";

/// Operations that cannot be fuzzed meaningfully, each with why (regular expressions over the
/// path, as `--exclude-path-regex` takes them).
const EXCLUDED: &[(&str, &str)] = &[
    // A Server-Sent Events stream: it stays open until the order settles, so each case would
    // wait for the request timeout; its refusals (unknown order, wrong caller) are the same
    // code as `GET /orders/{order_id}`, which is fuzzed.
    ("^/orders/[^/]+/events$", "server-sent events stream"),
];

/// The Schemathesis program `cargo xtask test` installed.
fn schemathesis() -> PathBuf {
    let Some(bin) = std::env::var_os("SCHEMATHESIS_BIN") else {
        panic!(
            "SCHEMATHESIS_BIN is not set: run the tests with `cargo xtask test`, which installs Schemathesis in a \
             virtualenv and sets it"
        );
    };
    let bin = PathBuf::from(bin);
    assert!(bin.is_file(), "SCHEMATHESIS_BIN={} is not a file: run `cargo xtask test` to install it", bin.display());
    bin
}

/// One Schemathesis run: its success, how long it took and what it printed.
fn fuzz(bin: &PathBuf, app: &TestApp, token: &str, config: &PathBuf, reports: &PathBuf) -> (bool, Duration, String) {
    let started = Instant::now();
    let mut command = Command::new(bin);
    command
        .arg("--config-file")
        .arg(config)
        .args(["--no-color", "run"])
        .arg(format!("http://{}/openapi.json", app.address))
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED, "--generation-deterministic"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--continue-on-failure", "--max-failures", "200", "--request-timeout", "30"])
        .args(["--suppress-health-check", "all", "--warnings", "off"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .arg("--report-dir")
        .arg(reports)
        // Hypothesis keeps an example database in the working directory otherwise.
        .args(["--generation-database", "none"]);
    for (pattern, _) in EXCLUDED {
        command.args(["--exclude-path-regex", pattern]);
    }
    let output = command.output().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), started.elapsed(), printed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations_on_any_service() {
    let bin = schemathesis();
    let started = Instant::now();
    let db = TestDb::create().await;
    let rpc = testing::required_env("RPC_URL");
    // Thousands of requests from one address: rate limits are tested elsewhere.
    let extra = [
        ("RATE_LIMIT_IP_PER_MINUTE", "1000000"),
        ("RATE_LIMIT_AUTH_MAX", "1000000"),
        // So the Stripe webhook checks its signature header instead of refusing as unconfigured.
        ("STRIPE_WEBHOOK_SECRET", "whsec_ZnV6emluZy1vbmx5LXNlY3JldA"),
    ];
    let mut apps = Vec::new();
    for spec in cli::SERVICES {
        apps.push((spec.name, TestApp::spawn_with(spec, testing::config(&db.url, &rpc, &extra)).await));
    }
    let backoffice = &apps.iter().find(|(name, _)| *name == "backoffice").unwrap().1;
    let world = access::world(backoffice).await;
    let email_of = |who: &Who| match who {
        Who::Platform(PlatformRole::Admin) => Some(format!("{}@brandmint.example", PlatformRole::Admin.as_str())),
        Who::Member(BrandRole::Owner) => Some(format!("{}@a.example", BrandRole::Owner.as_str())),
        _ => None,
    };
    let principals: Vec<(String, String)> = world
        .principals
        .iter()
        .filter_map(|(who, _)| email_of(who).map(|email| (format!("{who:?}"), email)))
        .collect();
    assert_eq!(principals.len(), 2, "an admin and a brand owner");

    // Brand-scoped routes fuzz brand A, the owner's (its store for store routes): a random brand
    // id would only ever meet the wall's 404.
    let scratch = std::env::temp_dir().join(format!("brandmint-schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch).unwrap();
    let config = scratch.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!("[parameters]\n\"path.brand_id\" = {}\n\"path.store_id\" = {}\n", world.brand_a, world.store_a1),
    )
    .unwrap();

    let mut failures = Vec::new();
    let mut timings = Vec::new();
    for (service, app) in &apps {
        for (who, email) in &principals {
            // A fresh session per run: one run signing itself out cannot blind the next.
            let token = app.sign_in(email).await;
            let reports = scratch.join(format!("{service}-{who}"));
            // Blocking on the child here; the other worker thread keeps serving its requests.
            let (ok, elapsed, printed) = tokio::task::block_in_place(|| fuzz(&bin, app, &token, &config, &reports));
            eprintln!("schemathesis: {service} as {who}: {} in {:.1}s", if ok { "ok" } else { "FAILED" }, elapsed.as_secs_f64());
            timings.push(elapsed);
            if !ok {
                failures.push(format!("===== {service} as {who} =====\n{printed}"));
            }
        }
    }
    drop(std::fs::remove_dir_all(&scratch));
    eprintln!("schemathesis: {} runs in {:.1}s with setup", timings.len(), started.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "Schemathesis found server errors or answers that contradict the OpenAPI document:\n{}",
        failures.join("\n")
    );
}

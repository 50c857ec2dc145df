//! API fuzzing with Schemathesis (the property-based OpenAPI fuzzer, from PyPI): every service's
//! `/openapi.json` is fuzzed as a platform admin and as a brand owner (brand A of
//! [`access::world`], with the resources of [`fuzz::fixtures`]), with valid and invalid data, and
//! every answer is checked against the document: no 5xx, no status code the operation does not
//! declare, no body or content type that contradicts it (so every refusal is the documented
//! problem document), and 405 for the methods a path does not have.
//!
//! `cargo xtask test` installs the pinned Schemathesis in a virtualenv and passes its program in
//! `SCHEMATHESIS_BIN`. The run is seeded, so it sends the same requests on every machine; a
//! failure prints Schemathesis's report, with a `curl` line reproducing each failing request,
//! and keeps every request and answer of the failing run (a HAR file) in the temporary directory
//! it names.
//!
//! Nothing is left out: `GET /orders/{order_id}/events` (server-sent events) is only ever asked
//! for orders that do not exist, so no stream stays open; `POST /webhooks/stripe` checks its
//! signature and refuses with 400.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use shared::auth::{BrandRole, PlatformRole};
use testkit::{self as testing, TestApp, TestDb};

use crate::{
    access::{self, Who},
    fuzz,
};

/// Test cases per operation in the fuzzing phase (the coverage phase sends its own, fixed set):
/// few enough that the eight runs fit in a CI step. `SCHEMATHESIS_MAX_EXAMPLES` raises it for a
/// deeper run by hand.
const MAX_EXAMPLES: &str = "10";
/// The fixed seed: a failure reproduces with the same requests.
const SEED: &str = "20261207";
/// What every answer is checked for.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance,missing_required_header,\
                      unsupported_method";

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

/// One Schemathesis run against `app` with `token`, in `dir` (its configuration file, caches and
/// reports): whether it passed, how long it took, and what it printed.
fn fuzz(bin: &Path, app: &TestApp, token: &str, dir: &Path) -> (bool, Duration, String) {
    let started = Instant::now();
    let mut command = Command::new(bin);
    command
        .current_dir(dir)
        .args(["--config-file", "schemathesis.toml", "--no-color", "run"])
        .arg(format!("http://{}/openapi.json", app.address))
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", &std::env::var("SCHEMATHESIS_MAX_EXAMPLES").unwrap_or_else(|_| MAX_EXAMPLES.into())])
        .args(["--seed", SEED])
        // No example database: the seed alone decides what is sent.
        .args(["--generation-database", "none"])
        .args(["--continue-on-failure", "--max-failures", "200", "--request-timeout", "30"])
        .args(["--suppress-health-check", "all", "--warnings", "off"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--report", "har", "--report-dir", "reports"]);
    let output = command.output().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), started.elapsed(), printed)
}

/// A TOML value: a number as is, anything else quoted.
fn toml_value(value: &str) -> String {
    if value.parse::<i64>().is_ok() { value.to_owned() } else { format!("{value:?}") }
}

/// The configuration file of one run against `spec`.
///
/// Path parameters: brand A and its store always (a random brand only ever meets the wall's
/// 404); every other id mostly that of a resource of brand A that exists ([`fuzz::fixtures`]),
/// so requests reach the handlers, and otherwise generated. Body fields naming such resources
/// likewise, half the time.
fn settings(spec: shared::ServiceSpec, fixtures: &fuzz::Fixtures, decoy_session: uuid::Uuid) -> String {
    // Parameter name → value → the operations that take it.
    let mut values: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (_, template, _) in access::operations(spec) {
        for name in template.split('{').skip(1).filter_map(|rest| rest.split_once('}')).map(|(name, _)| name) {
            // No order exists to name, and sessions are handled below.
            if ["order_id", "session_id"].contains(&name) {
                continue;
            }
            let value = fixtures.path_value(&template, name);
            values.entry(name.to_owned()).or_default().entry(value).or_default().push(template.clone());
        }
    }
    let mut dictionaries = String::new();
    let mut parameters = String::from("[parameters]\n");
    let mut operations = String::new();
    for (name, by_value) in &values {
        match by_value.iter().collect::<Vec<_>>().as_slice() {
            [(value, _)] if ["brand_id", "store_id"].contains(&name.as_str()) => {
                parameters.push_str(&format!("\"path.{name}\" = {}\n", toml_value(value)));
            }
            [(value, _)] => {
                dictionaries.push_str(&format!("[dictionaries.{name}]\nvalues = [{}]\n\n", toml_value(value)));
                parameters.push_str(&format!("\"path.{name}\" = {{ dictionary = \"{name}\", probability = 0.9 }}\n"));
            }
            // A parameter whose meaning depends on the route (`kind`): fixed per operation.
            _ => {
                for (value, templates) in by_value {
                    for template in templates {
                        let value = toml_value(value);
                        operations.push_str(&format!("[[operations]]\ninclude-path = \"{template}\"\n"));
                        operations.push_str(&format!("parameters = {{ \"path.{name}\" = {value} }}\n\n"));
                    }
                }
            }
        }
    }
    let item = fixtures.component("NewOrder")["item_id"].to_string();
    for (field, value) in [
        ("item_id", item),
        ("campaign_id", fixtures.path_value("", "campaign_id")),
        ("reward_id", fixtures.path_value("", "reward_id")),
    ] {
        dictionaries.push_str(&format!("[dictionaries.body_{field}]\nvalues = [{}]\n\n", toml_value(&value)));
        parameters.push_str(&format!("\"body.{field}\" = {{ dictionary = \"body_{field}\", probability = 0.5 }}\n"));
    }
    format!(
        r#"{dictionaries}{parameters}
{operations}# Revoking a session: another session of the same account, never the one the run signs its
# requests with (Schemathesis reuses ids it has seen, e.g. in GET /auth/sessions, and revoking
# its own session would answer the rest of the run with 401s).
[[operations]]
include-path = "/auth/sessions/{{session_id}}"
parameters = {{ "path.session_id" = "{decoy_session}" }}

# Readiness answers its documented 503 while a dependency is down: here the indexer, which
# runs without its background indexing task, so it never catches up with the node.
[[operations]]
include-path = "/health/ready"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", 503]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_violations_on_any_service() {
    let bin = schemathesis();
    let started = Instant::now();
    let db = TestDb::create().await;
    let rpc = testing::required_env("RPC_URL");
    // One object store, as in production: the back office reads the KYC documents that
    // redemption stored.
    let storage = std::env::temp_dir().join(format!("brandmint-storage-{}", uuid::Uuid::new_v4()));
    let storage = storage.display().to_string();
    let extra = [
        ("STORAGE_DIR", storage.as_str()),
        // Thousands of requests from one address: rate limits are tested elsewhere.
        ("RATE_LIMIT_IP_PER_MINUTE", "1000000"),
        ("RATE_LIMIT_AUTH_MAX", "1000000"),
        // No DNS here: webhook endpoints (one is a fixture) may be local.
        ("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"),
        // So the Stripe webhook checks its signature header instead of refusing as unconfigured.
        ("STRIPE_WEBHOOK_SECRET", "whsec_ZnV6emluZy1vbmx5LXNlY3JldA"),
    ];
    let mut apps = Vec::new();
    for spec in cli::SERVICES {
        apps.push((spec, TestApp::spawn_with(spec, testing::config(&db.url, &rpc, &extra)).await));
    }
    let app = |name: &str| &apps.iter().find(|(spec, _)| spec.name == name).unwrap().1;
    // Brand A (owned by owner@a.example, with its store A1, a campaign, a reward, a voucher, …)
    // and brand B; the platform admin.
    let world = access::world(app("backoffice")).await;
    let admin = world.principals.iter().find(|(who, _)| matches!(who, Who::Platform(PlatformRole::Admin))).unwrap();
    let fixtures = fuzz::fixtures(app("backoffice"), app("redemption"), &world, admin.1.as_ref().unwrap()).await;
    let principals = [
        ("admin", format!("{}@brandmint.example", PlatformRole::Admin.as_str())),
        ("brand owner", format!("{}@a.example", BrandRole::Owner.as_str())),
    ];
    let scratch = std::env::temp_dir().join(format!("brandmint-schemathesis-{}", uuid::Uuid::new_v4()));

    let mut failures = Vec::new();
    let mut runs = 0;
    for (spec, app) in &apps {
        for (who, email) in &principals {
            // Fresh sessions per run: the one it signs its requests with, and a decoy to revoke.
            let token = app.sign_in(email).await;
            let decoy = app.sign_in(email).await;
            let (_, claims) = shared::auth::access::verify(&app.resources.config().auth, &decoy).unwrap();
            let dir = scratch.join(format!("{}-{}", spec.name, who.replace(' ', "-")));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("schemathesis.toml"), settings(*spec, &fixtures, claims.sid)).unwrap();
            // The child blocks this worker thread; the other keeps serving its requests.
            let (ok, elapsed, printed) = tokio::task::block_in_place(|| fuzz(&bin, app, &token, &dir));
            let cases = printed.lines().skip_while(|l| !l.starts_with("Test cases:")).nth(1).unwrap_or_default();
            eprintln!(
                "schemathesis: {} as {who}: {} in {:.1}s ({})",
                spec.name,
                if ok { "ok" } else { "FAILED" },
                elapsed.as_secs_f64(),
                cases.trim()
            );
            runs += 1;
            if ok {
                drop(std::fs::remove_dir_all(&dir));
            } else {
                let har = dir.join("reports").display().to_string();
                failures.push(format!("===== {} as {who} (requests and answers: {har}) =====\n{printed}", spec.name));
            }
        }
    }
    if failures.is_empty() {
        drop(std::fs::remove_dir_all(&scratch));
    }
    drop(std::fs::remove_dir_all(&storage));
    eprintln!("schemathesis: {runs} runs in {:.1}s with setup", started.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "Schemathesis found server errors or answers that contradict the OpenAPI document:\n{}",
        failures.join("\n")
    );
}

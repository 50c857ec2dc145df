//! The compose stack starts, proven without Docker: for each service of `docker-compose.yml`, the
//! shipped binary is started with the service's `command` and exactly the compose `environment`
//! (`${VAR}` substituted from a test `.env`, host names mapped to the test PostgreSQL and anvil on
//! loopback, listen ports to free ones, the uploads volume to a temporary directory), and must
//! answer `/health/ready` with 200. It runs in production mode, as the file says, so a service
//! that demanded another's settings (the back office asking for a Stripe key) would fail here.

use std::{
    collections::BTreeMap,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_yaml::Value;
use testkit::{TestDb, required_env};

/// What an operator's `.env` next to the compose file holds (test values).
const DOT_ENV: &[(&str, &str)] = &[
    ("JWT_SECRET", "compose-test-jwt-secret-0123456789abcdef0123456789"),
    ("KYC_ENCRYPTION_KEY", "5f0c0c7d8e2a41b39a6f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566f"),
    ("QR_CODE_KEY", "9d1e4b7a0c3f6e2d5a8b1c4f7e0d3a6b9c2f5e8d1a4b7c0f3e6d9a2b5c8f1e4d"),
    ("STRIPE_SECRET_KEY", "sk_test_compose"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_Y29tcG9zZS10ZXN0LXNlY3JldA"),
];

/// `${NAME}`, `${NAME:-default}` and `${NAME:?message}` as compose interpolates them.
fn interpolate(text: &str, env: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map(|i| start + i).expect("an unterminated ${ in docker-compose.yml");
        let expr = &rest[start + 2..end];
        let (name, fallback) = match (expr.split_once(":-"), expr.split_once(":?")) {
            (Some((name, default)), _) => (name, Some(default.to_owned())),
            (_, Some((name, message))) => (name, env.get(name).is_none().then(|| panic!("{name}: {message}"))),
            _ => (expr, None),
        };
        let value = env.get(name).map(|v| (*v).to_owned()).filter(|v| !v.is_empty());
        out.push_str(&value.or(fallback).unwrap_or_default());
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where cargo put the workspace's binaries (next to this test's own directory).
pub(crate) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join(name);
    assert!(path.is_file(), "{} is not built (cargo xtask test builds the shipped binaries first)", path.display());
    path
}

/// A child process, killed (SIGKILL) and reaped when dropped.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        drop(self.0.kill());
        drop(self.0.wait());
    }
}

#[tokio::test]
async fn every_service_of_the_compose_file_starts_with_its_environment_and_is_ready() {
    shared::chain::install_crypto_provider();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docker-compose.yml")).unwrap();
    let mut compose: Value = serde_yaml::from_str(&text).unwrap();
    compose.apply_merge().unwrap();
    // Merge keys nest (`environment: { <<: *env, … }`): apply them inside each service too.
    let services = compose["services"].as_mapping_mut().unwrap();
    for (_, service) in services.iter_mut() {
        service.apply_merge().unwrap();
        if let Some(env) = service.get_mut("environment") {
            env.apply_merge().unwrap();
        }
    }
    let dot_env: BTreeMap<&str, &str> = DOT_ENV.iter().copied().collect();
    let database = TestDb::create().await;
    let rpc = required_env("RPC_URL");
    let storage = std::env::temp_dir().join(format!("brandmint-compose-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&storage).unwrap();

    let mut checked = Vec::new();
    let mut environments = BTreeMap::new();
    for name in ["backoffice", "payment", "redemption", "indexer"] {
        let service = &compose["services"][name];
        let command: Vec<String> =
            service["command"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (key, value) in service["environment"].as_mapping().unwrap() {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("{name}: unexpected value {other:?}"),
            };
            env.insert(key.as_str().unwrap().to_owned(), interpolate(&value, &dot_env));
        }
        assert_eq!(env["APP_ENV"], "production", "{name} runs as in production");
        if name != "payment" {
            assert!(!env.keys().any(|k| k.starts_with("STRIPE_")), "{name} is given no Stripe setting");
        }
        // The compose network's names, on this machine.
        let db = env["DATABASE_URL"].replace("postgres:5432/brandmint", "PG");
        assert!(db.contains("@PG"), "{name}: DATABASE_URL points at the compose postgres: {db}");
        env.insert("DATABASE_URL".into(), database.url.clone());
        assert_eq!(env["RPC_URL"], "http://anvil:8545", "{name}");
        env.insert("RPC_URL".into(), rpc.clone());
        env.insert("STORAGE_DIR".into(), storage.display().to_string());
        let addr_var = format!("{}_ADDR", name.to_ascii_uppercase());
        assert!(env[&addr_var].starts_with("0.0.0.0:"), "{name} listens on all interfaces in its container");
        let port = free_port();
        env.insert(addr_var, format!("127.0.0.1:{port}"));

        environments.insert(name, (command.clone(), env.clone()));
        let mut process = Command::new(binary(&command[0]));
        process.args(&command[1..]).env_clear().envs(&env).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut running = Running(process.spawn().unwrap());
        let url = format!("http://127.0.0.1:{port}/health/ready");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(exit) = running.0.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(running.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                panic!("{name} exited ({exit}) with the compose environment: {stderr}");
            }
            match reqwest::get(&url).await {
                Ok(response) if response.status().is_success() => break response.status(),
                _ if Instant::now() > deadline => panic!("{name} not ready at {url} within 60 s"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        checked.push((name, status.as_u16()));
    }
    assert_eq!(checked, [("backoffice", 200), ("payment", 200), ("redemption", 200), ("indexer", 200)]);

    // Payment without its Stripe key refuses to start, and says which variable is missing.
    let (command, mut env) = environments.remove("payment").unwrap();
    env.remove("STRIPE_SECRET_KEY");
    let output = Command::new(binary(&command[0])).args(&command[1..]).env_clear().envs(&env).output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && said.contains("STRIPE_SECRET_KEY"), "{said}");
    drop(std::fs::remove_dir_all(&storage));
}

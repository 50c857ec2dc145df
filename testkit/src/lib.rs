//! Test support for every crate's tests: a fresh database per test, a service running on port 0
//! against the real PostgreSQL and anvil that `cargo xtask test` starts, and signed-in principals
//! of every kind. Never a dependency of production code.

use std::{collections::HashMap, net::SocketAddr, str::FromStr};

use sqlx::{Connection, Executor, PgConnection, postgres::PgConnectOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod cluster;
pub mod images;
pub mod proxy;

use shared::{
    config::Config,
    service::{App, Resources, ServiceSpec},
};

/// An environment variable the test run provides, with a clear failure when it does not.
pub fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with `cargo xtask test`, which starts PostgreSQL and anvil")
    })
}

/// A private anvil for one test (from `ANVIL_BIN`, installed by npm), so tests that deploy
/// contracts or change chain behaviour never share nonces or blocks. Stopped when dropped.
pub fn anvil() -> alloy::node_bindings::AnvilInstance {
    alloy::node_bindings::Anvil::at(required_env("ANVIL_BIN")).try_spawn().expect("cannot start anvil")
}

/// A provider that signs with anvil's `index`-th funded account.
pub fn wallet(anvil: &alloy::node_bindings::AnvilInstance, index: usize) -> alloy::providers::DynProvider {
    wallet_of(anvil, signer(anvil, index))
}

/// A provider that signs with `key` (fund it with `anvil_setBalance` first).
pub fn wallet_of(
    anvil: &alloy::node_bindings::AnvilInstance,
    key: alloy::signers::local::PrivateKeySigner,
) -> alloy::providers::DynProvider {
    use alloy::providers::{Provider, ProviderBuilder};
    shared::chain::install_crypto_provider();
    // Nonces from the node on every send: alloy's cached nonce manager advances on a send that
    // fails estimation (alloy#2385), which would strand every later transaction behind a gap.
    ProviderBuilder::new().with_simple_nonce_management().wallet(key).connect_http(anvil.endpoint_url()).erased()
}

/// What a wallet pays a wallet order with, read from the order's `wallet_payment` (the shape
/// the payment API answers): the Checkout contract, the platform-signed quote, its signature.
pub fn wallet_payment(
    payment: &serde_json::Value,
) -> (alloy::primitives::Address, shared::contracts::Checkout::Quote, alloy::primitives::Bytes) {
    use alloy::primitives::U256;
    let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    let quote = &payment["quote"];
    let number = |name: &str| U256::from(quote[name].as_u64().unwrap_or(0));
    let parsed = shared::contracts::Checkout::Quote {
        orderId: text(&quote["order_id"]).parse().expect("quote.order_id"),
        buyer: text(&quote["buyer"]).parse().expect("quote.buyer"),
        collection: text(&quote["collection"]).parse().expect("quote.collection"),
        quantity: number("quantity"),
        payToken: text(&quote["pay_token"]).parse().expect("quote.pay_token"),
        amount: text(&quote["amount"]).parse().expect("quote.amount"),
        deadline: number("deadline"),
    };
    let checkout = text(&payment["checkout"]).parse().expect("checkout");
    (checkout, parsed, text(&payment["signature"]).parse().expect("signature"))
}

/// Anvil's `index`-th funded account as a local signer.
pub fn signer(anvil: &alloy::node_bindings::AnvilInstance, index: usize) -> alloy::signers::local::PrivateKeySigner {
    anvil.keys()[index].clone().into()
}

/// The platform's contracts on `anvil`, deployed by its account 0 (admin, deployer, relayer,
/// distributor), with accounts 1 and 2 as quote and voucher signers.
pub async fn platform(anvil: &alloy::node_bindings::AnvilInstance) -> shared::contracts::Platform {
    let admin = anvil.addresses()[0];
    let roles = shared::contracts::PlatformRoles {
        admin,
        deployer: admin,
        quote_signer: anvil.addresses()[1],
        voucher_signer: anvil.addresses()[2],
        distributor: admin,
    };
    shared::contracts::Platform::deploy(wallet(anvil, 0), roles).await.expect("platform deployment")
}

/// Campaign `id`'s collection deployed through the factory (account 0 its admin and minter);
/// returns its address.
pub async fn collection(
    platform: &shared::contracts::Platform,
    anvil: &alloy::node_bindings::AnvilInstance,
    id: u64,
    max_supply: u64,
) -> alloy::primitives::Address {
    let admin = anvil.addresses()[0];
    let params = shared::contracts::CampaignParams {
        campaign_id: id,
        name: format!("Campaign {id}"),
        symbol: "CAMPAIGN".into(),
        base_uri: "https://example.com/".into(),
        max_supply,
        royalty_receiver: admin,
        royalty_bps: 500,
        admin,
        relayer: admin,
    };
    platform.deploy_campaign(&params).send().await.expect("deploy").get_receipt().await.expect("receipt");
    platform.factory.collectionOf(alloy::primitives::U256::from(id)).call().await.expect("collectionOf")
}

/// A database created for one test, from the server in `DATABASE_URL`.
#[derive(Debug, Clone)]
pub struct TestDb {
    pub url: String,
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let server = required_env("DATABASE_URL");
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let options = PgConnectOptions::from_str(&server).expect("DATABASE_URL is not a PostgreSQL URL");
        let mut conn = PgConnection::connect_with(&options).await.expect("cannot reach the test PostgreSQL");
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("CREATE DATABASE");
        conn.close().await.ok();
        let base = server.split('?').next().unwrap_or(&server);
        let prefix = base.rsplit_once('/').map_or(base, |(prefix, _)| prefix);
        Self { url: format!("{prefix}/{name}"), name }
    }
}

/// The password [`TestApp::account`] gives every account.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// The HS256 key [`config`] sets, so tests can forge tokens signed with the right key.
pub const TEST_JWT_SECRET: &str = "brandmint-tests-only-jwt-secret-0123456789abcdef";

/// A configuration for tests: every service on port 0, the given dependencies.
pub fn config(database_url: &str, rpc_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url.into()),
        ("RPC_URL".into(), rpc_url.into()),
        ("DATABASE_MAX_CONNECTIONS".into(), "5".into()),
        ("RUST_LOG".into(), "warn".into()),
        // anvil mines a block per transaction: facts count as confirmed at once, and the
        // indexer looks for new blocks often.
        ("INDEXER_CONFIRMATIONS".into(), "0".into()),
        ("INDEXER_POLL_MS".into(), "100".into()),
        ("JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        // Real keys, as production requires (the dev-only fallback is covered by config's tests).
        ("KYC_ENCRYPTION_KEY".into(), "6b79632d746573742d6b65792d6f6e6c792d3031323334353637383961626364".into()),
        ("QR_CODE_KEY".into(), "71722d746573742d6b65792d6f6e6c792d303132333435363738396162636465".into()),
        // Each app its own dev mailbox, so a test reads only its own mail.
        (
            "MAIL_DIR".into(),
            std::env::temp_dir().join(format!("brandmint-mail-{}", uuid::Uuid::new_v4())).display().to_string(),
        ),
        (
            "STORAGE_DIR".into(),
            std::env::temp_dir().join(format!("brandmint-storage-{}", uuid::Uuid::new_v4())).display().to_string(),
        ),
    ]);
    for var in ["BACKOFFICE_ADDR", "PAYMENT_ADDR", "REDEMPTION_ADDR", "INDEXER_ADDR"] {
        vars.insert(var.into(), "127.0.0.1:0".into());
    }
    for (k, v) in extra {
        vars.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(move |name| vars.get(name).cloned()).expect("test configuration")
}

/// A loopback address with a port free right now, for a service whose public URL must be known
/// before it starts (set its `*_ADDR` and `*_PUBLIC_URL` to it).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

/// A service running in the background of a test.
#[derive(Debug)]
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub resources: Resources,
    shutdown: CancellationToken,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// Starts `spec` against a fresh database (migrated) and the anvil in `RPC_URL`.
    pub async fn spawn(spec: ServiceSpec) -> Self {
        let db = TestDb::create().await;
        Self::spawn_with(spec, config(&db.url, &required_env("RPC_URL"), &[])).await
    }

    /// Starts `spec` with the given configuration; migrations are applied first when the
    /// database is reachable (a test of an unreachable database does not wait for them).
    pub async fn spawn_with(spec: ServiceSpec, config: Config) -> Self {
        shared::telemetry::init(&config.log);
        let resources = Resources::new(config).expect("resources");
        let shutdown = CancellationToken::new();
        if resources.db().acquire().await.is_ok() {
            resources.migrate(shutdown.clone()).await;
        }
        // Port 0 (any free port) unless the test reserved one ([`free_addr`]).
        let addr = (spec.addr)(&resources.config().http);
        let app = App::build(spec, &resources, addr).await.expect("bind");
        let address = app.address();
        let server = tokio::spawn(app.run(shutdown.clone()));
        shared::chain::install_crypto_provider();
        Self { address, client: reqwest::Client::new(), resources, shutdown, server: Some(server) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `method path` with a bearer token and an optional JSON body: the status and the JSON
    /// answer (`null` when the body is not JSON).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let bytes = response.bytes().await.expect("response body");
        (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// The mails this app wrote to its dev mailbox (raw RFC 5322 text, quoted-printable
    /// soft line breaks undone), oldest first.
    pub async fn mails(&self) -> Vec<String> {
        let dir = &self.resources.config().mail.dir;
        let mut files: Vec<_> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(_) => return Vec::new(),
        };
        files.sort_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|raw| raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "="))
            .collect()
    }

    /// Waits (up to 5 s) for a mail to `to` and returns the value of `token=` in its link.
    pub async fn mailed_token(&self, to: &str) -> String {
        for _ in 0..50 {
            let found = self.mails().await.into_iter().rev().find(|mail| mail.contains(&format!("To: {to}")));
            if let Some(mail) = found {
                let start = mail.find("token=").expect("a link with a token") + "token=".len();
                return mail[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c)).collect();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no mail to {to} in {}", self.resources.config().mail.dir.display());
    }

    /// Creates an account with [`TEST_PASSWORD`] and signs it in; returns its id and access token.
    pub async fn account(&self, email: &str, role: Option<shared::auth::PlatformRole>) -> (i64, String) {
        let mut conn = self.resources.db().acquire().await.expect("connection");
        let account =
            shared::auth::create_account(&mut conn, email, TEST_PASSWORD.into(), role).await.expect("account");
        (account.id.get(), self.sign_in(email).await)
    }

    /// Signs `email` in with [`TEST_PASSWORD`] (straight through the library, so tests of rate
    /// limits are not disturbed) and returns the access token.
    pub async fn sign_in(&self, email: &str) -> String {
        use secrecy::ExposeSecret;
        let meta = shared::auth::RequestMeta { ip: None, request_id: None, user_agent: Some("test".into()) };
        let pair = shared::auth::sign_in(
            self.resources.db(),
            &self.resources.config().auth,
            email,
            TEST_PASSWORD.into(),
            &meta,
        )
        .await
        .expect("sign in");
        pair.access_token.expose_secret().to_owned()
    }

    /// Creates a customer with the wallet `address` and a signed-in session (as Sign-In with
    /// Ethereum would; the SIWE flow itself is tested end to end); returns its id and access token.
    pub async fn customer(&self, address: alloy::primitives::Address) -> (i64, String) {
        let db = self.resources.db();
        let customer: i64 = sqlx::query_scalar("INSERT INTO customers (wallet_address) VALUES ($1) RETURNING id")
            .bind(address.as_slice())
            .fetch_one(db)
            .await
            .expect("customer");
        let session = uuid::Uuid::new_v4();
        sqlx::query(
            "INSERT INTO sessions (id, customer_id, method, expires_at)
             VALUES ($1, $2, 'siwe', now() + interval '1 hour')",
        )
        .bind(session)
        .bind(customer)
        .execute(db)
        .await
        .expect("customer session");
        let subject = shared::auth::access::Subject::Customer(customer);
        let (token, _) = shared::auth::access::issue(&self.resources.config().auth, subject, session).expect("token");
        (customer, token)
    }

    /// Creates a brand; returns its id.
    pub async fn brand(&self, name: &str) -> i64 {
        sqlx::query_scalar("INSERT INTO brands (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(self.resources.db())
            .await
            .expect("brand")
    }

    /// Makes `account` a member of `brand` with `role` (verifiers: at `stores`).
    pub async fn member(&self, brand: i64, account: i64, role: shared::auth::BrandRole, stores: &[i64]) {
        sqlx::query("INSERT INTO brand_members (brand_id, account_id, role) VALUES ($1, $2, $3)")
            .bind(brand)
            .bind(account)
            .bind(role.as_str())
            .execute(self.resources.db())
            .await
            .expect("member");
        for store in stores {
            sqlx::query("INSERT INTO member_stores (brand_id, account_id, store_id) VALUES ($1, $2, $3)")
                .bind(brand)
                .bind(account)
                .bind(store)
                .execute(self.resources.db())
                .await
                .expect("store assignment");
        }
    }

    /// Creates a store of `brand`; returns its id.
    pub async fn store(&self, brand: i64, name: &str) -> i64 {
        sqlx::query_scalar("INSERT INTO stores (brand_id, name) VALUES ($1, $2) RETURNING id")
            .bind(brand)
            .bind(name)
            .fetch_one(self.resources.db())
            .await
            .expect("store")
    }

    /// Stops the server gracefully and waits for it to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(server) => server.await.expect("server task"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Sends a contract call and waits for its receipt (a test's transaction: failing is a panic).
pub async fn mined<P, D, N>(call: alloy::contract::CallBuilder<P, D, N>) -> N::ReceiptResponse
where
    P: alloy::providers::Provider<N>,
    D: alloy::contract::CallDecoder,
    N: alloy::network::Network,
{
    call.send().await.expect("the transaction is sent").get_receipt().await.expect("its receipt")
}

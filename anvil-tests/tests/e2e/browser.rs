//! A real headless Chromium (Debian's `chromium`, driven through its `chromedriver` over
//! WebDriver with `fantoccini`), for testing pages as a person uses them:
//!
//! - at a phone's size or a desktop's, with a screenshot of each page under
//!   `<target dir>/browser-screenshots/<test>/` (test artifacts, not committed);
//! - [`Browser::check`] fails on any console error or failed request of the page so far, and
//!   on any serious or critical violation found by axe-core (from npm, run in the page);
//! - a test wallet: an EIP-1193 `window.ethereum` injected into the page whose requests the
//!   test answers with an anvil dev account's key ([`Browser::serve_wallet`]).
//!
//! `cargo xtask test` installs Chromium and ChromeDriver when they are missing.

use std::{
    os::unix::process::CommandExt,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use alloy::signers::{SignerSync, local::PrivateKeySigner};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A viewport to render at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Viewport {
    /// 390 × 844, a current phone.
    Phone,
    /// 1280 × 900.
    Desktop,
}

impl Viewport {
    fn size(self) -> (u32, u32) {
        match self {
            Viewport::Phone => (390, 844),
            Viewport::Desktop => (1280, 900),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Viewport::Phone => "phone",
            Viewport::Desktop => "desktop",
        }
    }
}

/// A browser session; stops its driver when dropped.
pub(crate) struct Browser {
    client: Client,
    driver: std::process::Child,
    driver_url: String,
    test: String,
    viewport: Viewport,
}

impl Browser {
    /// Starts ChromeDriver on a free port and a headless Chromium session at `viewport`.
    pub(crate) async fn start(test: &str, viewport: Viewport) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its own process group: Chromium is its child, and a test that panics before closing the
        // session must not leave browsers running.
        let driver = std::process::Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; `cargo xtask test` installs it)");
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(format!("{driver_url}/status")).await.is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (width, height) = viewport.size();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--no-first-run", format!("--window-size={width},{height}")],
            }),
        );
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("a Chromium session");
        client.set_window_size(width, height).await.unwrap();
        Browser { client, driver, driver_url, test: test.to_owned(), viewport }
    }

    /// Opens `url` and waits for it to load.
    pub(crate) async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub(crate) async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.unwrap();
    }

    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).text().await.unwrap()
    }

    /// The browser's cookie `name`: its value, and whether it is HttpOnly, Secure and
    /// SameSite=Strict.
    pub(crate) async fn cookie(&self, name: &str) -> (String, bool, bool, bool) {
        let cookie = self.client.get_named_cookie(name).await.unwrap_or_else(|e| panic!("cookie {name}: {e}"));
        let strict = cookie.same_site().is_some_and(|s| s.is_strict());
        (cookie.value().to_owned(), cookie.http_only() == Some(true), cookie.secure() == Some(true), strict)
    }

    /// Waits until the element matching `css` is shown.
    pub(crate) async fn wait_visible(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                return;
            }
            assert!(Instant::now() < deadline, "{css} was never shown");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the page has an element matching `css`.
    pub(crate) async fn exists(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// A PNG of the element matching `css`, as the screen shows it.
    pub(crate) async fn element_screenshot(&self, css: &str) -> Vec<u8> {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.screenshot().await.unwrap()
    }

    /// Waits until the text of `css` contains `wanted`; returns it.
    pub(crate) async fn wait_text(&self, css: &str, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(wanted) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} never said {wanted:?}; it says {text:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a screenshot as `<name>-<viewport>.png` in this test's artifact directory.
    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        let dir = artifacts().join(&self.test);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}-{}.png", self.viewport.name())), png).unwrap();
    }

    /// Fails on the page's console errors and failed requests since the last check, and on any
    /// serious or critical accessibility violation axe-core finds in it now.
    pub(crate) async fn check(&self, page: &str) {
        let errors: Vec<String> = self
            .console()
            .await
            .into_iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(errors.is_empty(), "{page}: console errors {errors:#?}");
        let failed = self
            .client
            .execute(
                "return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
                     .filter(e => e.responseStatus >= 400).map(e => e.name + ' ' + e.responseStatus);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(failed, json!([]), "{page}: failed requests");
        let axe = std::fs::read_to_string(repo_root().join("node_modules/axe-core/axe.min.js"))
            .expect("axe-core (npm ci installs it)");
        self.client.execute(&format!("{axe}\nreturn true;"), vec![]).await.unwrap();
        let violations = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] }).then(result => done(result.violations
                     .filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                                  nodes: v.nodes.map(n => n.html) }))));",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(violations, json!([]), "{page}: accessibility violations");
    }

    /// Forgets the console's entries so far: after a refusal the test caused on purpose (the
    /// browser logs every 4xx answer to a script's request as an error).
    pub(crate) async fn forget_console(&self) {
        self.console().await;
    }

    /// The browser's console entries since the last read.
    async fn console(&self) -> Vec<Value> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let log = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        log["value"].as_array().cloned().unwrap_or_default()
    }

    /// Puts a test wallet into the current page as `window.ethereum` (EIP-1193): its requests
    /// wait until [`Browser::serve_wallet`] answers them.
    pub(crate) async fn inject_wallet(&self) {
        self.client
            .execute(
                "window.__wallet = { next: 1, pending: [], waiting: {} };
                 window.ethereum = { request: ({ method, params }) => new Promise((resolve, reject) => {
                     const id = window.__wallet.next++;
                     window.__wallet.waiting[id] = { resolve, reject };
                     window.__wallet.pending.push({ id, method, params: params || [] });
                 }) };
                 return true;",
                vec![],
            )
            .await
            .unwrap();
    }

    /// Answers the page's wallet requests as `signer` would until it has answered `count` of
    /// them: its accounts, signatures (`personal_sign`), and transactions (`eth_sendTransaction`,
    /// sent to the node at `rpc` and waited for).
    pub(crate) async fn serve_wallet(&self, signer: &PrivateKeySigner, rpc: &str, count: usize) {
        use alloy::providers::{Provider, ProviderBuilder};
        let chain = ProviderBuilder::new()
            .wallet(alloy::network::EthereumWallet::from(signer.clone()))
            .connect_http(rpc.parse().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut answered = 0;
        while answered < count {
            if Instant::now() > deadline {
                let page = self.client.source().await.unwrap_or_default();
                panic!("the page asked the wallet {answered} of {count} times; the page: {page}");
            }
            let pending = self
                .client
                .execute("return window.__wallet ? window.__wallet.pending.splice(0) : [];", vec![])
                .await
                .unwrap();
            for request in pending.as_array().into_iter().flatten() {
                let params = &request["params"];
                let result = match request["method"].as_str().unwrap_or_default() {
                    // Wallets give addresses in lower case; the page must cope.
                    "eth_requestAccounts" | "eth_accounts" => json!([format!("{:#x}", signer.address())]),
                    "eth_chainId" => json!(format!("{:#x}", chain.get_chain_id().await.unwrap())),
                    "personal_sign" => {
                        let message = alloy::hex::decode(params[0].as_str().unwrap()).unwrap();
                        let signature = signer.sign_message_sync(&message).unwrap();
                        json!(format!("0x{}", alloy::hex::encode(signature.as_bytes())))
                    }
                    "eth_sendTransaction" => {
                        let call = &params[0];
                        let tx = alloy::rpc::types::TransactionRequest::default()
                            .to(call["to"].as_str().unwrap().parse::<alloy::primitives::Address>().unwrap())
                            .input(alloy::hex::decode(call["data"].as_str().unwrap()).unwrap().into())
                            .value(call["value"].as_str().unwrap_or("0x0").parse().unwrap());
                        let receipt = chain.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
                        assert!(receipt.status(), "the wallet's transaction reverted: {call}");
                        json!(format!("{:#x}", receipt.transaction_hash))
                    }
                    other => panic!("the page asked the wallet for {other}"),
                };
                answered += 1;
                self.client
                    .execute(
                        "window.__wallet.waiting[arguments[0]].resolve(arguments[1]); return true;",
                        vec![request["id"].clone(), result],
                    )
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session; the driver stops when the browser is dropped.
    pub(crate) async fn close(self) {
        self.client.clone().close().await.unwrap();
    }
}

impl Drop for Browser {
    /// Stops ChromeDriver and every browser process it started (its process group).
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        drop(std::process::Command::new("kill").args(["-KILL", "--", &group]).status());
        drop(self.driver.kill());
        drop(self.driver.wait());
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where screenshots go: the build's target directory (`CARGO_TARGET_DIR`, or `target/`).
fn artifacts() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| repo_root().join("target"), PathBuf::from)
        .join("browser-screenshots")
}

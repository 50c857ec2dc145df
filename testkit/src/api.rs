//! Typed clients of the platform's HTTP API, one per endpoint family, for tests that use the API
//! the way a client does. Every answer is checked on the way in: never a 500, and every refusal
//! (4xx, or a 503 when a dependency is down) is a problem document (`application/problem+json`) — so a test that only sets things up still
//! notices a broken error path. Tests of raw input (bytes serde would never write, missing
//! headers) use [`TestApp::call`](crate::TestApp::call) or the `reqwest` client directly.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;
use shared::{
    ids::{BrandId, CampaignId, ItemId},
    orders::{OrderState, PaymentMethod},
};
use uuid::Uuid;

use crate::TestApp;

/// A refusal as a client reads it (RFC 9457).
#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    #[serde(skip)]
    pub status: StatusCode,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub detail: Option<String>,
    /// The conflict's code (409s), e.g. `sold-out`.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub errors: Vec<FieldProblem>,
}

/// One field a 422 names.
#[derive(Debug, Clone, Deserialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

impl Problem {
    /// The fields a 422 names, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.errors.iter().map(|e| e.field.as_str()).collect()
    }
}

/// What a call answers: the typed body, or the refusal.
pub type Reply<T> = Result<T, Problem>;

/// The API as one principal (a bearer token) or anyone (no token) sees it.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    app: &'a TestApp,
    token: Option<&'a str>,
}

impl TestApp {
    /// This service's API as the holder of `token`.
    pub fn api<'a>(&'a self, token: &'a str) -> Client<'a> {
        Client { app: self, token: Some(token) }
    }

    /// This service's API as anyone (buyers' routes need no sign-in).
    pub fn public_api(&self) -> Client<'_> {
        Client { app: self, token: None }
    }
}

impl<'a> Client<'a> {
    /// `method path` with an optional JSON body.
    pub async fn send<T: DeserializeOwned>(&self, method: Method, path: &str, body: Option<&Value>) -> Reply<T> {
        let mut request = self.app.client.request(method.clone(), self.app.url(path));
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.read(&method, path, request.send().await.expect("request")).await
    }

    /// `PUT path` with raw bytes of `content_type` (uploads).
    pub async fn put_bytes<T: DeserializeOwned>(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Reply<T> {
        let mut request = self.app.client.put(self.app.url(path)).header("content-type", content_type).body(bytes);
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        self.read(&Method::PUT, path, request.send().await.expect("request")).await
    }

    async fn read<T: DeserializeOwned>(&self, method: &Method, path: &str, response: reqwest::Response) -> Reply<T> {
        let status = response.status();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response.bytes().await.expect("response body");
        let text = String::from_utf8_lossy(&bytes);
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{method} {path}: {text}");
        if status.is_client_error() || status.is_server_error() {
            assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{method} {path}: {status}");
            let mut problem: Problem = serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{method} {path}: not a problem ({e}): {text}"));
            problem.status = status;
            return Err(problem);
        }
        let body = if bytes.is_empty() { b"null".as_slice() } else { &bytes };
        Ok(serde_json::from_slice(body).unwrap_or_else(|e| panic!("{method} {path}: unexpected answer ({e}): {text}")))
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Reply<T> {
        self.send(Method::GET, path, None).await
    }

    /// Reads `path` until `done` holds (30 s at most), and returns what it read last.
    pub async fn until<T: DeserializeOwned + std::fmt::Debug>(&self, path: &str, done: impl Fn(&T) -> bool) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let read = self.get::<T>(path).await;
            match read {
                Ok(value) if done(&value) => return value,
                other => assert!(Instant::now() < deadline, "gave up waiting on {path}: {other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A brand's campaigns (back office).
    pub fn campaigns(self, brand: BrandId) -> Campaigns<'a> {
        Campaigns { client: self, brand }
    }

    /// Buyers' orders (payment).
    pub fn orders(self) -> Orders<'a> {
        Orders { client: self }
    }
}

/// A campaign as the back office shows it: what tests act on, the rest as sent.
#[derive(Debug, Clone, Deserialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub state: String,
    pub items: Vec<Item>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// An item of a campaign.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub supply: i32,
    pub reserved: i32,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// `/brands/{brand}/campaigns…` of the back office.
#[derive(Debug, Clone, Copy)]
pub struct Campaigns<'a> {
    client: Client<'a>,
    brand: BrandId,
}

impl Campaigns<'_> {
    /// The path of the brand's campaigns, or of one of them.
    pub fn path(&self, campaign: Option<CampaignId>) -> String {
        match campaign {
            Some(id) => format!("/brands/{}/campaigns/{id}", self.brand),
            None => format!("/brands/{}/campaigns", self.brand),
        }
    }

    /// Creates a campaign from `body` (the API's `NewCampaign`).
    pub async fn create(&self, body: &Value) -> Reply<Campaign> {
        self.client.send(Method::POST, &self.path(None), Some(body)).await
    }

    pub async fn get(&self, campaign: CampaignId) -> Reply<Campaign> {
        self.client.get(&self.path(Some(campaign))).await
    }

    /// Uploads the campaign's artwork.
    pub async fn artwork(&self, campaign: CampaignId, content_type: &str, bytes: Vec<u8>) -> Reply<Value> {
        let path = format!("{}/artwork", self.path(Some(campaign)));
        self.client.put_bytes(&path, content_type, bytes).await
    }

    /// Asks for the campaign's deployment.
    pub async fn deploy(&self, campaign: CampaignId) -> Reply<Value> {
        self.client.send(Method::POST, &format!("{}/deploy", self.path(Some(campaign))), None).await
    }

    /// Deploys the campaign and waits until its deployment is over; returns it as it ended up.
    pub async fn deployed(&self, campaign: CampaignId) -> Campaign {
        self.deploy(campaign).await.expect("deployment requested");
        self.client.until::<Campaign>(&self.path(Some(campaign)), |c| c.state != "deploying").await
    }
}

/// A buyer's order request (the API's `NewOrder`).
#[derive(Debug, Clone, Serialize)]
pub struct NewOrder {
    pub item_id: ItemId,
    pub quantity: i64,
    pub email: String,
    pub wallet_address: String,
    pub method: PaymentMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voucher_code: Option<String>,
}

/// An order as its buyer sees it.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub state: OrderState,
    pub method: PaymentMethod,
    pub quantity: i32,
    pub total_minor: i64,
    /// Wallet orders: the signed quote to send to the Checkout contract.
    pub wallet_payment: Option<Value>,
    /// Card orders: the PaymentIntent.
    pub card_payment: Option<Value>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// `/orders…` of payment.
#[derive(Debug, Clone, Copy)]
pub struct Orders<'a> {
    client: Client<'a>,
}

impl Orders<'_> {
    pub async fn create(&self, order: &NewOrder) -> Reply<Order> {
        let body = serde_json::to_value(order).expect("order JSON");
        self.client.send(Method::POST, "/orders", Some(&body)).await
    }

    pub async fn get(&self, order: Uuid) -> Reply<Order> {
        self.client.get(&format!("/orders/{order}")).await
    }

    /// Reads the order until its state satisfies `done` (30 s at most).
    pub async fn until(&self, order: Uuid, done: impl Fn(OrderState) -> bool) -> Order {
        self.client.until::<Order>(&format!("/orders/{order}"), |o| done(o.state)).await
    }
}

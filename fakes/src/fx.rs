//! A local stand-in for the FX sources: Binance's public market data (`/api/v3/avgPrice`,
//! `/api/v3/ticker/price`) and Coinbase Exchange's public ticker (`/products/{id}/ticker`), in
//! their real wire formats, on one loopback port.
//!
//! Tests (and the dev run) set each venue's prices, its last trade's age, and a failure mode:
//! Binance's real 451 "restricted location" answer, 429 with `Retry-After`, 500, or no answer
//! in time. Markets: Binance `ETHEUR`/`ETHUSDC`, Coinbase `ETH-EUR`/`ETH-USD`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header::RETRY_AFTER},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::json;
use tokio::{net::TcpListener, task::JoinHandle};
use url::Url;

use shared::money::Currency;

/// Which fake exchange a setting is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Venue {
    Binance,
    Coinbase,
}

/// How a venue fails every request until [`FxStub::recover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Binance: HTTP 451 with its "restricted location" body. Coinbase, which has no such
    /// answer, refuses with 403 `{"message":"Forbidden"}`.
    Restricted,
    /// HTTP 429 with `Retry-After: <secs>` and the venue's rate-limit body.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 500 with the venue's internal-error body.
    ServerError,
    /// The answer comes only after [`FxStub::TIMEOUT_DELAY`]: longer than any client waits.
    Timeout,
}

/// Binance's answer to requests from a restricted location, byte for byte.
pub const BINANCE_RESTRICTED_BODY: &str = "{\n  \"code\": 0,\n  \"msg\": \"Service unavailable from a restricted location according to 'b. Eligibility' in https://www.binance.com/en/terms. Please contact customer service if you believe you received this message in error.\"\n}";

#[derive(Debug, Clone, Copy)]
struct Market {
    /// Binance: the 5-minute average. Coinbase: the book mid (bid and ask are a cent either side).
    rate: Decimal,
    /// The last trade's price.
    last: Decimal,
}

#[derive(Debug)]
struct VenueState {
    markets: HashMap<Currency, Market>,
    failure: Option<Failure>,
    trade_age: Duration,
    requests: u64,
}

impl VenueState {
    fn new(eur: Decimal, usd: Decimal) -> Self {
        let market = |rate| Market { rate, last: rate };
        Self {
            markets: HashMap::from([(Currency::EUR, market(eur)), (Currency::USD, market(usd))]),
            failure: None,
            trade_age: Duration::from_secs(1),
            requests: 0,
        }
    }
}

type Shared = Arc<Mutex<HashMap<Venue, VenueState>>>;

/// The running fake; stops when dropped.
#[derive(Debug)]
pub struct FxStub {
    url: Url,
    state: Shared,
    server: JoinHandle<()>,
}

impl FxStub {
    /// How long a [`Failure::Timeout`] venue takes to answer.
    pub const TIMEOUT_DELAY: Duration = Duration::from_secs(30);

    /// Starts the fake on a free loopback port with ETH at 3000 EUR and 3300 USD on both
    /// venues, every last trade a second old.
    pub async fn start() -> std::io::Result<Self> {
        let (eur, usd) = (Decimal::from(3000), Decimal::from(3300));
        let state: Shared = Arc::new(Mutex::new(HashMap::from([
            (Venue::Binance, VenueState::new(eur, usd)),
            (Venue::Coinbase, VenueState::new(eur, usd)),
        ])));
        let app = Router::new()
            .route("/api/v3/avgPrice", get(binance_avg_price))
            .route("/api/v3/ticker/price", get(binance_ticker_price))
            .route("/products/{product}/ticker", get(coinbase_ticker))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fx stub stopped");
            }
        });
        let url = Url::parse(&format!("http://{addr}")).map_err(std::io::Error::other)?;
        Ok(Self { url, state, server })
    }

    /// The base URL of both venues (their paths do not overlap).
    pub fn url(&self) -> Url {
        self.url.clone()
    }

    /// Sets ETH's price in `currency` on `venue`: its average (or book mid) and last trade.
    pub fn set_price(&self, venue: Venue, currency: Currency, price: Decimal) {
        self.with(venue, |state| {
            state.markets.insert(currency, Market { rate: price, last: price });
        });
    }

    /// Moves only the last trade, leaving the average (or book) where it is: for sanity bands.
    pub fn set_last_trade(&self, venue: Venue, currency: Currency, last: Decimal) {
        self.with(venue, |state| {
            if let Some(market) = state.markets.get_mut(&currency) {
                market.last = last;
            }
        });
    }

    /// How long ago `venue`'s last trade was (Binance `closeTime`, Coinbase `time`).
    pub fn set_trade_age(&self, venue: Venue, age: Duration) {
        self.with(venue, |state| state.trade_age = age);
    }

    /// Makes every request to `venue` fail this way.
    pub fn fail(&self, venue: Venue, failure: Failure) {
        self.with(venue, |state| state.failure = Some(failure));
    }

    /// Lets `venue` answer normally again.
    pub fn recover(&self, venue: Venue) {
        self.with(venue, |state| state.failure = None);
    }

    /// How many requests `venue` has received.
    pub fn requests(&self, venue: Venue) -> u64 {
        self.with(venue, |state| state.requests)
    }

    fn with<T>(&self, venue: Venue, f: impl FnOnce(&mut VenueState) -> T) -> T {
        let mut venues = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let state = venues.entry(venue).or_insert_with(|| VenueState::new(Decimal::ZERO, Decimal::ZERO));
        f(state)
    }
}

impl Drop for FxStub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What a venue does with one request: its market and last-trade time, or a failure.
struct Answer {
    market: Option<Market>,
    traded_at: chrono::DateTime<Utc>,
    requests: u64,
}

/// Counts the request and reads the venue, or fails it as configured.
async fn answer(state: &Shared, venue: Venue, currency: Option<Currency>) -> Result<Answer, Response> {
    let (failure, answer) = {
        let mut venues = state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = venues.get_mut(&venue) else {
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        state.requests += 1;
        let age = chrono::Duration::from_std(state.trade_age).unwrap_or(chrono::Duration::zero());
        let answer = Answer {
            market: currency.and_then(|c| state.markets.get(&c).copied()),
            traded_at: Utc::now() - age,
            requests: state.requests,
        };
        (state.failure, answer)
    };
    match failure {
        None => Ok(answer),
        Some(Failure::Timeout) => {
            tokio::time::sleep(FxStub::TIMEOUT_DELAY).await;
            Ok(answer)
        }
        Some(failure) => Err(failure_response(venue, failure)),
    }
}

fn failure_response(venue: Venue, failure: Failure) -> Response {
    match (venue, failure) {
        (Venue::Binance, Failure::Restricted) => (
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            BINANCE_RESTRICTED_BODY,
        )
            .into_response(),
        (Venue::Coinbase, Failure::Restricted) => {
            (StatusCode::FORBIDDEN, Json(json!({"message": "Forbidden"}))).into_response()
        }
        (venue, Failure::RateLimited { retry_after_secs }) => {
            let body = match venue {
                Venue::Binance => json!({
                    "code": -1003,
                    "msg": "Too many requests; current limit of IP(127.0.0.1) request weight is 6000 per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API."
                }),
                Venue::Coinbase => json!({"message": "Public rate limit exceeded"}),
            };
            let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        (Venue::Binance, Failure::ServerError) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"code": -1000, "msg": "An unknown error occurred while processing the request."})),
        )
            .into_response(),
        (Venue::Coinbase, Failure::ServerError) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"message": "Internal server error"}))).into_response()
        }
        // Answered (late) by `answer`.
        (_, Failure::Timeout) => StatusCode::GATEWAY_TIMEOUT.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct SymbolQuery {
    symbol: Option<String>,
}

fn binance_currency(symbol: &str) -> Option<Currency> {
    match symbol {
        "ETHEUR" => Some(Currency::EUR),
        "ETHUSDC" => Some(Currency::USD),
        _ => None,
    }
}

/// Binance's answer for a missing or unknown symbol.
fn binance_bad_symbol(symbol: Option<&str>) -> Response {
    let body = match symbol {
        None | Some("") => {
            json!({"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."})
        }
        Some(_) => json!({"code": -1121, "msg": "Invalid symbol."}),
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Binance prints prices with eight decimal places.
fn binance_price(price: Decimal) -> String {
    format!("{price:.8}")
}

fn with_weight(mut response: Response, requests: u64) -> Response {
    response.headers_mut().insert("x-mbx-used-weight-1m", HeaderValue::from(requests.saturating_mul(2)));
    response
}

async fn binance_avg_price(State(state): State<Shared>, Query(query): Query<SymbolQuery>) -> Response {
    let symbol = query.symbol.as_deref();
    let answer = match answer(&state, Venue::Binance, symbol.and_then(binance_currency)).await {
        Ok(answer) => answer,
        Err(failure) => return failure,
    };
    let Some(market) = answer.market else { return binance_bad_symbol(symbol) };
    let body = json!({
        "mins": 5,
        "price": binance_price(market.rate),
        "closeTime": answer.traded_at.timestamp_millis(),
    });
    with_weight(Json(body).into_response(), answer.requests)
}

async fn binance_ticker_price(State(state): State<Shared>, Query(query): Query<SymbolQuery>) -> Response {
    let symbol = query.symbol.as_deref();
    let answer = match answer(&state, Venue::Binance, symbol.and_then(binance_currency)).await {
        Ok(answer) => answer,
        Err(failure) => return failure,
    };
    let (Some(market), Some(symbol)) = (answer.market, symbol) else { return binance_bad_symbol(symbol) };
    let body = json!({"symbol": symbol, "price": binance_price(market.last)});
    with_weight(Json(body).into_response(), answer.requests)
}

async fn coinbase_ticker(State(state): State<Shared>, Path(product): Path<String>) -> Response {
    let currency = match product.as_str() {
        "ETH-EUR" => Some(Currency::EUR),
        "ETH-USD" => Some(Currency::USD),
        _ => None,
    };
    let answer = match answer(&state, Venue::Coinbase, currency).await {
        Ok(answer) => answer,
        Err(failure) => return failure,
    };
    let Some(market) = answer.market else {
        return (StatusCode::NOT_FOUND, Json(json!({"message": "NotFound"}))).into_response();
    };
    let cent = Decimal::new(1, 2);
    let body = json!({
        "ask": (market.rate + cent).to_string(),
        "bid": (market.rate - cent).to_string(),
        "volume": "4213.52871003",
        "trade_id": 86_326_000 + answer.requests,
        "price": market.last.to_string(),
        "size": "0.01250000",
        "time": answer.traded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "rfq_volume": "12.40315200",
    });
    Json(body).into_response()
}

//! The rate sources: their wire formats, and the checks every answer passes before it is used.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, Url, header::RETRY_AFTER};
use rust_decimal::Decimal;
use serde::{Deserialize, de::DeserializeOwned};

use shared::money::Bps;

/// Why one source gave no usable rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// HTTP 451: the source refuses this server's location (Binance from US cloud IPs).
    #[error("refused from this location (HTTP 451)")]
    Restricted,
    /// HTTP 429 (slow down) or 418 (Binance's IP ban after ignored 429s).
    #[error("rate limited (HTTP {status}), retry after {} s", retry_after_secs.map_or_else(|| "?".into(), |s| s.to_string()))]
    RateLimited { status: u16, retry_after_secs: Option<u64> },
    /// Not asked: a recent rate limit's `Retry-After` has not passed yet.
    #[error("not asked until {until} after a rate limit")]
    BackingOff { until: DateTime<Utc> },
    /// Any other non-200 answer.
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// No answer: connection failure or timeout.
    #[error("no answer: {0}")]
    Transport(String),
    /// An answer that is not the documented shape, or a non-positive or crossed price.
    #[error("unreadable answer: {0}")]
    Malformed(String),
    /// The source's last trade is older than the maximum age.
    #[error("stale: last trade {age_secs} s ago, at most {max_secs} s allowed")]
    Stale { age_secs: i64, max_secs: u64 },
    /// The source's rate and its last trade differ by more than the sanity band.
    #[error("rate {rate} and last trade {last} are {deviation_bps} bps apart (band {band})")]
    OutOfBand { rate: Decimal, last: Decimal, deviation_bps: Decimal, band: Bps },
}

type Result<T, E = SourceError> = std::result::Result<T, E>;

/// A usable rate of one market: fresh and within its band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Observation {
    /// Quote currency per unit of the base asset (EUR per ETH).
    pub(super) rate: Decimal,
    /// The source's own time of the last trade.
    pub(super) traded_at: DateTime<Utc>,
}

/// What every answer is checked against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checks {
    pub(super) now: DateTime<Utc>,
    pub(super) max_age: Duration,
    pub(super) band: Bps,
}

impl Checks {
    fn check(&self, rate: Decimal, last: Decimal, traded_at: DateTime<Utc>) -> Result<Observation> {
        if rate <= Decimal::ZERO || last <= Decimal::ZERO {
            return Err(SourceError::Malformed(format!("non-positive price {rate} / {last}")));
        }
        let age = self.now.signed_duration_since(traded_at);
        let max_secs = self.max_age.as_secs();
        if age.num_milliseconds() > i64::try_from(self.max_age.as_millis()).unwrap_or(i64::MAX) {
            return Err(SourceError::Stale { age_secs: age.num_seconds(), max_secs });
        }
        let deviation_bps = deviation_bps(rate, last)?;
        if deviation_bps > Decimal::from(self.band.get()) {
            return Err(SourceError::OutOfBand { rate, last, deviation_bps, band: self.band });
        }
        Ok(Observation { rate, traded_at })
    }
}

/// `|other − reference| / reference` in basis points, to two decimal places (rounded up, so a
/// deviation just over a limit is never shown as the limit). `reference > 0`.
pub(super) fn deviation_bps(reference: Decimal, other: Decimal) -> Result<Decimal> {
    (other - reference)
        .abs()
        .checked_mul(Decimal::from(Bps::DENOMINATOR))
        .and_then(|scaled| scaled.checked_div(reference))
        .map(|bps| bps.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::AwayFromZero))
        .ok_or_else(|| SourceError::Malformed(format!("cannot compare {reference} and {other}")))
}

/// Binance `GET /api/v3/avgPrice`: `{"mins":5,"price":"3000.12","closeTime":1717171717171}`.
#[derive(Debug, Deserialize)]
struct AvgPrice {
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
    /// The last trade's time, in milliseconds since the epoch.
    #[serde(rename = "closeTime")]
    close_time: i64,
}

/// Binance `GET /api/v3/ticker/price`: `{"symbol":"ETHEUR","price":"3000.12"}`.
#[derive(Debug, Deserialize)]
struct TickerPrice {
    symbol: String,
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
}

/// Binance: the 5-minute average, if its last trade is fresh and the last price is within the
/// band of it.
pub(super) async fn binance(http: &reqwest::Client, base: &Url, symbol: &str, checks: Checks) -> Result<Observation> {
    let query = [("symbol", symbol)];
    let (average, last) = tokio::join!(
        get_json::<AvgPrice>(http, endpoint(base, &["api", "v3", "avgPrice"], &query)),
        get_json::<TickerPrice>(http, endpoint(base, &["api", "v3", "ticker", "price"], &query)),
    );
    let (average, last) = (average?, last?);
    if last.symbol != symbol {
        return Err(SourceError::Malformed(format!("asked for {symbol}, got {}", last.symbol)));
    }
    let traded_at = DateTime::from_timestamp_millis(average.close_time)
        .ok_or_else(|| SourceError::Malformed(format!("closeTime {} out of range", average.close_time)))?;
    checks.check(average.price, last.price, traded_at)
}

/// Coinbase Exchange `GET /products/{id}/ticker`:
/// `{"ask":"3000.5","bid":"3000.4","volume":"…","trade_id":1,"price":"3000.45","size":"…","time":"2024-05-01T12:00:00.123456Z"}`.
#[derive(Debug, Deserialize)]
struct CoinbaseTicker {
    #[serde(with = "rust_decimal::serde::str")]
    ask: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    bid: Decimal,
    /// The last trade's price.
    #[serde(with = "rust_decimal::serde::str")]
    price: Decimal,
    /// The last trade's time.
    time: DateTime<Utc>,
}

/// Coinbase: the mid of the best bid and ask, if the last trade is fresh and within the band.
pub(super) async fn coinbase(http: &reqwest::Client, base: &Url, product: &str, checks: Checks) -> Result<Observation> {
    let ticker: CoinbaseTicker = get_json(http, endpoint(base, &["products", product, "ticker"], &[])).await?;
    if ticker.bid <= Decimal::ZERO || ticker.bid > ticker.ask {
        return Err(SourceError::Malformed(format!("book bid {} ask {}", ticker.bid, ticker.ask)));
    }
    let mid = (ticker.bid + ticker.ask) / Decimal::TWO;
    checks.check(mid, ticker.price, ticker.time)
}

/// `base` with `segments` appended to its path (a base with a path prefix keeps it).
fn endpoint(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// The most of an error body kept in a reason (they end up in logs).
const MAX_BODY_CHARS: usize = 200;

async fn get_json<T: DeserializeOwned>(http: &reqwest::Client, url: Url) -> Result<T> {
    let response = http.get(url).send().await.map_err(transport)?;
    let status = response.status();
    if status == StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS {
        return Err(SourceError::Restricted);
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::IM_A_TEAPOT {
        let retry_after_secs = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        return Err(SourceError::RateLimited { status: status.as_u16(), retry_after_secs });
    }
    let body = response.bytes().await.map_err(transport)?;
    if status != StatusCode::OK {
        let text: String = String::from_utf8_lossy(&body).chars().take(MAX_BODY_CHARS).collect();
        return Err(SourceError::Status { status: status.as_u16(), body: text });
    }
    serde_json::from_slice(&body).map_err(|e| SourceError::Malformed(e.to_string()))
}

fn transport(error: reqwest::Error) -> SourceError {
    let error = error.without_url();
    if error.is_timeout() {
        SourceError::Transport("timed out".into())
    } else {
        SourceError::Transport(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::str::FromStr;

    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn checks(now: DateTime<Utc>) -> Checks {
        Checks { now, max_age: Duration::from_secs(60), band: Bps::new(100).unwrap() }
    }

    #[test]
    fn the_real_wire_shapes_parse_exactly() {
        let average: AvgPrice =
            serde_json::from_str(r#"{"mins":5,"price":"3012.34567890","closeTime":1717171717171}"#).unwrap();
        assert_eq!((average.price, average.close_time), (dec("3012.3456789"), 1_717_171_717_171));
        let last: TickerPrice = serde_json::from_str(r#"{"symbol":"ETHEUR","price":"3012.10000000"}"#).unwrap();
        assert_eq!((last.symbol.as_str(), last.price), ("ETHEUR", dec("3012.1")));
        let ticker: CoinbaseTicker = serde_json::from_str(
            r#"{"ask":"3001.02","bid":"3000.98","volume":"5123.1","trade_id":86326522,"price":"3001.00",
                "size":"0.0125","time":"2024-05-01T12:00:00.123456Z","rfq_volume":"0.1"}"#,
        )
        .unwrap();
        assert_eq!((ticker.bid, ticker.ask, ticker.price), (dec("3000.98"), dec("3001.02"), dec("3001")));
        assert_eq!(ticker.time.timestamp_micros(), 1_714_564_800_123_456);
        // A number where a string belongs is not the documented shape.
        assert!(serde_json::from_str::<TickerPrice>(r#"{"symbol":"ETHEUR","price":3012.1}"#).is_err());
    }

    #[test]
    fn a_fresh_rate_within_the_band_is_used() {
        let now = Utc::now();
        let seen = checks(now).check(dec("3000"), dec("3020"), now - chrono::Duration::seconds(59)).unwrap();
        assert_eq!(seen.rate, dec("3000"));
    }

    #[test]
    fn a_stale_rate_is_refused() {
        let now = Utc::now();
        let err = checks(now).check(dec("3000"), dec("3000"), now - chrono::Duration::seconds(61)).unwrap_err();
        assert_eq!(err, SourceError::Stale { age_secs: 61, max_secs: 60 });
    }

    #[test]
    fn a_last_trade_outside_the_band_is_refused() {
        let now = Utc::now();
        // 3030.03 is 100.01 bps above 3000: just outside a 100 bps band.
        let err = checks(now).check(dec("3000"), dec("3030.03"), now).unwrap_err();
        assert!(matches!(err, SourceError::OutOfBand { deviation_bps, .. } if deviation_bps == dec("100.1")), "{err}");
        assert!(checks(now).check(dec("3000"), dec("2970"), now).is_ok(), "exactly 100 bps below is inside");
        assert!(matches!(checks(now).check(Decimal::ZERO, dec("1"), now), Err(SourceError::Malformed(_))));
    }

    #[test]
    fn endpoints_keep_a_base_path_prefix() {
        let base = Url::parse("http://127.0.0.1:9/binance").unwrap();
        let url = endpoint(&base, &["api", "v3", "avgPrice"], &[("symbol", "ETHEUR")]);
        assert_eq!(url.as_str(), "http://127.0.0.1:9/binance/api/v3/avgPrice?symbol=ETHEUR");
        let root = Url::parse("https://api.exchange.coinbase.com").unwrap();
        let url = endpoint(&root, &["products", "ETH-EUR", "ticker"], &[]);
        assert_eq!(url.as_str(), "https://api.exchange.coinbase.com/products/ETH-EUR/ticker");
    }
}

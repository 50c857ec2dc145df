//! FX quotes for wallet checkout: a fiat price turned into an amount of ETH or of the stablecoin.
//!
//! **Sources.** Binance public market data is the primary source: `avgPrice` (a 5-minute average,
//! hard to spike) is the rate, `ticker/price` (the last trade) must lie within the sanity band
//! of it, and `avgPrice`'s `closeTime` (the last trade's time) must be within the maximum age.
//! Coinbase Exchange's public `products/{id}/ticker` is the second source: the mid of its best
//! bid and ask is the rate, its last trade must lie within the band of that mid, and the last
//! trade's `time` must be within the maximum age. (Coinbase's retail `v2/prices/…/spot` and
//! Kraken's `Ticker` carry no timestamp, so their staleness could not be checked.)
//!
//! **Choice.** Both sources are asked at once. Binance's rate is used when it is usable;
//! otherwise (an HTTP error such as 451 from a restricted location or 429, a timeout, a stale
//! or out-of-band answer) Coinbase's. When both are usable they must agree within the maximum
//! divergence, or no quote is given. When neither is usable, no quote is given either:
//! [`FxError::Unavailable`] names each source's reason. A stale rate is never used. After a 429
//! or 418 a source is not asked again until its `Retry-After` has passed.
//!
//! **Markets.** ETH/EUR is Binance `ETHEUR` and Coinbase `ETH-EUR`; ETH/USD is Binance `ETHUSDC`
//! and Coinbase `ETH-USD`. Binance has no ETH/USD market: USDC is taken at par with USD, the
//! same assumption the stablecoin rail makes (one stablecoin = one US dollar), and Coinbase
//! itself quotes its USDC and USD books as one.
//!
//! **Stablecoin.** A USD price converts at par (rate 1, source `par`, no spread: there is no
//! exchange and so no exchange risk). A EUR price converts at the EUR/USD cross of one source's
//! ETH/EUR and ETH/USD rates, both fresh and in band: the rate is EUR per stablecoin,
//! `ETHEUR / ETHUSD`.
//!
//! **Rounding.** The rate is the mid (fiat per whole unit of the asset). The amount is the price
//! at that rate plus the spread, rounded up to the asset's smallest unit: the platform never
//! receives less than the price at the mid rate, and the buyer never pays more than the price
//! plus the spread plus one smallest unit.

mod client;
mod convert;
mod sources;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use shared::money::{Bps, Currency, Money, Wei};

pub use client::FxClient;
pub use convert::convert;
pub use sources::SourceError;

/// What the buyer pays with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Asset {
    /// Native ETH, in wei (18 decimals).
    Eth,
    /// The platform's 6-decimal USD stablecoin, in its base units.
    Stablecoin,
}

impl Asset {
    /// Decimal places of the asset's smallest unit.
    pub fn decimals(self) -> u32 {
        match self {
            Asset::Eth => 18,
            Asset::Stablecoin => 6,
        }
    }
}

/// Where a quote's rate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Source {
    /// Binance public market data (`avgPrice`, banded by `ticker/price`).
    Binance,
    /// Coinbase Exchange public ticker (book mid, banded by the last trade).
    Coinbase,
    /// No exchange: a USD price paid in the USD stablecoin, one for one.
    Par,
}

/// Which way the amount was rounded; stored with the quote so the rule travels with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingRule {
    /// Up to the asset's smallest unit: the platform never receives less than the price.
    Up,
}

/// A price converted into an asset at a fresh rate, payable until `expires_at`.
///
/// Made by [`FxClient::quote`]; the payment service stores it and accepts a payment of `amount`
/// only while `now < expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FxQuote {
    pub asset: Asset,
    /// The fiat price being paid.
    pub fiat: Money,
    /// What the buyer pays, in the asset's smallest unit (serialised as a decimal string).
    pub amount: Wei,
    /// The mid rate: units of `fiat`'s currency per whole unit of the asset.
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
    pub source: Source,
    /// When the rate was fetched.
    pub fetched_at: DateTime<Utc>,
    /// `fetched_at` plus the quote's lifetime.
    pub expires_at: DateTime<Utc>,
    /// The spread included in `amount`, above the mid rate.
    pub spread_bps: Bps,
    pub rounding: RoundingRule,
}

impl FxQuote {
    /// Whether the quote can still be paid at `now`.
    pub fn is_valid_at(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// One source's reason for giving no usable rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{venue}: {error}")]
pub struct SourceFailure {
    /// The source that failed (not `source`: thiserror reserves that name for causes).
    pub venue: Source,
    pub error: SourceError,
}

/// Why no quote was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    /// No source gave a fresh rate within its sanity band (a 503 for the buyer: try again later).
    #[error("no fresh exchange rate is available: {}", list(failures))]
    Unavailable { failures: Vec<SourceFailure> },
    /// Both sources answered but disagree by more than the maximum divergence (a 503 as well).
    #[error(
        "exchange rates disagree: binance {binance}, coinbase {coinbase} ({divergence_bps} bps apart, at most {max})"
    )]
    Disagreement { binance: Decimal, coinbase: Decimal, divergence_bps: Decimal, max: Bps },
    /// Only EUR and USD prices can be quoted.
    #[error("prices in {0} cannot be paid with crypto: only EUR and USD")]
    UnsupportedCurrency(Currency),
    /// A quote is for a positive price.
    #[error("a quote needs a positive price, got {0}")]
    InvalidPrice(Money),
    /// A rate must be positive (sources' answers are checked before they get here).
    #[error("an exchange rate must be positive, got {0}")]
    InvalidRate(Decimal),
}

fn list(failures: &[SourceFailure]) -> String {
    failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

pub type Result<T, E = FxError> = std::result::Result<T, E>;

/// The exchange markets a quote in `currency` reads, as (Binance symbol, Coinbase product).
fn eth_market(currency: Currency) -> Result<(&'static str, &'static str)> {
    match currency {
        Currency::EUR => Ok(("ETHEUR", "ETH-EUR")),
        Currency::USD => Ok(("ETHUSDC", "ETH-USD")),
        other => Err(FxError::UnsupportedCurrency(other)),
    }
}

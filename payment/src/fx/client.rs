//! The FX client: asks both sources, picks the rate, and makes the quote.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, SubsecRound, Utc};
use rust_decimal::Decimal;

use super::{
    Asset, FxError, FxQuote, Result, RoundingRule, Source, SourceFailure, convert, eth_market,
    sources::{self, Checks, Observation, SourceError, deviation_bps},
};
use shared::money::{Bps, Currency, Money};

use crate::config::FxConfig;

/// How long a source that answered 429/418 without `Retry-After` is left alone.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// An exchange that is asked for rates (as opposed to [`Source::Par`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Exchange {
    Binance,
    Coinbase,
}

impl From<Exchange> for Source {
    fn from(exchange: Exchange) -> Self {
        match exchange {
            Exchange::Binance => Source::Binance,
            Exchange::Coinbase => Source::Coinbase,
        }
    }
}

/// Makes FX quotes from Binance, with Coinbase as the second source (see [`crate::fx`]).
///
/// Cheap to share behind an `Arc`; it remembers which source asked to be left alone after a
/// rate limit, so keep one per process.
#[derive(Debug)]
pub struct FxClient {
    http: reqwest::Client,
    config: FxConfig,
    /// Per exchange, the time before which it is not asked (after a 429 or 418).
    backing_off: Mutex<HashMap<Exchange, DateTime<Utc>>>,
}

impl FxClient {
    /// A client with a per-request timeout of `config.request_timeout` that follows no
    /// redirects (a source that redirects is treated as failing).
    pub fn new(config: FxConfig) -> reqwest::Result<Self> {
        shared::chain::install_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Coinbase refuses requests without a User-Agent.
            .user_agent(concat!("Brandmint-FX/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, config, backing_off: Mutex::default() })
    }

    pub fn config(&self) -> &FxConfig {
        &self.config
    }

    /// Quotes `price` in `asset` at a fresh rate, or refuses: never from a stale rate.
    #[tracing::instrument(skip_all, fields(fiat = %price, asset = ?asset))]
    pub async fn quote(&self, price: Money, asset: Asset) -> Result<FxQuote> {
        if price.minor() <= 0 {
            return Err(FxError::InvalidPrice(price));
        }
        let currency = price.currency();
        eth_market(currency)?;
        let (rate, source, spread) = if asset == Asset::Stablecoin && currency == Currency::USD {
            (Decimal::ONE, Source::Par, Bps::ZERO)
        } else {
            let (rate, source) = self.rate(asset, currency).await?;
            // Binance writes 8 decimal places: "3000.00000000" is kept as the same value, "3000".
            (rate.normalize(), source, self.config.spread)
        };
        // Microseconds: what PostgreSQL keeps, so a stored quote reads back equal.
        let fetched_at = Utc::now().trunc_subsecs(6);
        let ttl = chrono::Duration::from_std(self.config.quote_ttl).unwrap_or(chrono::Duration::MAX);
        let expires_at = fetched_at.checked_add_signed(ttl).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let amount = convert(price, asset, rate, spread)?;
        tracing::info!(%source, %rate, %amount, "fx quote");
        Ok(FxQuote {
            asset,
            fiat: price,
            amount,
            rate,
            source,
            fetched_at,
            expires_at,
            spread_bps: spread,
            rounding: RoundingRule::Up,
        })
    }

    /// Asks both exchanges at once and applies the choice rule.
    async fn rate(&self, asset: Asset, currency: Currency) -> Result<(Decimal, Source)> {
        let (binance, coinbase) = tokio::join!(
            self.exchange_rate(Exchange::Binance, asset, currency),
            self.exchange_rate(Exchange::Coinbase, asset, currency),
        );
        choose(binance, coinbase, self.config.max_divergence)
    }

    /// One exchange's rate of `currency` per unit of `asset`, fresh and in band.
    async fn exchange_rate(
        &self,
        exchange: Exchange,
        asset: Asset,
        currency: Currency,
    ) -> Result<Decimal, SourceError> {
        if let Some(until) = self.backing_off_until(exchange) {
            return Err(SourceError::BackingOff { until });
        }
        let result = match asset {
            Asset::Eth => self.observe(exchange, currency).await.map(|seen| seen.rate),
            // EUR per stablecoin = (EUR per ETH) / (USD per ETH), both from this exchange.
            Asset::Stablecoin => {
                let (fiat, usd) = tokio::join!(self.observe(exchange, currency), self.observe(exchange, Currency::USD));
                let (fiat, usd) = (fiat?, usd?);
                fiat.rate
                    .checked_div(usd.rate)
                    .ok_or_else(|| SourceError::Malformed(format!("cannot divide {} by {}", fiat.rate, usd.rate)))
            }
        };
        if let Err(SourceError::RateLimited { retry_after_secs, .. }) = &result {
            let wait = retry_after_secs.map_or(DEFAULT_RETRY_AFTER, Duration::from_secs);
            self.back_off(exchange, wait);
        }
        result
    }

    async fn observe(&self, exchange: Exchange, currency: Currency) -> Result<Observation, SourceError> {
        let (symbol, product) = eth_market(currency).map_err(|e| SourceError::Malformed(e.to_string()))?;
        let checks = Checks { now: Utc::now(), max_age: self.config.max_age, band: self.config.sanity_band };
        match exchange {
            Exchange::Binance => sources::binance(&self.http, &self.config.binance_url, symbol, checks).await,
            Exchange::Coinbase => sources::coinbase(&self.http, &self.config.second_source_url, product, checks).await,
        }
    }

    fn backing_off_until(&self, exchange: Exchange) -> Option<DateTime<Utc>> {
        let mut backing_off = self.backing_off.lock().unwrap_or_else(PoisonError::into_inner);
        match backing_off.get(&exchange) {
            Some(until) if *until > Utc::now() => Some(*until),
            Some(_) => {
                backing_off.remove(&exchange);
                None
            }
            None => None,
        }
    }

    fn back_off(&self, exchange: Exchange, wait: Duration) {
        let wait = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let until = Utc::now().checked_add_signed(wait).unwrap_or(DateTime::<Utc>::MAX_UTC);
        tracing::warn!(exchange = ?exchange, %until, "fx source rate limited; leaving it alone");
        self.backing_off.lock().unwrap_or_else(PoisonError::into_inner).insert(exchange, until);
    }
}

/// Binance when usable, else Coinbase; when both are usable they must agree within
/// `max_divergence` (measured from Binance's rate); when neither is, no rate.
fn choose(
    binance: Result<Decimal, SourceError>,
    coinbase: Result<Decimal, SourceError>,
    max_divergence: Bps,
) -> Result<(Decimal, Source)> {
    match (binance, coinbase) {
        (Ok(binance), Ok(coinbase)) => {
            // Incomparable rates (an overflow) count as disagreeing.
            let divergence_bps = deviation_bps(binance, coinbase).unwrap_or(Decimal::MAX);
            if divergence_bps > Decimal::from(max_divergence.get()) {
                tracing::warn!(%binance, %coinbase, %divergence_bps, "fx sources disagree; no quote");
                return Err(FxError::Disagreement { binance, coinbase, divergence_bps, max: max_divergence });
            }
            Ok((binance, Source::Binance))
        }
        (Ok(binance), Err(error)) => {
            tracing::warn!(%error, "fx second source unusable; quoting from binance without a cross-check");
            Ok((binance, Source::Binance))
        }
        (Err(error), Ok(coinbase)) => {
            tracing::warn!(%error, "binance unusable; quoting from the second source");
            Ok((coinbase, Source::Coinbase))
        }
        (Err(binance), Err(coinbase)) => {
            tracing::warn!(%binance, %coinbase, "no fx source usable; no quote");
            Err(FxError::Unavailable {
                failures: vec![
                    SourceFailure { venue: Source::Binance, error: binance },
                    SourceFailure { venue: Source::Coinbase, error: coinbase },
                ],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn bps(v: u32) -> Bps {
        Bps::new(v).unwrap()
    }

    #[test]
    fn binance_is_preferred_when_both_agree() {
        let chosen = choose(Ok(Decimal::from(3000)), Ok(Decimal::from(3050)), bps(200)).unwrap();
        assert_eq!(chosen, (Decimal::from(3000), Source::Binance));
    }

    #[test]
    fn either_source_alone_is_enough() {
        let chosen = choose(Err(SourceError::Restricted), Ok(Decimal::from(3001)), bps(200)).unwrap();
        assert_eq!(chosen, (Decimal::from(3001), Source::Coinbase));
        let down = SourceError::Transport("timed out".into());
        let chosen = choose(Ok(Decimal::from(3000)), Err(down), bps(200)).unwrap();
        assert_eq!(chosen, (Decimal::from(3000), Source::Binance));
    }

    #[test]
    fn sources_further_apart_than_the_limit_give_no_rate() {
        // 3061 is 203.33… bps above 3000.
        let err = choose(Ok(Decimal::from(3000)), Ok(Decimal::from(3061)), bps(200)).unwrap_err();
        assert!(
            matches!(&err, FxError::Disagreement { divergence_bps, .. } if *divergence_bps == Decimal::new(20334, 2)),
            "{err}"
        );
        assert!(choose(Ok(Decimal::from(3000)), Ok(Decimal::from(3060)), bps(200)).is_ok(), "200 bps is the limit");
    }

    #[test]
    fn no_usable_source_names_both_reasons() {
        let stale = SourceError::Stale { age_secs: 600, max_secs: 60 };
        let err = choose(Err(SourceError::Restricted), Err(stale.clone()), bps(200)).unwrap_err();
        let message = err.to_string();
        assert_eq!(
            err,
            FxError::Unavailable {
                failures: vec![
                    SourceFailure { venue: Source::Binance, error: SourceError::Restricted },
                    SourceFailure { venue: Source::Coinbase, error: stale },
                ]
            }
        );
        assert!(message.contains("binance: refused from this location (HTTP 451)"), "{message}");
        assert!(message.contains("coinbase: stale"), "{message}");
    }
}

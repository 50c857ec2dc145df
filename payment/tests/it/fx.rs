//! FX quotes against the local Binance and Coinbase fakes: the happy path, every fallback, and
//! every refusal. No database needed.

use std::time::Duration;

use fakes::fx::{Failure, FxStub, Venue};
use payment::fx::{Asset, FxClient, FxError, FxQuote, RoundingRule, Source, SourceError, SourceFailure};
use rust_decimal::Decimal;
use shared::money::{Bps, Currency, Money, Wei};

const TEN_MINUTES: Duration = Duration::from_secs(600);

async fn stub_and_client() -> (FxStub, FxClient) {
    let stub = FxStub::start().await.unwrap();
    let client = FxClient::new(config(&stub)).unwrap();
    (stub, client)
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::EUR)
}

async fn quote_eur_in_eth(client: &FxClient, minor: i64) -> Result<FxQuote, FxError> {
    client.quote(eur(minor), Asset::Eth).await
}

#[tokio::test]
async fn a_eur_price_is_quoted_in_eth_at_binances_average_plus_the_spread() {
    let (stub, client) = stub_and_client().await;

    let quote = quote_eur_in_eth(&client, 3_000).await.unwrap();

    // 30.00 EUR at 3000 EUR/ETH is 0.01 ETH; 1 % on top.
    assert_eq!(quote.source, Source::Binance);
    assert_eq!(quote.rate, Decimal::from(3000));
    assert_eq!(quote.amount, Wei::from_u128(10_100_000_000_000_000));
    assert_eq!(quote.spread_bps, Bps::new(100).unwrap());
    assert_eq!(quote.rounding, RoundingRule::Up);
    assert_eq!(quote.expires_at - quote.fetched_at, chrono::Duration::seconds(300));
    assert!(quote.is_valid_at(quote.fetched_at) && !quote.is_valid_at(quote.expires_at));
    // Binance was asked (avgPrice + ticker/price) and so was Coinbase, as the cross-check.
    assert_eq!((stub.requests(Venue::Binance), stub.requests(Venue::Coinbase)), (2, 1));

    let json = serde_json::to_value(&quote).unwrap();
    assert_eq!(json["amount"], "10100000000000000");
    assert_eq!(json["rate"], "3000");
    assert_eq!(
        (json["asset"].as_str(), json["source"].as_str(), json["rounding"].as_str()),
        (Some("eth"), Some("binance"), Some("up"))
    );
    let back: FxQuote = serde_json::from_value(json).unwrap();
    assert_eq!(back, quote);
}

#[tokio::test]
async fn a_usd_price_is_quoted_in_eth_from_the_usdc_market() {
    let (_stub, client) = stub_and_client().await;

    let quote = client.quote(Money::new(3_300, Currency::USD), Asset::Eth).await.unwrap();

    assert_eq!((quote.source, quote.rate), (Source::Binance, Decimal::from(3300)));
    assert_eq!(quote.amount, Wei::from_u128(10_100_000_000_000_000));
}

#[tokio::test]
async fn binance_451_falls_back_to_the_second_source() {
    let (stub, client) = stub_and_client().await;
    stub.fail(Venue::Binance, Failure::Restricted);
    stub.set_price(Venue::Coinbase, Currency::EUR, Decimal::from(3010));

    let quote = quote_eur_in_eth(&client, 3_010).await.unwrap();

    assert_eq!((quote.source, quote.rate), (Source::Coinbase, Decimal::from(3010)));
    assert_eq!(quote.amount, Wei::from_u128(10_100_000_000_000_000));
}

#[tokio::test]
async fn binance_429_falls_back_and_binance_is_left_alone_until_retry_after() {
    let (stub, client) = stub_and_client().await;
    stub.fail(Venue::Binance, Failure::RateLimited { retry_after_secs: 120 });

    assert_eq!(quote_eur_in_eth(&client, 1_000).await.unwrap().source, Source::Coinbase);
    let asked = stub.requests(Venue::Binance);
    stub.recover(Venue::Binance);

    // Within Retry-After, Binance is not asked at all, even though it would answer now.
    assert_eq!(quote_eur_in_eth(&client, 1_000).await.unwrap().source, Source::Coinbase);
    assert_eq!(stub.requests(Venue::Binance), asked);
}

#[tokio::test]
async fn both_sources_failing_refuses_the_quote_naming_both_reasons() {
    let (stub, client) = stub_and_client().await;
    stub.fail(Venue::Binance, Failure::Restricted);
    stub.fail(Venue::Coinbase, Failure::ServerError);

    let err = quote_eur_in_eth(&client, 1_000).await.unwrap_err();

    let FxError::Unavailable { failures } = &err else { panic!("expected Unavailable, got {err:?}") };
    assert_eq!(failures[0], SourceFailure { venue: Source::Binance, error: SourceError::Restricted });
    assert!(
        matches!(&failures[1], SourceFailure { venue: Source::Coinbase, error: SourceError::Status { status: 500, body } }
            if body.contains("Internal server error")),
        "{failures:?}"
    );
    let message = err.to_string();
    assert!(message.starts_with("no fresh exchange rate is available"), "{message}");
    assert!(message.contains("binance: refused from this location (HTTP 451)"), "{message}");
    assert!(message.contains("coinbase: HTTP 500"), "{message}");
}

#[tokio::test]
async fn a_stale_binance_rate_is_not_used_and_stale_everywhere_gives_no_quote() {
    let (stub, client) = stub_and_client().await;
    stub.set_trade_age(Venue::Binance, TEN_MINUTES);
    stub.set_price(Venue::Coinbase, Currency::EUR, Decimal::from(3005));

    let quote = quote_eur_in_eth(&client, 1_000).await.unwrap();
    assert_eq!((quote.source, quote.rate), (Source::Coinbase, Decimal::from(3005)));

    stub.set_trade_age(Venue::Coinbase, TEN_MINUTES);
    let err = quote_eur_in_eth(&client, 1_000).await.unwrap_err();
    let FxError::Unavailable { failures } = &err else { panic!("expected Unavailable, got {err:?}") };
    assert_eq!(failures.len(), 2);
    for failure in failures {
        assert!(matches!(failure.error, SourceError::Stale { age_secs: 599..=601, max_secs: 60 }), "{failure}");
    }
}

#[tokio::test]
async fn a_last_trade_outside_binances_band_falls_back_to_the_second_source() {
    let (stub, client) = stub_and_client().await;
    // 3100 is 333 bps above the 3000 average: a spike, outside the 100 bps band.
    stub.set_last_trade(Venue::Binance, Currency::EUR, Decimal::from(3100));

    let quote = quote_eur_in_eth(&client, 1_000).await.unwrap();

    assert_eq!(quote.source, Source::Coinbase);

    stub.set_last_trade(Venue::Coinbase, Currency::EUR, Decimal::from(2900));
    let err = quote_eur_in_eth(&client, 1_000).await.unwrap_err();
    let FxError::Unavailable { failures } = &err else { panic!("expected Unavailable, got {err:?}") };
    assert!(failures.iter().all(|f| matches!(f.error, SourceError::OutOfBand { .. })), "{err}");
}

#[tokio::test]
async fn disagreeing_sources_give_no_quote() {
    let (stub, client) = stub_and_client().await;
    // 3075 is 250 bps above Binance's 3000; at most 200 are allowed.
    stub.set_price(Venue::Coinbase, Currency::EUR, Decimal::from(3075));

    let err = quote_eur_in_eth(&client, 1_000).await.unwrap_err();

    assert_eq!(
        err,
        FxError::Disagreement {
            binance: Decimal::from(3000),
            coinbase: Decimal::from(3075),
            divergence_bps: Decimal::from(250),
            max: Bps::new(200).unwrap(),
        }
    );

    // Within the limit, Binance's rate is used.
    stub.set_price(Venue::Coinbase, Currency::EUR, Decimal::from(3060));
    assert_eq!(quote_eur_in_eth(&client, 1_000).await.unwrap().rate, Decimal::from(3000));
}

#[tokio::test]
async fn a_source_that_does_not_answer_in_time_counts_as_failing() {
    let (stub, client) = stub_and_client().await;
    stub.fail(Venue::Binance, Failure::Timeout);

    let quote = quote_eur_in_eth(&client, 1_000).await.unwrap();
    assert_eq!(quote.source, Source::Coinbase);

    stub.fail(Venue::Coinbase, Failure::RateLimited { retry_after_secs: 30 });
    let err = quote_eur_in_eth(&client, 1_000).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("binance: no answer: timed out"), "{message}");
    assert!(message.contains("coinbase: rate limited (HTTP 429), retry after 30 s"), "{message}");
}

#[tokio::test]
async fn a_eur_price_in_stablecoin_converts_at_one_sources_eur_usd_cross() {
    let (stub, client) = stub_and_client().await;
    // 3000 EUR/ETH and 3750 USD/ETH: 0.8 EUR per dollar.
    stub.set_price(Venue::Binance, Currency::USD, Decimal::from(3750));
    stub.set_price(Venue::Coinbase, Currency::USD, Decimal::from(3750));

    let quote = client.quote(eur(1_000), Asset::Stablecoin).await.unwrap();

    // 10.00 EUR is 12.50 dollars; 1 % on top is 12.625 units of a 6-decimal token.
    assert_eq!((quote.source, quote.rate), (Source::Binance, Decimal::new(8, 1)));
    assert_eq!(quote.amount, Wei::from_u128(12_625_000));

    // A stale USD market on Binance makes its cross unusable: Coinbase's is used.
    stub.set_price(Venue::Coinbase, Currency::USD, Decimal::from(3760));
    stub.set_trade_age(Venue::Binance, TEN_MINUTES);
    let quote = client.quote(eur(1_000), Asset::Stablecoin).await.unwrap();
    assert_eq!(quote.source, Source::Coinbase);
    assert_eq!(quote.rate, Decimal::from(3000) / Decimal::from(3760));
}

#[tokio::test]
async fn a_usd_price_in_stablecoin_is_at_par_without_asking_any_exchange() {
    let (stub, client) = stub_and_client().await;
    stub.fail(Venue::Binance, Failure::Restricted);
    stub.fail(Venue::Coinbase, Failure::ServerError);

    let quote = client.quote(Money::new(1_234, Currency::USD), Asset::Stablecoin).await.unwrap();

    assert_eq!((quote.source, quote.rate, quote.spread_bps), (Source::Par, Decimal::ONE, Bps::ZERO));
    assert_eq!(quote.amount, Wei::from_u128(12_340_000));
    assert_eq!((stub.requests(Venue::Binance), stub.requests(Venue::Coinbase)), (0, 0));
}

#[tokio::test]
async fn other_currencies_and_non_positive_prices_are_refused_before_any_request() {
    let (stub, client) = stub_and_client().await;

    let jpy = client.quote(Money::new(1_500, Currency::JPY), Asset::Eth).await.unwrap_err();
    assert_eq!(jpy, FxError::UnsupportedCurrency(Currency::JPY));
    let zero = client.quote(eur(0), Asset::Eth).await.unwrap_err();
    assert_eq!(zero, FxError::InvalidPrice(eur(0)));
    assert_eq!((stub.requests(Venue::Binance), stub.requests(Venue::Coinbase)), (0, 0));
}

/// The platform's default FX settings with both sources pointed at `stub` and a 1-second request
/// timeout (so a timeout costs a test one second, not three).
fn config(stub: &FxStub) -> payment::config::FxConfig {
    let bps = |v| shared::money::Bps::new(v).unwrap();
    payment::config::FxConfig {
        binance_url: stub.url(),
        second_source_url: stub.url(),
        quote_ttl: std::time::Duration::from_secs(300),
        spread: bps(100),
        max_age: std::time::Duration::from_secs(60),
        sanity_band: bps(100),
        max_divergence: bps(200),
        request_timeout: std::time::Duration::from_secs(1),
    }
}

//! The conversion rule, in one place: price at the mid rate, plus the spread, rounded up.

use alloy::primitives::U256;
use rust_decimal::Decimal;

use super::{Asset, FxError, Result};
use shared::money::{Bps, Money, Wei};

/// `price` in `asset`'s smallest unit at `rate` (units of the price's currency per whole unit of
/// the asset), plus `spread`, rounded up.
///
/// Exact integer arithmetic: with the rate written as `m / 10^k` and the currency's exponent `e`,
///
/// ```text
/// amount = ceil( minor · 10^decimals · 10^k · (10⁴ + spread) / (10^e · m · 10⁴) )
/// ```
///
/// The numerator is below 2⁶³ · 10⁴⁶ · 2·10⁴ < 2²³², so nothing overflows a `U256` for any
/// price and any `Decimal` rate.
pub fn convert(price: Money, asset: Asset, rate: Decimal, spread: Bps) -> Result<Wei> {
    if price.minor() <= 0 {
        return Err(FxError::InvalidPrice(price));
    }
    if rate <= Decimal::ZERO {
        return Err(FxError::InvalidRate(rate));
    }
    let minor = U256::from(price.minor().unsigned_abs());
    let mantissa = U256::from(rate.mantissa().unsigned_abs());
    let ten = U256::from(10);
    let bps_denominator = U256::from(Bps::DENOMINATOR);
    let numerator =
        minor * ten.pow(U256::from(asset.decimals() + rate.scale())) * (bps_denominator + U256::from(spread.get()));
    let denominator = ten.pow(U256::from(price.currency().exponent())) * mantissa * bps_denominator;
    Ok(Wei::new(numerator.div_ceil(denominator)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;
    use shared::money::Currency;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn bps(v: u32) -> Bps {
        Bps::new(v).unwrap()
    }

    #[test]
    fn thirty_euros_at_three_thousand_is_a_hundredth_of_an_ether() {
        let price = Money::new(3_000, Currency::EUR);
        assert_eq!(convert(price, Asset::Eth, dec("3000"), Bps::ZERO).unwrap(), Wei::from_u128(10_000_000_000_000_000));
        // 1 % spread: exactly 1 % more.
        assert_eq!(convert(price, Asset::Eth, dec("3000"), bps(100)).unwrap(), Wei::from_u128(10_100_000_000_000_000));
    }

    #[test]
    fn a_rate_that_does_not_divide_evenly_rounds_up_by_at_most_one_wei() {
        // 10.00 EUR at 3000.01 EUR/ETH = 3333322222259259.2592… wei.
        let price = Money::new(1_000, Currency::EUR);
        assert_eq!(
            convert(price, Asset::Eth, dec("3000.01"), Bps::ZERO).unwrap(),
            Wei::from_u128(3_333_322_222_259_260)
        );
    }

    #[test]
    fn stablecoin_amounts_have_six_decimals() {
        // 12.34 USD at par is 12.340000 units.
        let usd = Money::new(1_234, Currency::USD);
        assert_eq!(convert(usd, Asset::Stablecoin, Decimal::ONE, Bps::ZERO).unwrap(), Wei::from_u128(12_340_000));
        // 10.00 EUR at 0.9 EUR per dollar is 11.111111… → 11.111112 units, rounded up.
        let eur = Money::new(1_000, Currency::EUR);
        assert_eq!(convert(eur, Asset::Stablecoin, dec("0.9"), Bps::ZERO).unwrap(), Wei::from_u128(11_111_112));
        // With 2 % on top: 11.333333… → 11.333334.
        assert_eq!(convert(eur, Asset::Stablecoin, dec("0.9"), bps(200)).unwrap(), Wei::from_u128(11_333_334));
    }

    #[test]
    fn currencies_without_cents_use_their_own_exponent() {
        // 1500 JPY at 450000 JPY/ETH: 1/300 ETH, rounded up.
        let price = Money::new(1_500, Currency::JPY);
        assert_eq!(
            convert(price, Asset::Eth, dec("450000"), Bps::ZERO).unwrap(),
            Wei::from_u128(3_333_333_333_333_334)
        );
    }

    #[test]
    fn zero_negative_prices_and_rates_are_refused() {
        let price = Money::new(100, Currency::EUR);
        assert!(matches!(
            convert(Money::zero(Currency::EUR), Asset::Eth, dec("1"), Bps::ZERO),
            Err(FxError::InvalidPrice(_))
        ));
        assert!(matches!(
            convert(Money::new(-1, Currency::EUR), Asset::Eth, dec("1"), Bps::ZERO),
            Err(FxError::InvalidPrice(_))
        ));
        assert_eq!(convert(price, Asset::Eth, Decimal::ZERO, Bps::ZERO), Err(FxError::InvalidRate(Decimal::ZERO)));
        assert_eq!(convert(price, Asset::Eth, dec("-3000"), Bps::ZERO), Err(FxError::InvalidRate(dec("-3000"))));
    }

    #[test]
    fn the_largest_price_at_the_most_precise_rate_does_not_overflow() {
        let price = Money::new(i64::MAX, Currency::EUR);
        let tiny = Decimal::from_i128_with_scale(1, 28);
        let huge = Decimal::MAX;
        assert!(convert(price, Asset::Eth, tiny, Bps::MAX).is_ok());
        assert!(convert(price, Asset::Eth, huge, Bps::MAX).unwrap() > Wei::ZERO);
    }

    /// Any positive rate with up to 12 decimal places, from 10⁻¹² to 10¹⁸.
    fn any_rate() -> impl Strategy<Value = Decimal> {
        (1_i64..1_000_000_000_000_000_000, 0_u32..=12)
            .prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
            .prop_filter("positive", |rate| *rate > Decimal::ZERO)
    }

    fn any_asset() -> impl Strategy<Value = Asset> {
        prop_oneof![Just(Asset::Eth), Just(Asset::Stablecoin)]
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        prop_oneof![Just(Currency::EUR), Just(Currency::USD), Just(Currency::JPY)]
    }

    proptest! {
        /// With mid = price / rate in smallest units, exactly as a fraction N / D:
        /// mid ≤ amount (the platform gets at least the price) and
        /// amount − 1 < mid · (1 + spread) (the buyer pays at most the spread plus one unit).
        #[test]
        fn the_amount_lies_between_the_mid_and_the_mid_plus_spread_plus_one_unit(
            minor in 1_i64..=i64::MAX,
            currency in any_currency(),
            rate in any_rate(),
            asset in any_asset(),
            spread in 0_u32..=10_000,
        ) {
            let price = Money::new(minor, currency);
            let amount = convert(price, asset, rate, bps(spread)).unwrap().get();
            let ten = U256::from(10);
            // mid = minor · 10^decimals / (10^e · rate), rate = mantissa / 10^scale.
            let n = U256::from(minor.unsigned_abs()) * ten.pow(U256::from(asset.decimals() + rate.scale()));
            let d = ten.pow(U256::from(currency.exponent())) * U256::from(rate.mantissa().unsigned_abs());
            prop_assert!(amount * d >= n, "below the mid rate");
            let with_spread = n * U256::from(10_000 + spread);
            prop_assert!((amount - U256::from(1)) * d * U256::from(10_000) < with_spread, "above mid + spread + 1");
        }

        #[test]
        fn a_wider_spread_never_costs_the_buyer_less(
            minor in 1_i64..1_000_000_000,
            rate in any_rate(),
            asset in any_asset(),
            narrow in 0_u32..=10_000,
            extra in 0_u32..=10_000,
        ) {
            let wide = narrow.saturating_add(extra).min(10_000);
            let price = Money::new(minor, Currency::EUR);
            let narrow_amount = convert(price, asset, rate, bps(narrow)).unwrap();
            let wide_amount = convert(price, asset, rate, bps(wide)).unwrap();
            prop_assert!(narrow_amount <= wide_amount);
        }
    }
}

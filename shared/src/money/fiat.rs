//! Fiat amounts in integer minor units.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Bps, Currency, MoneyError, Result, Rounding, div_round_i128};

/// An amount of fiat money: integer minor units (cents) of one currency.
///
/// Signed, because refunds and adjustments are negative amounts; prices are checked to be
/// non-negative where they enter the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// The amount in minor units (cents for USD, yen for JPY).
    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    pub fn checked_add(self, other: Money) -> Result<Money> {
        self.same_currency(other)?;
        let minor = self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money> {
        self.same_currency(other)?;
        let minor = self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// The price of `quantity` units at this unit price.
    pub fn checked_mul(self, quantity: u32) -> Result<Money> {
        let minor = self.minor.checked_mul(i64::from(quantity)).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(minor, self.currency))
    }

    /// The `bps` share of this amount, rounded as asked. Never overflows: the share of an
    /// `i64` amount is at most the amount itself.
    pub fn share(self, bps: Bps, rounding: Rounding) -> Money {
        let exact = i128::from(self.minor) * i128::from(bps.get());
        let minor = div_round_i128(exact, i128::from(Bps::DENOMINATOR), rounding);
        // |minor| <= |self.minor|, so it fits back into an i64.
        Money::new(i64::try_from(minor).unwrap_or(self.minor), self.currency)
    }

    /// Splits the amount into the `bps` share and the rest, which always add up to the whole.
    pub fn split(self, bps: Bps, rounding: Rounding) -> (Money, Money) {
        let share = self.share(bps, rounding);
        (share, Money::new(self.minor - share.minor, self.currency))
    }

    /// Parses a decimal amount in major units (`"12.34"` USD → 1234 minor). More decimal places
    /// than the currency has are refused rather than rounded.
    pub fn from_major_str(amount: &str, currency: Currency) -> Result<Money> {
        let invalid = || MoneyError::InvalidAmount(amount.to_owned());
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let exponent = currency.exponent() as usize;
        let valid_part = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !valid_part(whole) || !valid_part(fraction) || fraction.len() > exponent {
            return Err(invalid());
        }
        if digits.contains('.') && fraction.is_empty() {
            return Err(invalid());
        }
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let fraction_minor: i64 = format!("{fraction:0<exponent$}").parse().unwrap_or(0);
        let minor = whole
            .checked_mul(currency.minor_per_major())
            .and_then(|m| m.checked_add(fraction_minor))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(if negative { -minor } else { minor }, currency))
    }

    fn same_currency(self, other: Money) -> Result<()> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency })
        }
    }
}

impl fmt::Display for Money {
    /// `12.34 USD`, `-0.05 EUR`, `1500 JPY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent() as usize;
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exponent == 0 {
            return write!(f, "{sign}{abs} {}", self.currency);
        }
        let per_major = self.currency.minor_per_major().unsigned_abs();
        write!(f, "{sign}{}.{:0exponent$} {}", abs / per_major, abs % per_major, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::USD)
    }

    #[test]
    fn adding_different_currencies_is_refused() {
        let err = usd(100).checked_add(Money::new(100, Currency::EUR)).unwrap_err();
        assert_eq!(err, MoneyError::CurrencyMismatch { left: Currency::USD, right: Currency::EUR });
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MAX / 2 + 1).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_sub(usd(1)), Err(MoneyError::Overflow));
    }

    #[test]
    fn shares_round_in_the_stated_direction() {
        let fee = Bps::new(250).unwrap(); // 2.5 %
        // 2.5 % of $0.99 is 2.475 cents.
        assert_eq!(usd(99).share(fee, Rounding::Floor).minor(), 2);
        assert_eq!(usd(99).share(fee, Rounding::Ceil).minor(), 3);
        assert_eq!(usd(99).share(fee, Rounding::HalfEven).minor(), 2);
        // Exactly half a cent: ties go to even.
        let half = Bps::new(5_000).unwrap();
        assert_eq!(usd(1).share(half, Rounding::HalfEven).minor(), 0);
        assert_eq!(usd(3).share(half, Rounding::HalfEven).minor(), 2);
        // Negative amounts round towards -inf on floor.
        assert_eq!(usd(-99).share(fee, Rounding::Floor).minor(), -3);
        assert_eq!(usd(-99).share(fee, Rounding::Ceil).minor(), -2);
    }

    #[test]
    fn display_uses_the_currency_minor_units() {
        assert_eq!(usd(1234).to_string(), "12.34 USD");
        assert_eq!(usd(-5).to_string(), "-0.05 USD");
        assert_eq!(Money::new(1500, Currency::JPY).to_string(), "1500 JPY");
        assert_eq!(Money::new(1, "KWD".parse().unwrap()).to_string(), "0.001 KWD");
    }

    #[test]
    fn major_unit_strings_parse_exactly() {
        assert_eq!(Money::from_major_str("12.34", Currency::USD).unwrap(), usd(1234));
        assert_eq!(Money::from_major_str("12.3", Currency::USD).unwrap(), usd(1230));
        assert_eq!(Money::from_major_str("12", Currency::USD).unwrap(), usd(1200));
        assert_eq!(Money::from_major_str("-0.05", Currency::USD).unwrap(), usd(-5));
        assert_eq!(Money::from_major_str("1500", Currency::JPY).unwrap().minor(), 1500);
        for bad in ["12.345", "1.2.3", "", ".5", "5.", "1e3", "12,34", " 1", "+1"] {
            assert!(Money::from_major_str(bad, Currency::USD).is_err(), "{bad}");
        }
        assert!(Money::from_major_str("1.5", Currency::JPY).is_err());
    }

    proptest! {
        #[test]
        fn add_then_sub_is_identity(a in -1_i64 << 60..1_i64 << 60, b in -1_i64 << 60..1_i64 << 60) {
            let sum = usd(a).checked_add(usd(b)).unwrap();
            prop_assert_eq!(sum.checked_sub(usd(b)).unwrap(), usd(a));
            prop_assert_eq!(sum, usd(b).checked_add(usd(a)).unwrap());
        }

        #[test]
        fn checked_arithmetic_agrees_with_wide_integers(a: i64, b: i64, q: u32) {
            let wide_sum = i128::from(a) + i128::from(b);
            prop_assert_eq!(usd(a).checked_add(usd(b)).ok().map(Money::minor).map(i128::from),
                i64::try_from(wide_sum).ok().map(i128::from));
            let wide_product = i128::from(a) * i128::from(q);
            prop_assert_eq!(usd(a).checked_mul(q).ok().map(Money::minor).map(i128::from),
                i64::try_from(wide_product).ok().map(i128::from));
        }

        #[test]
        fn a_split_always_adds_up_to_the_whole(a: i64, bps in 0_u32..=10_000) {
            let bps = Bps::new(bps).unwrap();
            for rounding in [Rounding::Floor, Rounding::Ceil, Rounding::HalfEven] {
                let (share, rest) = usd(a).split(bps, rounding);
                prop_assert_eq!(i128::from(share.minor()) + i128::from(rest.minor()), i128::from(a));
            }
        }

        #[test]
        fn floor_and_ceil_bracket_the_exact_share(a: i64, bps in 0_u32..=10_000) {
            let bps = Bps::new(bps).unwrap();
            let exact = i128::from(a) * i128::from(bps.get());
            let floor = i128::from(usd(a).share(bps, Rounding::Floor).minor());
            let ceil = i128::from(usd(a).share(bps, Rounding::Ceil).minor());
            let nearest = i128::from(usd(a).share(bps, Rounding::HalfEven).minor());
            prop_assert!(floor * 10_000 <= exact && exact <= ceil * 10_000);
            prop_assert!(ceil - floor <= 1);
            prop_assert_eq!(ceil == floor, exact % 10_000 == 0);
            prop_assert!((nearest * 10_000 - exact).abs() <= 5_000);
        }

        #[test]
        fn display_and_parse_round_trip(a in -1_i64 << 50..1_i64 << 50) {
            let money = usd(a);
            let text = money.to_string();
            let major = text.trim_end_matches(" USD");
            prop_assert_eq!(Money::from_major_str(major, Currency::USD).unwrap(), money);
        }
    }
}

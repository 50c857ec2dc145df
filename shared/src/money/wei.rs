//! Base units of ETH or of an ERC-20, as `U256`, stored as `NUMERIC(78,0)`.

use std::{fmt, str::FromStr};

use alloy::primitives::U256;
use bigdecimal::{
    BigDecimal,
    num_bigint::{BigInt, Sign},
};
use serde::{Deserialize, Serialize};
use sqlx::{
    Decode, Encode, Postgres, Type,
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgArgumentBuffer, PgTypeInfo, PgValueRef},
};

use super::{Bps, MoneyError, Result, Rounding};

/// An amount in a token's smallest unit: wei for ETH, 10⁻⁶ for a 6-decimal stablecoin.
///
/// Serialised as a decimal string (JSON numbers cannot carry 256 bits) and stored as
/// `NUMERIC(78,0)`, which holds every `U256` (2²⁵⁶ − 1 has 78 digits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Wei(U256);

impl Wei {
    pub const ZERO: Wei = Wei(U256::ZERO);
    pub const MAX: Wei = Wei(U256::MAX);

    pub const fn new(value: U256) -> Self {
        Self(value)
    }

    pub fn from_u128(value: u128) -> Self {
        Self(U256::from(value))
    }

    pub fn get(self) -> U256 {
        self.0
    }

    pub fn checked_add(self, other: Wei) -> Result<Wei> {
        self.0.checked_add(other.0).map(Wei).ok_or(MoneyError::Overflow)
    }

    pub fn checked_sub(self, other: Wei) -> Result<Wei> {
        self.0.checked_sub(other.0).map(Wei).ok_or(MoneyError::Underflow)
    }

    pub fn checked_mul(self, factor: u64) -> Result<Wei> {
        self.0.checked_mul(U256::from(factor)).map(Wei).ok_or(MoneyError::Overflow)
    }

    /// The `bps` share of this amount, rounded as asked. Exact for every `U256`: the amount is
    /// split into `q·10⁴ + r` so no intermediate product can overflow.
    pub fn share(self, bps: Bps, rounding: Rounding) -> Wei {
        let denominator = U256::from(Bps::DENOMINATOR);
        let bps = U256::from(bps.get());
        let (q, r) = (self.0 / denominator, self.0 % denominator);
        // q·bps <= self.0 and r·bps < 10⁸: neither overflows.
        let base = q * bps;
        let partial = r * bps;
        let (whole, remainder) = (partial / denominator, partial % denominator);
        let round_up = match rounding {
            Rounding::Floor => false,
            Rounding::Ceil => !remainder.is_zero(),
            Rounding::HalfEven => {
                let twice = remainder * U256::from(2);
                twice > denominator || (twice == denominator && (base + whole).bit(0))
            }
        };
        Wei(base + whole + U256::from(u8::from(round_up)))
    }

    /// Splits into the `bps` share and the rest; the two always add up to the whole.
    pub fn split(self, bps: Bps, rounding: Rounding) -> (Wei, Wei) {
        let share = self.share(bps, rounding);
        (share, Wei(self.0 - share.0))
    }

    fn to_big_decimal(self) -> BigDecimal {
        let digits = BigInt::from_bytes_be(Sign::Plus, &self.0.to_be_bytes::<32>());
        BigDecimal::new(digits, 0)
    }

    fn try_from_big_decimal(value: &BigDecimal) -> Result<Wei> {
        let invalid = || MoneyError::InvalidAmount(value.to_string());
        if !value.is_integer() {
            return Err(invalid());
        }
        let (digits, _) = value.with_scale(0).into_bigint_and_exponent();
        let (sign, bytes) = digits.to_bytes_be();
        if sign == Sign::Minus {
            return Err(MoneyError::Underflow);
        }
        U256::try_from_be_slice(&bytes).map(Wei).ok_or(MoneyError::Overflow)
    }
}

impl From<U256> for Wei {
    fn from(value: U256) -> Self {
        Self(value)
    }
}

impl From<Wei> for U256 {
    fn from(value: Wei) -> Self {
        value.0
    }
}

impl FromStr for Wei {
    type Err = MoneyError;
    /// Decimal digits only: no sign, no hex, no exponent, no fraction.
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MoneyError::InvalidAmount(s.to_owned()));
        }
        U256::from_str_radix(s, 10).map(Wei).map_err(|_| MoneyError::Overflow)
    }
}

impl TryFrom<String> for Wei {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Wei> for String {
    fn from(value: Wei) -> Self {
        value.0.to_string()
    }
}

impl fmt::Display for Wei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Type<Postgres> for Wei {
    fn type_info() -> PgTypeInfo {
        <BigDecimal as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <BigDecimal as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for Wei {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <BigDecimal as Encode<'_, Postgres>>::encode_by_ref(&self.to_big_decimal(), buf)
    }
}

impl<'r> Decode<'r, Postgres> for Wei {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let decimal = <BigDecimal as Decode<'r, Postgres>>::decode(value)?;
        Ok(Wei::try_from_big_decimal(&decimal)?)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn bps(v: u32) -> Bps {
        Bps::new(v).unwrap()
    }

    #[test]
    fn royalty_of_one_ether_at_250_bps() {
        let one_eth = Wei::from_u128(1_000_000_000_000_000_000);
        assert_eq!(one_eth.share(bps(250), Rounding::Floor), Wei::from_u128(25_000_000_000_000_000));
    }

    #[test]
    fn shares_of_the_largest_amount_do_not_overflow() {
        assert_eq!(Wei::MAX.share(Bps::MAX, Rounding::Ceil), Wei::MAX);
        assert_eq!(Wei::MAX.share(Bps::ZERO, Rounding::Ceil), Wei::ZERO);
        let half = Wei::MAX.share(bps(5_000), Rounding::Floor);
        assert_eq!(half.get(), U256::MAX / U256::from(2));
    }

    #[test]
    fn arithmetic_refuses_overflow_and_underflow() {
        assert_eq!(Wei::MAX.checked_add(Wei::from_u128(1)), Err(MoneyError::Overflow));
        assert_eq!(Wei::ZERO.checked_sub(Wei::from_u128(1)), Err(MoneyError::Underflow));
        assert_eq!(Wei::MAX.checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn parsing_accepts_plain_decimal_digits_only() {
        assert_eq!("0".parse::<Wei>().unwrap(), Wei::ZERO);
        assert_eq!(Wei::MAX.to_string().parse::<Wei>().unwrap(), Wei::MAX);
        for bad in [
            "",
            "-1",
            "0x10",
            "1e18",
            "1.5",
            " 1",
            "115792089237316195423570985008687907853269984665640564039457584007913129639936",
        ] {
            assert!(bad.parse::<Wei>().is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&Wei::from_u128(7)).unwrap(), "\"7\"");
        assert!(serde_json::from_str::<Wei>("7").is_err());
    }

    #[test]
    fn numeric_conversion_refuses_fractions_and_negatives() {
        let decimal = |s: &str| BigDecimal::from_str(s).unwrap();
        assert_eq!(Wei::try_from_big_decimal(&decimal("1000")).unwrap(), Wei::from_u128(1000));
        assert_eq!(Wei::try_from_big_decimal(&decimal("1000.000")).unwrap(), Wei::from_u128(1000));
        assert_eq!(Wei::try_from_big_decimal(&decimal("1e3")).unwrap(), Wei::from_u128(1000));
        assert!(Wei::try_from_big_decimal(&decimal("1.5")).is_err());
        assert_eq!(Wei::try_from_big_decimal(&decimal("-1")), Err(MoneyError::Underflow));
        let too_big = decimal(&format!("{}0", U256::MAX));
        assert_eq!(Wei::try_from_big_decimal(&too_big), Err(MoneyError::Overflow));
    }

    fn any_u256() -> impl Strategy<Value = U256> {
        any::<[u8; 32]>().prop_map(U256::from_be_bytes)
    }

    proptest! {
        #[test]
        fn numeric_round_trip_is_exact(v in any_u256()) {
            let wei = Wei::new(v);
            prop_assert_eq!(Wei::try_from_big_decimal(&wei.to_big_decimal()).unwrap(), wei);
        }

        #[test]
        fn a_split_always_adds_up_to_the_whole(v in any_u256(), b in 0_u32..=10_000) {
            for rounding in [Rounding::Floor, Rounding::Ceil, Rounding::HalfEven] {
                let (share, rest) = Wei::new(v).split(bps(b), rounding);
                prop_assert_eq!(share.checked_add(rest).unwrap(), Wei::new(v));
            }
        }

        #[test]
        fn shares_match_wide_arithmetic(v: u128, b in 0_u32..=10_000) {
            // For amounts below 2^128 the exact product fits in a U256: compare against it.
            let exact = U256::from(v) * U256::from(b);
            let ten_k = U256::from(10_000);
            let floor = Wei::from_u128(v).share(bps(b), Rounding::Floor).get();
            let ceil = Wei::from_u128(v).share(bps(b), Rounding::Ceil).get();
            let nearest = Wei::from_u128(v).share(bps(b), Rounding::HalfEven).get();
            prop_assert_eq!(floor, exact / ten_k);
            prop_assert_eq!(ceil, exact.div_ceil(ten_k));
            let remainder = exact % ten_k;
            let expected_nearest = if remainder * U256::from(2) > ten_k
                || (remainder * U256::from(2) == ten_k && floor.bit(0)) { floor + U256::from(1) } else { floor };
            prop_assert_eq!(nearest, expected_nearest);
        }

        #[test]
        fn string_round_trip(v in any_u256()) {
            let wei = Wei::new(v);
            prop_assert_eq!(wei.to_string().parse::<Wei>().unwrap(), wei);
        }
    }
}

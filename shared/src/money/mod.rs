//! Exact money.
//!
//! Fiat is [`Money`]: integer minor units of an ISO 4217 [`Currency`]. Crypto is [`Wei`]: integer
//! base units of ETH or of any ERC-20 (its smallest unit), a `U256` stored as `NUMERIC(78,0)`.
//! Shares and fees are [`Bps`]. No floats anywhere; every division takes a [`Rounding`], so
//! the direction of every rounding is written where it happens.

mod bps;
mod currency;
mod fiat;
mod wei;

pub use bps::Bps;
pub use currency::Currency;
pub use fiat::Money;
pub use wei::Wei;

/// Which way a division that does not come out even is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Towards negative infinity (the payer's favour when computing a charge).
    Floor,
    /// Towards positive infinity (the platform never undercharges).
    Ceil,
    /// To the nearest, ties to even (banker's rounding, for reporting).
    HalfEven,
}

/// Why a money operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Two amounts of different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    /// The result does not fit the amount type.
    #[error("amount overflow")]
    Overflow,
    /// The result would be negative where amounts cannot be.
    #[error("amount underflow")]
    Underflow,
    /// Basis points above 10,000 (100 %).
    #[error("basis points must be between 0 and 10000, got {0}")]
    BpsOutOfRange(u32),
    /// Not an ISO 4217 currency with minor units.
    #[error("unknown or unsupported currency `{0}`")]
    UnknownCurrency(String),
    /// A decimal amount that is not a valid amount of its currency or token.
    #[error("invalid amount `{0}`")]
    InvalidAmount(String),
}

pub type Result<T, E = MoneyError> = std::result::Result<T, E>;

/// `numerator / denominator` of signed integers, rounded as asked. `denominator > 0`.
pub(crate) fn div_round_i128(numerator: i128, denominator: i128, rounding: Rounding) -> i128 {
    debug_assert!(denominator > 0);
    let floor = numerator.div_euclid(denominator);
    let remainder = numerator.rem_euclid(denominator);
    match rounding {
        Rounding::Floor => floor,
        Rounding::Ceil => floor + i128::from(remainder != 0),
        Rounding::HalfEven => match (2 * remainder).cmp(&denominator) {
            std::cmp::Ordering::Less => floor,
            std::cmp::Ordering::Greater => floor + 1,
            std::cmp::Ordering::Equal => floor + (floor & 1),
        },
    }
}

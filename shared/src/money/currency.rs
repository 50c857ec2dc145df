//! ISO 4217 currencies that have minor units.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use super::{MoneyError, Result};

/// An ISO 4217 currency with a defined number of minor units (USD: 2, JPY: 0, KWD: 3).
///
/// Funds, precious metals and "no currency" codes are refused: they have no minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub const USD: Currency = Currency(iso_currency::Currency::USD);
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);
    pub const GBP: Currency = Currency(iso_currency::Currency::GBP);
    pub const JPY: Currency = Currency(iso_currency::Currency::JPY);

    /// The three-letter code, e.g. `USD`.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Number of decimal places of the minor unit.
    pub fn exponent(self) -> u32 {
        // Construction guarantees an exponent exists.
        self.0.exponent().map_or(0, u32::from)
    }

    /// How many minor units make one major unit (100 for USD, 1 for JPY).
    pub fn minor_per_major(self) -> i64 {
        10_i64.pow(self.exponent())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(code: &str) -> Result<Self> {
        iso_currency::Currency::from_code(code)
            .filter(|c| c.exponent().is_some() && !c.is_fund())
            .map(Currency)
            .ok_or_else(|| MoneyError::UnknownCurrency(code.to_owned()))
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(code: String) -> Result<Self> {
        code.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> Self {
        c.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_know_their_minor_units() {
        assert_eq!("USD".parse::<Currency>().unwrap().exponent(), 2);
        assert_eq!("JPY".parse::<Currency>().unwrap().minor_per_major(), 1);
        assert_eq!("KWD".parse::<Currency>().unwrap().exponent(), 3);
    }

    #[test]
    fn codes_without_minor_units_or_unknown_are_refused() {
        for code in ["XAU", "XXX", "usd", "ABC", ""] {
            assert!(code.parse::<Currency>().is_err(), "{code}");
        }
    }
}

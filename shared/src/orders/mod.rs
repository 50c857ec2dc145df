//! The order domain: payment writes orders through it and the back office reads them through it.
//!
//! - How an order can be paid, and which prices each payment method can sell (this file). The
//!   back office checks a campaign's items against these rules when they are configured, and
//!   payment checks every order against them again, so an item that can never be paid is
//!   refused where it is set up, not at a buyer's checkout.
//! - [`inventory`]: units held by orders — reserved atomically, released exactly once.
//! - [`lifecycle`]: an order's states (what counts as sold, as revenue, as over) and the one way
//!   to move an order, which gives its units back whenever the move ends its hold.

pub mod inventory;
pub mod lifecycle;

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

pub use self::lifecycle::{OrderKey, advance, withdraw};
use crate::money::{Currency, Money};
pub use crate::workflow::machines::{OrderEvent, OrderState};

/// The largest price of one unit, in minor units: Stripe's largest charge (eight digits, e.g.
/// 999,999.99 USD). It keeps every order total (at most [`MAX_ORDER_QUANTITY`] units) far inside
/// `i64`.
pub const MAX_PRICE_MINOR: i64 = 99_999_999;

/// The most units one order can hold.
pub const MAX_ORDER_QUANTITY: i64 = 100;

/// The largest total any order can reach, in minor units (vouchers' amounts are bounded by it).
pub const MAX_ORDER_TOTAL_MINOR: i64 = MAX_PRICE_MINOR * MAX_ORDER_QUANTITY;

/// How a buyer pays for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// A card through Stripe (authorised, captured once the NFT is minted).
    Card,
    /// Native ETH sent by the buyer's wallet to the Checkout contract, priced by an FX quote.
    Eth,
    /// The platform's USD stablecoin sent by the buyer's wallet, priced by an FX quote.
    Stablecoin,
}

impl PaymentMethod {
    /// Every method, in the order they are listed to users.
    pub const ALL: [PaymentMethod; 3] = [PaymentMethod::Card, PaymentMethod::Eth, PaymentMethod::Stablecoin];

    /// The name stored on rows and used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Eth => "eth",
            PaymentMethod::Stablecoin => "stablecoin",
        }
    }

    /// Whether one unit at `price` can be sold by this method; the reason (for a 422) when not.
    ///
    /// - Every method: at least one minor unit (free claims are not offered: nothing would
    ///   charge or price them) and at most [`MAX_PRICE_MINOR`].
    /// - Card: at least Stripe's minimum charge in the currencies where it is published (e.g.
    ///   0.50 USD or EUR, 0.30 GBP, 50 JPY); Stripe refuses anything below it.
    /// - ETH and the stablecoin: a currency the FX quote can price (USD or EUR).
    pub fn check_price(self, price: Money) -> Result<(), PriceError> {
        let (minor, currency) = (price.minor(), price.currency());
        if minor < 1 {
            return Err(PriceError::Amount("must be at least 1 minor unit (free items are not sold)".into()));
        }
        if minor > MAX_PRICE_MINOR {
            return Err(PriceError::Amount(format!("must be at most {MAX_PRICE_MINOR} minor units")));
        }
        match self {
            PaymentMethod::Card => match card_minimum(currency) {
                Some(minimum) if minor < minimum => Err(PriceError::Amount(format!(
                    "card payments in {currency} need at least {} (Stripe's minimum charge)",
                    Money::new(minimum, currency)
                ))),
                _ => Ok(()),
            },
            PaymentMethod::Eth | PaymentMethod::Stablecoin => match currency.code() {
                "USD" | "EUR" => Ok(()),
                _ => Err(PriceError::Currency(format!(
                    "{} payments are priced from USD or EUR only, not {currency}",
                    self.as_str()
                ))),
            },
        }
    }

    /// The largest order total this method can take, in minor units.
    pub fn max_total_minor(self) -> i64 {
        match self {
            // Stripe's largest single charge.
            PaymentMethod::Card => MAX_PRICE_MINOR,
            PaymentMethod::Eth | PaymentMethod::Stablecoin => MAX_ORDER_TOTAL_MINOR,
        }
    }
}

/// Stripe's published minimum charge per currency, in minor units
/// (<https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts>).
fn card_minimum(currency: Currency) -> Option<i64> {
    Some(match currency.code() {
        "USD" | "EUR" | "AUD" | "BRL" | "CAD" | "CHF" | "INR" | "NZD" | "SGD" => 50,
        "GBP" => 30,
        "JPY" => 50,
        "AED" | "MYR" | "PLN" | "RON" => 200,
        "BGN" => 100,
        "DKK" => 250,
        "NOK" | "SEK" => 300,
        "HKD" => 400,
        "MXN" | "THB" => 1_000,
        "CZK" => 1_500,
        _ => return None,
    })
}

/// Why a price cannot be sold by a payment method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The amount is out of the method's range.
    #[error("{0}")]
    Amount(String),
    /// The method cannot take this currency.
    #[error("{0}")]
    Currency(String),
}

/// Why a string is not a payment method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment method `{0}` (card, eth or stablecoin)")]
pub struct UnknownMethod(String);

impl FromStr for PaymentMethod {
    type Err = UnknownMethod;
    fn from_str(s: &str) -> Result<Self, UnknownMethod> {
        PaymentMethod::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| UnknownMethod(s.chars().take(32).collect()))
    }
}

impl From<PaymentMethod> for &'static str {
    fn from(method: PaymentMethod) -> &'static str {
        method.as_str()
    }
}

crate::text_sql_type!(PaymentMethod);

impl fmt::Display for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(minor: i64, code: &str) -> Money {
        Money::new(minor, code.parse().unwrap_or(Currency::USD))
    }

    #[test]
    fn nothing_free_and_nothing_above_stripes_largest_charge_is_sold() {
        for method in PaymentMethod::ALL {
            assert!(method.check_price(price(0, "EUR")).is_err(), "{method}");
            assert!(method.check_price(price(-1, "EUR")).is_err(), "{method}");
            assert!(method.check_price(price(MAX_PRICE_MINOR + 1, "EUR")).is_err(), "{method}");
            assert!(method.check_price(price(MAX_PRICE_MINOR, "EUR")).is_ok(), "{method}");
        }
    }

    #[test]
    fn cards_need_stripes_minimum_and_wallets_a_currency_the_fx_quote_prices() {
        assert!(PaymentMethod::Card.check_price(price(49, "USD")).unwrap_err().to_string().contains("0.50"));
        assert!(PaymentMethod::Card.check_price(price(50, "USD")).is_ok());
        assert!(PaymentMethod::Card.check_price(price(30, "GBP")).is_ok());
        assert!(PaymentMethod::Card.check_price(price(5_000, "JPY")).is_ok());
        assert!(matches!(PaymentMethod::Eth.check_price(price(5_000, "JPY")), Err(PriceError::Currency(_))));
        assert!(PaymentMethod::Stablecoin.check_price(price(1, "USD")).is_ok());
        assert!(PaymentMethod::Eth.check_price(price(1, "EUR")).is_ok());
    }

    #[test]
    fn methods_round_trip_through_their_names() {
        for method in PaymentMethod::ALL {
            assert_eq!(method.as_str().parse::<PaymentMethod>(), Ok(method));
        }
        assert!("paypal".parse::<PaymentMethod>().is_err());
        // The largest total any order can reach stays far inside i64.
        assert!(PaymentMethod::Eth.max_total_minor().checked_mul(10).is_some());
    }
}

//! The platform's entity ids as types of their own: an order id cannot be passed where an item
//! id is expected. Each is the `BIGINT` primary key of its table; on the wire and in SQL it is
//! the plain integer.

use std::{fmt, num::ParseIntError, str::FromStr};

macro_rules! ids {
    ($($(#[$meta:meta])* $name:ident),+ $(,)?) => {$(
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type, utoipa::ToSchema,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        #[schema(value_type = i64)]
        pub struct $name(i64);

        impl $name {
            pub const fn new(id: i64) -> Self {
                Self(id)
            }

            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseIntError;
            fn from_str(s: &str) -> Result<Self, ParseIntError> {
                s.parse().map(Self)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    )+};
}

ids!(
    /// A staff account's id (`accounts.id`).
    AccountId,
    /// A brand's id (`brands.id`).
    BrandId,
    /// A campaign's id (`campaigns.id`).
    CampaignId,
    /// An item on sale in a campaign (`campaign_items.id`).
    ItemId,
    /// An order's internal id (`orders.id`; buyers and brands see its `public_id`).
    OrderId,
    /// A voucher's id (`vouchers.id`).
    VoucherId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_their_integer_on_the_wire_and_in_text() {
        let order = OrderId::new(42);
        assert_eq!(serde_json::to_string(&order).unwrap(), "42");
        assert_eq!(serde_json::from_str::<OrderId>("42").unwrap(), order);
        assert_eq!("42".parse::<OrderId>().unwrap(), order);
        assert_eq!(order.to_string(), "42");
        assert_eq!(i64::from(order), 42);
    }
}

//! Local stand-ins for the third-party services the platform cannot reach in development and
//! tests, speaking their real wire formats: a stateful Stripe emulator (PaymentIntents, Checkout
//! Sessions with a hosted page, refunds, events delivered with Stripe's webhook signatures),
//! stubs of the Binance and Coinbase market-data APIs whose prices and failures a test sets, and
//! OpenSea's and Rarible's sale feeds reporting the local chain's Seaport sales.
//!
//! Used by `cargo xtask dev` (through `brandmint fakes`) and by the tests; never by production
//! code. Nothing here imports the clients it stands in for: a fake written from the wire format
//! alone is what checks that the clients speak it.

pub mod fx;
pub mod marketplaces;
pub mod seaport;
pub mod sentry;
pub mod stripe;

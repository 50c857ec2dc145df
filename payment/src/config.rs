//! The payment service's own configuration: how long orders hold their units, where FX quotes
//! come from, and the Stripe account. Read only by a process that runs payment, from the same
//! variables as the core's (see `.env.example`, section `payment`).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use shared::{
    config::{
        Config, ConfigError, Env, Environment, Result, Variable, invalid, optional, optional_secret, positive_secs,
    },
    money::Bps,
};

pub const ORDER_HOLD_SECS: Variable = optional(
    "ORDER_HOLD_SECS",
    "how long a pending order holds its units for its buyer; unpaid by then, it expires and they go back on sale",
    "900",
);
pub const BINANCE_API_URL: Variable = optional(
    "BINANCE_API_URL",
    "Binance public market data (FX quotes' primary source; the market-data-only host needs no key)",
    "https://data-api.binance.vision",
);
pub const FX_SECOND_SOURCE_URL: Variable = optional(
    "FX_SECOND_SOURCE_URL",
    "Coinbase Exchange public API, the FX quotes' second source (used when Binance fails, and as a cross-check)",
    "https://api.exchange.coinbase.com",
);
pub const FX_QUOTE_TTL_SECS: Variable =
    optional("FX_QUOTE_TTL_SECS", "how long a wallet checkout's FX quote can be paid", "300");
pub const FX_SPREAD_BPS: Variable = optional(
    "FX_SPREAD_BPS",
    "the most a crypto price is above the mid rate, in basis points (the platform's conversion buffer)",
    "100",
);
pub const FX_MAX_AGE_SECS: Variable =
    optional("FX_MAX_AGE_SECS", "a rate whose source last traded longer ago than this is stale and refused", "60");
pub const FX_SANITY_BAND_BPS: Variable = optional(
    "FX_SANITY_BAND_BPS",
    "a source whose average (or book mid) and last trade differ by more than this is not used",
    "100",
);
pub const FX_MAX_DIVERGENCE_BPS: Variable = optional(
    "FX_MAX_DIVERGENCE_BPS",
    "when both FX sources answer and differ by more than this, no quote is given",
    "200",
);
pub const STRIPE_SECRET_KEY: Variable = optional_secret(
    "STRIPE_SECRET_KEY",
    "Stripe secret API key, sk_live_… or sk_test_… (required in production; empty locally: card payments are refused)",
);
pub const STRIPE_API_BASE: Variable = optional(
    "STRIPE_API_BASE",
    "base URL of the Stripe API (https:// in production; the local Stripe emulator's address in development and tests)",
    "https://api.stripe.com",
);
pub const STRIPE_WEBHOOK_SECRET: Variable = optional_secret(
    "STRIPE_WEBHOOK_SECRET",
    "signing secret (whsec_…) of the Stripe webhook endpoint (required in production; empty locally: Stripe webhooks are refused)",
);

/// Every variable of the payment service, in the order `.env.example` lists them.
pub const VARIABLES: &[Variable] = &[
    ORDER_HOLD_SECS,
    BINANCE_API_URL,
    FX_SECOND_SOURCE_URL,
    FX_QUOTE_TTL_SECS,
    FX_SPREAD_BPS,
    FX_MAX_AGE_SECS,
    FX_SANITY_BAND_BPS,
    FX_MAX_DIVERGENCE_BPS,
    STRIPE_SECRET_KEY,
    STRIPE_API_BASE,
    STRIPE_WEBHOOK_SECRET,
];

/// What the payment service reads on top of the core's configuration.
#[derive(Debug, Clone)]
pub struct PaymentConfig {
    /// How long a pending order holds its units.
    pub hold: Duration,
    pub fx: FxConfig,
    pub stripe: StripeConfig,
}

impl PaymentConfig {
    /// Reads the payment section; in production the Stripe secrets are required and named
    /// when missing.
    pub fn load(config: &Config) -> Result<Self> {
        let env = &config.env;
        Ok(Self {
            hold: positive_secs(env, ORDER_HOLD_SECS)?,
            fx: fx(env, config.environment)?,
            stripe: stripe(env, config.environment)?,
        })
    }
}

/// Where wallet checkout's FX quotes come from and how careful they are (see [`crate::fx`]).
#[derive(Debug, Clone)]
pub struct FxConfig {
    /// Binance's public market data, the primary source.
    pub binance_url: url::Url,
    /// Coinbase Exchange's public API, the second source.
    pub second_source_url: url::Url,
    /// How long a quote can be paid.
    pub quote_ttl: Duration,
    /// The conversion buffer above the mid rate, in the platform's favour.
    pub spread: Bps,
    /// A rate whose source's last trade is older than this is stale.
    pub max_age: Duration,
    /// The most a source's price may differ from its own last trade.
    pub sanity_band: Bps,
    /// The most the two sources may differ when both answer.
    pub max_divergence: Bps,
    /// Per request to a source; a checkout waits for at most this (both sources are asked at once).
    pub request_timeout: Duration,
}

/// A quote is asked for while a buyer waits: a source slower than this is treated as down.
pub const FX_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The Stripe account card payments go through (see [`crate::stripe`]).
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// The secret API key; `None` locally when unset, and card payments are then refused.
    pub secret_key: Option<SecretString>,
    /// Where the Stripe API is: api.stripe.com, or the local emulator.
    pub api_base: url::Url,
    /// The webhook endpoint's signing secret (`whsec_…`); `None` locally when unset.
    pub webhook_secret: Option<SecretString>,
}

/// Production needs both Stripe secrets and an `https://` API; locally each may be left empty.
fn stripe(env: &Env, environment: Environment) -> Result<StripeConfig> {
    let production = environment == Environment::Production;
    let secret = |var: Variable| -> Result<Option<SecretString>> {
        match env.secret(var)? {
            value if !value.expose_secret().is_empty() => Ok(Some(value)),
            _ if production => Err(ConfigError::Missing { name: var.name, help: var.help }),
            _ => Ok(None),
        }
    };
    let api_base: url::Url = env.parse(STRIPE_API_BASE)?;
    match api_base.scheme() {
        "https" => {}
        "http" if !production => {}
        "http" => return Err(invalid(STRIPE_API_BASE, "must be https:// in production".into())),
        other => return Err(invalid(STRIPE_API_BASE, format!("unsupported scheme `{other}`"))),
    }
    Ok(StripeConfig {
        secret_key: secret(STRIPE_SECRET_KEY)?,
        api_base,
        webhook_secret: secret(STRIPE_WEBHOOK_SECRET)?,
    })
}

fn fx(env: &Env, environment: Environment) -> Result<FxConfig> {
    let source_url = |var: Variable| -> Result<url::Url> {
        let url: url::Url = env.parse(var)?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if environment == Environment::Local => Ok(url),
            "http" => Err(invalid(var, "must be https:// in production".into())),
            other => Err(invalid(var, format!("unsupported scheme `{other}`"))),
        }
    };
    let bps = |var: Variable| -> Result<Bps> { Bps::new(env.parse(var)?).map_err(|e| invalid(var, e.to_string())) };
    Ok(FxConfig {
        binance_url: source_url(BINANCE_API_URL)?,
        second_source_url: source_url(FX_SECOND_SOURCE_URL)?,
        quote_ttl: positive_secs(env, FX_QUOTE_TTL_SECS)?,
        spread: bps(FX_SPREAD_BPS)?,
        max_age: positive_secs(env, FX_MAX_AGE_SECS)?,
        sanity_band: bps(FX_SANITY_BAND_BPS)?,
        max_divergence: bps(FX_MAX_DIVERGENCE_BPS)?,
        request_timeout: FX_REQUEST_TIMEOUT,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MINIMAL: &[(&str, &str)] = shared::config::MINIMAL_ENV;
    /// Production's core keys and Stripe's.
    const PRODUCTION: &[(&str, &str)] = &[
        ("APP_ENV", "production"),
        ("KYC_ENCRYPTION_KEY", "5f0c0c7d8e2a41b39a6f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566f"),
        ("QR_CODE_KEY", "9d1e4b7a0c3f6e2d5a8b1c4f7e0d3a6b9c2f5e8d1a4b7c0f3e6d9a2b5c8f1e4d"),
        ("STRIPE_SECRET_KEY", "sk_live_hunter2"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_hunter2"),
    ];

    fn load(pairs: &[(&str, &str)]) -> Result<PaymentConfig> {
        PaymentConfig::load(&Config::from_pairs(pairs)?)
    }

    #[test]
    fn fx_quotes_default_to_the_public_sources_and_need_https_in_production() {
        let fx = load(MINIMAL).unwrap().fx;
        assert_eq!(fx.binance_url.as_str(), "https://data-api.binance.vision/");
        assert_eq!(fx.second_source_url.as_str(), "https://api.exchange.coinbase.com/");
        assert_eq!((fx.quote_ttl, fx.max_age), (Duration::from_secs(300), Duration::from_secs(60)));
        assert_eq!((fx.spread.get(), fx.sanity_band.get(), fx.max_divergence.get()), (100, 100, 200));
        assert_eq!(fx.request_timeout, FX_REQUEST_TIMEOUT);
        let with = |pairs: &[(&'static str, &'static str)]| load(&[MINIMAL, pairs].concat());
        assert_eq!(with(&[("BINANCE_API_URL", "http://127.0.0.1:9")]).unwrap().fx.binance_url.port(), Some(9));
        let err = with(&[PRODUCTION, &[("FX_SECOND_SOURCE_URL", "http://127.0.0.1:9")]].concat()).unwrap_err();
        assert!(err.to_string().contains("FX_SECOND_SOURCE_URL") && err.to_string().contains("https"), "{err}");
        let err = with(&[("FX_SPREAD_BPS", "10001")]).unwrap_err().to_string();
        assert!(err.contains("FX_SPREAD_BPS"), "{err}");
        let err = with(&[("FX_QUOTE_TTL_SECS", "0")]).unwrap_err().to_string();
        assert!(err.contains("FX_QUOTE_TTL_SECS"), "{err}");
    }

    #[test]
    fn orders_hold_their_units_fifteen_minutes_unless_configured() {
        assert_eq!(load(MINIMAL).unwrap().hold, Duration::from_secs(900));
        let with = |pairs: &[(&'static str, &'static str)]| load(&[MINIMAL, pairs].concat());
        assert_eq!(with(&[("ORDER_HOLD_SECS", "120")]).unwrap().hold, Duration::from_secs(120));
        for bad in ["0", "-5", "15m"] {
            let err = with(&[("ORDER_HOLD_SECS", bad)]).unwrap_err().to_string();
            assert!(err.contains("ORDER_HOLD_SECS"), "{bad}: {err}");
        }
    }

    #[test]
    fn stripe_is_optional_locally_but_complete_and_https_in_production() {
        let local = load(MINIMAL).unwrap().stripe;
        assert!(local.secret_key.is_none() && local.webhook_secret.is_none());
        assert_eq!(local.api_base.as_str(), "https://api.stripe.com/");
        let emulator = load(&[MINIMAL, &[("STRIPE_API_BASE", "http://127.0.0.1:12111")]].concat()).unwrap();
        assert_eq!(emulator.stripe.api_base.as_str(), "http://127.0.0.1:12111/");

        let production = load(&[MINIMAL, PRODUCTION].concat()).unwrap();
        assert!(production.stripe.secret_key.is_some() && production.stripe.webhook_secret.is_some());
        assert!(!format!("{production:?}").contains("hunter2"), "Stripe secrets stay out of Debug");
        for missing in ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"] {
            let pairs: Vec<_> = [MINIMAL, PRODUCTION].concat().into_iter().filter(|(k, _)| *k != missing).collect();
            assert!(matches!(load(&pairs).unwrap_err(), ConfigError::Missing { name, .. } if name == missing));
        }
        let plain = [MINIMAL, PRODUCTION, &[("STRIPE_API_BASE", "http://stripe.internal")]].concat();
        let err = load(&plain).unwrap_err().to_string();
        assert!(err.contains("STRIPE_API_BASE") && err.contains("https"), "{err}");
        let err = load(&[MINIMAL, &[("STRIPE_API_BASE", "ftp://stripe")]].concat()).unwrap_err().to_string();
        assert!(err.contains("STRIPE_API_BASE"), "{err}");
    }

    #[test]
    fn env_example_documents_exactly_the_payment_variables() {
        let documented = shared::config::documented(include_str!("../../.env.example"), "payment");
        let declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(documented, declared, ".env.example's payment section is out of step with payment::config");
    }
}

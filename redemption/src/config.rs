//! The redemption service's own configuration: the key that signs reward vouchers, how long a
//! voucher stays valid, how many claims a client may make, the addresses never paid (sanctions
//! screening), and how long a counter code lives. Read only by a process that runs the redemption service (see
//! `.env.example`, section `redemption`).

use std::time::Duration;

use alloy::{primitives::Address, signers::local::PrivateKeySigner};
use secrecy::ExposeSecret;
use shared::config::{Config, Result, Variable, invalid, optional, optional_secret, positive_secs};

pub const VOUCHER_SIGNER_PRIVATE_KEY: Variable = optional_secret(
    "VOUCHER_SIGNER_PRIVATE_KEY",
    "the key signing RewardVault vouchers (the vault's voucher signer; empty: token rewards cannot be redeemed)",
);
pub const VOUCHER_TTL_SECS: Variable =
    optional("VOUCHER_TTL_SECS", "how long a signed voucher can be sent to the vault, in seconds", "86400");
pub const REDEMPTION_CLAIMS_PER_HOUR: Variable = optional(
    "REDEMPTION_CLAIMS_PER_HOUR",
    "claims allowed per client IP, per wallet and per code in an hour (more get 429 with Retry-After)",
    "60",
);
pub const REDEMPTION_DENYLIST: Variable = optional(
    "REDEMPTION_DENYLIST",
    "addresses never paid or handed a perk (sanctions screening), comma-separated; the database's \
     `denied_addresses` table is read too",
    "",
);

pub const COUNTER_CODE_TTL_SECS: Variable = optional(
    "COUNTER_CODE_TTL_SECS",
    "how long a customer's counter QR code is valid, in seconds (their page shows a new one before)",
    "30",
);
pub const COUNTER_CODE_GRACE_SECS: Variable = optional(
    "COUNTER_CODE_GRACE_SECS",
    "how long after its validity a counter code is still accepted (a slow scan, clocks apart), in seconds",
    "15",
);

/// Every variable of the redemption service, in the order `.env.example` lists them.
pub const VARIABLES: &[Variable] = &[
    VOUCHER_SIGNER_PRIVATE_KEY,
    VOUCHER_TTL_SECS,
    REDEMPTION_CLAIMS_PER_HOUR,
    REDEMPTION_DENYLIST,
    COUNTER_CODE_TTL_SECS,
    COUNTER_CODE_GRACE_SECS,
];

/// What the redemption service reads on top of the core's configuration.
#[derive(Debug, Clone)]
pub struct RedemptionConfig {
    pub voucher_signer: Option<PrivateKeySigner>,
    pub voucher_ttl: Duration,
    /// The claim limits, as the core's rate limiter counts them.
    pub claim_limits: shared::config::RateLimitConfig,
    pub denylist: Vec<Address>,
    pub counter_code_ttl: Duration,
    pub counter_code_grace: Duration,
}

impl RedemptionConfig {
    /// Reads the redemption service's section.
    pub fn load(config: &Config) -> Result<Self> {
        let env = &config.env;
        let voucher_signer = match env.secret(VOUCHER_SIGNER_PRIVATE_KEY)? {
            key if key.expose_secret().is_empty() => None,
            key => Some(
                key.expose_secret()
                    .parse::<PrivateKeySigner>()
                    .map_err(|_| invalid(VOUCHER_SIGNER_PRIVATE_KEY, "not a hex private key".into()))?,
            ),
        };
        let per_hour: u32 = env.parse(REDEMPTION_CLAIMS_PER_HOUR)?;
        if per_hour == 0 {
            return Err(invalid(REDEMPTION_CLAIMS_PER_HOUR, "must be at least 1".into()));
        }
        let mut denylist = Vec::new();
        for text in env.string(REDEMPTION_DENYLIST)?.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            denylist.push(shared::address::parse_address(text).map_err(|e| invalid(REDEMPTION_DENYLIST, e))?);
        }
        Ok(Self {
            voucher_signer,
            voucher_ttl: positive_secs(env, VOUCHER_TTL_SECS)?,
            claim_limits: shared::config::RateLimitConfig {
                auth_max: per_hour,
                auth_window: Duration::from_secs(3600),
                ip_per_minute: 0,
            },
            denylist,
            counter_code_ttl: positive_secs(env, COUNTER_CODE_TTL_SECS)?,
            counter_code_grace: Duration::from_secs(env.parse(COUNTER_CODE_GRACE_SECS)?),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<RedemptionConfig> {
        RedemptionConfig::load(&Config::from_pairs(pairs)?)
    }

    #[test]
    fn the_voucher_signer_and_the_denylist_are_checked_when_read() {
        let minimal = shared::config::MINIMAL_ENV;
        let config = load(minimal).unwrap();
        assert!(config.voucher_signer.is_none() && config.denylist.is_empty());
        assert_eq!((config.voucher_ttl, config.claim_limits.auth_max), (Duration::from_secs(86_400), 60));
        let with = |name, value| [minimal, &[(name, value)]].concat();
        let key = "0x5de4111afa1a4b94908f83103e29f0502e07e17ba31d7b643d5d5f24e5b6d1ca";
        let signer = load(&with("VOUCHER_SIGNER_PRIVATE_KEY", key)).unwrap().voucher_signer.unwrap();
        assert_eq!(signer.address(), key.parse::<PrivateKeySigner>().unwrap().address());
        for (name, bad) in [
            ("VOUCHER_SIGNER_PRIVATE_KEY", "0x1234"),
            ("REDEMPTION_DENYLIST", "0xnope"),
            ("REDEMPTION_CLAIMS_PER_HOUR", "0"),
            ("VOUCHER_TTL_SECS", "0"),
        ] {
            let err = load(&with(name, bad)).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={bad}: {err}");
        }
        let listed = signer.address().to_checksum(None);
        assert_eq!(load(&with("REDEMPTION_DENYLIST", &listed)).unwrap().denylist, [signer.address()]);
    }

    #[test]
    fn env_example_documents_exactly_the_redemption_variables() {
        let documented = shared::config::documented(include_str!("../../.env.example"), "redemption");
        let declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(documented, declared);
    }
}

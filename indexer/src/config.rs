//! The indexer's own configuration: how deep a block must be to count as confirmed, how often the
//! head is polled, where indexing starts, how many recent block hashes are kept to walk a reorg
//! back with, and which Seaport contract's logs are kept. Read only by a process that runs the
//! indexer, from the same variables as the core's (see `.env.example`, section `indexer`).

use std::time::Duration;

use alloy::primitives::Address;
use secrecy::ExposeSecret;
use shared::config::{Config, Result, Variable, invalid, optional, optional_secret};

pub const INDEXER_CONFIRMATIONS: Variable = optional(
    "INDEXER_CONFIRMATIONS",
    "blocks on top of a block before its facts count as confirmed (0 on a local anvil, which mines one block per transaction)",
    "12",
);
pub const INDEXER_POLL_MS: Variable =
    optional("INDEXER_POLL_MS", "how often the indexer asks the node for new blocks, in milliseconds", "1000");
pub const INDEXER_START_BLOCK: Variable =
    optional("INDEXER_START_BLOCK", "the first block indexed (the platform contracts' deployment block)", "0");
pub const INDEXER_REORG_WINDOW: Variable = optional(
    "INDEXER_REORG_WINDOW",
    "how many recent block hashes are kept; a reorg deeper than this stops the indexer with an error",
    "256",
);
pub const SEAPORT_ADDRESS: Variable = optional(
    "SEAPORT_ADDRESS",
    "the Seaport 1.6 contract whose OrderFulfilled and OrdersMatched logs are kept (its canonical address by default)",
    "0x0000000000000068F116a894984e2DB1123eB395",
);

pub const INDEXER_MARKETPLACES: Variable = optional(
    "INDEXER_MARKETPLACES",
    "which marketplace a Seaport sale went through: name=address pairs, comma-separated, matched against the \
     order's zone and its fee recipients (a sale matching none is `seaport`)",
    "opensea=0x0000a26b00c1F0DF003000390027140000fAa719",
);

pub const OPENSEA_API_URL: Variable = optional(
    "OPENSEA_API_URL",
    "base URL of OpenSea's API v2 (the local fake's address in development)",
    "https://api.opensea.io",
);
pub const OPENSEA_API_KEY: Variable =
    optional_secret("OPENSEA_API_KEY", "OpenSea API key (X-API-KEY); empty: OpenSea's sale events are not polled");
pub const RARIBLE_API_URL: Variable = optional(
    "RARIBLE_API_URL",
    "base URL of Rarible's API (the local fake's address in development)",
    "https://api.rarible.org",
);
pub const RARIBLE_API_KEY: Variable =
    optional_secret("RARIBLE_API_KEY", "Rarible API key (X-API-KEY); empty: Rarible's activities are not polled");
pub const MARKETPLACE_POLL_SECS: Variable =
    optional("MARKETPLACE_POLL_SECS", "how often each marketplace's sales are polled, in seconds", "60");

/// Every variable of the indexer, in the order `.env.example` lists them.
pub const VARIABLES: &[Variable] = &[
    INDEXER_CONFIRMATIONS,
    INDEXER_POLL_MS,
    INDEXER_START_BLOCK,
    INDEXER_REORG_WINDOW,
    SEAPORT_ADDRESS,
    INDEXER_MARKETPLACES,
    OPENSEA_API_URL,
    OPENSEA_API_KEY,
    RARIBLE_API_URL,
    RARIBLE_API_KEY,
    MARKETPLACE_POLL_SECS,
];

/// What the indexer reads on top of the core's configuration.
#[derive(Debug, Clone)]
pub struct IndexerConfig {
    pub confirmations: u64,
    pub poll: Duration,
    pub start_block: u64,
    pub reorg_window: u64,
    pub seaport: Address,
    /// (name, address) pairs: a sale whose zone or a fee recipient is the address went through
    /// that marketplace.
    pub marketplaces: Vec<(String, Address)>,
    /// The marketplace APIs polled (a source without a key is not).
    pub opensea: Option<crate::marketplaces::Api>,
    pub rarible: Option<crate::marketplaces::Api>,
    pub marketplace_poll: Duration,
}

impl IndexerConfig {
    pub fn load(config: &Config) -> Result<Self> {
        let env = &config.env;
        let poll: u64 = env.parse(INDEXER_POLL_MS)?;
        if !(10..=60_000).contains(&poll) {
            return Err(invalid(INDEXER_POLL_MS, "must be between 10 and 60000".into()));
        }
        let reorg_window: u64 = env.parse(INDEXER_REORG_WINDOW)?;
        if !(8..=100_000).contains(&reorg_window) {
            return Err(invalid(INDEXER_REORG_WINDOW, "must be between 8 and 100000".into()));
        }
        let confirmations: u64 = env.parse(INDEXER_CONFIRMATIONS)?;
        if confirmations >= reorg_window {
            return Err(invalid(INDEXER_CONFIRMATIONS, "must be below INDEXER_REORG_WINDOW".into()));
        }
        let start_block: u64 = env.parse(INDEXER_START_BLOCK)?;
        if i64::try_from(start_block).is_err() {
            return Err(invalid(INDEXER_START_BLOCK, "is too large".into()));
        }
        let seaport = shared::address::parse_address(&env.string(SEAPORT_ADDRESS)?)
            .map_err(|reason| invalid(SEAPORT_ADDRESS, reason))?;
        let mut marketplaces = Vec::new();
        for pair in env.string(INDEXER_MARKETPLACES)?.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, address) = pair
                .split_once('=')
                .ok_or_else(|| invalid(INDEXER_MARKETPLACES, format!("`{pair}` is not name=address")))?;
            let name = name.trim();
            if name.is_empty()
                || name.len() > 40
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
            {
                return Err(invalid(INDEXER_MARKETPLACES, "a name is 1 to 40 letters, digits, `-` or `_`".into()));
            }
            let address = shared::address::parse_address(address.trim())
                .map_err(|reason| invalid(INDEXER_MARKETPLACES, reason))?;
            marketplaces.push((name.to_owned(), address));
        }
        let api = |url: Variable, key: Variable| -> Result<Option<crate::marketplaces::Api>> {
            let key = env.secret(key)?;
            if key.expose_secret().is_empty() {
                return Ok(None);
            }
            let base: url::Url = env.parse(url)?;
            match base.scheme() {
                "https" => {}
                "http" if config.environment != shared::config::Environment::Production => {}
                _ => return Err(invalid(url, "must be https:// in production".into())),
            }
            Ok(Some(crate::marketplaces::Api { base, key }))
        };
        let marketplace_poll: u64 = env.parse(MARKETPLACE_POLL_SECS)?;
        if !(1..=86_400).contains(&marketplace_poll) {
            return Err(invalid(MARKETPLACE_POLL_SECS, "must be between 1 and 86400".into()));
        }
        Ok(Self {
            confirmations,
            poll: Duration::from_millis(poll),
            start_block,
            reorg_window,
            seaport,
            marketplaces,
            opensea: api(OPENSEA_API_URL, OPENSEA_API_KEY)?,
            rarible: api(RARIBLE_API_URL, RARIBLE_API_KEY)?,
            marketplace_poll: Duration::from_secs(marketplace_poll),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MINIMAL: &[(&str, &str)] = shared::config::MINIMAL_ENV;

    fn load(pairs: &[(&str, &str)]) -> Result<IndexerConfig> {
        IndexerConfig::load(&Config::from_pairs(&[MINIMAL, pairs].concat())?)
    }

    #[test]
    fn defaults_are_safe_and_bad_values_name_their_variable() {
        let config = load(&[]).unwrap();
        assert_eq!((config.confirmations, config.reorg_window, config.start_block), (12, 256, 0));
        assert_eq!(config.poll, Duration::from_secs(1));
        assert_eq!(config.seaport.to_checksum(None), "0x0000000000000068F116a894984e2DB1123eB395");
        assert_eq!(config.marketplaces.len(), 1);
        assert_eq!(config.marketplaces[0].0, "opensea");
        for (name, value) in [
            ("INDEXER_CONFIRMATIONS", "256"),
            ("INDEXER_POLL_MS", "0"),
            ("INDEXER_REORG_WINDOW", "2"),
            ("INDEXER_START_BLOCK", "99999999999999999999"),
            ("SEAPORT_ADDRESS", "0x1234"),
            ("INDEXER_MARKETPLACES", "opensea"),
            ("INDEXER_MARKETPLACES", "open sea=0x0000a26b00c1F0DF003000390027140000fAa719"),
            ("INDEXER_MARKETPLACES", "opensea=0x12"),
            ("MARKETPLACE_POLL_SECS", "0"),
        ] {
            let err = load(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
        }
    }

    #[test]
    fn a_marketplace_is_polled_only_with_its_key_and_at_a_valid_url() {
        let config = load(&[]).unwrap();
        assert!(config.opensea.is_none() && config.rarible.is_none(), "no key: not polled");
        let config = load(&[("RARIBLE_API_KEY", "k")]).unwrap();
        assert_eq!(config.rarible.unwrap().base.as_str(), "https://api.rarible.org/");
        let err = load(&[("OPENSEA_API_KEY", "k"), ("OPENSEA_API_URL", "not a url")]).unwrap_err().to_string();
        assert!(err.contains("OPENSEA_API_URL"), "{err}");
        assert!(!err.contains("k\""), "the key is not echoed: {err}");
    }

    #[test]
    fn env_example_documents_exactly_the_indexer_variables() {
        let documented = shared::config::documented(include_str!("../../.env.example"), "indexer");
        let declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(documented, declared, ".env.example's indexer section is out of step with indexer::config");
    }
}

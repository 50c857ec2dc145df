//! The back office's own configuration: how brand webhooks are delivered, the operators'
//! Telegram alerts, and which marketplaces a campaign enforcing royalties lets trade. Read only by a process that runs the back office (see `.env.example`,
//! section `backoffice`).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use shared::config::{Config, Env, Result, Variable, invalid, optional, optional_secret, positive_secs};

pub const WEBHOOK_ALLOW_PRIVATE_TARGETS: Variable = optional(
    "WEBHOOK_ALLOW_PRIVATE_TARGETS",
    "`true` lets brand webhooks call private, loopback and link-local addresses (local development only; refused in production)",
    "false",
);
pub const WEBHOOK_RETRY_BASE_SECS: Variable = optional(
    "WEBHOOK_RETRY_BASE_SECS",
    "wait after a webhook delivery's first failed attempt; doubles with each further failure (with jitter, at most 6 hours)",
    "30",
);
pub const WEBHOOK_MAX_ATTEMPTS: Variable =
    optional("WEBHOOK_MAX_ATTEMPTS", "attempts before a webhook delivery is marked failed (it can be replayed)", "10");
pub const TELEGRAM_BOT_TOKEN: Variable = optional_secret(
    "TELEGRAM_BOT_TOKEN",
    "Telegram bot token for admin alerts (new orders, failed deployments); empty: no alerts",
);
pub const TELEGRAM_CHAT_ID: Variable =
    optional("TELEGRAM_CHAT_ID", "the Telegram chat the admin alerts go to (needed with TELEGRAM_BOT_TOKEN)", "");
pub const TELEGRAM_API_URL: Variable =
    optional("TELEGRAM_API_URL", "base URL of the Telegram Bot API", "https://api.telegram.org");
pub const ROYALTY_ENFORCEMENT_OPERATORS: Variable = optional(
    "ROYALTY_ENFORCEMENT_OPERATORS",
    "the operators (marketplace contracts, comma-separated) a campaign enforcing royalties allows to move its tokens: \
     Seaport 1.6 and OpenSea's conduit by default",
    "0x0000000000000068F116a894984e2DB1123eB395,0x1E0049783F008A0085193E00003D00cd54003c71",
);

/// Every variable of the back office, in the order `.env.example` lists them.
pub const VARIABLES: &[Variable] = &[
    WEBHOOK_ALLOW_PRIVATE_TARGETS,
    WEBHOOK_RETRY_BASE_SECS,
    WEBHOOK_MAX_ATTEMPTS,
    TELEGRAM_BOT_TOKEN,
    TELEGRAM_CHAT_ID,
    TELEGRAM_API_URL,
    ROYALTY_ENFORCEMENT_OPERATORS,
];

/// What the back office reads on top of the core's configuration.
#[derive(Debug, Clone)]
pub struct BackofficeConfig {
    pub webhooks: WebhooksConfig,
    pub alerts: AlertsConfig,
    /// Who may move the tokens of a campaign that enforces royalties (besides their owners).
    pub enforcement_operators: Vec<alloy::primitives::Address>,
}

impl BackofficeConfig {
    /// Reads the back office's section.
    pub fn load(config: &Config) -> Result<Self> {
        let env = &config.env;
        Ok(Self {
            webhooks: WebhooksConfig {
                allow_private_targets: match env.parse(WEBHOOK_ALLOW_PRIVATE_TARGETS)? {
                    true if config.is_production() => {
                        return Err(invalid(WEBHOOK_ALLOW_PRIVATE_TARGETS, "must be false in production".into()));
                    }
                    allow => allow,
                },
                require_https: config.is_production(),
                retry_base: positive_secs(env, WEBHOOK_RETRY_BASE_SECS)?,
                max_attempts: match env.parse(WEBHOOK_MAX_ATTEMPTS)? {
                    0 => return Err(invalid(WEBHOOK_MAX_ATTEMPTS, "must be at least 1".into())),
                    max => max,
                },
            },
            alerts: AlertsConfig { telegram: telegram(env)? },
            enforcement_operators: operators(env)?,
        })
    }
}

/// How brand webhooks are delivered.
#[derive(Debug, Clone, Copy)]
pub struct WebhooksConfig {
    /// Whether endpoints may be private, loopback, link-local or unspecified addresses (never
    /// in production).
    pub allow_private_targets: bool,
    /// Whether endpoints must be `https://` (in production).
    pub require_https: bool,
    /// Backoff after the first failed attempt; doubles with each further failure.
    pub retry_base: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
}

/// Notifications to the platform's operators.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// Telegram alerts, when a bot token and chat are configured.
    pub telegram: Option<TelegramConfig>,
}

/// A Telegram bot and the chat it posts to.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub bot_token: SecretString,
    pub chat_id: String,
    pub api_url: url::Url,
}

/// Telegram alerts are on when a bot token is set; the chat must then be set too.
fn telegram(env: &Env) -> Result<Option<TelegramConfig>> {
    let bot_token = env.secret(TELEGRAM_BOT_TOKEN)?;
    let chat_id = env.string(TELEGRAM_CHAT_ID)?;
    match (bot_token.expose_secret().is_empty(), chat_id.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => Err(invalid(TELEGRAM_BOT_TOKEN, "needed when TELEGRAM_CHAT_ID is set".into())),
        (false, true) => Err(invalid(TELEGRAM_CHAT_ID, "needed when TELEGRAM_BOT_TOKEN is set".into())),
        (false, false) => Ok(Some(TelegramConfig { bot_token, chat_id, api_url: env.parse(TELEGRAM_API_URL)? })),
    }
}

/// The allowlisted operators: at least one (an empty list would freeze every sale), no repeats.
fn operators(env: &Env) -> Result<Vec<alloy::primitives::Address>> {
    let mut operators = Vec::new();
    for text in env.string(ROYALTY_ENFORCEMENT_OPERATORS)?.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let operator = shared::address::parse_address(text).map_err(|e| invalid(ROYALTY_ENFORCEMENT_OPERATORS, e))?;
        if !operators.contains(&operator) {
            operators.push(operator);
        }
    }
    if operators.is_empty() {
        return Err(invalid(ROYALTY_ENFORCEMENT_OPERATORS, "name at least one marketplace contract".into()));
    }
    Ok(operators)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const MINIMAL: &[(&str, &str)] = shared::config::MINIMAL_ENV;

    fn load(pairs: &[(&str, &str)]) -> Result<BackofficeConfig> {
        BackofficeConfig::load(&Config::from_pairs(pairs)?)
    }

    #[test]
    fn private_webhook_targets_are_for_local_development_only() {
        let config = load(MINIMAL).unwrap();
        assert!(!config.webhooks.allow_private_targets && !config.webhooks.require_https);
        assert_eq!(config.webhooks.retry_base, Duration::from_secs(30));
        let mut local = MINIMAL.to_vec();
        local.push(("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true"));
        assert!(load(&local).unwrap().webhooks.allow_private_targets);
        local.extend_from_slice(shared::config::PRODUCTION_ENV);
        let err = load(&local).unwrap_err().to_string();
        assert!(err.contains("WEBHOOK_ALLOW_PRIVATE_TARGETS"), "{err}");
        // Production needs no Stripe or FX setting to run the back office.
        let production = [MINIMAL, shared::config::PRODUCTION_ENV].concat();
        assert!(load(&production).unwrap().webhooks.require_https);
    }

    #[test]
    fn telegram_alerts_need_both_token_and_chat() {
        assert!(load(MINIMAL).unwrap().alerts.telegram.is_none());
        let mut half = MINIMAL.to_vec();
        half.push(("TELEGRAM_BOT_TOKEN", "123:secret-token"));
        let err = load(&half).unwrap_err().to_string();
        assert!(err.contains("TELEGRAM_CHAT_ID") && !err.contains("secret-token"), "{err}");
        half.push(("TELEGRAM_CHAT_ID", "-1001"));
        let telegram = load(&half).unwrap().alerts.telegram.unwrap();
        assert_eq!((telegram.chat_id.as_str(), telegram.api_url.as_str()), ("-1001", "https://api.telegram.org/"));
        assert!(!format!("{telegram:?}").contains("secret-token"));
    }

    #[test]
    fn enforcement_operators_default_to_seaport_and_its_opensea_conduit() {
        let operators = load(MINIMAL).unwrap().enforcement_operators;
        let seaport = alloy::primitives::address!("0x0000000000000068F116a894984e2DB1123eB395");
        let conduit = alloy::primitives::address!("0x1E0049783F008A0085193E00003D00cd54003c71");
        assert_eq!(operators, [seaport, conduit]);
        let pairs = |value| [MINIMAL, &[("ROYALTY_ENFORCEMENT_OPERATORS", value)]].concat();
        let one = format!(" {seaport} , {seaport},");
        assert_eq!(load(&pairs(&one)).unwrap().enforcement_operators, [seaport]);
        for bad in [",", "0x1234", "seaport"] {
            let err = load(&pairs(bad)).unwrap_err().to_string();
            assert!(err.contains("ROYALTY_ENFORCEMENT_OPERATORS"), "{bad}: {err}");
        }
    }

    #[test]
    fn env_example_documents_exactly_the_backoffice_variables() {
        let documented = shared::config::documented(include_str!("../../.env.example"), "backoffice");
        let declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(documented, declared, ".env.example's backoffice section is out of step with backoffice::config");
    }
}

//! Typed configuration, loaded once from environment variables.
//!
//! Every variable the platform reads is declared once in [`VARIABLES`]; the loader reads only
//! declared variables, `.env.example` documents exactly that list (a test keeps them in step),
//! and secrets are wrapped in [`SecretString`] so they never reach a log through `Debug`.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};

/// One environment variable the platform understands.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    /// Its name in the environment.
    pub name: &'static str,
    /// What it is for, shown in error messages and in `.env.example`.
    pub help: &'static str,
    /// The value used when it is unset; `None` means the variable is required.
    pub default: Option<&'static str>,
    /// Whether it holds a secret (never echoed back in errors or logs).
    pub secret: bool,
}

pub const fn required(name: &'static str, help: &'static str, secret: bool) -> Variable {
    Variable { name, help, default: None, secret }
}

pub const fn optional(name: &'static str, help: &'static str, default: &'static str) -> Variable {
    Variable { name, help, default: Some(default), secret: false }
}

/// A secret that may be left empty (the feature it enables is then off).
pub const fn optional_secret(name: &'static str, help: &'static str) -> Variable {
    Variable { name, help, default: Some(""), secret: true }
}

pub const APP_ENV: Variable =
    optional("APP_ENV", "`local` (readable logs, developer conveniences) or `production`", "local");
pub const DATABASE_URL: Variable =
    required("DATABASE_URL", "PostgreSQL connection URL, e.g. postgres://brandmint@127.0.0.1:54329/brandmint", true);
pub const DATABASE_MAX_CONNECTIONS: Variable =
    optional("DATABASE_MAX_CONNECTIONS", "size of each service's connection pool", "10");
pub const RPC_URL: Variable =
    required("RPC_URL", "JSON-RPC endpoint of the EVM chain, e.g. http://127.0.0.1:18545 (may embed an API key)", true);
pub const CHAIN_ID: Variable =
    optional("CHAIN_ID", "expected chain id; readiness fails if the node reports another (empty: accept any)", "");
pub const BACKOFFICE_ADDR: Variable =
    optional("BACKOFFICE_ADDR", "listen address of the back office API", "127.0.0.1:8081");
pub const PAYMENT_ADDR: Variable = optional("PAYMENT_ADDR", "listen address of the payment API", "127.0.0.1:8082");
pub const REDEMPTION_ADDR: Variable =
    optional("REDEMPTION_ADDR", "listen address of the redemption API", "127.0.0.1:8083");
pub const INDEXER_ADDR: Variable = optional("INDEXER_ADDR", "listen address of the indexer's API", "127.0.0.1:8084");
pub const HTTP_REQUEST_TIMEOUT_SECS: Variable =
    optional("HTTP_REQUEST_TIMEOUT_SECS", "a request still running after this many seconds is answered 503", "30");
pub const SHUTDOWN_GRACE_SECS: Variable =
    optional("SHUTDOWN_GRACE_SECS", "on SIGTERM/Ctrl-C, in-flight requests get this many seconds to finish", "20");
pub const LOG_FORMAT: Variable =
    optional("LOG_FORMAT", "`json` or `pretty`; empty: json in production, pretty locally", "");
pub const SENTRY_DSN: Variable =
    optional_secret("SENTRY_DSN", "Sentry DSN; failing daemon runs and panics are reported there (empty: off)");
pub const ERROR_LOG_RETENTION_DAYS: Variable =
    optional("ERROR_LOG_RETENTION_DAYS", "error log records not seen for this many days are deleted", "30");
pub const TX_SIGNER_PRIVATE_KEYS: Variable = optional_secret(
    "TX_SIGNER_PRIVATE_KEYS",
    "hex private keys (comma-separated) the transaction queue signs with, one sender each (empty: no sender)",
);
pub const TXQUEUE_STUCK_AFTER_SECS: Variable = optional(
    "TXQUEUE_STUCK_AFTER_SECS",
    "a transaction without a receipt this long is re-signed with fees raised by TXQUEUE_FEE_BUMP_PERCENT",
    "120",
);
pub const TXQUEUE_FEE_BUMP_PERCENT: Variable =
    optional("TXQUEUE_FEE_BUMP_PERCENT", "how much a stuck transaction's fees are raised (at least 10)", "20");
pub const TXQUEUE_MAX_FEE_PER_GAS_WEI: Variable =
    optional("TXQUEUE_MAX_FEE_PER_GAS_WEI", "the most a signer ever offers per gas, in wei (empty: no cap)", "");
pub const TXQUEUE_LOW_BALANCE_WEI: Variable = optional(
    "TXQUEUE_LOW_BALANCE_WEI",
    "a signer whose balance falls below this many wei raises signer.balance_low (empty: TXQUEUE_LOW_BALANCE_TXS decides)",
    "",
);
pub const TXQUEUE_LOW_BALANCE_TXS: Variable = optional(
    "TXQUEUE_LOW_BALANCE_TXS",
    "without TXQUEUE_LOW_BALANCE_WEI: low means less than this many transactions (300000 gas each) at current fees",
    "50",
);
pub const JWT_SECRET: Variable = required(
    "JWT_SECRET",
    "HMAC key (at least 32 bytes) signing the HS256 access tokens, e.g. `openssl rand -base64 48`",
    true,
);
pub const JWT_ISSUER: Variable = optional("JWT_ISSUER", "`iss` of the access tokens issued and accepted", "brandmint");
pub const JWT_AUDIENCE: Variable =
    optional("JWT_AUDIENCE", "`aud` of the access tokens issued and accepted", "brandmint-api");
pub const ACCESS_TOKEN_TTL_SECS: Variable =
    optional("ACCESS_TOKEN_TTL_SECS", "lifetime of an access token (keep it short: 5-15 minutes)", "900");
pub const REFRESH_TOKEN_TTL_SECS: Variable =
    optional("REFRESH_TOKEN_TTL_SECS", "lifetime of a refresh token; each refresh issues a new one", "2592000");
pub const SESSION_MAX_LIFETIME_SECS: Variable = optional(
    "SESSION_MAX_LIFETIME_SECS",
    "absolute lifetime of a sign-in session: no refresh extends it past this (default 90 days)",
    "7776000",
);
pub const SIWE_DOMAIN: Variable = optional(
    "SIWE_DOMAIN",
    "the domain (host[:port]) customers' Sign-In with Ethereum messages must name, i.e. the web app's",
    "localhost:3000",
);
pub const SIWE_NONCE_TTL_SECS: Variable =
    optional("SIWE_NONCE_TTL_SECS", "how long a Sign-In with Ethereum nonce can be used", "300");
pub const RATE_LIMIT_AUTH_MAX: Variable = optional(
    "RATE_LIMIT_AUTH_MAX",
    "attempts per window on sign-in, refresh, password reset and SIWE, per client IP and per account",
    "10",
);
pub const RATE_LIMIT_AUTH_WINDOW_SECS: Variable =
    optional("RATE_LIMIT_AUTH_WINDOW_SECS", "the window RATE_LIMIT_AUTH_MAX counts in", "60");
pub const RATE_LIMIT_IP_PER_MINUTE: Variable = optional(
    "RATE_LIMIT_IP_PER_MINUTE",
    "every client IP's budget of requests per minute, per process (0: off)",
    "1200",
);
pub const TRUST_FORWARDED_FOR: Variable = optional(
    "TRUST_FORWARDED_FOR",
    "`true` behind a reverse proxy that sets X-Forwarded-For (its last hop is the client IP); else `false`",
    "false",
);
pub const SMTP_URL: Variable = optional_secret(
    "SMTP_URL",
    "where mail is sent, e.g. smtps://user:password@smtp.example.com (empty: mail goes to MAIL_DIR)",
);
pub const MAIL_DIR: Variable = optional(
    "MAIL_DIR",
    "the dev mailbox: without SMTP_URL, each mail is written here as an .eml file",
    "target/dev-mailbox",
);
pub const MAIL_FROM: Variable =
    optional("MAIL_FROM", "the sender of invitations and password resets", "Brandmint <no-reply@brandmint.local>");
pub const APP_BASE_URL: Variable = optional(
    "APP_BASE_URL",
    "the web app's address, for links in mails (invitations, password resets)",
    "http://localhost:3000",
);
pub const STORAGE_DIR: Variable =
    optional("STORAGE_DIR", "uploads (artwork, KYC documents) when OBJECT_STORE_URL is not set", "target/storage");
pub const OBJECT_STORE_URL: Variable = optional(
    "OBJECT_STORE_URL",
    "s3://bucket/prefix for uploads on S3-compatible storage (AWS_* variables give credentials, region, endpoint)",
    "",
);
pub const KYC_ENCRYPTION_KEY: Variable = optional_secret(
    "KYC_ENCRYPTION_KEY",
    "32-byte AES-256-GCM key encrypting KYC documents at rest, 64 hex digits or base64, e.g. `openssl rand -hex 32` \
     (required in production; empty locally: a fixed dev-only key, with a warning)",
);
pub const QR_CODE_KEY: Variable = optional_secret(
    "QR_CODE_KEY",
    "32-byte key that authenticates QR codes (the brand's printed codes and the customers' counter codes), 64 hex \
     digits or base64; changing it voids every printed code (required in production; empty locally: a fixed \
     dev-only key)",
);
pub const KYC_MAX_DOCUMENT_BYTES: Variable =
    optional("KYC_MAX_DOCUMENT_BYTES", "the largest KYC document image a customer may upload, in bytes", "10485760");
pub const CAMPAIGN_FACTORY_ADDRESS: Variable =
    optional("CAMPAIGN_FACTORY_ADDRESS", "the CampaignFactory contract (empty: campaigns cannot be deployed)", "");
pub const QUOTE_SIGNER_PRIVATE_KEY: Variable = optional_secret(
    "QUOTE_SIGNER_PRIVATE_KEY",
    "the key signing wallet-checkout quotes (the Checkout contract's quote signer; empty: no wallet payments)",
);
pub const CHECKOUT_ADDRESS: Variable =
    optional("CHECKOUT_ADDRESS", "the Checkout contract for wallet payments (empty: no wallet checkout)", "");
pub const REWARD_VAULT_ADDRESS: Variable =
    optional("REWARD_VAULT_ADDRESS", "the RewardVault contract (empty: no on-chain rewards)", "");
pub const STABLECOIN_ADDRESS: Variable =
    optional("STABLECOIN_ADDRESS", "the stablecoin accepted for payments and rewards (empty: none)", "");
pub const TRANSFER_VALIDATOR_ADDRESS: Variable = optional(
    "TRANSFER_VALIDATOR_ADDRESS",
    "the OperatorAllowlistValidator campaigns with royalty enforcement use (empty: the option is unavailable)",
    "",
);
pub const PUBLIC_BASE_URL: Variable = optional(
    "PUBLIC_BASE_URL",
    "the platform's public address, one origin routing to every service (token metadata at <this>/metadata/…, printed codes at <this>/r/…, the shop's pages)",
    "http://127.0.0.1:8081",
);
pub const BACKOFFICE_PUBLIC_URL: Variable = optional(
    "BACKOFFICE_PUBLIC_URL",
    "the back office's own public address where it is not behind PUBLIC_BASE_URL (token metadata, its pages)",
    "",
);
pub const PAYMENT_PUBLIC_URL: Variable = optional(
    "PAYMENT_PUBLIC_URL",
    "the payment service's own public address where it is not behind PUBLIC_BASE_URL (the shop's pages, where Stripe's hosted page returns buyers)",
    "",
);
pub const REDEMPTION_PUBLIC_URL: Variable = optional(
    "REDEMPTION_PUBLIC_URL",
    "the redemption service's own public address where it is not behind PUBLIC_BASE_URL (printed QR codes' pages)",
    "",
);
pub const RUST_LOG: Variable =
    optional("RUST_LOG", "tracing filter directives, e.g. info,sqlx=warn,shared=debug", "info,sqlx=warn");

/// Every variable of the core, in the order `.env.example` lists them (before the services'
/// own sections).
pub const VARIABLES: &[Variable] = &[
    APP_ENV,
    DATABASE_URL,
    DATABASE_MAX_CONNECTIONS,
    RPC_URL,
    CHAIN_ID,
    BACKOFFICE_ADDR,
    PAYMENT_ADDR,
    REDEMPTION_ADDR,
    INDEXER_ADDR,
    HTTP_REQUEST_TIMEOUT_SECS,
    SHUTDOWN_GRACE_SECS,
    LOG_FORMAT,
    SENTRY_DSN,
    ERROR_LOG_RETENTION_DAYS,
    TX_SIGNER_PRIVATE_KEYS,
    TXQUEUE_STUCK_AFTER_SECS,
    TXQUEUE_FEE_BUMP_PERCENT,
    TXQUEUE_MAX_FEE_PER_GAS_WEI,
    TXQUEUE_LOW_BALANCE_WEI,
    TXQUEUE_LOW_BALANCE_TXS,
    JWT_SECRET,
    JWT_ISSUER,
    JWT_AUDIENCE,
    ACCESS_TOKEN_TTL_SECS,
    REFRESH_TOKEN_TTL_SECS,
    SESSION_MAX_LIFETIME_SECS,
    SIWE_DOMAIN,
    SIWE_NONCE_TTL_SECS,
    RATE_LIMIT_AUTH_MAX,
    RATE_LIMIT_AUTH_WINDOW_SECS,
    RATE_LIMIT_IP_PER_MINUTE,
    TRUST_FORWARDED_FOR,
    SMTP_URL,
    MAIL_DIR,
    MAIL_FROM,
    APP_BASE_URL,
    STORAGE_DIR,
    OBJECT_STORE_URL,
    KYC_ENCRYPTION_KEY,
    KYC_MAX_DOCUMENT_BYTES,
    QR_CODE_KEY,
    CAMPAIGN_FACTORY_ADDRESS,
    QUOTE_SIGNER_PRIVATE_KEY,
    CHECKOUT_ADDRESS,
    REWARD_VAULT_ADDRESS,
    STABLECOIN_ADDRESS,
    TRANSFER_VALIDATOR_ADDRESS,
    PUBLIC_BASE_URL,
    BACKOFFICE_PUBLIC_URL,
    PAYMENT_PUBLIC_URL,
    REDEMPTION_PUBLIC_URL,
    RUST_LOG,
];

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("missing required environment variable {name}: {help}")]
    Missing { name: &'static str, help: &'static str },
    /// A variable is set to something that cannot be used.
    #[error("invalid value for environment variable {name}: {reason} (expected {help})")]
    Invalid { name: &'static str, help: &'static str, reason: String },
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// Where the platform runs; decides defaults that differ between a laptop and production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Local,
    Production,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The whole configuration of a Brandmint process.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub database: DatabaseConfig,
    pub chain: ChainConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
    pub observability: ObservabilityConfig,
    pub auth: AuthConfig,
    pub mail: MailConfig,
    pub storage: StorageConfig,
    pub kyc: KycConfig,
    /// The key QR codes are authenticated with.
    pub qr_code_key: crate::qr::CodeKey,
    /// The variables everything above was read from; a service reads its own section from it
    /// (e.g. payment's Stripe settings), so a process reads only what the services it runs need.
    pub env: Env,
}

impl Config {
    /// Whether this is a production deployment (stricter defaults, no developer conveniences).
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

/// How KYC documents are kept.
#[derive(Debug, Clone)]
pub struct KycConfig {
    /// The AES-256-GCM key documents are encrypted with (redacted in `Debug`).
    pub encryption_key: std::sync::Arc<secrecy::SecretBox<[u8; 32]>>,
    /// True when no key was configured and the fixed, public dev-only key is in use.
    pub dev_only_key: bool,
    /// Uploads above this are refused.
    pub max_document_bytes: usize,
}

/// The key used locally when `KYC_ENCRYPTION_KEY` is unset: derived from a published string, so
/// every local process agrees on it and nobody mistakes it for a secret.
const DEV_ONLY_KYC_KEY_SEED: &[u8] = b"brandmint DEV-ONLY KYC document key - never use in production";

/// Where uploads are stored.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub dir: std::path::PathBuf,
    /// `s3://bucket/prefix`, replacing `dir`.
    pub object_store_url: Option<url::Url>,
}

/// The platform's deployed contracts on the configured chain (unset where not deployed).
#[derive(Debug, Clone)]
pub struct ContractsConfig {
    pub campaign_factory: Option<alloy::primitives::Address>,
    /// Signs wallet-checkout quotes for `checkout` (a validated private key).
    pub quote_signer_key: Option<SecretString>,
    pub checkout: Option<alloy::primitives::Address>,
    pub reward_vault: Option<alloy::primitives::Address>,
    pub stablecoin: Option<alloy::primitives::Address>,
    /// The transfer validator of campaigns that enforce royalties.
    pub transfer_validator: Option<alloy::primitives::Address>,
}

/// How access and refresh tokens are issued and checked.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The HS256 key (validated to be at least [`MIN_JWT_SECRET_LEN`] bytes).
    pub jwt_secret: SecretString,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// No session (and so no refresh token) lives longer than this.
    pub session_max_lifetime: Duration,
    /// The `domain` a SIWE message must name.
    pub siwe_domain: String,
    pub siwe_nonce_ttl: Duration,
    pub rate_limits: RateLimitConfig,
    /// Whether the client IP is read from `X-Forwarded-For` (behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

/// How many attempts clients get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Attempts per window on authentication endpoints, per IP and per account.
    pub auth_max: u32,
    pub auth_window: Duration,
    /// Requests per minute per client IP, per process; 0 turns it off.
    pub ip_per_minute: u32,
}

/// Where mail goes and what links in it point at.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// SMTP server URL; without it mail is written to `dir`.
    pub smtp_url: Option<SecretString>,
    pub dir: std::path::PathBuf,
    pub from: String,
    pub app_base_url: url::Url,
}

/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
pub const MIN_JWT_SECRET_LEN: usize = 32;

#[derive(Debug, Clone)]
pub struct ObservabilityConfig {
    pub sentry_dsn: Option<SecretString>,
    pub error_log_retention: Duration,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct ChainConfig {
    pub rpc_url: SecretString,
    pub expected_chain_id: Option<u64>,
    /// The transaction queue's signers (validated private keys).
    pub signer_keys: Vec<SecretString>,
    pub stuck_after: Duration,
    pub fee_bump_percent: u32,
    pub max_fee_per_gas: Option<u128>,
    /// A signer's balance below this many wei is low; `None`: [`ChainConfig::low_balance_transactions`] decides.
    pub low_balance_wei: Option<u128>,
    /// Low: less than this many transactions' worth at current fees.
    pub low_balance_transactions: u64,
    pub contracts: ContractsConfig,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub backoffice_addr: SocketAddr,
    pub payment_addr: SocketAddr,
    pub redemption_addr: SocketAddr,
    pub indexer_addr: SocketAddr,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    /// Where people and other systems reach each service.
    pub public: PublicUrls,
}

/// A service with pages and links of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    Backoffice,
    Payment,
    Redemption,
}

/// The public address of each service: one origin for all (`PUBLIC_BASE_URL`, a router in front
/// sending each path to its service) unless a service has its own.
#[derive(Debug, Clone)]
pub struct PublicUrls {
    backoffice: url::Url,
    payment: url::Url,
    redemption: url::Url,
}

impl PublicUrls {
    /// `path` (starting with `/`) on `site`'s public address.
    pub fn link(&self, site: Site, path: &str) -> String {
        let base = match site {
            Site::Backoffice => &self.backoffice,
            Site::Payment => &self.payment,
            Site::Redemption => &self.redemption,
        };
        format!("{}{path}", base.as_str().trim_end_matches('/'))
    }
}

fn public_urls(env: &Env) -> Result<PublicUrls> {
    let base: url::Url = env.parse(PUBLIC_BASE_URL)?;
    let own = |variable: Variable| -> Result<url::Url> {
        match env.string(variable)?.as_str() {
            "" => Ok(base.clone()),
            _ => env.parse(variable),
        }
    };
    Ok(PublicUrls {
        backoffice: own(BACKOFFICE_PUBLIC_URL)?,
        payment: own(PAYMENT_PUBLIC_URL)?,
        redemption: own(REDEMPTION_PUBLIC_URL)?,
    })
}

#[derive(Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

impl fmt::Debug for LogConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogConfig").field("format", &self.format).field("filter", &self.filter).finish()
    }
}

impl Config {
    /// Loads the configuration from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Loads the configuration from name/value pairs (tests and tools).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<Self> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Self::from_lookup(move |name| map.get(name).cloned())
    }

    /// Loads the configuration from any name → value lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Result<Self> {
        let env = Env { lookup: std::sync::Arc::new(lookup) };
        let environment = match env.string(APP_ENV)?.as_str() {
            "local" => Environment::Local,
            "production" => Environment::Production,
            other => return Err(invalid(APP_ENV, format!("unknown environment `{other}`"))),
        };
        let format = match env.string(LOG_FORMAT)?.as_str() {
            "" if environment == Environment::Production => LogFormat::Json,
            "" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => return Err(invalid(LOG_FORMAT, format!("unknown format `{other}`"))),
        };
        let database_url = env.secret(DATABASE_URL)?;
        check_database_url(database_url.expose_secret())?;
        let rpc_url = env.secret(RPC_URL)?;
        check_rpc_url(rpc_url.expose_secret())?;
        let expected_chain_id = match env.string(CHAIN_ID)?.as_str() {
            "" => None,
            _ => Some(env.parse(CHAIN_ID)?),
        };
        let max_connections = env.parse(DATABASE_MAX_CONNECTIONS)?;
        if max_connections == 0 {
            return Err(invalid(DATABASE_MAX_CONNECTIONS, "must be at least 1".into()));
        }
        Ok(Self {
            environment,
            database: DatabaseConfig { url: database_url, max_connections },
            chain: ChainConfig {
                rpc_url,
                expected_chain_id,
                signer_keys: signer_keys(&env.secret(TX_SIGNER_PRIVATE_KEYS)?)?,
                stuck_after: Duration::from_secs(env.parse(TXQUEUE_STUCK_AFTER_SECS)?),
                fee_bump_percent: match env.parse(TXQUEUE_FEE_BUMP_PERCENT)? {
                    bump if bump >= 10 => bump,
                    _ => return Err(invalid(TXQUEUE_FEE_BUMP_PERCENT, "nodes refuse replacements below 10 %".into())),
                },
                max_fee_per_gas: match env.string(TXQUEUE_MAX_FEE_PER_GAS_WEI)?.as_str() {
                    "" => None,
                    _ => Some(env.parse(TXQUEUE_MAX_FEE_PER_GAS_WEI)?),
                },
                low_balance_wei: match env.string(TXQUEUE_LOW_BALANCE_WEI)?.as_str() {
                    "" => None,
                    _ => Some(env.parse(TXQUEUE_LOW_BALANCE_WEI)?),
                },
                low_balance_transactions: env.parse(TXQUEUE_LOW_BALANCE_TXS)?,
                contracts: ContractsConfig {
                    campaign_factory: address(&env, CAMPAIGN_FACTORY_ADDRESS)?,
                    quote_signer_key: match env.secret(QUOTE_SIGNER_PRIVATE_KEY)? {
                        key if key.expose_secret().is_empty() => None,
                        key if key.expose_secret().parse::<alloy::signers::local::PrivateKeySigner>().is_ok() => {
                            Some(key)
                        }
                        _ => return Err(invalid(QUOTE_SIGNER_PRIVATE_KEY, "not a hex private key".into())),
                    },
                    checkout: address(&env, CHECKOUT_ADDRESS)?,
                    reward_vault: address(&env, REWARD_VAULT_ADDRESS)?,
                    stablecoin: address(&env, STABLECOIN_ADDRESS)?,
                    transfer_validator: address(&env, TRANSFER_VALIDATOR_ADDRESS)?,
                },
            },
            http: HttpConfig {
                backoffice_addr: env.parse(BACKOFFICE_ADDR)?,
                payment_addr: env.parse(PAYMENT_ADDR)?,
                redemption_addr: env.parse(REDEMPTION_ADDR)?,
                indexer_addr: env.parse(INDEXER_ADDR)?,
                request_timeout: Duration::from_secs(env.parse(HTTP_REQUEST_TIMEOUT_SECS)?),
                shutdown_grace: Duration::from_secs(env.parse(SHUTDOWN_GRACE_SECS)?),
                public: public_urls(&env)?,
            },
            log: LogConfig { format, filter: env.string(RUST_LOG)? },
            observability: ObservabilityConfig {
                sentry_dsn: Some(env.secret(SENTRY_DSN)?).filter(|dsn| !dsn.expose_secret().is_empty()),
                error_log_retention: Duration::from_secs(
                    env.parse::<u64>(ERROR_LOG_RETENTION_DAYS)?.saturating_mul(24 * 3600),
                ),
            },
            auth: AuthConfig {
                jwt_secret: match env.secret(JWT_SECRET)? {
                    secret if secret.expose_secret().len() >= MIN_JWT_SECRET_LEN => secret,
                    _ => return Err(invalid(JWT_SECRET, format!("must be at least {MIN_JWT_SECRET_LEN} bytes"))),
                },
                issuer: env.string(JWT_ISSUER)?,
                audience: env.string(JWT_AUDIENCE)?,
                access_token_ttl: positive_secs(&env, ACCESS_TOKEN_TTL_SECS)?,
                refresh_token_ttl: positive_secs(&env, REFRESH_TOKEN_TTL_SECS)?,
                session_max_lifetime: positive_secs(&env, SESSION_MAX_LIFETIME_SECS)?,
                siwe_domain: env.string(SIWE_DOMAIN)?,
                siwe_nonce_ttl: positive_secs(&env, SIWE_NONCE_TTL_SECS)?,
                rate_limits: RateLimitConfig {
                    auth_max: match env.parse(RATE_LIMIT_AUTH_MAX)? {
                        0 => return Err(invalid(RATE_LIMIT_AUTH_MAX, "must be at least 1".into())),
                        max => max,
                    },
                    auth_window: positive_secs(&env, RATE_LIMIT_AUTH_WINDOW_SECS)?,
                    ip_per_minute: env.parse(RATE_LIMIT_IP_PER_MINUTE)?,
                },
                trust_forwarded_for: env.parse(TRUST_FORWARDED_FOR)?,
            },
            mail: MailConfig {
                smtp_url: Some(env.secret(SMTP_URL)?).filter(|url| !url.expose_secret().is_empty()),
                dir: env.string(MAIL_DIR)?.into(),
                from: match env.string(MAIL_FROM)? {
                    from if from.parse::<lettre::message::Mailbox>().is_ok() => from,
                    _ => return Err(invalid(MAIL_FROM, "not a mailbox such as `Name <addr@example.com>`".into())),
                },
                app_base_url: env.parse(APP_BASE_URL)?,
            },
            storage: StorageConfig {
                dir: env.string(STORAGE_DIR)?.into(),
                object_store_url: match env.string(OBJECT_STORE_URL)?.as_str() {
                    "" => None,
                    _ => Some(env.parse(OBJECT_STORE_URL)?),
                },
            },
            kyc: kyc(&env, environment)?,
            qr_code_key: qr_code_key(&env, environment)?,
            env: env.clone(),
        })
    }
}

fn kyc(env: &Env, environment: Environment) -> Result<KycConfig> {
    use sha2::Digest;
    let raw = env.secret(KYC_ENCRYPTION_KEY)?;
    let (key, dev_only_key) = match raw.expose_secret() {
        "" if environment == Environment::Production => {
            return Err(ConfigError::Missing { name: KYC_ENCRYPTION_KEY.name, help: KYC_ENCRYPTION_KEY.help });
        }
        "" => (sha2::Sha256::digest(DEV_ONLY_KYC_KEY_SEED).into(), true),
        text => {
            (parse_key(text).ok_or_else(|| invalid(KYC_ENCRYPTION_KEY, "not 32 bytes of hex or base64".into()))?, false)
        }
    };
    let max_document_bytes = match env.parse::<usize>(KYC_MAX_DOCUMENT_BYTES)? {
        0 => return Err(invalid(KYC_MAX_DOCUMENT_BYTES, "must be at least 1".into())),
        max => max,
    };
    Ok(KycConfig {
        encryption_key: std::sync::Arc::new(secrecy::SecretBox::new(Box::new(key))),
        dev_only_key,
        max_document_bytes,
    })
}

/// The key used locally when `QR_CODE_KEY` is unset (published, so a code printed locally means
/// nothing elsewhere).
const DEV_ONLY_QR_KEY_SEED: &[u8] = b"brandmint DEV-ONLY QR code key - never use in production";

fn qr_code_key(env: &Env, environment: Environment) -> Result<crate::qr::CodeKey> {
    use sha2::Digest;
    let key = match env.secret(QR_CODE_KEY)?.expose_secret() {
        "" if environment == Environment::Production => {
            return Err(ConfigError::Missing { name: QR_CODE_KEY.name, help: QR_CODE_KEY.help });
        }
        "" => sha2::Sha256::digest(DEV_ONLY_QR_KEY_SEED).into(),
        text => parse_key(text).ok_or_else(|| invalid(QR_CODE_KEY, "not 32 bytes of hex or base64".into()))?,
    };
    Ok(crate::qr::CodeKey::new(key))
}

/// 32 bytes written as 64 hex digits or as base64 (standard or URL-safe, padded or not).
fn parse_key(text: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = text.strip_prefix("0x").unwrap_or(text);
    let bytes = match text.len() {
        64 if text.chars().all(|c| c.is_ascii_hexdigit()) => alloy::hex::decode(text).ok()?,
        _ => [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|e| e.decode(text).ok())?,
    };
    bytes.try_into().ok()
}

/// The error for `var` holding an unusable value.
pub fn invalid(var: Variable, reason: String) -> ConfigError {
    ConfigError::Invalid { name: var.name, help: var.help, reason }
}

/// An optional contract address; mixed-case input must carry a valid EIP-55 checksum.
fn address(env: &Env, var: Variable) -> Result<Option<alloy::primitives::Address>> {
    match env.string(var)?.trim() {
        "" => Ok(None),
        text => crate::address::parse_address(text).map(Some).map_err(|reason| invalid(var, reason)),
    }
}

/// A number of seconds, at least 1.
pub fn positive_secs(env: &Env, var: Variable) -> Result<Duration> {
    match env.parse::<u64>(var)? {
        0 => Err(invalid(var, "must be at least 1".into())),
        secs => Ok(Duration::from_secs(secs)),
    }
}

fn check_database_url(url: &str) -> Result<()> {
    let postgres_scheme = url.starts_with("postgres://") || url.starts_with("postgresql://");
    match sqlx::postgres::PgConnectOptions::from_str(url) {
        Ok(_) if postgres_scheme => Ok(()),
        _ => Err(invalid(DATABASE_URL, "not a postgres:// connection URL".into())),
    }
}

/// Comma-separated hex private keys; each must be a valid secp256k1 key. Never echoed.
fn signer_keys(raw: &SecretString) -> Result<Vec<SecretString>> {
    raw.expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .enumerate()
        .map(|(n, key)| match key.parse::<alloy::signers::local::PrivateKeySigner>() {
            Ok(_) => Ok(SecretString::from(key.to_owned())),
            Err(_) => Err(invalid(TX_SIGNER_PRIVATE_KEYS, format!("key #{} is not a hex private key", n + 1))),
        })
        .collect()
}

fn check_rpc_url(url: &str) -> Result<()> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
        Ok(u) => Err(invalid(RPC_URL, format!("unsupported scheme `{}`", u.scheme()))),
        Err(e) => Err(invalid(RPC_URL, format!("not a URL ({e})"))),
    }
}

/// Where variables are read from (the process environment, or a map in tests). Services read
/// their own sections through it ([`Config::env`]); values never show in `Debug`.
#[derive(Clone)]
pub struct Env {
    lookup: std::sync::Arc<Lookup>,
}

/// A name → value source of variables.
type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Env(<variables>)")
    }
}

impl Env {
    /// The variable's value (trimmed), its default when unset or empty, or [`ConfigError::Missing`].
    pub fn string(&self, var: Variable) -> Result<String> {
        match ((self.lookup)(var.name), var.default) {
            (Some(v), _) if !v.trim().is_empty() => Ok(v.trim().to_owned()),
            (_, Some(default)) => Ok(default.to_owned()),
            (_, None) => Err(ConfigError::Missing { name: var.name, help: var.help }),
        }
    }

    /// As [`Env::string`], kept secret.
    pub fn secret(&self, var: Variable) -> Result<SecretString> {
        self.string(var).map(SecretString::from)
    }

    /// The value parsed; a value that does not parse is named (secrets are not echoed).
    pub fn parse<T: FromStr>(&self, var: Variable) -> Result<T>
    where
        T::Err: fmt::Display,
    {
        let raw = self.string(var)?;
        raw.parse().map_err(|e: T::Err| {
            // Never echo a secret's value back; other values help the operator spot the typo.
            let shown = if var.secret { String::new() } else { format!("`{raw}`: ") };
            invalid(var, format!("{shown}{e}"))
        })
    }
}

/// The variables `.env.example` documents in its section `name` (`# ==== name ====`), in order:
/// the core and each service check their own against the code.
pub fn documented<'a>(example: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("# ==== {name} ====");
    example
        .lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| !line.starts_with("# ===="))
        .filter_map(|line| line.trim_start_matches('#').trim().split_once('='))
        .map(|(name, _)| name.trim())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect()
}

/// The least a configuration needs (a database, a node, a signing key for tokens): what the
/// services' configuration tests start from.
pub const MINIMAL_ENV: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://brandmint:hunter2@127.0.0.1:5432/brandmint"),
    ("RPC_URL", "http://127.0.0.1:8545"),
    ("JWT_SECRET", "correct-horse-battery-staple-0123456789"),
];

/// What production needs on top of [`MINIMAL_ENV`]: its own keys for KYC documents and QR
/// codes (no service's own section: the core starts without, say, Stripe's keys).
pub const PRODUCTION_ENV: &[(&str, &str)] = &[
    ("APP_ENV", "production"),
    ("KYC_ENCRYPTION_KEY", "5f0c0c7d8e2a41b39a6f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566f"),
    ("QR_CODE_KEY", "9d1e4b7a0c3f6e2d5a8b1c4f7e0d3a6b9c2f5e8d1a4b7c0f3e6d9a2b5c8f1e4d"),
];

#[cfg(test)]
mod tests {

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::from_pairs(pairs)
    }

    const MINIMAL: &[(&str, &str)] = MINIMAL_ENV;

    const PRODUCTION: &[(&str, &str)] = PRODUCTION_ENV;

    #[test]
    fn a_missing_required_variable_is_named_in_the_error() {
        let err = load(&[("RPC_URL", "http://127.0.0.1:8545")]).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ConfigError::Missing { name: "DATABASE_URL", .. }));
        assert!(message.starts_with("missing required environment variable DATABASE_URL"), "{message}");

        let err = load(&[("DATABASE_URL", "postgres://localhost/brandmint")]).unwrap_err();
        assert!(err.to_string().contains("RPC_URL"), "{err}");
    }

    #[test]
    fn an_empty_required_variable_counts_as_missing() {
        let err = load(&[("DATABASE_URL", "  "), ("RPC_URL", "http://x"), MINIMAL[2]]).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { name: "DATABASE_URL", .. }));
    }

    #[test]
    fn an_unparsable_value_names_the_variable_and_the_value() {
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("PAYMENT_ADDR", "localhost:eighty"));
        let err = load(&pairs).unwrap_err().to_string();
        assert!(err.contains("PAYMENT_ADDR") && err.contains("localhost:eighty"), "{err}");
    }

    #[test]
    fn a_malformed_secret_is_refused_without_echoing_it() {
        let err = load(&[("DATABASE_URL", "mysql://root:s3cret@db"), ("RPC_URL", "http://x"), MINIMAL[2]])
            .unwrap_err()
            .to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = load(&[MINIMAL[0], ("RPC_URL", "ws://node"), MINIMAL[2]]).unwrap_err().to_string();
        assert!(err.contains("RPC_URL") && err.contains("ws"), "{err}");
    }

    #[test]
    fn defaults_fill_everything_optional() {
        let config = load(MINIMAL).unwrap();
        assert_eq!(config.environment, Environment::Local);
        assert_eq!(config.log.format, LogFormat::Pretty);
        assert_eq!(config.http.payment_addr.port(), 8082);
        assert_eq!(config.chain.expected_chain_id, None);
        assert_eq!(config.database.max_connections, 10);
    }

    #[test]
    fn production_logs_json_by_default() {
        let mut pairs = [MINIMAL, PRODUCTION].concat();
        assert_eq!(load(&pairs).unwrap().log.format, LogFormat::Json);
        pairs.push(("APP_ENV", "staging"));
        let err = load(&pairs).unwrap_err().to_string();
        assert!(err.contains("APP_ENV") && err.contains("staging"), "{err}");
    }

    #[test]
    fn signer_keys_are_validated_without_being_echoed() {
        let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let both = format!("{key}, {key}");
        let mut pairs = MINIMAL.to_vec();
        pairs.push(("TX_SIGNER_PRIVATE_KEYS", &both));
        assert_eq!(load(&pairs).unwrap().chain.signer_keys.len(), 2);
        let mut bad = MINIMAL.to_vec();
        bad.push(("TX_SIGNER_PRIVATE_KEYS", "0xnot-a-key-but-secret"));
        let err = load(&bad).unwrap_err().to_string();
        assert!(err.contains("TX_SIGNER_PRIVATE_KEYS") && err.contains("key #1") && !err.contains("secret"), "{err}");
        let mut low = MINIMAL.to_vec();
        low.push(("TXQUEUE_FEE_BUMP_PERCENT", "5"));
        assert!(load(&low).unwrap_err().to_string().contains("TXQUEUE_FEE_BUMP_PERCENT"));
    }

    #[test]
    fn the_jwt_secret_is_required_and_must_be_long_enough() {
        let err = load(&MINIMAL[..2]).unwrap_err();
        assert!(matches!(err, ConfigError::Missing { name: "JWT_SECRET", .. }), "{err}");
        let err = load(&[MINIMAL[0], MINIMAL[1], ("JWT_SECRET", "short-but-secret")]).unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET") && err.contains("32 bytes") && !err.contains("short-but-secret"), "{err}");
        let config = load(MINIMAL).unwrap();
        assert_eq!(config.auth.issuer, "brandmint");
        assert_eq!(config.auth.audience, "brandmint-api");
        assert_eq!(config.auth.access_token_ttl, Duration::from_secs(900));
        let mut zero = MINIMAL.to_vec();
        zero.push(("ACCESS_TOKEN_TTL_SECS", "0"));
        assert!(load(&zero).unwrap_err().to_string().contains("ACCESS_TOKEN_TTL_SECS"));
    }

    #[test]
    fn a_service_reads_its_own_section_through_the_same_variables() {
        let config = load(&[MINIMAL, &[("ORDER_HOLD_SECS", "4321")]].concat()).unwrap();
        let hold = optional("ORDER_HOLD_SECS", "how long", "900");
        assert_eq!(config.env.parse::<u64>(hold).unwrap(), 4321);
        assert!(!format!("{config:?}").contains("4321"), "values stay out of Debug");
        let production = load(&[MINIMAL, PRODUCTION].concat()).unwrap();
        assert!(production.is_production() && !config.is_production());
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let config = load(MINIMAL).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("battery-staple"), "{debug}");
        assert!(!debug.contains("127.0.0.1:8545"), "{debug}");
    }

    #[test]
    fn the_kyc_key_is_required_in_production_and_parsed_from_hex_or_base64() {
        let with = |pairs: &[(&'static str, &'static str)]| load(&[MINIMAL, pairs].concat());
        let err = with(&[("APP_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("KYC_ENCRYPTION_KEY"), "{err}");
        let local = with(&[]).unwrap();
        assert!(local.kyc.dev_only_key);
        assert_eq!(local.kyc.max_document_bytes, 10 * 1024 * 1024);
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let from_hex = with(&[PRODUCTION, &[("KYC_ENCRYPTION_KEY", hex)]].concat()).unwrap();
        assert!(!from_hex.kyc.dev_only_key);
        let expected: [u8; 32] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        assert_eq!(from_hex.kyc.encryption_key.expose_secret(), &expected);
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(with(&[("KYC_ENCRYPTION_KEY", b64)]).unwrap().kyc.encryption_key.expose_secret(), &expected);
        let err = with(&[("KYC_ENCRYPTION_KEY", "c2hvcnQ=")]).unwrap_err().to_string();
        assert!(err.contains("KYC_ENCRYPTION_KEY") && !err.contains("c2hvcnQ"), "{err}");
        assert!(!format!("{from_hex:?}").contains("0a0b0c"), "the key stays out of Debug");
    }

    #[test]
    fn env_example_documents_exactly_the_declared_variables() {
        let documented = documented(include_str!("../../.env.example"), "core");
        let declared: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
        assert_eq!(documented, declared, ".env.example's core section is out of step with config::VARIABLES");
    }

    #[test]
    fn the_qr_code_key_is_required_in_production_and_the_same_in_every_local_process() {
        let (_, code) = load(MINIMAL).unwrap().qr_code_key.new_brand_code();
        assert!(load(MINIMAL).unwrap().qr_code_key.read_brand_code(&code).is_ok(), "local processes agree");
        let production = [MINIMAL, PRODUCTION].concat();
        let missing: Vec<_> = production.iter().copied().filter(|(k, _)| *k != "QR_CODE_KEY").collect();
        assert!(matches!(load(&missing).unwrap_err(), ConfigError::Missing { name: "QR_CODE_KEY", .. }));
        let own = load(&production).unwrap().qr_code_key;
        assert!(own.read_brand_code(&code).is_err(), "a code printed locally means nothing in production");
        let err = load(&[MINIMAL, &[("QR_CODE_KEY", "c2hvcnQ=")]].concat()).unwrap_err().to_string();
        assert!(err.contains("QR_CODE_KEY") && !err.contains("c2hvcnQ"), "{err}");
    }
}

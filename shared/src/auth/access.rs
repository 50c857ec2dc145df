//! Access tokens: JWTs signed with HS256 (the one algorithm issued and accepted, RFC 8725 §3.1),
//! short-lived, with `exp`, `iss` and `aud` required and checked.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AccountId, Error, Result};
use crate::config::AuthConfig;

/// Seconds of clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 30;

/// Whom an access token is for: `sub` is `account:<id>` or `customer:<id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Account(AccountId),
    Customer(i64),
}

impl Subject {
    pub fn account(self) -> Option<AccountId> {
        match self {
            Subject::Account(id) => Some(id),
            Subject::Customer(_) => None,
        }
    }

    pub fn customer(self) -> Option<i64> {
        match self {
            Subject::Customer(id) => Some(id),
            Subject::Account(_) => None,
        }
    }

    fn parse(sub: &str) -> Option<Self> {
        match sub.split_once(':')? {
            ("account", id) => Some(Subject::Account(AccountId::new(id.parse().ok()?))),
            ("customer", id) => Some(Subject::Customer(id.parse().ok()?)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Account(id) => write!(f, "account:{id}"),
            Subject::Customer(id) => write!(f, "customer:{id}"),
        }
    }
}

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The [`Subject`], as a string (RFC 7519 §4.1.2).
    pub sub: String,
    pub iss: String,
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// The session the token was issued in; revoking it stops the token at once.
    pub sid: Uuid,
}

/// Issues an access token for `subject` in session `session`; returns it with its lifetime in seconds.
pub fn issue(config: &AuthConfig, subject: Subject, session: Uuid) -> Result<(String, u64)> {
    let iat = now();
    let ttl = config.access_token_ttl.as_secs();
    let claims = Claims {
        sub: subject.to_string(),
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        exp: iat + ttl,
        iat,
        sid: session,
    };
    let key = EncodingKey::from_secret(config.jwt_secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| Error::Internal(format!("signing an access token: {e}")))?;
    Ok((token, ttl))
}

/// Verifies an access token: HS256 signature with our key, not expired, our issuer and audience.
/// Anything else (`alg: none`, another algorithm, a missing claim) is [`Error::InvalidAccessToken`].
pub fn verify(config: &AuthConfig, token: &str) -> Result<(Subject, Claims)> {
    let key = DecodingKey::from_secret(config.jwt_secret.expose_secret().as_bytes());
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation(config))
        .map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            Error::InvalidAccessToken
        })?
        .claims;
    let subject = Subject::parse(&claims.sub).ok_or(Error::InvalidAccessToken)?;
    Ok((subject, claims))
}

fn validation(config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256];
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.validate_exp = true;
    validation.leeway = LEEWAY_SECS;
    validation
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

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

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The account id, as a string (RFC 7519 §4.1.2).
    pub sub: String,
    pub iss: String,
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// The refresh-token family (sign-in session) the token was issued in.
    pub sid: Uuid,
}

/// Issues an access token for `account` in session `family`; returns it with its lifetime in seconds.
pub fn issue(config: &AuthConfig, account: AccountId, family: Uuid) -> Result<(String, u64)> {
    let iat = now();
    let ttl = config.access_token_ttl.as_secs();
    let claims = Claims {
        sub: account.to_string(),
        iss: config.issuer.clone(),
        aud: config.audience.clone(),
        exp: iat + ttl,
        iat,
        sid: family,
    };
    let key = EncodingKey::from_secret(config.jwt_secret.expose_secret().as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| Error::Internal(format!("signing an access token: {e}")))?;
    Ok((token, ttl))
}

/// Verifies an access token: HS256 signature with our key, not expired, our issuer and audience.
/// Anything else (`alg: none`, another algorithm, a missing claim) is [`Error::InvalidAccessToken`].
pub fn verify(config: &AuthConfig, token: &str) -> Result<(AccountId, Claims)> {
    let key = DecodingKey::from_secret(config.jwt_secret.expose_secret().as_bytes());
    let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation(config))
        .map_err(|e| {
            tracing::debug!(error = %e, "access token refused");
            Error::InvalidAccessToken
        })?
        .claims;
    let account = claims.sub.parse().map(AccountId::new).map_err(|_| Error::InvalidAccessToken)?;
    Ok((account, claims))
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

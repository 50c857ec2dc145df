//! Refresh tokens: opaque random strings, stored only as their SHA-256, single-use and
//! rotated on every refresh. Each belongs to a family (one sign-in); presenting a token that
//! was already exchanged means it leaked or was replayed, so the whole family is revoked and
//! the holder must sign in again (RFC 9700 §4.14.2).

use std::fmt;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::{AccountId, Error, Result, access};
use crate::config::AuthConfig;

/// An access token with the refresh token to renew it.
pub struct TokenPair {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

/// Starts a new session for `account`: a new family with its first refresh token.
#[tracing::instrument(skip_all, fields(account.id = %account))]
pub async fn issue_pair(conn: &mut PgConnection, config: &AuthConfig, account: AccountId) -> Result<TokenPair> {
    let family = Uuid::new_v4();
    let (refresh_token, _) = insert(conn, config, account, family).await?;
    pair(config, account, family, refresh_token)
}

/// Exchanges a refresh token for a new pair and retires it. A retired token presented again
/// revokes its whole family and fails with [`Error::RefreshTokenReused`].
#[tracing::instrument(skip_all)]
pub async fn refresh(conn: &mut PgConnection, config: &AuthConfig, token: &SecretString) -> Result<TokenPair> {
    let mut tx = conn.begin().await?;
    // The row lock serialises concurrent refreshes of one token: the second sees it retired.
    let Some(row) = sqlx::query!(
        r#"SELECT t.id, t.account_id AS "account_id: AccountId", t.family_id,
                  t.expires_at <= now() AS "expired!", t.retired_at, t.revoked_at,
                  a.disabled_at
           FROM refresh_tokens t JOIN accounts a ON a.id = t.account_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t"#,
        &hash(token)[..],
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(Error::InvalidRefreshToken);
    };
    if row.revoked_at.is_some() {
        return Err(Error::InvalidRefreshToken);
    }
    if row.retired_at.is_some() {
        revoke_family(&mut tx, row.family_id).await?;
        tx.commit().await?;
        tracing::warn!(account.id = %row.account_id, family = %row.family_id, "refresh token reused; family revoked");
        return Err(Error::RefreshTokenReused);
    }
    if row.expired || row.disabled_at.is_some() {
        return Err(Error::InvalidRefreshToken);
    }
    let (next, next_id) = insert(&mut tx, config, row.account_id, row.family_id).await?;
    sqlx::query!("UPDATE refresh_tokens SET retired_at = now(), replaced_by = $2 WHERE id = $1", row.id, next_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    pair(config, row.account_id, row.family_id, next)
}

/// Ends the session the refresh token belongs to: revokes its whole family. Unknown tokens
/// are ignored, so logging out twice is not an error.
#[tracing::instrument(skip_all)]
pub async fn logout(conn: &mut PgConnection, token: &SecretString) -> Result<()> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1) AND revoked_at IS NULL",
        &hash(token)[..],
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<()> {
    sqlx::query!("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", family)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a new refresh token of `family`; returns the token and its row id.
async fn insert(
    conn: &mut PgConnection,
    config: &AuthConfig,
    account: AccountId,
    family: Uuid,
) -> Result<(SecretString, i64)> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = SecretString::from(URL_SAFE_NO_PAD.encode(bytes));
    let ttl_secs = i64::try_from(config.refresh_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let id = sqlx::query_scalar!(
        "INSERT INTO refresh_tokens (account_id, family_id, token_hash, expires_at)
         VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint))
         RETURNING id",
        account.get(),
        family,
        &hash(&token)[..],
        ttl_secs,
    )
    .fetch_one(conn)
    .await?;
    Ok((token, id))
}

fn pair(config: &AuthConfig, account: AccountId, family: Uuid, refresh_token: SecretString) -> Result<TokenPair> {
    let (access_token, expires_in) = access::issue(config, account, family)?;
    Ok(TokenPair { access_token: access_token.into(), refresh_token, expires_in })
}

/// What is stored of a refresh token. The token carries 256 random bits, so a fast hash is
/// enough: nothing can be guessed from it.
fn hash(token: &SecretString) -> [u8; 32] {
    Sha256::digest(token.expose_secret().as_bytes()).into()
}

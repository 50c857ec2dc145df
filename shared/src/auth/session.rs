//! Sessions: one per sign-in. An account's session is renewed with refresh tokens — opaque
//! random strings stored only as their SHA-256, single-use and rotated on every refresh (the
//! session is their family). Presenting a token that was already exchanged means it leaked or
//! was replayed, so the whole session is revoked and the holder must sign in again (RFC 9700
//! §4.14.2). Access tokens name their session (`sid`), so revoking it stops them at once.
//! No session outlives `SESSION_MAX_LIFETIME_SECS`, however often it is refreshed.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    AccountId, Error, Result,
    access::{self, Subject},
    guard::{RequestMeta, random_token, token_hash},
};
use crate::config::AuthConfig;

/// An access token with the refresh token to renew it.
pub struct TokenPair {
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    /// The access token's lifetime in seconds.
    pub expires_in: u64,
    pub session: Uuid,
}

impl fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenPair").field("expires_in", &self.expires_in).finish_non_exhaustive()
    }
}

/// A session as its owner sees it in "where am I signed in".
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    pub id: Uuid,
    /// `password` or `siwe`.
    pub method: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Starts a new password session for `account` with its first refresh token.
#[tracing::instrument(skip_all, fields(account.id = %account))]
pub async fn start(
    conn: &mut PgConnection,
    config: &AuthConfig,
    account: AccountId,
    meta: &RequestMeta,
) -> Result<TokenPair> {
    let mut tx = conn.begin().await?;
    let session = Uuid::new_v4();
    let lifetime = secs(config.session_max_lifetime.as_secs());
    sqlx::query!(
        "INSERT INTO sessions (id, account_id, method, ip, user_agent, expires_at)
         VALUES ($1, $2, 'password', CAST($3::text AS inet), $4, now() + make_interval(secs => $5::bigint))",
        session,
        account.get(),
        meta.ip.map(|ip| ip.to_string()),
        meta.user_agent,
        lifetime,
    )
    .execute(&mut *tx)
    .await?;
    let (refresh_token, _) = insert_refresh(&mut tx, config, account, session).await?;
    tx.commit().await?;
    pair(config, account, session, refresh_token)
}

/// Exchanges a refresh token for a new pair and retires it. A retired token presented again
/// revokes its whole session and fails with [`Error::RefreshTokenReused`].
#[tracing::instrument(skip_all)]
pub async fn refresh(conn: &mut PgConnection, config: &AuthConfig, token: &SecretString) -> Result<TokenPair> {
    let mut tx = conn.begin().await?;
    // The row lock serialises concurrent refreshes of one token: the second sees it retired.
    let Some(row) = sqlx::query!(
        r#"SELECT t.id, t.account_id AS "account_id: AccountId", t.family_id,
                  t.expires_at <= now() OR s.expires_at <= now() AS "expired!",
                  t.retired_at, t.revoked_at IS NOT NULL OR s.revoked_at IS NOT NULL AS "revoked!",
                  a.disabled_at
           FROM refresh_tokens t
           JOIN sessions s ON s.id = t.family_id
           JOIN accounts a ON a.id = t.account_id
           WHERE t.token_hash = $1
           FOR UPDATE OF t"#,
        &token_hash(token.expose_secret())[..],
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Err(Error::InvalidRefreshToken);
    };
    if row.revoked {
        return Err(Error::InvalidRefreshToken);
    }
    if row.retired_at.is_some() {
        revoke_in(&mut tx, row.family_id).await?;
        tx.commit().await?;
        tracing::warn!(account.id = %row.account_id, session = %row.family_id, "refresh token reused; session revoked");
        return Err(Error::RefreshTokenReused);
    }
    if row.expired || row.disabled_at.is_some() {
        return Err(Error::InvalidRefreshToken);
    }
    let (next, next_id) = insert_refresh(&mut tx, config, row.account_id, row.family_id).await?;
    sqlx::query!("UPDATE refresh_tokens SET retired_at = now(), replaced_by = $2 WHERE id = $1", row.id, next_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("UPDATE sessions SET last_seen_at = now() WHERE id = $1", row.family_id).execute(&mut *tx).await?;
    tx.commit().await?;
    pair(config, row.account_id, row.family_id, next)
}

/// Ends the session the refresh token belongs to. Unknown tokens are ignored, so logging out
/// twice is not an error.
#[tracing::instrument(skip_all)]
pub async fn logout(conn: &mut PgConnection, token: &SecretString) -> Result<()> {
    let session = sqlx::query_scalar!(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1",
        &token_hash(token.expose_secret())[..]
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(session) = session {
        revoke_in(conn, session).await?;
    }
    Ok(())
}

/// Revokes one of `account`'s sessions; `false` if it has no such live session.
pub async fn revoke(conn: &mut PgConnection, account: AccountId, session: Uuid) -> Result<bool> {
    let owned = sqlx::query_scalar!(
        "SELECT id FROM sessions WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
        session,
        account.get()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if owned.is_some() {
        revoke_in(conn, session).await?;
    }
    Ok(owned.is_some())
}

/// Revokes every live session of `account` (after a password reset or when it is disabled).
pub async fn revoke_all(conn: &mut PgConnection, account: AccountId) -> Result<u64> {
    let revoked = sqlx::query!(
        "UPDATE sessions SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL",
        account.get()
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL",
        account.get()
    )
    .execute(conn)
    .await?;
    Ok(revoked)
}

/// The live sessions of `account`, newest first.
pub async fn list(conn: &mut PgConnection, account: AccountId) -> Result<Vec<SessionInfo>> {
    Ok(sqlx::query_as!(
        SessionInfo,
        r#"SELECT id, method, host(ip) AS ip, user_agent, created_at, last_seen_at, expires_at
           FROM sessions
           WHERE account_id = $1 AND revoked_at IS NULL AND expires_at > now()
           ORDER BY created_at DESC"#,
        account.get()
    )
    .fetch_all(conn)
    .await?)
}

/// Ends `session` and its refresh tokens (signing out of a page session).
pub async fn revoke_in(conn: &mut PgConnection, session: Uuid) -> Result<()> {
    sqlx::query!("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", session)
        .execute(&mut *conn)
        .await?;
    sqlx::query!("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", session)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores a new refresh token of `session`, expiring at the refresh TTL or the session's end,
/// whichever comes first; returns the token and its row id.
async fn insert_refresh(
    conn: &mut PgConnection,
    config: &AuthConfig,
    account: AccountId,
    session: Uuid,
) -> Result<(SecretString, i64)> {
    let token = random_token();
    let id = sqlx::query_scalar!(
        "INSERT INTO refresh_tokens (account_id, family_id, token_hash, expires_at)
         SELECT $1, s.id, $3, least(now() + make_interval(secs => $4::bigint), s.expires_at)
         FROM sessions s WHERE s.id = $2
         RETURNING id",
        account.get(),
        session,
        &token_hash(&token)[..],
        secs(config.refresh_token_ttl.as_secs()),
    )
    .fetch_one(conn)
    .await?;
    Ok((token.into(), id))
}

fn pair(config: &AuthConfig, account: AccountId, session: Uuid, refresh_token: SecretString) -> Result<TokenPair> {
    let (access_token, expires_in) = access::issue(config, Subject::Account(account), session)?;
    Ok(TokenPair { access_token: access_token.into(), refresh_token, expires_in, session })
}

pub(super) fn secs(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

//! Password reset: a single-use token, valid for an hour, mailed to the account's address.
//! Asking is answered the same way whether or not the email has an account (the mail is sent
//! in the background, so timing does not tell either); using the token sets the new password
//! and ends every session of the account.

use secrecy::SecretString;
use sqlx::PgPool;

use super::{
    AccountId, Email, Error, Result,
    guard::{RequestMeta, random_token, token_hash},
    password, session,
};
use crate::{
    audit::{self, Entry},
    mail::Mailer,
};

/// How long a reset link works.
pub const TOKEN_TTL_SECS: i64 = 3600;

/// Starts a reset for `email` if it names an enabled account.
#[tracing::instrument(skip_all)]
pub async fn request(db: &PgPool, mailer: &Mailer, email: &str) -> Result<()> {
    let Ok(email) = Email::parse(email) else { return Ok(()) };
    let Some(account) =
        sqlx::query_scalar!("SELECT id FROM accounts WHERE email = $1 AND disabled_at IS NULL", email.as_str())
            .fetch_optional(db)
            .await?
    else {
        return Ok(());
    };
    let token = random_token();
    sqlx::query!(
        "INSERT INTO password_resets (token_hash, account_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3::bigint))",
        &token_hash(&token)[..],
        account,
        TOKEN_TTL_SECS,
    )
    .execute(db)
    .await?;
    let link = mailer.link("/password-reset", &[("token", &token)]);
    let body = format!(
        "Someone (hopefully you) asked to reset the password of your Brandmint account.\n\n\
         Choose a new password here within the hour:\n{link}\n\n\
         If it was not you, ignore this mail: your password stays as it is.\n"
    );
    let mailer = mailer.clone();
    tokio::spawn(async move {
        if let Err(e) = mailer.send(email.as_str(), "Reset your Brandmint password", body).await {
            tracing::error!(error = ?e, "password reset mail not sent");
        }
    });
    Ok(())
}

/// Uses a reset token: sets the new password and revokes every session of the account.
#[tracing::instrument(skip_all)]
pub async fn confirm(db: &PgPool, token: &str, new_password: SecretString, meta: &RequestMeta) -> Result<AccountId> {
    let hash = password::hash(new_password).await?;
    let mut tx = db.begin().await?;
    let account = sqlx::query_scalar!(
        r#"UPDATE password_resets SET used_at = now()
           WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
           RETURNING account_id AS "account_id: AccountId""#,
        &token_hash(token)[..],
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::InvalidResetToken)?;
    sqlx::query!("UPDATE accounts SET password_hash = $2 WHERE id = $1", account.get(), hash).execute(&mut *tx).await?;
    // Other outstanding reset links die with this one.
    sqlx::query!("UPDATE password_resets SET used_at = now() WHERE account_id = $1 AND used_at IS NULL", account.get())
        .execute(&mut *tx)
        .await?;
    let revoked = session::revoke_all(&mut tx, account).await?;
    audit::record_as(
        &mut tx,
        &format!("account:{account}"),
        None,
        meta,
        Entry::new("auth.password-reset", format!("account:{account}"))
            .after(serde_json::json!({ "sessions_revoked": revoked })),
    )
    .await?;
    tx.commit().await?;
    Ok(account)
}

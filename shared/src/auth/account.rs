//! Accounts: who can sign in, and signing in.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};

use super::{Error, Result, acl::PlatformRole, guard::RequestMeta, password, session};
use crate::{
    audit::{self, Entry},
    config::AuthConfig,
    ids::AccountId,
};

/// An email address, trimmed and lowercased: the form accounts are stored and looked up in.
/// Checked only for shape; deliverability is not this type's business.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self> {
        // Bounded before anything else is done with it (RFC 5321: 254 characters at most).
        if raw.len() > 320 {
            return Err(Error::InvalidEmail("must be at most 254 characters"));
        }
        let email = raw.trim().to_lowercase();
        let valid_shape = email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && domain.contains('.')
        });
        if email.len() > 254 {
            Err(Error::InvalidEmail("must be at most 254 characters"))
        } else if !valid_shape || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Err(Error::InvalidEmail("must be an email address"))
        } else {
            Ok(Self(email))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Emails are personal data: kept out of logs even through `Debug`.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

/// An account as the rest of the platform sees it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub display_name: Option<String>,
    pub platform_role: Option<String>,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// Creates an account. There is no public sign-up: accounts come from invitations, from
/// `brandmint create-admin` and from tests.
#[tracing::instrument(skip_all)]
pub async fn create_account(
    conn: &mut PgConnection,
    email: &str,
    password: SecretString,
    platform_role: Option<PlatformRole>,
) -> Result<Account> {
    let email = Email::parse(email)?;
    let hash = password::hash(password).await?;
    sqlx::query_as!(
        Account,
        r#"INSERT INTO accounts (email, password_hash, platform_role) VALUES ($1, $2, $3)
           RETURNING id AS "id: AccountId", email, display_name, platform_role, created_at, disabled_at"#,
        email.as_str(),
        hash,
        platform_role.map(PlatformRole::as_str),
    )
    .fetch_one(conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.constraint() == Some("accounts_email_key") => Error::EmailTaken,
        _ => Error::Database(e),
    })
}

/// The account with this id, disabled or not.
#[tracing::instrument(skip_all, fields(account.id = %id))]
pub async fn find_account(conn: &mut PgConnection, id: AccountId) -> Result<Option<Account>> {
    Ok(sqlx::query_as!(
        Account,
        r#"SELECT id AS "id: AccountId", email, display_name, platform_role, created_at, disabled_at
           FROM accounts WHERE id = $1"#,
        id.get(),
    )
    .fetch_optional(conn)
    .await?)
}

/// Checks email + password and starts a new session (refresh-token family). Unknown email,
/// malformed email, wrong password and disabled account all cost one argon2 verification and
/// fail with the same [`Error::InvalidCredentials`].
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    db: &PgPool,
    config: &AuthConfig,
    email: &str,
    password: SecretString,
    meta: &RequestMeta,
) -> Result<session::TokenPair> {
    let found = match Email::parse(email) {
        Ok(email) => {
            sqlx::query!(
                r#"SELECT id AS "id: AccountId", password_hash, disabled_at FROM accounts WHERE email = $1"#,
                email.as_str(),
            )
            .fetch_optional(db)
            .await?
        }
        Err(_) => None,
    };
    let (account, hash, disabled) = match found {
        Some(row) => (Some(row.id), Some(row.password_hash), row.disabled_at.is_some()),
        None => (None, None, false),
    };
    let matches = password::verify(password, hash).await?;
    match account {
        Some(account) if matches && !disabled => {
            let mut tx = db.begin().await?;
            let pair = session::start(&mut tx, config, account, meta).await?;
            audit::record_as(
                &mut tx,
                &format!("account:{account}"),
                None,
                meta,
                Entry::new("auth.signed-in", format!("account:{account}"))
                    .after(serde_json::json!({ "method": "password", "session": pair.session })),
            )
            .await?;
            tx.commit().await?;
            Ok(pair)
        }
        _ => Err(Error::InvalidCredentials),
    }
}

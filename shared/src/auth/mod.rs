//! Identity and access.
//!
//! * Accounts (staff and brand members) sign in with email + password ([`password`]: argon2id,
//!   always off the async runtime) and get a short-lived HS256 access token ([`access`]) and a
//!   rotating refresh token in a [`session`] (re-use of a rotated token revokes the session).
//! * Customers sign in with their wallet ([`siwe`], EIP-4361 with EIP-1271 for contract wallets).
//! * Brands' servers use scoped [`api_keys`].
//! * [`acl`] maps roles to permissions; [`require`] puts a route behind one, and [`Caller`] is
//!   what the handler then knows about who is calling and on which brand.
//! * [`reset`]: password reset by a mailed single-use token.
//!
//! Every way authentication can fail becomes the same 401 problem: a client never learns
//! whether the email, the password, the signature or the audience was wrong.

pub mod access;
mod account;
pub mod acl;
pub mod api_keys;
mod guard;
pub(crate) use guard::operations;
pub mod password;
pub mod reset;
pub mod session;
pub mod siwe;

pub use crate::ids::{AccountId, BrandId};
pub use account::{Account, Email, create_account, find_account, sign_in};
pub use acl::{BrandRole, Permission, PlatformRole};
pub(crate) use guard::check_csrf;
pub use guard::{
    BrandAccess, CSRF_COOKIE, CSRF_HEADER, Caller, Principal, RequestMeta, SECURITY_SCHEME, SESSION_COOKIE,
    X_PERMISSION, X_PUBLIC, authenticate, client_ip, cookie, end_page_session, may, public, random_token, require,
    require_page, start_page_session, token_hash,
};
pub use session::{TokenPair, logout, refresh};

use crate::http::{ApiError, FieldError};

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Unknown email, wrong password or disabled account: deliberately indistinguishable.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// An access token that is malformed, badly signed, expired or meant for someone else.
    #[error("invalid access token")]
    InvalidAccessToken,
    /// A refresh token that is unknown, expired, revoked, or belongs to a disabled account.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// A refresh token that was already exchanged was presented again; its family is revoked.
    #[error("refresh token reused; its family is revoked")]
    RefreshTokenReused,
    /// An email that is not an address.
    #[error("invalid email: {0}")]
    InvalidEmail(&'static str),
    /// A password that is too short or too long to accept.
    #[error("unacceptable password: {0}")]
    UnacceptablePassword(&'static str),
    /// A password-reset token that is unknown, used or expired.
    #[error("invalid or expired reset token")]
    InvalidResetToken,
    /// An account with this email already exists.
    #[error("an account with this email exists")]
    EmailTaken,
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Hashing, signing or the blocking pool failed (a bug or resource exhaustion).
    #[error("identity internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidCredentials
            | Error::InvalidAccessToken
            | Error::InvalidRefreshToken
            | Error::RefreshTokenReused => ApiError::Unauthenticated,
            Error::InvalidEmail(message) => ApiError::Validation(vec![FieldError::new("email", message)]),
            Error::UnacceptablePassword(message) => ApiError::Validation(vec![FieldError::new("password", message)]),
            Error::InvalidResetToken => ApiError::Conflict {
                code: crate::http::ConflictCode::InvalidResetToken,
                detail: "this reset link is unknown, used or expired; ask for a new one".into(),
            },
            Error::EmailTaken => ApiError::Conflict {
                code: crate::http::ConflictCode::EmailTaken,
                detail: "an account with this email exists".into(),
            },
            Error::Database(e) => e.into(),
            Error::Internal(cause) => ApiError::Internal(anyhow::anyhow!(cause)),
        }
    }
}

/// Forgets what identity no longer needs, hourly: expired SIWE nonces, ended rate-limit
/// windows, reset tokens and sessions (with their refresh tokens) that ended over a week ago.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdentityCleanup;

impl crate::daemon::Daemon for IdentityCleanup {
    fn name(&self) -> &'static str {
        "identity-cleanup"
    }

    fn schedule(&self) -> crate::daemon::Schedule {
        crate::daemon::Schedule::Cron("0 23 * * * *")
    }

    fn run<'a>(&'a self, ctx: &'a crate::daemon::RunContext) -> crate::workflow::BoxFuture<'a, anyhow::Result<u64>> {
        Box::pin(async move {
            let nonces = sqlx::query!("DELETE FROM siwe_nonces WHERE expires_at < now()").execute(&ctx.pool).await?;
            let resets = sqlx::query!("DELETE FROM password_resets WHERE expires_at < now() - interval '7 days'")
                .execute(&ctx.pool)
                .await?;
            let sessions = sqlx::query!(
                "DELETE FROM sessions WHERE expires_at < now() - interval '7 days'
                    OR revoked_at < now() - interval '7 days'"
            )
            .execute(&ctx.pool)
            .await?;
            Ok(nonces.rows_affected() + resets.rows_affected() + sessions.rows_affected())
        })
    }
}

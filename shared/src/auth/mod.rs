//! Identity: accounts that sign in with email + password, short-lived JWT access tokens and
//! rotating refresh tokens with reuse detection (RFC 9700 §4.14.2).
//!
//! * [`password`]: argon2id hashing, always off the async runtime.
//! * [`access`]: HS256 access tokens, the only algorithm accepted; `exp`, `iss` and `aud` required.
//! * [`refresh`]: refresh tokens stored as SHA-256 hashes, in families; presenting a retired
//!   token revokes its whole family.
//! * [`Authenticated`]: the extractor that turns `Authorization: Bearer …` into an account id.
//!
//! Every way authentication can fail becomes the same 401 problem: a client never learns
//! whether the email, the password, the signature or the audience was wrong.

pub mod access;
mod account;
mod extract;
pub mod password;
pub mod refresh;

pub use account::{Account, AccountId, Email, create_account, find_account, sign_in};
pub use extract::Authenticated;
pub use refresh::{TokenPair, issue_pair, logout, refresh};

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
            Error::EmailTaken => {
                ApiError::Conflict { code: "email-taken", detail: "an account with this email exists".into() }
            }
            Error::Database(e) => e.into(),
            Error::Internal(cause) => ApiError::Internal(anyhow::anyhow!(cause)),
        }
    }
}

//! argon2id password hashes (OWASP minimum parameters: m = 19 MiB, t = 2, p = 1, which are
//! `argon2`'s defaults). Hashing takes tens of milliseconds of CPU, so it always runs on the
//! blocking pool, never on an async worker.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

use super::{Error, Result};

/// Shortest password accepted for a new account.
pub const MIN_LEN: usize = 12;
/// Longest password accepted (bytes): bounds the work an attacker can make one request cost.
pub const MAX_LEN: usize = 1024;

/// Checks a new password's length, then hashes it into a PHC string.
pub async fn hash(password: SecretString) -> Result<String> {
    match password.expose_secret().chars().count() {
        n if n < MIN_LEN => return Err(Error::UnacceptablePassword("must be at least 12 characters")),
        _ if password.expose_secret().len() > MAX_LEN => {
            return Err(Error::UnacceptablePassword("must be at most 1024 bytes"));
        }
        _ => {}
    }
    blocking(move || {
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| Error::Internal(format!("argon2 hash: {e}")))
    })
    .await
}

/// Whether `password` matches `hash`. With no hash (unknown email) it verifies against a
/// dummy hash anyway and answers `false`, so both cases cost the same time.
pub async fn verify(password: SecretString, hash: Option<String>) -> Result<bool> {
    blocking(move || {
        let candidate = password.expose_secret().as_bytes();
        if candidate.len() > MAX_LEN {
            return Ok(false);
        }
        let (hash, known) = match &hash {
            Some(hash) => (hash.as_str(), true),
            None => (DUMMY_HASH.as_str(), false),
        };
        match Argon2::default().verify_password(candidate, hash) {
            Ok(()) => Ok(known),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(Error::Internal(format!("argon2 verify: {e}"))),
        }
    })
    .await
}

/// A hash of a random password with the default parameters; computed once, on first use,
/// inside the blocking pool.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
    // Cannot fail for a 32-byte input with default parameters; were it to, `verify` reports
    // the unparsable hash as an internal error rather than letting an unknown email through.
    Argon2::default().hash_password(&secret).map(|hash| hash.to_string()).unwrap_or_default()
});

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Internal(format!("blocking task: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hash = hash("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify("correct horse battery".into(), Some(hash.clone())).await.unwrap());
        assert!(!verify("correct horse batterY".into(), Some(hash)).await.unwrap());
        assert!(!verify("correct horse battery".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn short_and_huge_passwords_are_refused() {
        assert!(matches!(hash("too short".into()).await, Err(Error::UnacceptablePassword(_))));
        assert!(matches!(hash("x".repeat(MAX_LEN + 1).into()).await, Err(Error::UnacceptablePassword(_))));
    }
}

//! The extractor a handler takes to require a signed-in caller.

use axum::{
    extract::FromRequestParts,
    http::{header, request::Parts},
};
use uuid::Uuid;

use super::{AccountId, access};
use crate::{AppState, http::ApiError};

/// A caller who presented a valid access token (`Authorization: Bearer <jwt>`). Anything
/// else (no header, another scheme, a bad token) is answered with the generic 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    pub account: AccountId,
    /// The session (refresh-token family) the token was issued in.
    pub session: Uuid,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or(ApiError::Unauthenticated)?;
        let (account, claims) = access::verify(&state.config().auth, token)?;
        Ok(Self { account, session: claims.sid })
    }
}

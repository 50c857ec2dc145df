//! Customers sign in with their wallet (EIP-4361 Sign-In with Ethereum) to redeem rewards, and
//! staff sign in for this service's pages (the store scanner). The rules live in `shared::auth`.

use alloy::primitives::Bytes;
use std::time::Duration;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{self, Caller, Permission, RequestMeta, public, require},
    http::{
        ApiError, ApiResult, Problem,
        extract::{Json, Query},
        ratelimit,
    },
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(public(routes!(siwe_nonce)))
        .routes(public(routes!(siwe_sign_in)))
        .routes(require(Permission::Customer, routes!(me)))
}

/// A nonce to put in the EIP-4361 message.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Nonce {
    nonce: String,
    /// The `domain` the message must name.
    domain: String,
    /// The `Chain ID` the message must name.
    chain_id: u64,
    /// Seconds the nonce stays usable.
    expires_in: u64,
    /// With `?address=`: the whole EIP-4361 message to sign (the address in its EIP-55 form,
    /// which wallets do not always give).
    message: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct NonceQuery {
    /// The wallet that will sign, in any case: the answer then carries the message to sign.
    address: Option<String>,
}

/// The signed message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiweSignIn {
    /// The EIP-4361 message exactly as signed.
    message: String,
    /// The signature, 0x-hex: 65-byte ECDSA (EIP-191) or whatever the contract wallet's
    /// EIP-1271 `isValidSignature` accepts.
    #[schema(value_type = String)]
    signature: Bytes,
    /// Also start a session for this site's pages: `HttpOnly; Secure; SameSite=Strict` cookies
    /// (the access token, and a CSRF token the page echoes in `x-csrf-token`).
    #[serde(default)]
    cookie: bool,
}

/// A customer's access token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerToken {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    customer_id: i64,
    /// EIP-55 checksummed.
    address: String,
}

/// The signed-in customer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CustomerMe {
    customer_id: i64,
    address: String,
}

/// Issues a single-use nonce for a Sign-In with Ethereum message.
#[utoipa::path(get, path = "/auth/siwe/nonce", tag = "auth", params(NonceQuery), responses(
    (status = 200, body = Nonce),
    (status = 422, body = Problem),
    (status = 429, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn siwe_nonce(
    State(state): State<AppState>,
    meta: RequestMeta,
    Query(query): Query<NonceQuery>,
) -> ApiResult<Json<Nonce>> {
    let config = &state.config().auth;
    let address = match query.address.as_deref() {
        Some(text) => Some(
            shared::address::parse_wallet_address(text)
                .map_err(|reason| ApiError::Validation(vec![shared::http::FieldError::new("address", reason)]))?,
        ),
        None => None,
    };
    ratelimit::attempt(&state, "siwe-nonce", &meta, None).await?;
    let nonce = auth::siwe::issue_nonce(state.db(), config).await?;
    let chain_id = state
        .chain()
        .chain_id()
        .await
        .map_err(|e| ApiError::Unavailable { detail: format!("the chain is unavailable: {e}"), checks: None })?;
    let domain = config.siwe_domain.clone();
    let expires_in = config.siwe_nonce_ttl.as_secs();
    let message = address.map(|address| {
        let now = chrono::Utc::now();
        let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        format!(
            "{domain} wants you to sign in with your Ethereum account:\n{}\n\nSign in to redeem your rewards.\n\n\
             URI: https://{domain}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {}\nExpiration Time: {}",
            address.to_checksum(None),
            at(now),
            at(now + chrono::Duration::seconds(i64::try_from(expires_in).unwrap_or(300))),
        )
    });
    Ok(Json(Nonce { nonce, domain, chain_id, expires_in, message }))
}

/// Signs a customer in with a signed EIP-4361 message.
#[utoipa::path(post, path = "/auth/siwe", tag = "auth", request_body = SiweSignIn, responses(
    (status = 200, body = CustomerToken, description = "Signed in (with `cookie`: the page session's cookies set)"),
    (status = 401, description = "Wrong domain or chain, expired, reused nonce, or not the address's signature",
        body = Problem),
    (status = 429, body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn siwe_sign_in(
    State(state): State<AppState>,
    meta: RequestMeta,
    Json(body): Json<SiweSignIn>,
) -> ApiResult<Response> {
    let config = &state.config().auth;
    let claimed = auth::siwe::claimed_address(&body.message);
    ratelimit::attempt(&state, "siwe", &meta, claimed.as_deref()).await?;
    let session = auth::siwe::sign_in(state.db(), state.chain(), config, &body.message, &body.signature, &meta).await?;
    let (token, ttl) = (session.access_token.clone(), Duration::from_secs(session.expires_in));
    let mut response = Json(CustomerToken {
        access_token: session.access_token,
        token_type: "Bearer",
        expires_in: session.expires_in,
        customer_id: session.customer,
        address: session.address.to_checksum(None),
    })
    .into_response();
    if body.cookie {
        auth::start_page_session(&mut response, &token, ttl)?;
    }
    Ok(response)
}

/// The signed-in customer.
#[utoipa::path(get, path = "/customers/me", tag = "customers", responses((status = 200, body = CustomerMe)))]
#[tracing::instrument(skip_all)]
async fn me(caller: Caller) -> ApiResult<Json<CustomerMe>> {
    let (customer_id, wallet) = caller.customer()?;
    Ok(Json(CustomerMe { customer_id, address: wallet.to_checksum(None) }))
}

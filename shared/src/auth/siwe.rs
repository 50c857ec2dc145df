//! Customers sign in with their wallet: EIP-4361 Sign-In with Ethereum.
//!
//! 1. The client asks for a nonce ([`issue_nonce`]); the server keeps it for
//!    `SIWE_NONCE_TTL_SECS`.
//! 2. The wallet signs the EIP-4361 message naming our domain, the chain, the nonce.
//! 3. [`sign_in`] checks, in order: the message parses; its `domain` and its URI's authority are
//!    ours; its chain id is the node's; it is within its validity window; the signature is the
//!    address's — ECDSA (EIP-191) for a key, or EIP-1271 `isValidSignature` on the stated chain
//!    for a contract wallet; and the nonce is ours and unused, consumed by the same statement
//!    that checks it. Only then a customer session starts, bound to the address.
//!
//! Every refusal is the same 401 to the client; the reason is logged.

use alloy::primitives::{Address, B256, Bytes};
use rand::{Rng, distr::Alphanumeric};
use sqlx::PgPool;

use super::{
    Error, Result,
    access::{self, Subject},
    guard::RequestMeta,
    session::secs,
};
use crate::{
    audit::{self, Entry},
    chain::Chain,
    config::AuthConfig,
    contracts::IERC1271,
};

/// EIP-1271's "valid signature" answer: `bytes4(keccak256("isValidSignature(bytes32,bytes)"))`.
const ERC1271_MAGIC: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// A new nonce (17 alphanumeric characters, ~101 bits), stored until it is used or expires.
pub async fn issue_nonce(db: &PgPool, config: &AuthConfig) -> Result<String> {
    let nonce: String = rand::rng().sample_iter(&Alphanumeric).take(17).map(char::from).collect();
    sqlx::query!(
        "INSERT INTO siwe_nonces (nonce, expires_at) VALUES ($1, now() + make_interval(secs => $2::bigint))",
        nonce,
        secs(config.siwe_nonce_ttl.as_secs()),
    )
    .execute(db)
    .await?;
    Ok(nonce)
}

/// A signed-in customer.
#[derive(Debug)]
pub struct CustomerSession {
    pub access_token: String,
    pub expires_in: u64,
    pub customer: i64,
    pub address: Address,
}

/// The address a SIWE message claims to sign in (lower-case hex), for per-account rate limits
/// before anything is verified; `None` when it does not parse.
pub fn claimed_address(message: &str) -> Option<String> {
    message.parse::<siwe::Message>().ok().map(|m| format!("{:#x}", Address::from(m.address)))
}

/// Verifies a signed SIWE message and starts a customer session (see the module docs).
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    db: &PgPool,
    chain: &Chain,
    config: &AuthConfig,
    message: &str,
    signature: &Bytes,
    meta: &RequestMeta,
) -> Result<CustomerSession> {
    let refuse = |reason: &str| {
        tracing::info!(reason, "sign-in with ethereum refused");
        Error::InvalidCredentials
    };
    let message: siwe::Message = message.parse().map_err(|_| refuse("unparsable message"))?;
    let uri_authority = message.uri.authority_str().unwrap_or_default();
    if message.domain.as_str() != config.siwe_domain || uri_authority != config.siwe_domain {
        return Err(refuse("domain or URI is not ours"));
    }
    let chain_id = chain.chain_id().await.map_err(|e| Error::Internal(format!("reading the chain id: {e}")))?;
    if message.chain_id != chain_id {
        return Err(refuse("another chain"));
    }
    if !message.valid_now() {
        return Err(refuse("expired or not yet valid"));
    }
    let address = Address::from(message.address);
    if !signed_by(chain, &message, address, signature).await? {
        return Err(refuse("signature is not the address's"));
    }

    let mut tx = db.begin().await?;
    let consumed = sqlx::query_scalar!(
        "DELETE FROM siwe_nonces WHERE nonce = $1 AND expires_at > now() RETURNING nonce",
        message.nonce
    )
    .fetch_optional(&mut *tx)
    .await?;
    if consumed.is_none() {
        return Err(refuse("unknown, used or expired nonce"));
    }
    let customer = sqlx::query_scalar!(
        "INSERT INTO customers (wallet_address) VALUES ($1)
         ON CONFLICT (wallet_address) DO UPDATE SET wallet_address = EXCLUDED.wallet_address
         RETURNING id",
        address.as_slice(),
    )
    .fetch_one(&mut *tx)
    .await?;
    let session = uuid::Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO sessions (id, customer_id, method, ip, user_agent, expires_at)
         VALUES ($1, $2, 'siwe', CAST($3::text AS inet), $4, now() + make_interval(secs => $5::bigint))",
        session,
        customer,
        meta.ip.map(|ip| ip.to_string()),
        meta.user_agent,
        secs(config.access_token_ttl.as_secs()),
    )
    .execute(&mut *tx)
    .await?;
    audit::record_as(
        &mut tx,
        &format!("customer:{customer}"),
        None,
        meta,
        Entry::new("auth.signed-in", format!("customer:{customer}"))
            .after(serde_json::json!({ "method": "siwe", "address": address.to_checksum(None), "session": session })),
    )
    .await?;
    tx.commit().await?;
    let (access_token, expires_in) = access::issue(config, Subject::Customer(customer), session)?;
    Ok(CustomerSession { access_token, expires_in, customer, address })
}

/// Whether `signature` over the message's EIP-191 hash is `address`'s: a 65-byte ECDSA signature
/// recovering to it, or — when the address holds code — `isValidSignature` answering the magic
/// value on the message's chain.
async fn signed_by(chain: &Chain, message: &siwe::Message, address: Address, signature: &Bytes) -> Result<bool> {
    if let Ok(raw) = <[u8; 65]>::try_from(signature.as_ref())
        && message.verify_eip191(&raw).is_ok()
    {
        return Ok(true);
    }
    let provider = chain.provider();
    let code = alloy::providers::Provider::get_code_at(provider, address)
        .await
        .map_err(|e| Error::Internal(format!("reading code at the address: {e}")))?;
    if code.is_empty() {
        return Ok(false);
    }
    let hash = message.eip191_hash().map_err(|e| Error::Internal(format!("hashing the message: {e}")))?;
    let answer = IERC1271::new(address, provider).isValidSignature(B256::from(hash), signature.clone()).call().await;
    // A wallet that reverts or answers anything else did not sign.
    Ok(answer.is_ok_and(|magic| magic.0 == ERC1271_MAGIC))
}

#[cfg(test)]
mod tests {
    #[test]
    fn claimed_address_is_read_before_verification() {
        let message = "shop.example wants you to sign in with your Ethereum account:\n\
            0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\nSign in to Brandmint\n\n\
            URI: https://shop.example\nVersion: 1\nChain ID: 31337\nNonce: 32891756abcdef12\n\
            Issued At: 2026-11-23T10:00:00Z";
        assert_eq!(super::claimed_address(message).as_deref(), Some("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"));
        assert_eq!(super::claimed_address("not a siwe message"), None);
    }
}

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

/// Fuzz targets: a SIWE message is the first thing an anonymous caller sends. Parsing it, reading
/// its claimed address, and every check [`sign_in`] makes before it reaches the chain must refuse
/// anything malformed without panicking. 256 cases each (64 for the one signing with a key), or
/// `PROPTEST_CASES`.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]

    use alloy::{
        primitives::{Address, B256},
        signers::{SignerSync, local::PrivateKeySigner},
    };
    use chrono::{DateTime, SecondsFormat, Utc};
    use proptest::{prelude::*, sample::Index};

    use super::claimed_address;

    /// A well-formed EIP-4361 message for `address`: its text, line by line.
    fn message(address: impl Strategy<Value = Address>) -> impl Strategy<Value = Vec<String>> {
        let time = |from: i64, to: i64| {
            (from..to, any::<bool>()).prop_map(|(t, millis)| {
                let format = if millis { SecondsFormat::Millis } else { SecondsFormat::Secs };
                DateTime::<Utc>::from_timestamp(t, 0).unwrap().to_rfc3339_opts(format, true)
            })
        };
        let domain = "[a-z][a-z0-9-]{0,15}(\\.[a-z]{2,6}){0,2}(:[1-9][0-9]{0,3})?";
        let optional = (
            proptest::option::of(time(1_700_000_000, 4_000_000_000)),
            proptest::option::of(time(0, 1_800_000_000)),
            proptest::option::of("[ -~]{0,40}"),
            prop::collection::vec("https://[a-z]{1,10}\\.example/[a-z0-9/]{0,20}", 0..4),
        );
        (
            domain,
            address,
            proptest::option::of("[A-Za-z0-9][ -~]{0,100}"),
            "(/[a-z0-9]{1,8}){0,3}",
            any::<u64>(),
            "[A-Za-z0-9]{8,32}",
            time(0, 4_000_000_000),
            optional,
        )
            .prop_map(|(domain, address, statement, path, chain_id, nonce, issued_at, optional)| {
                let (expires, not_before, request_id, resources) = optional;
                let mut lines = vec![
                    format!("{domain} wants you to sign in with your Ethereum account:"),
                    address.to_checksum(None),
                    String::new(),
                ];
                if let Some(statement) = statement {
                    lines.extend([statement, String::new()]);
                } else {
                    lines.push(String::new());
                }
                lines.extend([
                    format!("URI: https://{domain}{path}"),
                    "Version: 1".to_owned(),
                    format!("Chain ID: {chain_id}"),
                    format!("Nonce: {nonce}"),
                    format!("Issued At: {issued_at}"),
                ]);
                lines.extend(expires.map(|t| format!("Expiration Time: {t}")));
                lines.extend(not_before.map(|t| format!("Not Before: {t}")));
                lines.extend(request_id.map(|id| format!("Request ID: {id}")));
                if !resources.is_empty() {
                    lines.push("Resources:".to_owned());
                    lines.extend(resources.into_iter().map(|r| format!("- {r}")));
                }
                lines
            })
    }

    /// One edit to a message's lines.
    #[derive(Debug, Clone)]
    enum Edit {
        Delete(Index),
        Duplicate(Index),
        Swap(Index, Index),
        /// Text inserted at a character of a line: random Unicode, NUL bytes, CR, line breaks.
        Insert(Index, Index, String),
        /// A line's value made huge.
        Inflate(Index, usize),
        /// A line replaced.
        Replace(Index, String),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        let text = prop_oneof!["\\PC{1,8}", ".{1,8}", "\0{1,4}", Just("\r".to_owned()), Just("\n".to_owned())];
        prop_oneof![
            any::<Index>().prop_map(Edit::Delete),
            any::<Index>().prop_map(Edit::Duplicate),
            (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
            (any::<Index>(), any::<Index>(), text).prop_map(|(l, c, t)| Edit::Insert(l, c, t)),
            (any::<Index>(), 1usize..200_000).prop_map(|(l, n)| Edit::Inflate(l, n)),
            (any::<Index>(), ".{0,60}").prop_map(|(l, t)| Edit::Replace(l, t)),
        ]
    }

    fn apply(lines: &mut Vec<String>, edit: &Edit) {
        if lines.is_empty() {
            return;
        }
        let n = lines.len();
        match edit {
            Edit::Delete(at) => drop(lines.remove(at.index(n))),
            Edit::Duplicate(at) => {
                let line = lines[at.index(n)].clone();
                lines.insert(at.index(n), line);
            }
            Edit::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            Edit::Insert(at, char_at, text) => {
                let line = &mut lines[at.index(n)];
                let chars = line.chars().count();
                let byte = line.char_indices().nth(char_at.index(chars + 1)).map_or(line.len(), |(i, _)| i);
                line.insert_str(byte, text);
            }
            Edit::Inflate(at, len) => {
                let line = &mut lines[at.index(n)];
                let filler = if line.starts_with("Chain ID") { "9" } else { "a" };
                line.push_str(&filler.repeat(*len));
            }
            Edit::Replace(at, text) => lines[at.index(n)].clone_from(text),
        }
    }

    fn address() -> impl Strategy<Value = Address> {
        any::<[u8; 20]>().prop_map(Address::from)
    }

    /// What `sign_in` does with the message before it asks the chain or the database anything;
    /// whether the signature recovers to the message's address.
    fn checks_before_the_chain(text: &str, signature: &[u8]) -> Option<bool> {
        let message: siwe::Message = text.parse().ok()?;
        let ours = message.domain.as_str() == "shop.example" && message.uri.authority_str() == Some("shop.example");
        let _ = (ours, message.chain_id == 31337, message.valid_now(), Address::from(message.address));
        message.eip191_hash().ok()?;
        let raw = <[u8; 65]>::try_from(signature).ok()?;
        Some(message.verify_eip191(&raw).is_ok())
    }

    proptest! {
        #[test]
        fn siwe_messages_never_panic_on_arbitrary_text(text in prop_oneof![".{0,600}", "\\PC{0,200}", any::<String>()],
                                                       signature in prop::collection::vec(any::<u8>(), 0..80)) {
            let claimed = claimed_address(&text);
            let verified = checks_before_the_chain(&text, &signature);
            prop_assert_eq!(claimed.is_some(), verified.is_some() || text.parse::<siwe::Message>().is_ok());
        }

        #[test]
        fn a_well_formed_siwe_message_round_trips_and_names_its_address(lines in message(address())) {
            let text = lines.join("\n");
            let parsed: siwe::Message = text.parse().map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
            prop_assert_eq!(parsed.to_string(), text.clone());
            prop_assert_eq!(claimed_address(&text), Some(format!("{:#x}", Address::from(parsed.address))));
            prop_assert_eq!(lines[1].to_ascii_lowercase(), format!("{:#x}", Address::from(parsed.address)));
        }

        #[test]
        fn mutated_siwe_messages_are_refused_or_read_consistently_never_panicking(
            lines in message(address()),
            edits in prop::collection::vec(edit(), 1..5),
            signature in prop::collection::vec(any::<u8>(), 65..=65),
        ) {
            let mut lines = lines;
            for edit in &edits {
                apply(&mut lines, edit);
            }
            let text = lines.join("\n");
            let claimed = claimed_address(&text);
            let _ = checks_before_the_chain(&text, &signature);
            if let Ok(parsed) = text.parse::<siwe::Message>() {
                // What is accepted is what is verified: the signature covers the message as the
                // parser reads it back, so a second reading says the same.
                prop_assert_eq!(claimed, Some(format!("{:#x}", Address::from(parsed.address))));
                prop_assert_eq!(parsed.to_string().parse::<siwe::Message>().ok(), Some(parsed));
            } else {
                prop_assert_eq!(claimed, None);
            }
        }
    }

    proptest! {
        // An ECDSA signature and a recovery per case: fewer cases unless asked for more.
        #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

        #[test]
        fn a_siwe_message_verifies_only_with_its_own_wallets_signature(
            key in any::<[u8; 32]>().prop_filter_map("not a secp256k1 key", |k| PrivateKeySigner::from_bytes(&B256::from(k)).ok()),
            lines in message(Just(Address::ZERO)),
            flip in any::<Index>(),
        ) {
            let mut lines = lines;
            lines[1] = key.address().to_checksum(None);
            let text = lines.join("\n");
            let signature = key.sign_message_sync(text.as_bytes()).unwrap().as_bytes();
            prop_assert_eq!(checks_before_the_chain(&text, &signature), Some(true));
            let mut forged = signature;
            forged[flip.index(64)] ^= 1;
            prop_assert_eq!(checks_before_the_chain(&text, &forged), Some(false));
            let other = text.replace("Nonce: ", "Nonce: x");
            prop_assert_eq!(checks_before_the_chain(&other, &signature), Some(false));
        }
    }

    /// `default` cases unless `PROPTEST_CASES` says how many.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
    }
}

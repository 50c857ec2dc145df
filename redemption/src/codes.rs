//! Printed QR codes, as the person who scans one meets them. A code encodes
//! `PUBLIC_BASE_URL/r/<code>`: `GET /r/{code}` says what it gives and whether it can still be
//! claimed, `POST /r/{code}/claims` claims it to the wallet the claimant signed in with (SIWE,
//! a bearer token) or, where the brand allows it, to an address they type.
//!
//! A forged or mistyped code is refused from its tag alone (no database read). A real one is
//! claimed under a lock on its row: each use once (`redemptions_code_use_idx`), then paid as
//! any claim is ([`crate::claims`]). Revoked and expired codes are refused without paying.

use alloy::primitives::Address;
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use maud::html;
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Principal, RequestMeta, authenticate, public},
    http::{
        ApiError, ApiResult, ConflictCode, FieldErrors, Problem,
        extract::{Json, Path},
        ratelimit,
    },
    pages,
    qr::CodeError,
};
use sqlx::{PgConnection, Row};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    claims::{self, Claim, RedemptionView, conflict},
    config::RedemptionConfig,
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(public(routes!(show_code)))
        .routes(public(routes!(claim_code)))
        .route("/assets/redeem.js", get(|| async { pages::asset(JAVASCRIPT, SCRIPT) }))
        .route("/assets/wallet.js", get(|| async { pages::asset(JAVASCRIPT, WALLET) }))
}

pub(crate) const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// The script of the page a code opens.
const SCRIPT: &str = include_str!("../assets/redeem.js");
/// Sign-In with Ethereum from the pages, with the browser's wallet.
const WALLET: &str = include_str!("../assets/wallet.js");

#[derive(Debug, Deserialize)]
pub(crate) struct CodePath {
    code: String,
}

/// What a printed code gives, and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CodeView {
    /// issued (claimable), claimed, paid, expired or revoked.
    state: String,
    campaign_id: i64,
    campaign: String,
    reward_id: i64,
    /// token or perk.
    kind: String,
    name: String,
    description: String,
    /// token: eth or stablecoin, and the amount paid per claim in wei / base units.
    token: Option<String>,
    amount: Option<String>,
    /// Claims the code allows, and how many are left.
    uses_per_code: i32,
    uses_left: i64,
    /// Whether an address may be typed instead of signing in with the wallet.
    typed_addresses: bool,
    expires_at: Option<DateTime<Utc>>,
    /// The code's claims so far, newest first, with their payouts.
    claims: Vec<CodeClaim>,
}

/// A claim of a code.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CodeClaim {
    redemption_id: i64,
    state: String,
    recipient: String,
    tx_hash: Option<String>,
    created_at: DateTime<Utc>,
}

/// Where a code's reward goes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeClaimRequest {
    /// Without a wallet sign-in, where the brand allows it: the address (EIP-55) to pay.
    address: Option<String>,
}

/// A code's row, its batch's rules and its reward.
struct Code {
    id: i64,
    state: String,
    reward: i64,
    uses: i32,
    typed_addresses: bool,
    expires_at: Option<DateTime<Utc>>,
}

fn read(state: &AppState, text: &str) -> ApiResult<[u8; shared::qr::ID_BYTES]> {
    state.config().qr_code_key.read_brand_code(text).map_err(|e: CodeError| ApiError::NotFound(e.to_string()))
}

async fn find(conn: &mut PgConnection, nonce: &[u8], lock: bool) -> ApiResult<Code> {
    let row = sqlx::query(&format!(
        "SELECT q.id, q.state, b.reward_id, b.uses_per_code, b.typed_addresses, b.expires_at
         FROM qr_codes q JOIN qr_batches b ON b.id = q.batch_id WHERE q.nonce = $1 {}",
        if lock { "FOR UPDATE OF q" } else { "" }
    ))
    .bind(nonce)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound("this code was never issued (or its batch is still being generated)".into()))?;
    Ok(Code {
        id: row.get("id"),
        state: row.get("state"),
        reward: row.get("reward_id"),
        uses: row.get("uses_per_code"),
        typed_addresses: row.get("typed_addresses"),
        expires_at: row.get("expires_at"),
    })
}

/// Refuses a code that cannot be claimed now, in words for the person holding it; an issued
/// code past its expiry is written expired on the way.
async fn claimable(conn: &mut PgConnection, code: &Code) -> ApiResult<()> {
    match code.state.as_str() {
        "issued" if code.expires_at.is_some_and(|at| at < Utc::now()) => {
            sqlx::query("UPDATE qr_codes SET state = 'expired', updated_at = now() WHERE id = $1 AND state = 'issued'")
                .bind(code.id)
                .execute(&mut *conn)
                .await?;
            Err(expired())
        }
        "issued" => Ok(()),
        "expired" => Err(expired()),
        "revoked" => Err(conflict(
            ConflictCode::CodeRevoked,
            "this code has been withdrawn by the brand and can no longer be redeemed",
        )),
        _ => Err(conflict(ConflictCode::AlreadyRedeemed, "this code has already been redeemed")),
    }
}

fn expired() -> ApiError {
    conflict(ConflictCode::CodeExpired, "this code has expired and can no longer be redeemed")
}

/// What a printed code gives and whether it can still be claimed. A browser (asking for
/// `text/html`, as one that followed the QR code does) gets the page to claim it.
#[utoipa::path(get, path = "/r/{code}", tag = "qr-codes",
    params(("code" = String, Path, description = "The code printed in the QR (32 characters)")),
    responses(
        (status = 200, body = CodeView),
        (status = 404, description = "Not a code issued here (mistyped, damaged or forged)", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn show_code(
    State(state): State<AppState>,
    Path(CodePath { code }): Path<CodePath>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let html = pages::wants_html(&headers);
    match view(&state, &code).await {
        Ok(view) if html => Ok(page(&code, &view)),
        Ok(view) => Ok(Json(view).into_response()),
        Err(e) if html => Err(refused_page(&e)),
        Err(e) => Err(e.into_response()),
    }
}

async fn view(state: &AppState, code: &str) -> ApiResult<CodeView> {
    let nonce = read(state, code)?;
    let mut conn = state.db().acquire().await?;
    let found = find(&mut conn, &nonce, false).await?;
    let row = sqlx::query(
        "SELECT r.campaign_id, c.name AS campaign, r.kind, r.name, r.description, r.token,
                r.amount_per_redemption::text AS amount
         FROM campaign_rewards r JOIN campaigns c ON c.id = r.campaign_id WHERE r.id = $1",
    )
    .bind(found.reward)
    .fetch_one(&mut *conn)
    .await?;
    let claims: Vec<CodeClaim> = sqlx::query(
        "SELECT x.id, x.state, x.recipient, x.created_at, t.tx_hash
         FROM redemptions x LEFT JOIN chain_transactions t ON t.id = x.chain_tx_id
         WHERE x.qr_code_id = $1 ORDER BY x.id DESC LIMIT 50",
    )
    .bind(found.id)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| CodeClaim {
        redemption_id: row.get("id"),
        state: row.get("state"),
        recipient: shared::chain::checksummed(&row.get::<Vec<u8>, _>("recipient")),
        tx_hash: row.get::<Option<Vec<u8>>, _>("tx_hash").map(|h| format!("0x{}", alloy::hex::encode(h))),
        created_at: row.get("created_at"),
    })
    .collect();
    let taken: i64 = sqlx::query_scalar("SELECT count(*) FROM redemptions WHERE qr_code_id = $1 AND state <> ALL($2)")
        .bind(found.id)
        .bind(shared::workflow::machines::RedemptionState::released_names())
        .fetch_one(&mut *conn)
        .await?;
    let expired = found.state == "issued" && found.expires_at.is_some_and(|at| at < Utc::now());
    Ok(CodeView {
        state: if expired { "expired".into() } else { found.state.clone() },
        campaign_id: row.get("campaign_id"),
        campaign: row.get("campaign"),
        reward_id: found.reward,
        kind: row.get("kind"),
        name: row.get("name"),
        description: row.get("description"),
        token: row.get("token"),
        amount: row.get("amount"),
        uses_per_code: found.uses,
        uses_left: match found.state.as_str() {
            "issued" if !expired => (i64::from(found.uses) - taken).max(0),
            _ => 0,
        },
        typed_addresses: found.typed_addresses,
        expires_at: found.expires_at,
        claims,
    })
}

/// The page a code opens: the reward, and how to claim it while it can be claimed.
fn page(code: &str, view: &CodeView) -> Response {
    let amount = match (view.token.as_deref(), view.amount.as_deref()) {
        (Some("eth"), Some(amount)) => Some(format!("{} ETH", pages::amount(amount, 18))),
        (Some(_), Some(amount)) => Some(format!("{} USD in stablecoin", pages::amount(amount, 6))),
        _ => None,
    };
    let claimable = view.state == "issued";
    let following = view.claims.first().is_some_and(|c| c.state != "completed" && view.state != "issued");
    let paid = view.claims.iter().find(|c| c.state == "completed");
    let body = html! {
        section.card #redeem data-code=(code) data-following=(following) {
            p.muted { (view.campaign) }
            h1 { (view.name) }
            @if let Some(amount) = &amount { p.amount { (amount) } }
            @if !view.description.is_empty() { p { (view.description) } }
            p.status #status role="status" aria-live="polite" data-kind=(if paid.is_some() { "good" } else { "info" }) {
                @match (view.state.as_str(), paid) {
                    ("issued", _) => {},
                    (_, Some(claim)) => {
                        "This code has been redeemed and paid. Transaction "
                        span.hash { (claim.tx_hash.as_deref().unwrap_or("recorded")) } "."
                    },
                    ("claimed", None) => "This code has been claimed; its reward is on its way.",
                    ("expired", _) => "This code has expired and can no longer be redeemed.",
                    ("revoked", _) => "This code has been withdrawn by the brand and can no longer be redeemed.",
                    _ => "This code has already been redeemed.",
                }
            }
        }
        @if claimable {
            section.card #claim aria-labelledby="claim-title" {
                h2 #claim-title { "Claim it" }
                p { "Sign in with your wallet to receive the reward there." }
                button #connect type="button" { "Sign in with your wallet" }
                @if view.typed_addresses {
                    p.or { "or" }
                    form #typed {
                        label for="address" { "Your wallet address" }
                        input #address type="text" name="address" required autocomplete="off" spellcheck="false"
                            inputmode="text" placeholder="0x…" aria-describedby="address-help";
                        p.muted #address-help { "The 0x… address of the wallet to pay, as your wallet shows it." }
                        button.secondary type="submit" { "Send the reward to this address" }
                    }
                }
            }
        }
    };
    pages::page(&view.name, &["/assets/wallet.js", "/assets/redeem.js"], body)
}

/// A code refused outright (not ours, never issued), in words.
fn refused_page(error: &ApiError) -> Response {
    let status = error.to_problem().status;
    let detail = pages::refusal(error);
    let body = html! {
        section.card {
            h1 { "This code does not work" }
            p.status data-kind="bad" role="status" { (detail) }
            p { "Check that the whole code was scanned, or ask the brand for help." }
        }
    };
    let mut response = pages::page("Code not recognised", &[], body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}

/// Claims a printed code: signed in with a wallet (bearer token from the SIWE sign-in), the
/// reward goes to that wallet; without, where the brand allows it, to the `address` given.
/// Answers 201 with the redemption (`submitted`: the platform pays it; `completed`: a perk,
/// its code shown this once; `awaiting_kyc`).
#[utoipa::path(post, path = "/r/{code}/claims", tag = "qr-codes",
    params(("code" = String, Path, description = "The code printed in the QR")),
    request_body = CodeClaimRequest,
    responses(
        (status = 201, body = RedemptionView),
        (status = 401, description = "This code pays only a wallet you sign in with", body = Problem),
        (status = 404, description = "Not a code issued here (mistyped, damaged or forged)", body = Problem),
        (status = 409, description = "Already redeemed, expired, revoked, a denied address, or the reward cannot \
            be paid now", body = Problem),
        (status = 422, body = Problem),
        (status = 429, body = Problem),
    ),
    security((), ("bearer" = [])))]
#[tracing::instrument(skip_all)]
async fn claim_code(
    State(state): State<AppState>,
    Path(CodePath { code }): Path<CodePath>,
    meta: RequestMeta,
    headers: HeaderMap,
    Json(body): Json<CodeClaimRequest>,
) -> ApiResult<(StatusCode, Json<RedemptionView>)> {
    let nonce = read(&state, &code)?;
    let settings = state.part::<RedemptionConfig>()?;
    let mut errors = FieldErrors::default();
    let typed = body.address.as_deref().map(|text| {
        shared::address::parse_address(text).unwrap_or_else(|reason| {
            errors.add("address", reason);
            Address::ZERO
        })
    });
    errors.finish()?;
    let signed_in = match headers.contains_key(axum::http::header::AUTHORIZATION) {
        true => match authenticate(&state, &headers).await? {
            (Principal::Customer { id, wallet }, _) => Some((id, wallet)),
            _ => return Err(ApiError::Forbidden),
        },
        false => None,
    };
    let (customer, recipient) = match (signed_in, typed) {
        (Some((id, wallet)), None) => (Some(id), wallet),
        (Some((id, wallet)), Some(address)) if address == wallet => (Some(id), wallet),
        (Some(_), Some(_)) => {
            return Err(ApiError::Validation(vec![shared::http::FieldError::new(
                "address",
                "you are signed in: the reward goes to your wallet, so leave the address out",
            )]));
        }
        (None, Some(address)) => (None, address),
        (None, None) => return Err(ApiError::Unauthenticated),
    };
    let buckets = [
        format!("redeem:ip:{}", meta.ip_key()),
        format!("redeem:wallet:{}", alloy::hex::encode(recipient)),
        format!("redeem:code:{}", alloy::hex::encode(nonce)),
    ];
    ratelimit::check(state.db(), &settings.claim_limits, &buckets).await?;

    let mut conn = state.db().acquire().await?;
    let found = find(&mut conn, &nonce, false).await?;
    claimable(&mut conn, &found).await?;
    if customer.is_none() && !found.typed_addresses {
        return Err(ApiError::Unauthenticated);
    }
    drop(conn);
    let reward = claims::reward(&state, found.reward).await?;
    claims::denied(&state, &settings, &[recipient]).await?;
    let actor = match customer {
        Some(id) => format!("customer:{id}"),
        None => "code".to_owned(),
    };
    let claim = Claim {
        brand: reward.brand,
        campaign: reward.campaign,
        reward: found.reward,
        kind: &reward.kind,
        needs_kyc: reward.needs_kyc,
        customer,
        claimant: recipient,
        recipient,
        submitted_by: "platform",
        store: None,
        actor: &actor,
    };
    let mut tx = state.db().begin().await?;
    let locked = find(&mut tx, &nonce, true).await?;
    claimable(&mut tx, &locked).await?;
    let id = claims::take_code_use(&mut tx, &claim, locked.id, locked.uses).await?;
    let perk = claims::fulfil(&mut tx, &state, &settings, &claim, id).await?;
    let mut view = claims::load(&mut tx, &state, None, id).await?;
    view.code = perk;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

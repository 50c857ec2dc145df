//! Redeeming at a store's counter. The customer's phone shows a short-lived QR code that proves
//! they hold a token (`GET /customers/me/counter-codes`, signed by the platform, valid
//! `COUNTER_CODE_TTL_SECS` plus a grace of `COUNTER_CODE_GRACE_SECS`; the page fetches a new one
//! before it runs out). Store staff scan it: a verifier may do so only at the stores they are
//! assigned to (the route's `{store_id}` is checked by the access wall), sending the code's
//! text or a photo of it, which is decoded here. A scan takes one use of the reward like any
//! claim: a perk is marked used at that store, a token reward is paid to the customer's wallet.

use alloy::primitives::Address;
use alloy::primitives::U256;
use axum::{
    body::Body,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
    routing::get,
};
use chrono::{DateTime, Utc};
use maud::html;
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    auth::{Caller, Permission, Principal, authenticate, require},
    http::{
        ApiError, ApiResult, ConflictCode, FieldError, Problem,
        extract::{Json, Path, Query},
    },
    pages,
    qr::{self, CodeError, CounterClaim},
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    claims::{self, Claim, RedemptionView, conflict},
    config::RedemptionConfig,
    redeem,
};

/// The counter page's script.
const SCRIPT: &str = include_str!("../assets/counter.js");
/// The staff scanner page's script.
const SCANNER_SCRIPT: &str = include_str!("../assets/scanner.js");

/// The largest photo of a code accepted.
const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;
/// Photos are scaled down to this many pixels on their longer side before decoding: enough for
/// a code filling a tenth of the frame, and it bounds the work a photo can cause.
const DECODE_SIDE: u32 = 1600;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    let photos = OpenApiRouter::new()
        .routes(require(Permission::RedemptionsScan, routes!(scan_photo)))
        .layer(DefaultBodyLimit::max(MAX_PHOTO_BYTES + 1));
    OpenApiRouter::new()
        .routes(require(Permission::Customer, routes!(counter_code)))
        .route("/counter", get(counter_page))
        .route("/assets/counter.js", get(|| async { pages::asset(crate::codes::JAVASCRIPT, SCRIPT) }))
        .route("/staff/scanner", get(scanner_page))
        .route("/assets/scanner.js", get(|| async { pages::asset(crate::codes::JAVASCRIPT, SCANNER_SCRIPT) }))
        .routes(require(Permission::RedemptionsScan, routes!(scanner)))
        .routes(require(Permission::RedemptionsScan, routes!(scan)))
        .merge(photos)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct CounterQuery {
    /// The reward to redeem at the counter.
    reward_id: i64,
    /// The token held, a decimal string.
    token_id: String,
}

/// A counter code to show.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CounterCode {
    /// The text the QR carries (what a scanner reads).
    code: String,
    /// The QR as an SVG document.
    svg: String,
    /// Scans after this are refused (a grace for a slow scan is added on the scanner's side).
    expires_at: DateTime<Utc>,
    /// Fetch a new code after this many seconds.
    refresh_after_secs: u64,
}

/// A scanned code's text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Scan {
    code: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StorePath {
    store_id: i64,
}

/// Where a verifier is scanning.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Scanner {
    brand_id: i64,
    brand_name: String,
    store_id: i64,
    store_name: String,
}

/// What a scan did, for the person at the counter.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScanResult {
    /// One sentence to show big: what to hand over, or what was paid.
    message: String,
    reward_name: String,
    redemption: RedemptionView,
}

/// A counter code proving the signed-in wallet holds `token_id`, for redeeming `reward_id` at a
/// store. Valid for `COUNTER_CODE_TTL_SECS`; fetch a new one after `refresh_after_secs`.
#[utoipa::path(get, path = "/customers/me/counter-codes", tag = "redemptions", params(CounterQuery),
    responses(
        (status = 200, body = CounterCode),
        (status = 404, body = Problem),
        (status = 409, description = "Not the holder, or the reward cannot be redeemed", body = Problem),
        (status = 422, body = Problem),
        (status = 503, description = "The chain cannot be reached to check the holder", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn counter_code(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<CounterQuery>,
) -> ApiResult<Json<CounterCode>> {
    let (customer, wallet) = caller.customer()?;
    Ok(Json(issue(&state, customer, wallet, query.reward_id, &query.token_id).await?))
}

/// A fresh counter code for `customer`, whose `wallet` must hold the token.
async fn issue(
    state: &AppState,
    customer: i64,
    wallet: Address,
    reward_id: i64,
    token: &str,
) -> ApiResult<CounterCode> {
    let settings = state.part::<RedemptionConfig>()?;
    let token_id = token_id(token)?;
    let reward = claims::reward(state, reward_id).await?;
    claims::holds(state, reward.chain_id, reward.collection, token_id, wallet).await?;
    let now = Utc::now();
    let claim = CounterClaim { customer_id: customer, wallet, reward_id, token_id, issued_at: now.timestamp() };
    let code = state.config().qr_code_key.counter_code(&claim);
    let svg = qr::svg(&code).map_err(|e| ApiError::Internal(e.into()))?;
    let ttl = settings.counter_code_ttl;
    Ok(CounterCode {
        code,
        svg,
        expires_at: now + chrono::Duration::from_std(ttl).unwrap_or_default(),
        // Two thirds of the way: the next code is on screen well before this one runs out.
        refresh_after_secs: (ttl.as_secs() * 2 / 3).max(1),
    })
}

/// Which counter code the page shows.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    reward_id: Option<i64>,
    token_id: Option<String>,
}

/// The customer's "show at the counter" page: signed in (a page session), the rewards their
/// tokens give; for one of them, its QR code, kept fresh by the page's script.
async fn counter_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<PageQuery>,
) -> Response {
    let scripts = ["/assets/wallet.js", "/assets/counter.js"];
    let Some((customer, wallet)) = page_customer(&state, &headers).await else {
        let body = sign_in_card("Show at the counter", "to show a code that proves you hold your token");
        return pages::page("Show at the counter", &scripts, body);
    };
    let body = match (query.reward_id, query.token_id.as_deref()) {
        (Some(reward_id), Some(token)) => match issue(&state, customer, wallet, reward_id, token).await {
            Ok(code) => {
                use base64::Engine;
                let svg = base64::engine::general_purpose::STANDARD.encode(&code.svg);
                html! {
                    section.card.counter {
                        h1 { "Show this at the counter" }
                        p.muted { "Token " (token) " · the code renews itself; keep this page open." }
                        img #qr src=(format!("data:image/svg+xml;base64,{svg}")) data-reward=(reward_id)
                            data-token=(token) data-refresh=(code.refresh_after_secs)
                            alt="Your counter code: let the staff scan it";
                        p #expires { "Valid until " (code.expires_at.format("%H:%M:%S UTC")) }
                        p.status #status role="status" aria-live="polite" {}
                        a href="/counter" { "Back to your rewards" }
                    }
                }
            }
            Err(e) => html! {
                section.card {
                    h1 { "No code to show" }
                    p.status data-kind="bad" role="status" { (pages::refusal(&e)) }
                    a href="/counter" { "Back to your rewards" }
                }
            },
        },
        _ => match redeem::eligible(&state, customer, wallet).await {
            Ok(rewards) => html! {
                section.card {
                    h1 { "Your rewards" }
                    p.muted { "Signed in as " span.hash { (wallet.to_checksum(None)) } }
                    @if rewards.is_empty() {
                        p { "None of your tokens gives a reward yet." }
                    }
                    ul.rewards {
                        @for reward in &rewards {
                            li {
                                strong { (reward.name) } " · " (reward.campaign) " · token " (reward.token_id)
                                @if reward.left > 0 {
                                    " · "
                                    a href=(format!("/counter?reward_id={}&token_id={}", reward.reward_id, reward.token_id)) {
                                        "Show at the counter"
                                    }
                                } @else {
                                    span.muted { " · used" }
                                }
                            }
                        }
                    }
                }
            },
            Err(e) => html! { section.card { p.status data-kind="bad" role="status" { (pages::refusal(&e)) } } },
        },
    };
    pages::page("Show at the counter", &scripts, body)
}

/// Which store the scanner page is for.
#[derive(Debug, Deserialize)]
pub(crate) struct ScannerQuery {
    brand_id: i64,
    store_id: i64,
}

/// The staff scanner page (`/staff/scanner?brand_id&store_id`). The page holds no data of its
/// own: its script signs staff in (a page session) when the page says nobody is, and reads the
/// store from the scanner route, so the same access rules apply (a verifier of another store is
/// told so).
async fn scanner_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(query): axum::extract::Query<ScannerQuery>,
) -> Response {
    let signed_in = matches!(authenticate(&state, &headers).await, Ok((Principal::Account { .. }, _)));
    let body = html! {
        section.card #scanner data-brand=(query.brand_id) data-store=(query.store_id) data-signed-in=(signed_in) {
            h1 { "Scan a customer's code" }
            p.muted #store {}
            p.status.result #result role="status" aria-live="assertive" {}
            div #signin hidden {
                h2 { "Sign in" }
                form #signin-form {
                    label for="email" { "Email" }
                    input #email type="text" name="email" autocomplete="username" required;
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                    button type="submit" { "Sign in" }
                }
            }
            div #scan hidden {
                button #camera type="button" hidden { "Scan with the camera" }
                video #video hidden muted playsinline aria-label="Camera" {}
                label for="photo" { "Take a photo of the code" }
                input #photo type="file" accept="image/*" capture="environment";
                form #text-form {
                    label for="code" { "Or paste the code's text" }
                    input #code type="text" name="code" autocomplete="off" spellcheck="false";
                    button.secondary type="submit" { "Redeem this code" }
                }
            }
        }
    };
    pages::page("Scanner", &["/assets/scanner.js"], body)
}

/// The customer of a page session, if one is signed in.
pub(crate) async fn page_customer(state: &AppState, headers: &HeaderMap) -> Option<(i64, Address)> {
    match authenticate(state, headers).await {
        Ok((Principal::Customer { id, wallet }, _)) => Some((id, wallet)),
        _ => None,
    }
}

/// A page's invitation to sign in with the wallet (wallet.js does the rest).
pub(crate) fn sign_in_card(title: &str, why: &str) -> maud::Markup {
    html! {
        section.card {
            h1 { (title) }
            p { "Sign in with your wallet " (why) "." }
            p.status #status role="status" aria-live="polite" {}
            button #connect type="button" data-sign-in="page" { "Sign in with your wallet" }
        }
    }
}

fn token_id(text: &str) -> ApiResult<U256> {
    claims::parse_token_id(text).map_err(|reason| ApiError::Validation(vec![FieldError::new("token_id", reason)]))
}

/// The store a verifier's scanner is set up for (verifiers: only their assigned stores).
#[utoipa::path(get, path = "/brands/{brand_id}/stores/{store_id}/scanner", tag = "redemptions",
    params(("brand_id" = i64, Path), ("store_id" = i64, Path)),
    responses((status = 200, body = Scanner), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn scanner(
    State(state): State<AppState>,
    caller: Caller,
    Path(StorePath { store_id }): Path<StorePath>,
) -> ApiResult<Json<Scanner>> {
    let brand = caller.brand()?.id;
    let scanner = sqlx::query_as!(
        Scanner,
        "SELECT b.id AS brand_id, b.name AS brand_name, s.id AS store_id, s.name AS store_name
         FROM stores s JOIN brands b ON b.id = s.brand_id
         WHERE s.brand_id = $1 AND s.id = $2",
        brand.get(),
        store_id
    )
    .fetch_optional(state.db())
    .await?
    .ok_or_else(|| ApiError::NotFound("no such store".into()))?;
    Ok(Json(scanner))
}

/// Redeems the customer's counter code at the store: a perk is marked used, a token reward paid
/// to the customer's wallet. Verifiers may scan only at their own stores.
#[utoipa::path(post, path = "/brands/{brand_id}/stores/{store_id}/scans", tag = "redemptions",
    params(("brand_id" = i64, Path), ("store_id" = i64, Path)),
    request_body = Scan,
    responses(
        (status = 201, body = ScanResult),
        (status = 403, description = "A verifier of another store", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Expired code, already redeemed, no longer the holder", body = Problem),
        (status = 422, description = "Not a counter code of this platform, or of another brand", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn scan(
    State(state): State<AppState>,
    caller: Caller,
    Path(StorePath { store_id }): Path<StorePath>,
    Json(body): Json<Scan>,
) -> ApiResult<(StatusCode, Json<ScanResult>)> {
    redeem_scanned(&state, &caller, store_id, &body.code).await
}

/// Same as the scan of a code's text, from a photo of the customer's screen (`image/jpeg`,
/// `image/png` or `image/webp`, at most 8 MiB), decoded on the server.
#[utoipa::path(post, path = "/brands/{brand_id}/stores/{store_id}/scans/photo", tag = "redemptions",
    params(("brand_id" = i64, Path), ("store_id" = i64, Path)),
    request_body(description = "The photo, as raw bytes",
        content((Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/webp"))),
    responses(
        (status = 201, body = ScanResult),
        (status = 403, description = "A verifier of another store", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "Expired code, already redeemed, no longer the holder", body = Problem),
        (status = 413, body = Problem),
        (status = 415, body = Problem),
        (status = 422, description = "No readable QR code in the photo, or not a counter code", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn scan_photo(
    State(state): State<AppState>,
    caller: Caller,
    Path(StorePath { store_id }): Path<StorePath>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<ScanResult>)> {
    let media = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let format = match media.split(';').next().map(str::trim) {
        Some("image/jpeg") => image::ImageFormat::Jpeg,
        Some("image/png") => image::ImageFormat::Png,
        Some("image/webp") => image::ImageFormat::WebP,
        _ => {
            return Err(ApiError::UnsupportedMediaType("send the photo as image/jpeg, image/png or image/webp".into()));
        }
    };
    let bytes = axum::body::to_bytes(body, MAX_PHOTO_BYTES).await.map_err(|_| ApiError::PayloadTooLarge)?;
    let text = tokio::task::spawn_blocking(move || decode_photo(&bytes, format))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|reason| ApiError::Validation(vec![FieldError::new("photo", reason)]))?;
    redeem_scanned(&state, &caller, store_id, &text).await
}

/// The text of the QR code in a photo.
pub(crate) fn decode_photo(bytes: &[u8], format: image::ImageFormat) -> Result<String, String> {
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(12_000);
    limits.max_image_height = Some(12_000);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| format!("could not be read as an image: {e}"))?;
    let image = match image.width().max(image.height()) {
        side if side > DECODE_SIDE => image.resize(DECODE_SIDE, DECODE_SIDE, image::imageops::FilterType::Triangle),
        _ => image,
    };
    let mut prepared = rqrr::PreparedImage::prepare(image.to_luma8());
    prepared
        .detect_grids()
        .into_iter()
        .find_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .ok_or_else(|| "shows no readable QR code: hold the phone steady, closer, without glare".into())
}

/// Checks a scanned counter code and redeems it at `store`.
async fn redeem_scanned(
    state: &AppState,
    caller: &Caller,
    store: i64,
    text: &str,
) -> ApiResult<(StatusCode, Json<ScanResult>)> {
    let brand = caller.brand()?.id.get();
    let settings = state.part::<RedemptionConfig>()?;
    let code = state
        .config()
        .qr_code_key
        .read_counter_code(text, Utc::now(), settings.counter_code_ttl, settings.counter_code_grace)
        .map_err(|e| match e {
            CodeError::NotOurs => ApiError::Validation(vec![FieldError::new("code", e.to_string())]),
            CodeError::Expired => conflict(ConflictCode::CodeExpired, e.to_string()),
        })?;
    let reward = claims::reward(state, code.reward_id).await?;
    if reward.brand != brand {
        return Err(ApiError::Validation(vec![FieldError::new("code", "is for a reward of another brand")]));
    }
    claims::denied(state, &settings, &[code.wallet]).await?;
    claims::holds(state, reward.chain_id, reward.collection, code.token_id, code.wallet).await?;
    let actor = caller.principal.actor();
    let claim = Claim {
        brand,
        campaign: reward.campaign,
        reward: code.reward_id,
        kind: &reward.kind,
        needs_kyc: reward.needs_kyc,
        customer: Some(code.customer_id),
        claimant: code.wallet,
        recipient: code.wallet,
        submitted_by: "platform",
        store: Some(store),
        actor: &actor,
    };
    let mut tx = state.db().begin().await?;
    let id = claims::take_token_use(&mut tx, &claim, code.token_id, &reward.period, reward.per).await?;
    claims::fulfil(&mut tx, state, &settings, &claim, id).await?;
    let redemption = claims::load(&mut tx, state, None, id).await?;
    let name: String = sqlx::query_scalar("SELECT name FROM campaign_rewards WHERE id = $1")
        .bind(code.reward_id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let message = match (reward.kind.as_str(), redemption.state()) {
        ("perk", _) => format!("Redeemed: hand over “{name}” (token {})", code.token_id),
        (_, "awaiting_kyc") => format!("“{name}” waits for the customer's identity check before it is paid"),
        _ => format!("“{name}” is being paid to the customer's wallet"),
    };
    Ok((StatusCode::CREATED, Json(ScanResult { message, reward_name: name, redemption })))
}

/// Fuzz targets: a counter photo is whatever bytes a scanner sends. Decoding never panics, an
/// image declaring more than 12 000 pixels a side is refused from its header, and a photo of a
/// code reads back. 256 cases each (fewer for the photos decoded whole), or `PROPTEST_CASES`.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]

    use testkit::images::{jpeg_header, png_header};

    use std::time::{Duration, Instant};

    use image::{GrayImage, ImageFormat};
    use proptest::{prelude::*, sample::Index};

    use super::decode_photo;

    const FORMATS: [ImageFormat; 3] = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP];

    fn encode(image: image::DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn small(format: ImageFormat, width: u32, height: u32, seed: u8) -> Vec<u8> {
        let pixels = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([seed ^ (x as u8), (y as u8).wrapping_mul(seed), seed.wrapping_add((x ^ y) as u8)])
        });
        encode(image::DynamicImage::ImageRgb8(pixels), format)
    }

    /// A lossless WebP header declaring `width`×`height` (each 1 to 16 384).
    fn webp_header(width: u32, height: u32) -> Vec<u8> {
        let size = (width - 1) | ((height - 1) << 14);
        let mut webp = b"RIFF\0\x10\0\0WEBPVP8L\0\x10\0\0\x2f".to_vec();
        webp.extend_from_slice(&size.to_le_bytes());
        webp
    }

    /// Bytes a scan could send: noise, a real header then noise, a real image cut short or with
    /// bytes changed.
    fn photo() -> impl Strategy<Value = Vec<u8>> {
        let noise = prop::collection::vec(any::<u8>(), 0..512);
        let real = (prop::sample::select(FORMATS.to_vec()), 1u32..32, 1u32..32, any::<u8>())
            .prop_map(|(f, w, h, seed)| small(f, w, h, seed));
        prop_oneof![
            noise.clone(),
            (any::<u32>(), any::<u32>(), noise.clone()).prop_map(|(w, h, n)| [png_header(w, h), n].concat()),
            (any::<u16>(), any::<u16>(), noise.clone()).prop_map(|(w, h, n)| [jpeg_header(w, h), n].concat()),
            (1u32..=16_384, 1u32..=16_384, noise).prop_map(|(w, h, n)| [webp_header(w, h), n].concat()),
            (real.clone(), any::<Index>()).prop_map(|(mut bytes, cut)| {
                bytes.truncate(cut.index(bytes.len()));
                bytes
            }),
            (real, prop::collection::vec((any::<Index>(), any::<u8>()), 1..8)).prop_map(|(mut bytes, edits)| {
                for (at, byte) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                bytes
            }),
        ]
    }

    /// `code` drawn as the platform draws it, `scale` times larger, on a white canvas of
    /// `side` pixels at (`x`, `y`) (fractions of the room left), in `format`.
    fn photo_of(code: &str, scale: u32, side: u32, (x, y): (f32, f32), format: ImageFormat) -> Vec<u8> {
        let drawn = image::load_from_memory(&shared::qr::png(code).unwrap()).unwrap().to_luma8();
        let (width, height) = (drawn.width() * scale, drawn.height() * scale);
        let drawn = image::imageops::resize(&drawn, width, height, image::imageops::FilterType::Nearest);
        let side = side.max(width);
        let mut canvas = GrayImage::from_pixel(side, side, image::Luma([255]));
        let room = side - width;
        #[allow(clippy::float_arithmetic, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (x, y) = ((room as f32 * x) as i64, (room as f32 * y) as i64);
        image::imageops::overlay(&mut canvas, &drawn, x, y);
        encode(image::DynamicImage::ImageLuma8(canvas), format)
    }

    #[test]
    fn a_large_photo_is_scaled_down_before_its_code_is_read() {
        // 2000 px a side, the code drawn 3× larger (a close-up): decoded after scaling to 1600 px.
        let code =
            "BMC1.eyJjIjo0MiwidyI6IjB4YWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWJhYmFiYWIifQ.AAAAAAAAAAAAAAAAAAAAAA";
        let photo = photo_of(code, 3, 2000, (0.3, 0.6), ImageFormat::Jpeg);
        assert_eq!(decode_photo(&photo, ImageFormat::Jpeg).as_deref(), Ok(code));
    }

    proptest! {
        #[test]
        fn counter_photos_never_panic_on_any_bytes_in_any_accepted_format(
            bytes in photo(), format in prop::sample::select(FORMATS.to_vec()),
        ) {
            let _ = decode_photo(&bytes, format);
        }

        #[test]
        fn counter_photos_declaring_more_than_12000_pixels_a_side_are_refused_quickly(
            big in 12_001u32..=u32::MAX, other in 1u32..=u32::MAX, wide in any::<bool>(),
            webp_big in 12_001u32..=16_384, webp_other in 1u32..=16_384,
            noise in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let (width, height) = if wide { (big, other) } else { (other, big) };
            let (w16, h16) = (u16::try_from(width).unwrap_or(u16::MAX), u16::try_from(height).unwrap_or(u16::MAX));
            let (webp_w, webp_h) = if wide { (webp_big, webp_other) } else { (webp_other, webp_big) };
            for (bytes, format) in [
                ([png_header(width, height), noise.clone()].concat(), ImageFormat::Png),
                (png_header(100_000, 100_000), ImageFormat::Png),
                ([jpeg_header(w16, h16), noise.clone()].concat(), ImageFormat::Jpeg),
                ([webp_header(webp_w, webp_h), noise.clone()].concat(), ImageFormat::WebP),
            ] {
                let started = Instant::now();
                prop_assert!(decode_photo(&bytes, format).is_err());
                prop_assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
            }
        }
    }

    proptest! {
        // Each case draws, encodes and decodes a whole photo: fewer cases unless asked for more.
        #![proptest_config(ProptestConfig { cases: cases(24), ..ProptestConfig::default() })]

        #[test]
        fn a_photo_of_a_counter_code_reads_back_its_text(
            code in prop_oneof!["BMC1\\.[A-Za-z0-9_-]{40,220}\\.[A-Za-z0-9_-]{22}", "[ -~]{1,120}"],
            side in 0u32..640, at in (0f32..=1.0, 0f32..=1.0),
            format in prop::sample::select(vec![ImageFormat::Png, ImageFormat::Jpeg]),
        ) {
            prop_assert_eq!(decode_photo(&photo_of(&code, 1, side, at, format), format), Ok(code));
        }
    }

    /// `default` cases unless `PROPTEST_CASES` says how many.
    fn cases(default: u32) -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(default)
    }
}

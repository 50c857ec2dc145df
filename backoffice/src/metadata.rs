//! Public ERC-721 metadata: each collection's base URI is `<PUBLIC_BASE_URL>/metadata/<campaign>/`,
//! so wallets and marketplaces read `…/<campaign>/<token>` (JSON) and `…/<campaign>/image`.
//!
//! A token exists when the chain says so (`CampaignNFT.exists`), so metadata never describes a
//! token that was not minted; answers carry cache headers (long for minted tokens, short for
//! 404s, which turn into tokens as sales mint them).

use alloy::primitives::{Address, U256};
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use shared::{
    AppState,
    auth::{Permission, public},
    contracts::CampaignNFT,
    http::{ApiError, ApiResult, Problem, extract::Path},
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::campaigns::artwork_url;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(public(routes!(token_metadata))).routes(public(routes!(campaign_image)))
}

/// Metadata of a minted token (ERC-721 metadata JSON schema, as marketplaces read it).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenMetadata {
    name: String,
    description: String,
    image: String,
    external_url: Option<String>,
    attributes: Vec<Attribute>,
}

/// One trait of a token.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Attribute {
    trait_type: String,
    value: String,
}

const MINTED_CACHE: &str = "public, max-age=300";
const MISSING_CACHE: &str = "public, max-age=30";

fn with_cache(mut response: Response, cache: &'static str) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

fn not_found(what: String) -> Response {
    with_cache(ApiError::NotFound(what).into_response(), MISSING_CACHE)
}

/// A token's metadata JSON; 404 for a token that is not minted (or a campaign not deployed).
#[utoipa::path(get, path = "/metadata/{campaign_id}/{token_id}", tag = "metadata",
    params(("campaign_id" = i64, Path), ("token_id" = String, Path, description = "Decimal token id")),
    responses(
        (status = 200, body = TokenMetadata, headers(("Cache-Control" = String))),
        (status = 404, body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(campaign, token))]
async fn token_metadata(
    State(state): State<AppState>,
    Path((campaign, token)): Path<(i64, String)>,
) -> ApiResult<Response> {
    let Ok(token_id) = token.parse::<U256>() else {
        return Ok(not_found(format!("no token {token}")));
    };
    let row = sqlx::query!(
        "SELECT c.name, c.description, c.slug, c.collection_address, b.name AS brand, b.website
         FROM campaigns c JOIN brands b ON b.id = c.brand_id
         WHERE c.id = $1 AND c.collection_address IS NOT NULL",
        campaign
    )
    .fetch_optional(state.db())
    .await?;
    let Some(row) = row else {
        return Ok(not_found(format!("no deployed campaign {campaign}")));
    };
    let collection = row
        .collection_address
        .as_deref()
        .and_then(|bytes| Address::try_from(bytes).ok())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("campaign {campaign}: malformed collection address")))?;
    let minted = CampaignNFT::new(collection, state.chain().provider())
        .exists(token_id)
        .call()
        .await
        .map_err(|e| ApiError::Unavailable { detail: format!("the chain cannot be reached: {e}"), checks: None })?;
    if !minted {
        return Ok(not_found(format!("token {token_id} of campaign {campaign} is not minted")));
    }
    let metadata = TokenMetadata {
        name: format!("{} #{token_id}", row.name),
        description: row.description,
        image: artwork_url(&state, campaign),
        external_url: row.website,
        attributes: vec![
            Attribute { trait_type: "Brand".into(), value: row.brand },
            Attribute { trait_type: "Campaign".into(), value: row.slug },
        ],
    };
    Ok(with_cache(axum::Json(metadata).into_response(), MINTED_CACHE))
}

/// The campaign's artwork, with an ETag (its SHA-256) for conditional requests. Before the
/// campaign is deployed, only for a bearer token that may read the brand's campaigns.
#[utoipa::path(get, path = "/metadata/{campaign_id}/image", tag = "metadata",
    params(("campaign_id" = i64, Path)),
    responses(
        (status = 200, description = "The image", content_type = "image/*"),
        (status = 304, description = "Not modified"),
        (status = 404, body = Problem),
    ))]
#[tracing::instrument(skip_all, fields(campaign))]
async fn campaign_image(
    State(state): State<AppState>,
    Path(campaign): Path<i64>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let row = sqlx::query!(
        "SELECT brand_id, artwork_key, artwork_content_type, artwork_sha256, collection_address IS NOT NULL AS \"deployed!\"
         FROM campaigns WHERE id = $1 AND artwork_key IS NOT NULL",
        campaign
    )
    .fetch_optional(state.db())
    .await?;
    let Some((brand, Some(key), Some(content_type), Some(sha256), deployed)) = row.map(|r| {
        (shared::ids::BrandId::new(r.brand_id), r.artwork_key, r.artwork_content_type, r.artwork_sha256, r.deployed)
    }) else {
        return Ok(not_found(format!("campaign {campaign} has no artwork")));
    };
    // Until the collection is deployed the artwork is the brand's unreleased work: only its own
    // people (and platform staff who may read campaigns) see it; everyone else gets the same 404
    // as for a campaign without artwork.
    if !deployed && !shared::auth::may(&state, &headers, Permission::CampaignsRead, brand).await {
        return Ok(not_found(format!("campaign {campaign} has no artwork")));
    }
    let etag = format!("\"{sha256}\"");
    let visibility = if deployed { "public, max-age=86400" } else { "private, no-store" };
    let cache = [(header::ETAG, etag.clone()), (header::CACHE_CONTROL, visibility.to_owned())];
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let bytes = state
        .storage()
        .get(&key)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("artwork {key} is missing from storage")))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], cache, bytes).into_response())
}

//! The public catalog: live campaigns and their items, with prices, what is left and how they
//! can be paid.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::{
    AppState,
    auth::public,
    http::{ApiResult, Problem, extract::Json},
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(public(routes!(catalog)))
}

/// A live campaign on sale.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogCampaign {
    id: i64,
    brand: String,
    name: String,
    slug: String,
    description: String,
    /// The token image.
    image: Option<String>,
    /// EIP-55.
    collection_address: Option<String>,
    items: Vec<CatalogItem>,
}

/// An item with its price and what is left.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CatalogItem {
    id: i64,
    name: String,
    price_minor: i64,
    currency: String,
    /// Units not held by any order.
    remaining: i32,
    supply: i32,
    per_wallet_limit: Option<i32>,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    payment_methods: Vec<String>,
}

/// Live campaigns and their items.
#[utoipa::path(get, path = "/catalog", tag = "catalog",
    responses((status = 200, body = Vec<CatalogCampaign>), (status = 503, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn catalog(State(state): State<AppState>) -> ApiResult<Json<Vec<CatalogCampaign>>> {
    let public = &state.config().http.public;
    let campaigns = sqlx::query!(
        "SELECT c.id, b.name AS brand, c.name, c.slug, c.description, c.artwork_key IS NOT NULL AS \"has_image!\",
                c.collection_address
         FROM campaigns c JOIN brands b ON b.id = c.brand_id WHERE c.state = 'live' ORDER BY c.id"
    )
    .fetch_all(state.db())
    .await?;
    let items = sqlx::query!(
        "SELECT i.id, i.campaign_id, i.name, i.price_minor, i.currency, i.supply - i.reserved AS \"remaining!\", i.supply,
                i.per_wallet_limit, i.sale_starts_at, i.sale_ends_at, i.payment_methods
         FROM campaign_items i JOIN campaigns c ON c.id = i.campaign_id WHERE c.state = 'live' ORDER BY i.id"
    )
    .fetch_all(state.db())
    .await?;
    let catalog = campaigns
        .into_iter()
        .map(|c| CatalogCampaign {
            image: c
                .has_image
                .then(|| public.link(shared::config::Site::Backoffice, &format!("/metadata/{}/image", c.id))),
            collection_address: c.collection_address.as_deref().map(shared::chain::checksummed),
            items: items
                .iter()
                .filter(|i| i.campaign_id == c.id)
                .map(|i| CatalogItem {
                    id: i.id,
                    name: i.name.clone(),
                    price_minor: i.price_minor,
                    currency: i.currency.clone(),
                    remaining: i.remaining,
                    supply: i.supply,
                    per_wallet_limit: i.per_wallet_limit,
                    sale_starts_at: i.sale_starts_at,
                    sale_ends_at: i.sale_ends_at,
                    payment_methods: i.payment_methods.clone(),
                })
                .collect(),
            id: c.id,
            brand: c.brand,
            name: c.name,
            slug: c.slug,
            description: c.description,
        })
        .collect();
    Ok(Json(catalog))
}

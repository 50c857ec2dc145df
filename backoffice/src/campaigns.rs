//! Campaigns and their items (drops): create and edit while in draft, upload artwork, move
//! through the lifecycle (pause, resume, end, archive). Deployment is in [`crate::deploy`].
//!
//! What goes on chain (name, symbol, supply, royalty) can change only before the collection is
//! deployed; the description (off-chain metadata) can change at any time, and so can royalty
//! enforcement ([`crate::enforcement`]), which the collection's admin switches on chain.

mod page;

pub(crate) use page::token_amount;

use axum::{
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    chain::{checksummed, parse_address},
    http::OnConstraint,
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Body, Json, Path},
    },
    money::{Bps, Currency, Money},
    orders::{PaymentMethod, PriceError},
    workflow::{
        Transition, apply,
        machines::{Campaign as CampaignMachine, CampaignEvent, CampaignState},
    },
};
use sqlx::PgConnection;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Largest accepted artwork upload.
pub(crate) const MAX_ARTWORK_BYTES: usize = 10 * 1024 * 1024;
/// Largest accepted artwork side, in pixels.
const MAX_ARTWORK_SIDE: u32 = 8192;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    let artwork = OpenApiRouter::new()
        .routes(require(Permission::CampaignsManage, routes!(upload_artwork)))
        .layer(DefaultBodyLimit::max(MAX_ARTWORK_BYTES + 1));
    OpenApiRouter::new()
        .routes(require(Permission::CampaignsManage, routes!(create_campaign)))
        .routes(require(Permission::CampaignsRead, routes!(list_campaigns)))
        .routes(require(Permission::CampaignsRead, routes!(get_campaign)))
        .routes(require(Permission::CampaignsManage, routes!(update_campaign)))
        .routes(require(Permission::CampaignsManage, routes!(add_item)))
        .routes(require(Permission::CampaignsManage, routes!(change_state)))
        .merge(artwork)
}

/// `{campaign_id}` of a brand-scoped path (the brand is resolved by the guard).
#[derive(Debug, Deserialize)]
pub(crate) struct CampaignPath {
    pub(crate) campaign_id: i64,
}

/// A campaign with its items and deployment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Campaign {
    id: i64,
    brand_id: i64,
    /// draft, deploying, deploy_failed, live, paused, ended or archived.
    state: String,
    name: String,
    slug: String,
    symbol: String,
    description: String,
    royalty_bps: i32,
    /// EIP-55; the brand's treasury when not set.
    royalty_receiver: Option<String>,
    /// Whether the collection refuses transfers through marketplaces that are not allowlisted
    /// (royalty enforcement beyond EIP-2981); once deployed, the chain follows each change.
    royalty_enforcement: bool,
    artwork: Option<Artwork>,
    chain_id: Option<i64>,
    collection_address: Option<String>,
    items: Vec<Item>,
    deployment: Option<DeploymentView>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The campaign's uploaded image.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Artwork {
    content_type: String,
    sha256: String,
    /// Public address of the image (also each token's `image`).
    url: String,
}

/// An item (drop) of a campaign.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Item {
    id: i64,
    name: String,
    /// In minor units of `currency` (cents).
    price_minor: i64,
    currency: String,
    supply: i32,
    reserved: i32,
    per_wallet_limit: Option<i32>,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    payment_methods: Vec<String>,
}

/// A new campaign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewCampaign {
    name: String,
    /// Lower-case words joined by hyphens; unique within the brand.
    slug: String,
    /// The collection's ERC-721 symbol (A–Z, 0–9, up to 11); derived from the slug if absent.
    symbol: Option<String>,
    #[serde(default)]
    description: String,
    /// EIP-2981 royalty in basis points (0–10,000).
    #[schema(minimum = 0, maximum = 10_000)]
    royalty_bps: i64,
    /// EIP-55 address receiving royalties; the brand's treasury if absent.
    royalty_receiver: Option<String>,
    /// Enforce royalties: tokens move between holders only by their owner or through an
    /// allowlisted marketplace (Seaport); off by default.
    #[serde(default)]
    royalty_enforcement: bool,
    #[serde(default)]
    items: Vec<NewItem>,
}

/// Changes to a campaign (only `description` and `royalty_enforcement` once deployed).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignChanges {
    name: Option<String>,
    symbol: Option<String>,
    description: Option<String>,
    #[schema(minimum = 0, maximum = 10_000)]
    royalty_bps: Option<i64>,
    royalty_receiver: Option<String>,
    /// Turns royalty enforcement on or off, also once deployed (a transaction follows).
    royalty_enforcement: Option<bool>,
}

/// A new item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewItem {
    name: String,
    /// In minor units of `currency`: 1 to 99,999,999 (Stripe's largest charge), and at least Stripe's
    /// minimum charge when `card` is accepted.
    #[schema(minimum = 1, maximum = 99_999_999)]
    price_minor: i64,
    /// ISO 4217 code.
    currency: String,
    #[schema(minimum = 1, maximum = 1_000_000)]
    supply: i64,
    #[schema(minimum = 1, maximum = 1_000_000)]
    per_wallet_limit: Option<i64>,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    /// Any of card, eth, stablecoin.
    payment_methods: Vec<String>,
}

/// A lifecycle step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateChange {
    /// pause, resume, end or archive.
    action: String,
}

/// The core's field-error collector, by the name this crate's validators use.
pub(crate) use shared::http::FieldErrors as Errors;

pub(crate) fn check_text(errors: &mut Errors, field: &str, value: &str, max: usize) -> String {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        errors.add(field, format!("must be 1 to {max} characters"));
    }
    value.to_owned()
}

fn check_symbol(errors: &mut Errors, symbol: &str) -> String {
    if symbol.is_empty() || symbol.len() > 11 || !symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        errors.add("symbol", "must be 1 to 11 characters A–Z or 0–9");
    }
    symbol.to_owned()
}

fn check_royalty(errors: &mut Errors, bps: i64) -> i32 {
    match u32::try_from(bps).ok().and_then(|bps| Bps::new(bps).ok()) {
        Some(bps) => i32::from(bps.get()),
        None => {
            errors.add("royalty_bps", "must be between 0 and 10000 basis points");
            0
        }
    }
}

/// Royalty enforcement needs the platform's transfer validator.
fn check_enforcement(errors: &mut Errors, state: &AppState, on: bool) {
    if on && state.config().chain.contracts.transfer_validator.is_none() {
        errors.add("royalty_enforcement", "this platform has no transfer validator (TRANSFER_VALIDATOR_ADDRESS)");
    }
}

fn check_receiver(errors: &mut Errors, receiver: Option<&str>) -> Option<Vec<u8>> {
    let receiver = receiver?;
    match parse_address(receiver) {
        Ok(address) => Some(address.to_vec()),
        Err(reason) => {
            errors.add("royalty_receiver", reason);
            None
        }
    }
}

/// A validated item.
pub(crate) struct ItemInput {
    name: String,
    price_minor: i64,
    currency: String,
    supply: i32,
    per_wallet_limit: Option<i32>,
    sale_starts_at: Option<DateTime<Utc>>,
    sale_ends_at: Option<DateTime<Utc>>,
    payment_methods: Vec<String>,
}

fn check_item(errors: &mut Errors, prefix: &str, item: NewItem) -> ItemInput {
    let field = |name: &str| format!("{prefix}{name}");
    let name = check_text(errors, &field("name"), &item.name, 100);
    let currency = item.currency.trim().to_ascii_uppercase().parse::<Currency>().ok();
    let mut methods: Vec<PaymentMethod> = Vec::new();
    let mut method_errors: Vec<String> = Vec::new();
    for method in &item.payment_methods {
        match method.parse::<PaymentMethod>() {
            Ok(method) if !methods.contains(&method) => methods.push(method),
            Ok(_) => {}
            Err(e) => method_errors.push(e.to_string()),
        }
    }
    if item.payment_methods.is_empty() {
        method_errors.push("must name at least one of card, eth, stablecoin".into());
    }
    // Every accepted method must be able to take this price, or buyers could order what can
    // never be paid. Without a usable currency only the sign and the maximum can be checked.
    let price = Money::new(item.price_minor, currency.unwrap_or(Currency::USD));
    let refusals: Vec<PriceError> = match currency {
        Some(_) => methods.iter().filter_map(|method| method.check_price(price).err()).collect(),
        None => PaymentMethod::Stablecoin.check_price(price).err().into_iter().collect(),
    };
    if let Some(refusal) = refusals.iter().find(|r| matches!(r, PriceError::Amount(_))) {
        errors.add(field("price_minor"), refusal.to_string());
    }
    match (currency, refusals.iter().find(|r| matches!(r, PriceError::Currency(_)))) {
        (None, _) => errors.add(field("currency"), "must be an ISO 4217 currency code such as EUR"),
        (Some(_), Some(refusal)) => errors.add(field("currency"), refusal.to_string()),
        (Some(_), None) => {}
    }
    let supply = match i32::try_from(item.supply) {
        Ok(supply) if (1..=1_000_000).contains(&supply) => supply,
        _ => {
            errors.add(field("supply"), "must be between 1 and 1000000");
            1
        }
    };
    let per_wallet_limit = item.per_wallet_limit.and_then(|limit| match i32::try_from(limit) {
        Ok(limit) if limit >= 1 => Some(limit),
        _ => {
            errors.add(field("per_wallet_limit"), "must be at least 1");
            None
        }
    });
    if let (Some(starts), Some(ends)) = (item.sale_starts_at, item.sale_ends_at)
        && ends <= starts
    {
        errors.add(field("sale_ends_at"), "must be after sale_starts_at");
    }
    for message in method_errors {
        errors.add(field("payment_methods"), message);
    }
    ItemInput {
        name,
        price_minor: item.price_minor,
        currency: currency.map(|c| c.code().to_owned()).unwrap_or_default(),
        supply,
        per_wallet_limit,
        sale_starts_at: item.sale_starts_at,
        sale_ends_at: item.sale_ends_at,
        payment_methods: methods.iter().map(|m| m.as_str().to_owned()).collect(),
    }
}

fn default_symbol(slug: &str) -> String {
    let symbol: String = slug.chars().filter(char::is_ascii_alphanumeric).take(11).collect();
    symbol.to_ascii_uppercase()
}

fn is_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

async fn insert_item(conn: &mut PgConnection, brand: i64, campaign: i64, item: &ItemInput) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO campaign_items (brand_id, campaign_id, name, price_minor, currency, supply, per_wallet_limit,
             sale_starts_at, sale_ends_at, payment_methods)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        brand,
        campaign,
        item.name,
        item.price_minor,
        item.currency,
        item.supply,
        item.per_wallet_limit,
        item.sale_starts_at,
        item.sale_ends_at,
        &item.payment_methods
    )
    .fetch_one(conn)
    .await
}

/// The campaign `id` of `brand`, or 404 (another brand's campaign is not visible).
pub(crate) async fn load(conn: &mut PgConnection, state: &AppState, brand: i64, id: i64) -> ApiResult<Campaign> {
    let row = sqlx::query!(
        "SELECT id, brand_id, state, name, slug, symbol, description, royalty_bps, royalty_receiver,
                royalty_enforcement, artwork_content_type, artwork_sha256, chain_id, collection_address, created_at, updated_at
         FROM campaigns WHERE brand_id = $1 AND id = $2",
        brand,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))?;
    let items = sqlx::query_as!(
        Item,
        "SELECT id, name, price_minor, currency, supply, reserved, per_wallet_limit, sale_starts_at, sale_ends_at,
                payment_methods
         FROM campaign_items WHERE brand_id = $1 AND campaign_id = $2 ORDER BY id",
        brand,
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    let artwork = match (row.artwork_content_type, row.artwork_sha256) {
        (Some(content_type), Some(sha256)) => Some(Artwork { content_type, sha256, url: artwork_url(state, id) }),
        _ => None,
    };
    Ok(Campaign {
        id: row.id,
        brand_id: row.brand_id,
        state: row.state,
        name: row.name,
        slug: row.slug,
        symbol: row.symbol,
        description: row.description,
        royalty_bps: row.royalty_bps,
        royalty_receiver: row.royalty_receiver.as_deref().map(checksummed),
        royalty_enforcement: row.royalty_enforcement,
        artwork,
        chain_id: row.chain_id,
        collection_address: row.collection_address.as_deref().map(checksummed),
        items,
        deployment: deployment_view(&mut *conn, brand, id).await?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Where the campaign's image is served publicly.
pub(crate) fn artwork_url(state: &AppState, campaign: i64) -> String {
    state.config().http.public.link(shared::config::Site::Backoffice, &format!("/metadata/{campaign}/image"))
}

/// A campaign's deployment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeploymentView {
    id: i64,
    /// requested, submitted, confirmed or failed.
    state: String,
    attempt: i32,
    /// The queued transaction (see its hash and fees through the operations API).
    chain_tx_id: Option<i64>,
    tx_hash: Option<String>,
    collection_address: Option<String>,
    /// Why the last attempt failed (the revert reason when there is one).
    error: Option<String>,
    updated_at: DateTime<Utc>,
}

/// The campaign's deployment as its view shows it (the deployment itself is `crate::deploy`).
async fn deployment_view(conn: &mut PgConnection, brand: i64, campaign: i64) -> sqlx::Result<Option<DeploymentView>> {
    let row = sqlx::query!(
        "SELECT d.id, d.state, d.attempt, d.chain_tx_id, d.collection_address, d.error, d.updated_at, t.tx_hash
         FROM contract_deployments d LEFT JOIN chain_transactions t ON t.id = d.chain_tx_id
         WHERE d.brand_id = $1 AND d.campaign_id = $2",
        brand,
        campaign
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| DeploymentView {
        id: row.id,
        state: row.state,
        attempt: row.attempt,
        chain_tx_id: row.chain_tx_id,
        tx_hash: row.tx_hash.map(|hash| format!("0x{}", alloy::hex::encode(hash))),
        collection_address: row.collection_address.as_deref().map(shared::chain::checksummed),
        error: row.error,
        updated_at: row.updated_at,
    }))
}

fn slug_taken() -> ApiError {
    ApiError::validation("slug", "already used by another campaign of this brand")
}

/// Creates a campaign in draft, with its items.
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns", tag = "campaigns", request_body = NewCampaign,
    params(("brand_id" = i64, Path)),
    responses(
        (status = 201, body = Campaign),
        (status = 422, description = "Invalid fields, each named", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn create_campaign(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewCampaign>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let name = check_text(&mut errors, "name", &body.name, 100);
    let slug = body.slug.trim().to_owned();
    if !is_slug(&slug) {
        errors.add("slug", "must be lower-case letters and digits in words joined by single hyphens (at most 64)");
    }
    let symbol = check_symbol(&mut errors, &body.symbol.unwrap_or_else(|| default_symbol(&slug)));
    let royalty_bps = check_royalty(&mut errors, body.royalty_bps);
    let receiver = check_receiver(&mut errors, body.royalty_receiver.as_deref());
    check_enforcement(&mut errors, &state, body.royalty_enforcement);
    if body.description.chars().count() > 5000 {
        errors.add("description", "must be at most 5000 characters");
    }
    let items: Vec<ItemInput> = body
        .items
        .into_iter()
        .enumerate()
        .map(|(i, item)| check_item(&mut errors, &format!("items[{i}]."), item))
        .collect();
    errors.finish()?;

    let mut tx = state.db().begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO campaigns (brand_id, name, slug, symbol, description, royalty_bps, royalty_receiver,
                                royalty_enforcement)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        brand.get(),
        name,
        slug,
        symbol,
        body.description.trim(),
        royalty_bps,
        receiver,
        body.royalty_enforcement
    )
    .fetch_one(&mut *tx)
    .await
    .on_constraint("campaigns_slug_key", slug_taken)?;
    for item in &items {
        insert_item(&mut tx, brand.get(), id, item).await?;
    }
    let campaign = load(&mut tx, &state, brand.get(), id).await?;
    audit::record(&mut tx, &caller, Entry::new("campaign.created", format!("campaign:{id}")).after(&campaign)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

/// The brand's campaigns, newest first.
#[utoipa::path(get, path = "/brands/{brand_id}/campaigns", tag = "campaigns", params(("brand_id" = i64, Path)),
    responses((status = 200, body = Vec<Campaign>)))]
#[tracing::instrument(skip_all)]
async fn list_campaigns(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let brand = caller.brand()?.id;
    let mut conn = state.db().acquire().await?;
    let ids = sqlx::query_scalar!("SELECT id FROM campaigns WHERE brand_id = $1 ORDER BY id DESC", brand.get())
        .fetch_all(&mut *conn)
        .await?;
    let mut campaigns = Vec::with_capacity(ids.len());
    for id in ids {
        campaigns.push(load(&mut conn, &state, brand.get(), id).await?);
    }
    match shared::pages::wants_html(&headers) {
        true => Ok(page::list(&state, &caller, brand.get(), &campaigns)),
        false => Ok(Json(campaigns).into_response()),
    }
}

/// One campaign, with its items and deployment.
#[utoipa::path(get, path = "/brands/{brand_id}/campaigns/{campaign_id}", tag = "campaigns",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_campaign(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id: id }): Path<CampaignPath>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let mut conn = state.db().acquire().await?;
    let campaign = load(&mut conn, &state, caller.brand()?.id.get(), id).await?;
    drop(conn);
    if !shared::pages::wants_html(&headers) {
        return Ok(Json(campaign).into_response());
    }
    let rewards = crate::rewards::section(&state, &caller, id).await?;
    let batches = crate::qr_batches::section(&state, &caller, id).await?;
    Ok(page::one(&state, &caller, &campaign, rewards, batches))
}

/// Locks the campaign row and returns its state (404 if not the brand's).
pub(crate) async fn lock(conn: &mut PgConnection, brand: i64, id: i64) -> ApiResult<CampaignState> {
    let state =
        sqlx::query_scalar!("SELECT state FROM campaigns WHERE brand_id = $1 AND id = $2 FOR UPDATE", brand, id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no campaign {id}")))?;
    state.parse().map_err(|_| ApiError::Internal(anyhow::anyhow!("campaign {id} has unknown state {state}")))
}

/// Whether what goes on chain can still change.
pub(crate) fn before_deployment(state: CampaignState) -> bool {
    matches!(state, CampaignState::Draft | CampaignState::DeployFailed)
}

fn locked_after_deployment(field: &str) -> ApiError {
    ApiError::Conflict {
        code: shared::http::ConflictCode::CampaignDeployed,
        detail: format!("`{field}` is on chain and cannot change once the campaign is deployed"),
    }
}

/// Changes a campaign: everything before deployment; the description and royalty enforcement
/// at any time (a deployed collection's validator follows through the transaction queue).
#[utoipa::path(patch, path = "/brands/{brand_id}/campaigns/{campaign_id}", tag = "campaigns",
    request_body = CampaignChanges, params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses(
        (status = 200, body = Campaign),
        (status = 409, description = "An on-chain field after deployment", body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn update_campaign(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id: id }): Path<CampaignPath>,
    Json(body): Json<CampaignChanges>,
) -> ApiResult<Json<Campaign>> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let name = body.name.as_deref().map(|name| check_text(&mut errors, "name", name, 100));
    let symbol = body.symbol.as_deref().map(|symbol| check_symbol(&mut errors, symbol));
    let royalty_bps = body.royalty_bps.map(|bps| check_royalty(&mut errors, bps));
    let receiver = check_receiver(&mut errors, body.royalty_receiver.as_deref());
    check_enforcement(&mut errors, &state, body.royalty_enforcement == Some(true));
    if body.description.as_ref().is_some_and(|d| d.chars().count() > 5000) {
        errors.add("description", "must be at most 5000 characters");
    }
    errors.finish()?;

    let mut tx = state.db().begin().await?;
    let current = lock(&mut tx, brand.get(), id).await?;
    if !before_deployment(current) {
        for (field, given) in [
            ("name", name.is_some()),
            ("symbol", symbol.is_some()),
            ("royalty_bps", royalty_bps.is_some()),
            ("royalty_receiver", receiver.is_some()),
        ] {
            if given {
                return Err(locked_after_deployment(field));
            }
        }
    }
    let before = load(&mut tx, &state, brand.get(), id).await?;
    sqlx::query!(
        "UPDATE campaigns SET name = COALESCE($3, name), symbol = COALESCE($4, symbol),
             description = COALESCE($5, description), royalty_bps = COALESCE($6, royalty_bps),
             royalty_receiver = COALESCE($7, royalty_receiver),
             royalty_enforcement = COALESCE($8, royalty_enforcement),
             royalty_enforcement_version = royalty_enforcement_version
                 + (COALESCE($8, royalty_enforcement) <> royalty_enforcement)::int,
             updated_at = now()
         WHERE brand_id = $1 AND id = $2",
        brand.get(),
        id,
        name,
        symbol,
        body.description.as_deref().map(str::trim),
        royalty_bps,
        receiver,
        body.royalty_enforcement
    )
    .execute(&mut *tx)
    .await?;
    let after = load(&mut tx, &state, brand.get(), id).await?;
    if after.royalty_enforcement != before.royalty_enforcement {
        // A deployed collection follows (before that, its deployment will).
        crate::enforcement::follow(&mut tx, state.resources(), id).await?;
    }
    let entry = Entry::new("campaign.updated", format!("campaign:{id}")).before(&before).after(&after);
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// Adds an item to a campaign that is not deployed yet (the supply cap goes on chain).
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/items", tag = "campaigns",
    request_body = NewItem, params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses(
        (status = 201, body = Campaign),
        (status = 409, body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn add_item(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id: id }): Path<CampaignPath>,
    Json(body): Json<NewItem>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let item = check_item(&mut errors, "", body);
    errors.finish()?;
    let mut tx = state.db().begin().await?;
    if !before_deployment(lock(&mut tx, brand.get(), id).await?) {
        return Err(locked_after_deployment("items"));
    }
    let item_id = insert_item(&mut tx, brand.get(), id, &item).await?;
    let campaign = load(&mut tx, &state, brand.get(), id).await?;
    let added = campaign.items.iter().find(|i| i.id == item_id);
    audit::record(&mut tx, &caller, Entry::new("campaign.item_added", format!("campaign:{id}")).after(added)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(campaign)))
}

/// Pauses, resumes, ends or archives a campaign, as its lifecycle allows.
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/state", tag = "campaigns",
    request_body = StateChange, params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses(
        (status = 200, body = Campaign),
        (status = 409, description = "Not allowed from the current state", body = Problem),
        (status = 422, body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn change_state(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id: id }): Path<CampaignPath>,
    Json(body): Json<StateChange>,
) -> ApiResult<Json<Campaign>> {
    let brand = caller.brand()?.id;
    let event = match body.action.as_str() {
        "pause" => CampaignEvent::Pause,
        "resume" => CampaignEvent::Resume,
        "end" => CampaignEvent::End,
        "archive" => CampaignEvent::Archive,
        _ => {
            return Err(ApiError::Validation(vec![FieldError::new("action", "must be pause, resume, end or archive")]));
        }
    };
    let mut tx = state.db().begin().await?;
    let from = lock(&mut tx, brand.get(), id).await?;
    let cause = format!("{}:{}", body.action, uuid::Uuid::new_v4());
    let actor = caller.principal.actor();
    let transition = Transition::<CampaignMachine>::new(id, event, &cause, &actor)
        .with_payload(serde_json::json!({ "brand_id": brand }));
    apply(&mut tx, transition).await.map_err(|e| match e {
        shared::workflow::WorkflowError::InvalidTransition { .. } => ApiError::Conflict {
            code: shared::http::ConflictCode::InvalidTransition,
            detail: format!("a campaign that is {} cannot {}", <&str>::from(from), body.action),
        },
        other => ApiError::Internal(other.into()),
    })?;
    let campaign = load(&mut tx, &state, brand.get(), id).await?;
    let entry = Entry::new("campaign.state_changed", format!("campaign:{id}"))
        .before(<&str>::from(from))
        .after(&campaign.state);
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(campaign))
}

/// Uploads the campaign's artwork (PNG, JPEG, WebP or GIF, up to 10 MiB and 8192 px a side).
/// The format is read from the bytes, not trusted from `Content-Type`.
#[utoipa::path(put, path = "/brands/{brand_id}/campaigns/{campaign_id}/artwork", tag = "campaigns",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses(
        (status = 200, body = Campaign),
        (status = 413, body = Problem),
        (status = 422, description = "Not an image", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn upload_artwork(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id: id }): Path<CampaignPath>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Json<Campaign>> {
    let brand = caller.brand()?.id;
    if body.len() > MAX_ARTWORK_BYTES {
        return Err(ApiError::PayloadTooLarge);
    }
    let declared = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let content_type = sniff_image(&body, &declared)?;
    let sha256 = alloy::hex::encode(Sha256::digest(&body));
    {
        // The campaign must exist (and be the brand's) before anything is stored.
        let mut conn = state.db().acquire().await?;
        load(&mut conn, &state, brand.get(), id).await?;
    }
    let key = format!("campaigns/{id}/artwork-{sha256}");
    state.storage().put(&key, body).await.map_err(|e| ApiError::Internal(e.into()))?;
    let mut tx = state.db().begin().await?;
    lock(&mut tx, brand.get(), id).await?;
    let previous =
        sqlx::query_scalar!("SELECT artwork_sha256 FROM campaigns WHERE id = $1", id).fetch_one(&mut *tx).await?;
    sqlx::query!(
        "UPDATE campaigns SET artwork_key = $2, artwork_content_type = $3, artwork_sha256 = $4, updated_at = now()
         WHERE id = $1",
        id,
        key,
        content_type,
        sha256
    )
    .execute(&mut *tx)
    .await?;
    let campaign = load(&mut tx, &state, brand.get(), id).await?;
    let entry = Entry::new("campaign.artwork_uploaded", format!("campaign:{id}"))
        .before(previous)
        .after(serde_json::json!({ "sha256": sha256, "content_type": content_type }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok(Json(campaign))
}

/// The image's real media type, or a 422 naming `artwork`.
fn sniff_image(bytes: &[u8], declared: &str) -> ApiResult<String> {
    use image::ImageFormat;
    let invalid = |message: String| ApiError::Validation(vec![FieldError::new("artwork", message)]);
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| invalid(format!("cannot be read: {e}")))?;
    let format = match reader.format() {
        Some(format @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP | ImageFormat::Gif)) => format,
        _ => {
            let declared = if declared.is_empty() { "no type" } else { declared };
            return Err(invalid(format!("is not a PNG, JPEG, WebP or GIF image (sent as {declared})")));
        }
    };
    let (width, height) = reader.into_dimensions().map_err(|e| invalid(format!("is not a valid image: {e}")))?;
    if width == 0 || height == 0 || width > MAX_ARTWORK_SIDE || height > MAX_ARTWORK_SIDE {
        return Err(invalid(format!(
            "must be at most {MAX_ARTWORK_SIDE}×{MAX_ARTWORK_SIDE} pixels, is {width}×{height}"
        )));
    }
    Ok(format.to_mime_type().to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_and_symbols() {
        assert!(super::is_slug("summer-drop-2026"));
        for bad in ["", "Summer", "summer--drop", "-summer", "summer-", "summer drop", "été"] {
            assert!(!super::is_slug(bad), "{bad}");
        }
        assert_eq!(super::default_symbol("summer-drop-2026"), "SUMMERDROP2");
    }

    #[test]
    fn only_real_images_are_artwork() {
        assert!(super::sniff_image(b"%PDF-1.7 not an image", "image/png").is_err());
        assert!(super::sniff_image(b"\x89PNG\r\n\x1a\n truncated", "image/png").is_err());
    }
}

/// Fuzz targets: artwork is whatever bytes a brand uploads. Sniffing never panics, real images
/// of the four formats are accepted, and an image declaring more than 8192 pixels a side is
/// refused from its header, without decoding it. 256 cases each, or `PROPTEST_CASES`.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]

    use testkit::images::{jpeg_header, png_header};

    use std::time::{Duration, Instant};

    use image::ImageFormat;
    use proptest::{prelude::*, sample::Index};

    use super::{MAX_ARTWORK_SIDE, sniff_image};

    const FORMATS: [ImageFormat; 4] = [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP, ImageFormat::Gif];

    fn encode(format: ImageFormat, width: u32, height: u32, seed: u8) -> Vec<u8> {
        let pixels = image::RgbImage::from_fn(width, height, |x, y| {
            image::Rgb([seed ^ (x as u8), (y as u8).wrapping_mul(seed), seed.wrapping_add((x ^ y) as u8)])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(pixels).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// Bytes an upload could hold: noise, a real header then noise, a real image cut short or
    /// with bytes changed.
    fn upload() -> impl Strategy<Value = Vec<u8>> {
        let noise = prop::collection::vec(any::<u8>(), 0..512);
        let magic = prop::sample::select(vec![
            b"\x89PNG\r\n\x1a\n".to_vec(),
            vec![0xFF, 0xD8, 0xFF],
            b"GIF89a".to_vec(),
            b"GIF87a".to_vec(),
            b"RIFF\0\0\0\0WEBPVP8 ".to_vec(),
            b"RIFF\xff\xff\xff\xffWEBPVP8L".to_vec(),
            b"BM".to_vec(),
            b"%PDF-".to_vec(),
        ]);
        let real = (prop::sample::select(FORMATS.to_vec()), 1u32..24, 1u32..24, any::<u8>())
            .prop_map(|(f, w, h, seed)| encode(f, w, h, seed));
        prop_oneof![
            noise.clone(),
            (magic, noise.clone()).prop_map(|(m, n)| [m, n].concat()),
            (any::<u32>(), any::<u32>(), noise.clone()).prop_map(|(w, h, n)| [png_header(w, h), n].concat()),
            (any::<u16>(), any::<u16>(), noise).prop_map(|(w, h, n)| [jpeg_header(w, h), n].concat()),
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

    proptest! {
        #[test]
        fn artwork_sniffing_never_panics_on_any_bytes_or_declared_type(bytes in upload(), declared in ".{0,40}") {
            if let Ok(media) = sniff_image(&bytes, &declared) {
                prop_assert!(["image/png", "image/jpeg", "image/webp", "image/gif"].contains(&media.as_str()), "{}", media);
            }
        }

        #[test]
        fn artwork_in_any_accepted_format_and_size_is_accepted_as_what_it_is(
            format in prop::sample::select(FORMATS.to_vec()), width in 1u32..48, height in 1u32..48, seed in any::<u8>(),
        ) {
            let bytes = encode(format, width, height, seed);
            prop_assert_eq!(sniff_image(&bytes, "application/octet-stream").unwrap(), format.to_mime_type());
        }

        #[test]
        fn artwork_declaring_more_than_8192_pixels_a_side_is_refused_quickly(
            big in MAX_ARTWORK_SIDE + 1..=u32::MAX, other in 1u32..=u32::MAX, wide in any::<bool>(),
            noise in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            let (width, height) = if wide { (big, other) } else { (other, big) };
            for bytes in [[png_header(width, height), noise.clone()].concat(), png_header(100_000, 100_000)] {
                let started = Instant::now();
                prop_assert!(sniff_image(&bytes, "image/png").is_err());
                prop_assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
            }
            let (width, height) = (u16::try_from(width).unwrap_or(u16::MAX), u16::try_from(height).unwrap_or(u16::MAX));
            prop_assert!(sniff_image(&[jpeg_header(width, height), noise].concat(), "image/jpeg").is_err());
        }
    }
}

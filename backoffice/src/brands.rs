//! Brands and their stores. Platform admins create brands (inviting the first owner);
//! members read their own brand; owners and managers add stores.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{BrandId, BrandRole, Caller, Permission, require},
    http::{ApiError, ApiResult, FieldError, Problem, extract::Json},
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    campaigns::{Errors, check_text},
    members::{self, InviteRequest},
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(require(Permission::BrandsCreate, routes!(create_brand)))
        .routes(require(Permission::BrandsList, routes!(list_brands)))
        .routes(require(Permission::BrandRead, routes!(get_brand)))
        .routes(require(Permission::BrandEdit, routes!(update_brand)))
        .routes(require(Permission::StoresManage, routes!(create_store)))
        .routes(require(Permission::BrandRead, routes!(list_stores)))
}

/// A brand.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Brand {
    id: BrandId,
    name: String,
    description: String,
    website: Option<String>,
    /// EIP-55 address receiving the brand's proceeds and (by default) royalties.
    treasury_address: Option<String>,
    created_at: DateTime<Utc>,
}

/// Changes to a brand's profile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct BrandChanges {
    name: Option<String>,
    description: Option<String>,
    /// An https:// address.
    website: Option<String>,
    /// EIP-55 checksummed.
    treasury_address: Option<String>,
}

/// A brand row as stored.
struct BrandRow {
    id: BrandId,
    name: String,
    description: String,
    website: Option<String>,
    treasury_address: Option<Vec<u8>>,
    created_at: DateTime<Utc>,
}

impl From<BrandRow> for Brand {
    fn from(row: BrandRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            description: row.description,
            website: row.website,
            treasury_address: row.treasury_address.as_deref().map(shared::chain::checksummed),
            created_at: row.created_at,
        }
    }
}

async fn load(conn: &mut sqlx::PgConnection, id: BrandId) -> ApiResult<Brand> {
    let row = sqlx::query_as!(
        BrandRow,
        r#"SELECT id AS "id: BrandId", name, description, website, treasury_address, created_at FROM brands WHERE id = $1"#,
        id.get()
    )
    .fetch_one(conn)
    .await?;
    Ok(row.into())
}

/// A new brand and who will own it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewBrand {
    name: String,
    /// Invited as the brand's first owner.
    owner_email: String,
}

/// A store of a brand.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Store {
    id: i64,
    brand_id: i64,
    name: String,
    created_at: DateTime<Utc>,
}

/// A new store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewStore {
    name: String,
}

pub(crate) fn check_name(field: &'static str, name: &str, max: usize) -> ApiResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max {
        return Err(ApiError::Validation(vec![FieldError::new(field, format!("must be 1 to {max} characters"))]));
    }
    Ok(name.to_owned())
}

/// Creates a brand and mails its first owner an invitation.
#[utoipa::path(post, path = "/brands", tag = "brands", request_body = NewBrand, responses(
    (status = 201, description = "Created; the owner is invited", body = Brand),
    (status = 422, description = "Invalid name or email", body = Problem),
))]
#[tracing::instrument(skip_all)]
async fn create_brand(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewBrand>,
) -> ApiResult<(StatusCode, Json<Brand>)> {
    let name = check_name("name", &body.name, 200)?;
    let mut tx = state.db().begin().await?;
    let id = sqlx::query_scalar!(r#"INSERT INTO brands (name) VALUES ($1) RETURNING id AS "id: BrandId""#, name)
        .fetch_one(&mut *tx)
        .await?;
    let brand = load(&mut tx, id).await?;
    let entry = Entry::new("brand.created", format!("brand:{}", brand.id)).after(&name);
    audit::record_as(&mut tx, &caller.principal.actor(), Some(brand.id), &caller.meta, entry).await?;
    let invite = InviteRequest { email: body.owner_email, role: BrandRole::Owner, store_ids: Vec::new() };
    let (_, mail) = members::invite(&mut tx, &state, &caller, brand.id, invite).await?;
    tx.commit().await?;
    mail.send(state.mailer()).await;
    Ok((StatusCode::CREATED, Json(brand)))
}

/// Every brand (platform staff).
#[utoipa::path(get, path = "/brands", tag = "brands", responses((status = 200, body = Vec<Brand>)))]
#[tracing::instrument(skip_all)]
async fn list_brands(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Vec<Brand>>> {
    let brands = sqlx::query_as!(
        BrandRow,
        r#"SELECT id AS "id: BrandId", name, description, website, treasury_address, created_at FROM brands ORDER BY id"#
    )
    .fetch_all(state.db())
    .await?;
    Ok(Json(brands.into_iter().map(Brand::from).collect()))
}

/// One brand.
#[utoipa::path(get, path = "/brands/{brand_id}", tag = "brands",
    params(("brand_id" = i64, Path)),
    responses((status = 200, body = Brand), (status = 404, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn get_brand(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let mut conn = state.db().acquire().await?;
    let brand = load(&mut conn, caller.brand()?.id).await?;
    if !shared::pages::wants_html(&headers) {
        return Ok(Json(brand).into_response());
    }
    let stores = list_stores(State(state.clone()), caller.clone()).await?.0;
    Ok(brand_page(&state, &caller, &brand, &stores))
}

/// The brand's page: its profile, treasury and stores, and forms to change them.
fn brand_page(state: &AppState, caller: &Caller, brand: &Brand, stores: &[Store]) -> Response {
    let id = brand.id.get();
    let body = maud::html! {
        h1 { (brand.name) }
        section.card aria-labelledby="profile-title" {
            h2 #profile-title { "Profile" }
            dl.facts {
                dt { "Treasury" }
                dd.hash { (brand.treasury_address.as_deref().unwrap_or("not set: proceeds and royalties need one")) }
                dt { "Website" } dd { (brand.website.as_deref().unwrap_or("—")) }
                dt { "Since" } dd { (crate::pages::when(brand.created_at)) }
            }
            @if !brand.description.is_empty() { p { (brand.description) } }
            @if caller.holds(Permission::BrandEdit) {
                form data-api=(format!("/brands/{id}")) data-method="PATCH" {
                    label for="treasury" { "Treasury address (EIP-55, receives proceeds and royalties)" }
                    input #treasury type="text" name="treasury_address" spellcheck="false" autocomplete="off"
                        value=(brand.treasury_address.as_deref().unwrap_or_default());
                    label for="description" { "Description" }
                    textarea #description name="description" rows="3" { (brand.description) }
                    button type="submit" { "Save" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
        section.card aria-labelledby="stores-title" {
            h2 #stores-title { "Stores" }
            @if stores.is_empty() { p.muted { "No stores yet. Verifiers scan counter codes at a store." } }
            ul { @for store in stores { li { (store.name) " " span.muted { "(#" (store.id) ")" } } } }
            @if caller.holds(Permission::StoresManage) {
                form data-api=(format!("/brands/{id}/stores")) {
                    label for="store-name" { "New store's name" }
                    input #store-name type="text" name="name" required maxlength="200";
                    button type="submit" { "Add the store" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
    };
    crate::pages::brand_page(state, id, &brand.name, body)
}

/// Changes the brand's profile and treasury address.
#[utoipa::path(patch, path = "/brands/{brand_id}", tag = "brands", request_body = BrandChanges,
    params(("brand_id" = i64, Path)),
    responses((status = 200, body = Brand), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn update_brand(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<BrandChanges>,
) -> ApiResult<Json<Brand>> {
    let brand = caller.brand()?.id;
    let mut errors = Errors::default();
    let name = body.name.as_deref().map(|name| check_text(&mut errors, "name", name, 200));
    if body.description.as_ref().is_some_and(|d| d.chars().count() > 5000) {
        errors.add("description", "must be at most 5000 characters");
    }
    let website = body.website.as_deref().map(str::trim);
    if website.is_some_and(|w| url::Url::parse(w).map_or(true, |u| u.scheme() != "https" || u.host_str().is_none())) {
        errors.add("website", "must be an https:// address");
    }
    let treasury = body.treasury_address.as_deref().and_then(|text| match shared::chain::parse_address(text) {
        Ok(address) => Some(address.to_vec()),
        Err(reason) => {
            errors.add("treasury_address", reason);
            None
        }
    });
    errors.finish()?;
    let mut tx = state.db().begin().await?;
    sqlx::query!("SELECT id FROM brands WHERE id = $1 FOR UPDATE", brand.get()).fetch_one(&mut *tx).await?;
    let before = load(&mut tx, brand).await?;
    sqlx::query!(
        "UPDATE brands SET name = COALESCE($2, name), description = COALESCE($3, description),
             website = COALESCE($4, website), treasury_address = COALESCE($5, treasury_address), updated_at = now()
         WHERE id = $1",
        brand.get(),
        name,
        body.description.as_deref().map(str::trim),
        website,
        treasury
    )
    .execute(&mut *tx)
    .await?;
    let after = load(&mut tx, brand).await?;
    audit::record(
        &mut tx,
        &caller,
        Entry::new("brand.updated", format!("brand:{brand}")).before(&before).after(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// Adds a store to the brand.
#[utoipa::path(post, path = "/brands/{brand_id}/stores", tag = "brands", request_body = NewStore,
    params(("brand_id" = i64, Path)),
    responses((status = 201, body = Store), (status = 422, body = Problem)))]
#[tracing::instrument(skip_all)]
async fn create_store(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<NewStore>,
) -> ApiResult<(StatusCode, Json<Store>)> {
    let brand = caller.brand()?.id;
    let name = check_name("name", &body.name, 200)?;
    let mut tx = state.db().begin().await?;
    let store = sqlx::query_as!(
        Store,
        "INSERT INTO stores (brand_id, name) VALUES ($1, $2) RETURNING id, brand_id, name, created_at",
        brand.get(),
        name
    )
    .fetch_one(&mut *tx)
    .await?;
    audit::record(&mut tx, &caller, Entry::new("store.created", format!("store:{}", store.id)).after(&name)).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(store)))
}

/// The brand's stores.
#[utoipa::path(get, path = "/brands/{brand_id}/stores", tag = "brands", params(("brand_id" = i64, Path)),
    responses((status = 200, body = Vec<Store>)))]
#[tracing::instrument(skip_all)]
async fn list_stores(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Store>>> {
    let brand = caller.brand()?.id;
    let stores = sqlx::query_as!(
        Store,
        "SELECT id, brand_id, name, created_at FROM stores WHERE brand_id = $1 ORDER BY id",
        brand.get()
    )
    .fetch_all(state.db())
    .await?;
    Ok(Json(stores))
}

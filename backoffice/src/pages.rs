//! What the back office's pages share: the home page (`/`: the brands the signed-in account may
//! open, and the platform's queues for staff), the brand pages' navigation and small pieces of
//! markup. Each resource's page is rendered by its own module, next to its JSON (the same URL,
//! the same permission; see `shared::pages`).

use axum::{extract::State, response::Response, routing::get};
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use shared::{
    AppState,
    auth::{Caller, Permission, require_page},
    config::Site,
    http::ApiResult,
    pages,
};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;

const SCRIPT: &str = include_str!("../assets/backoffice.js");

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/", require_page(Permission::Account, get(home)))
        .route("/assets/backoffice.js", get(|| async { pages::asset("text/javascript; charset=utf-8", SCRIPT) }))
}

/// The links of every page about one brand.
pub(crate) fn brand_nav(state: &AppState, brand: i64) -> Vec<(&'static str, String)> {
    let here = |path: &str| format!("/brands/{brand}{path}");
    vec![
        ("Home", "/".to_owned()),
        ("Brand", here("")),
        ("Campaigns", here("/campaigns")),
        ("Dashboard", here("/dashboard")),
        ("Orders", state.config().http.public.link(Site::Payment, &here("/orders"))),
        ("Royalties", here("/royalties")),
        ("Webhooks", here("/webhooks")),
        ("Audit log", here("/audit")),
    ]
}

/// The links of the platform's own pages.
pub(crate) fn platform_nav() -> Vec<(&'static str, String)> {
    vec![("Home", "/".to_owned()), ("KYC review", "/kyc/submissions".to_owned()), ("Audit log", "/audit".to_owned())]
}

/// A brand page: its title, the brand's navigation, the back office's script.
pub(crate) fn brand_page(state: &AppState, brand: i64, title: &str, body: Markup) -> Response {
    pages::staff_page(title, &["/assets/backoffice.js"], &brand_nav(state, brand), body)
}

/// A column of a [`figures`] table: words, or numbers (set right-aligned).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Column<'a> {
    Words(&'a str),
    Numbers(&'a str),
}

/// A table of figures with its caption and column headings; `rows` are its `tr`s (the first
/// cell of each a `th scope="row"`).
pub(crate) fn figures(caption: &str, columns: &[Column<'_>], rows: Markup) -> Markup {
    html! {
        div.table {
            table {
                caption { (caption) }
                thead {
                    tr {
                        @for column in columns {
                            @match column {
                                Column::Words(name) => th scope="col" { (name) },
                                Column::Numbers(name) => th.num scope="col" { (name) },
                            }
                        }
                    }
                }
                tbody { (rows) }
            }
        }
    }
}

/// A state as a badge.
pub(crate) fn badge(state: &str) -> Markup {
    html! { span.badge data-state=(state) { (state.replace('_', " ")) } }
}

/// Basis points as a percentage: 750 → `7.50 %`.
pub(crate) fn percent(bps: i32) -> String {
    format!("{}.{:02} %", bps / 100, (bps % 100).abs())
}

/// A moment as staff read it (UTC).
pub(crate) fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The signed-in account's start page.
async fn home(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let account = caller.account()?;
    let all = caller.holds(Permission::BrandsList);
    let brands = sqlx::query(
        "SELECT b.id, b.name, m.role,
                (SELECT count(*) FROM campaigns c WHERE c.brand_id = b.id) AS campaigns
         FROM brands b LEFT JOIN brand_members m ON m.brand_id = b.id AND m.account_id = $1
         WHERE $2 OR m.account_id IS NOT NULL ORDER BY b.name, b.id LIMIT 500",
    )
    .bind(account.get())
    .bind(all)
    .fetch_all(state.db())
    .await?;
    let body = html! {
        h1 { "Brands" }
        section.card aria-labelledby="brands-title" {
            h2 #brands-title { "Your brands" }
            @if brands.is_empty() {
                p.muted { "You are not a member of any brand yet: ask a brand's owner for an invitation." }
            } @else {
                ul {
                    @for brand in &brands {
                        @let id: i64 = brand.get("id");
                        li {
                            a href=(format!("/brands/{id}")) { (brand.get::<String, _>("name")) }
                            " · " (brand.get::<i64, _>("campaigns")) " campaigns"
                            @if let Some(role) = brand.get::<Option<String>, _>("role") { " · " span.muted { (role) } }
                        }
                    }
                }
            }
        }
        @if caller.holds(Permission::BrandsCreate) {
            section.card aria-labelledby="new-brand" {
                h2 #new-brand { "New brand" }
                form data-api="/brands" data-next="/brands/{id}" {
                    label for="brand-name" { "Name" }
                    input #brand-name type="text" name="name" required maxlength="200";
                    label for="owner-email" { "Owner's email (invited as the brand's first owner)" }
                    input #owner-email type="email" name="owner_email" required;
                    button type="submit" { "Create the brand" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
        @if caller.holds(Permission::KycReview) || caller.holds(Permission::AuditReadAll) {
            section.card aria-labelledby="platform-title" {
                h2 #platform-title { "Platform" }
                ul {
                    @if caller.holds(Permission::KycReview) { li { a href="/kyc/submissions" { "KYC review queue" } } }
                    @if caller.holds(Permission::AuditReadAll) { li { a href="/audit" { "Audit log" } } }
                }
            }
        }
    };
    Ok(pages::staff_page("Brands", &[], &[("Home", "/".to_owned())], body))
}

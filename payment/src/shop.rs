//! The buyer's pages: a campaign's page (`/shop/{slug}`: its items, prices, what is left, and a
//! form to buy each by card or from a wallet) and an order's page (`/orders/{id}` for browsers:
//! the order followed live, a wallet order's quote paid from the browser's wallet, the minted
//! token at the end). Their script (`/assets/shop.js`) calls the JSON routes the API documents.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
    routing::get,
};
use maud::html;
use serde::Deserialize;
use shared::{
    AppState,
    http::{ApiError, extract::Path},
    money::{Currency, Money},
    pages,
};
use sqlx::Row;
use utoipa_axum::router::OpenApiRouter;

use crate::orders::Order;

const SCRIPT: &str = include_str!("../assets/shop.js");

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/shop/{slug}", get(campaign_page))
        .route("/assets/shop.js", get(|| async { pages::asset("text/javascript; charset=utf-8", SCRIPT) }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct SlugPath {
    slug: String,
}

/// A price as a person reads it (`25.00 EUR`); a currency the platform does not know is shown
/// as stored (`2500 XYZ`).
pub(crate) fn price(minor: i64, currency: &str) -> String {
    currency.parse::<Currency>().map_or_else(|_| format!("{minor} {currency}"), |c| Money::new(minor, c).to_string())
}

/// A live campaign's page, or a page saying it is not on sale.
async fn campaign_page(State(state): State<AppState>, Path(SlugPath { slug }): Path<SlugPath>) -> Response {
    let loaded = async {
        let campaign = sqlx::query(
            "SELECT c.id, b.name AS brand, c.name, c.description FROM campaigns c JOIN brands b ON b.id = c.brand_id
             WHERE c.slug = $1 AND c.state = 'live'",
        )
        .bind(&slug)
        .fetch_optional(state.db())
        .await?;
        let Some(campaign) = campaign else { return Ok::<_, ApiError>(None) };
        let items = sqlx::query(
            "SELECT id, name, price_minor, currency, supply - reserved AS remaining, supply, per_wallet_limit,
                    payment_methods
             FROM campaign_items WHERE campaign_id = $1 ORDER BY id",
        )
        .bind(campaign.get::<i64, _>("id"))
        .fetch_all(state.db())
        .await?;
        Ok(Some((campaign, items)))
    };
    let (campaign, items) = match loaded.await {
        Ok(Some(found)) => found,
        Ok(None) => {
            let body = html! {
                section.card { h1 { "Not on sale" } p { "There is no campaign on sale at this address." } }
            };
            let mut response = pages::page("Not on sale", &[], body);
            *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
            return response;
        }
        Err(e) => return e.into_response(),
    };
    let name: String = campaign.get("name");
    let body = html! {
        section.card {
            p.muted { (campaign.get::<String, _>("brand")) }
            h1 { (name) }
            @let description: String = campaign.get("description");
            @if !description.is_empty() { p { (description) } }
        }
        @for item in &items {
            @let id: i64 = item.get("id");
            @let remaining: i32 = item.get("remaining");
            @let methods: Vec<String> = item.get("payment_methods");
            @let limit: Option<i32> = item.get("per_wallet_limit");
            section.card aria-labelledby=(format!("item-{id}")) {
                h2 id=(format!("item-{id}")) { (item.get::<String, _>("name")) }
                p.amount { (price(item.get("price_minor"), &item.get::<String, _>("currency"))) }
                p.muted { (remaining) " of " (item.get::<i32, _>("supply")) " left" }
                @if remaining > 0 {
                    form.buy data-item=(id) {
                        label for=(format!("email-{id}")) { "Email, for your receipt" }
                        input id=(format!("email-{id}")) type="email" name="email" autocomplete="email" required;
                        label for=(format!("wallet-{id}")) { "The wallet that receives the token (0x…)" }
                        input id=(format!("wallet-{id}")) type="text" name="wallet_address" autocomplete="off"
                            spellcheck="false" required;
                        label for=(format!("quantity-{id}")) { "How many" }
                        input id=(format!("quantity-{id}")) type="number" name="quantity" value="1" min="1"
                            max=(limit.unwrap_or(remaining).min(remaining)) required;
                        fieldset {
                            legend { "Pay with" }
                            @for (n, method) in methods.iter().enumerate() {
                                label.choice {
                                    input type="radio" name="method" value=(method) checked[n == 0];
                                    " " (match method.as_str() {
                                        "card" => "a card",
                                        "eth" => "ETH, from your wallet",
                                        _ => "USD stablecoin, from your wallet",
                                    })
                                }
                            }
                        }
                        button type="submit" { "Buy" }
                        p.status role="status" aria-live="polite" {}
                    }
                } @else {
                    p.status data-kind="bad" { "Sold out." }
                }
            }
        }
    };
    pages::page(&name, &["/assets/shop.js"], body)
}

/// An order's page.
pub(crate) fn order_page(order: &Order) -> Response {
    let wallet = order.wallet_payment.as_ref().filter(|_| order.state == shared::orders::OrderState::Pending);
    let transactions = wallet.map(|w| serde_json::to_string(&w.transactions).unwrap_or_default()).unwrap_or_default();
    let body = html! {
        section.card #order data-id=(order.id) data-transactions=(transactions) {
            h1 { "Your order" }
            p.amount { (price(order.total_minor, &order.currency)) }
            p.muted { (order.quantity) " × item " (order.item_id) " · to " span.hash { (order.wallet_address) } }
            p.status #state role="status" aria-live="polite" { "Loading…" }
            p #token hidden { "Minted: " a href="#" { "your token" } }
        }
        @if let Some(wallet) = wallet {
            section.card #pay-card aria-labelledby="pay-title" {
                h2 #pay-title { "Pay from your wallet" }
                p.amount { (wallet.display_amount()) }
                p.muted { "Quoted at " (wallet.rate) " (" (wallet.source) "), valid until "
                          (wallet.expires_at.format("%H:%M:%S UTC")) "." }
                button #pay type="button" { "Pay with your wallet" }
                p.status #pay-status role="status" aria-live="polite" {}
            }
        }
    };
    pages::page("Your order", &["/assets/shop.js"], body)
}

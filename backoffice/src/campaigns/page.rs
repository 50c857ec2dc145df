//! The campaigns' pages: the brand's campaigns with a form for a new one, and one campaign with
//! its items, artwork, rewards, printed QR codes and deployment (followed live while mined).

use axum::response::Response;
use maud::{Markup, html};
use shared::{
    AppState,
    auth::{Caller, Permission},
    pages,
};

use super::Campaign;
use crate::pages::{badge, brand_page, when};

/// The currencies the form offers (any ISO 4217 code the API takes can be sent through it).
const CURRENCIES: [&str; 3] = ["USD", "EUR", "GBP"];

fn price(item: &super::Item) -> String {
    item.currency.parse::<shared::money::Currency>().map_or_else(
        |_| format!("{} {}", item.price_minor, item.currency),
        |c| shared::money::Money::new(item.price_minor, c).to_string(),
    )
}

/// The brand's campaigns, and a new campaign's form for those who may create one.
pub(super) fn list(state: &AppState, caller: &Caller, brand: i64, campaigns: &[Campaign]) -> Response {
    let body = html! {
        h1 { "Campaigns" }
        section.card aria-labelledby="list-title" {
            h2 #list-title { "This brand's campaigns" }
            @if campaigns.is_empty() { p.muted { "No campaigns yet." } } @else {
                div.table { table {
                    thead { tr { th scope="col" { "Campaign" } th scope="col" { "State" } th scope="col" { "Items" }
                                 th scope="col" { "Royalty" } th scope="col" { "Updated" } } }
                    tbody { @for c in campaigns { tr {
                        td { a href=(format!("/brands/{brand}/campaigns/{}", c.id)) { (c.name) } br; span.muted { (c.slug) } }
                        td { (badge(&c.state)) }
                        td.num { (c.items.len()) }
                        td.num { (crate::pages::percent(c.royalty_bps)) }
                        td { (when(c.updated_at)) }
                    } } }
                } }
            }
        }
        @if caller.holds(Permission::CampaignsManage) { (new_campaign(brand)) }
    };
    brand_page(state, brand, "Campaigns", body)
}

fn new_campaign(brand: i64) -> Markup {
    html! {
        section.card aria-labelledby="new-title" {
            h2 #new-title { "New campaign" }
            form data-api=(format!("/brands/{brand}/campaigns")) data-next=(format!("/brands/{brand}/campaigns/{{id}}")) {
                label for="name" { "Name" }
                input #name type="text" name="name" required maxlength="200";
                label for="slug" { "Address in the shop (lower-case words joined by hyphens)" }
                input #slug type="text" name="slug" required pattern="[a-z0-9]+(-[a-z0-9]+)*" spellcheck="false";
                label for="description" { "Description" }
                textarea #description name="description" rows="3" {}
                label for="royalty" { "Royalty on resales, in basis points (750 = 7.5 %)" }
                input #royalty type="number" name="royalty_bps" data-type="number" min="0" max="10000" value="500" required;
                label for="receiver" { "Royalty receiver (EIP-55 address; empty: the brand's treasury)" }
                input #receiver type="text" name="royalty_receiver" spellcheck="false" autocomplete="off";
                fieldset {
                    legend { "First item" }
                    label for="item-name" { "Item name" }
                    input #item-name type="text" name="items.0.name" required maxlength="200";
                    label for="item-price" { "Price in minor units (4900 = 49.00)" }
                    input #item-price type="number" name="items.0.price_minor" data-type="number" min="1" required;
                    label for="item-currency" { "Currency" }
                    select #item-currency name="items.0.currency" {
                        @for currency in CURRENCIES { option value=(currency) { (currency) } }
                    }
                    label for="item-supply" { "Supply" }
                    input #item-supply type="number" name="items.0.supply" data-type="number" min="1" max="1000000" required;
                    label for="item-limit" { "Most per wallet (empty: no limit)" }
                    input #item-limit type="number" name="items.0.per_wallet_limit" data-type="number" min="1";
                    fieldset {
                        legend { "Buyers pay with" }
                        @for (value, label) in [("card", "a card"), ("eth", "ETH"), ("stablecoin", "the USD stablecoin")] {
                            label.choice {
                                input type="checkbox" name="items.0.payment_methods" data-type="each" value=(value)
                                    checked[value == "card"];
                                " " (label)
                            }
                        }
                    }
                }
                button type="submit" { "Create the campaign" }
                p.status role="status" aria-live="polite" {}
            }
        }
    }
}

/// One campaign; `rewards` and `batches` are their modules' sections.
pub(super) fn one(state: &AppState, caller: &Caller, c: &Campaign, rewards: Markup, batches: Markup) -> Response {
    let base = format!("/brands/{}/campaigns/{}", c.brand_id, c.id);
    let manage = caller.holds(Permission::CampaignsManage);
    // Followed until the collection is live (mined, then set up) or the deployment failed.
    let deploying = c.state == "deploying";
    let body = html! {
        h1 { (c.name) }
        section.card aria-labelledby="about-title" {
            h2 #about-title { "About" }
            dl.facts {
                dt { "State" } dd #campaign-state { (badge(&c.state)) }
                dt { "Shop page" } dd { a href=(state.config().http.public.link(shared::config::Site::Payment, &format!("/shop/{}", c.slug))) { "/shop/" (c.slug) } }
                dt { "Symbol" } dd { (c.symbol) }
                dt { "Royalty" } dd { (crate::pages::percent(c.royalty_bps)) " to "
                    span.hash { (c.royalty_receiver.as_deref().unwrap_or("the brand's treasury")) } }
                dt { "Royalty enforcement" } dd { (if c.royalty_enforcement { "on" } else { "off" }) }
                @if let Some(address) = &c.collection_address { dt { "Collection" } dd.hash #collection { (address) } }
                dt { "Dashboard" } dd { a href=(format!("/brands/{}/dashboard?campaign_id={}", c.brand_id, c.id)) { "sales, royalties, redemptions" } }
            }
            @if !c.description.is_empty() { p { (c.description) } }
        }
        section.card aria-labelledby="deploy-title" {
            h2 #deploy-title { "Contracts" }
            @match &c.deployment {
                None => p.muted { "Not deployed yet." },
                Some(d) => {
                    div #deployment data-follow=[deploying.then_some(&base)] data-field="state" data-while="deploying" {
                        p { "Deployment: " (badge(&d.state)) " (attempt " (d.attempt) ")" }
                        @if let Some(hash) = &d.tx_hash { p { "Transaction " span.hash { (hash) } } }
                        @if let Some(error) = &d.error { p.status data-kind="bad" { (error) } }
                        @if deploying { p.status role="status" aria-live="polite" { "Waiting for the chain…" } }
                    }
                }
            }
            @if manage && matches!(c.state.as_str(), "draft" | "deploy_failed") {
                form #deploy data-api=(format!("{base}/deploy")) {
                    p.muted { "Deploying creates the collection on chain with the royalty and items above; they are fixed afterwards." }
                    button type="submit" { "Deploy the contracts" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
        section.card aria-labelledby="items-title" {
            h2 #items-title { "Items" }
            div.table { table {
                thead { tr { th scope="col" { "Item" } th scope="col" class="num" { "Price" } th scope="col" class="num" { "Supply" }
                             th scope="col" class="num" { "Reserved" } th scope="col" { "Paid with" } } }
                tbody { @for item in &c.items { tr {
                    td { (item.name) } td.num { (price(item)) } td.num { (item.supply) } td.num { (item.reserved) }
                    td { (item.payment_methods.join(", ")) }
                } } }
            } }
        }
        section.card aria-labelledby="artwork-title" {
            h2 #artwork-title { "Artwork" }
            @match &c.artwork {
                Some(art) => p { "Uploaded (" (art.content_type) "). " a href=(art.url) { "Open the image" } },
                None => p.muted { "No artwork yet: the collection needs one before deployment." },
            }
            @if manage {
                form #artwork data-api=(format!("{base}/artwork")) data-method="PUT" data-upload {
                    label for="artwork-file" { "Image (PNG, JPEG, WebP or GIF; up to 10 MiB)" }
                    input #artwork-file type="file" accept="image/png,image/jpeg,image/webp,image/gif" required;
                    button type="submit" { "Upload" }
                    p.status role="status" aria-live="polite" {}
                }
            }
        }
        (rewards)
        (batches)
        @if manage && !matches!(c.state.as_str(), "draft" | "deploying" | "deploy_failed" | "archived") {
            section.card aria-labelledby="lifecycle-title" {
                h2 #lifecycle-title { "Sales" }
                @for (action, label) in lifecycle(&c.state) {
                    form.inline data-api=(format!("{base}/state")) {
                        input type="hidden" name="action" value=(action);
                        button.small type="submit" { (label) }
                        p.status role="status" aria-live="polite" {}
                    }
                }
            }
        }
    };
    brand_page(state, c.brand_id, &c.name, body)
}

/// The lifecycle steps offered in `state`.
fn lifecycle(state: &str) -> &'static [(&'static str, &'static str)] {
    match state {
        "live" => &[("pause", "Pause sales"), ("end", "End the campaign")],
        "paused" => &[("resume", "Resume sales"), ("end", "End the campaign")],
        "ended" => &[("archive", "Archive")],
        _ => &[],
    }
}

/// `pages::amount` for a reward's token.
pub(crate) fn token_amount(base_units: &str, token: Option<&str>) -> String {
    match token {
        Some("eth") => format!("{} ETH", pages::amount(base_units, 18)),
        _ => format!("{} USD (stablecoin)", pages::amount(base_units, 6)),
    }
}

//! The webhooks' pages: the brand's endpoints with a form to register one (its signing secret
//! shown once, on the page), and an endpoint's delivery log with each attempt and a replay.

use axum::response::Response;
use maud::html;
use shared::AppState;

use super::{Delivery, Endpoint, standard::EVENT_TYPES};
use crate::pages::{badge, brand_page, when};

/// The brand's endpoints.
pub(super) fn endpoints(state: &AppState, brand: i64, endpoints: &[Endpoint]) -> Response {
    let base = format!("/brands/{brand}/webhooks");
    let body = html! {
        h1 { "Webhooks" }
        section.card aria-labelledby="endpoints-title" {
            h2 #endpoints-title { "Endpoints" }
            @if endpoints.is_empty() { p.muted { "No endpoints yet." } } @else {
                div.table { table {
                    thead { tr { th scope="col" { "Endpoint" } th scope="col" { "Events" } th scope="col" { "Enabled" }
                                 th scope="col" { "Deliveries" } } }
                    tbody { @for e in endpoints { tr {
                        td { span.hash { (e.url) } @if !e.description.is_empty() { br; span.muted { (e.description) } } }
                        td { (e.event_types.join(", ")) }
                        td { (if e.enabled { "yes" } else { "no" }) }
                        td { a href=(format!("{base}/{}/deliveries", e.id)) { "Delivery log" } }
                    } } }
                } }
            }
        }
        section.card aria-labelledby="new-title" {
            h2 #new-title { "New endpoint" }
            form #new-endpoint data-api=(base) data-show="secret" data-show-label="Registered. Its signing secret, shown this once" {
                label for="url" { "URL (https://)" }
                input #url type="text" name="url" required inputmode="url" spellcheck="false";
                label for="endpoint-description" { "Description" }
                input #endpoint-description type="text" name="description" maxlength="500";
                fieldset {
                    legend { "Events" }
                    @for event in EVENT_TYPES {
                        label.choice { input type="checkbox" name="event_types" data-type="each" value=(event); " " (event) }
                    }
                }
                button type="submit" { "Register" }
                p.status.hash role="status" aria-live="polite" {}
            }
        }
    };
    brand_page(state, brand, "Webhooks", body)
}

/// An endpoint's latest deliveries, each with its attempts.
pub(super) fn deliveries(state: &AppState, brand: i64, endpoint: &Endpoint, deliveries: &[Delivery]) -> Response {
    let base = format!("/brands/{brand}/webhooks/{}/deliveries", endpoint.id);
    let body = html! {
        h1 { "Delivery log" }
        p { span.hash { (endpoint.url) } " · " a href=(format!("/brands/{brand}/webhooks")) { "all endpoints" } }
        section.card aria-labelledby="deliveries-title" {
            h2 #deliveries-title { "Newest first" }
            @if deliveries.is_empty() { p.muted { "Nothing sent yet." } }
            @for d in deliveries {
                article aria-labelledby=(format!("delivery-{}", d.id)) {
                    h3 id=(format!("delivery-{}", d.id)) { (d.event_type) " " (badge(&d.status)) }
                    p.muted { (when(d.created_at)) " · " span.hash { (d.webhook_id) } }
                    @if let Some(error) = &d.last_error { p { "Last error: " (error) } }
                    div.table { table {
                        caption.muted { "Attempts" }
                        thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" class="num" { "ms" }
                                     th scope="col" { "Answer" } } }
                        tbody { @for a in &d.attempt_log { tr {
                            td.num { (a.attempt) } td { (when(a.attempted_at)) } td.num { (a.duration_ms) }
                            td { (a.status_code.map(|c| c.to_string()).unwrap_or_default()) " "
                                 (a.error.as_deref().unwrap_or_default()) }
                        } } }
                    } }
                    @if d.status != "pending" {
                        form data-api=(format!("{base}/{}/replay", d.id)) {
                            button.small type="submit" { "Send again" }
                            p.status role="status" aria-live="polite" {}
                        }
                    }
                }
            }
        }
    };
    brand_page(state, brand, "Delivery log", body)
}

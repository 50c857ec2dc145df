//! Server-rendered pages, for the people behind the APIs (a customer with a phone, staff at a
//! counter): one layout, one stylesheet served by every service, and the headers every page
//! carries — a strict Content-Security-Policy (scripts and styles from the service itself only,
//! no inline code, no framing), `nosniff`, and no referrer leaving the site.
//!
//! A page is the HTML representation of a resource the API already has: the handler renders it
//! when the client asks for `text/html` ([`wants_html`]) and answers JSON otherwise, behind the
//! same permission wall; a refusal is a page for a browser ([`html_errors`]: `/sign-in` instead
//! of a 401). Its
//! forms and scripts talk to the same JSON routes the page's users could call themselves: a
//! `<form data-api="/path">` is sent as JSON by `/assets/page.js`, with the CSRF header.

mod session;

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use maud::{DOCTYPE, Markup, html};

/// What a page may load: its own service's scripts, styles and images (and `data:` images, for
/// QR codes drawn inline); nothing inline, nothing framed, forms only back to the service.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../assets/brandmint.css");
const SCRIPT: &str = include_str!("../assets/page.js");

/// `/assets/brandmint.css` and `/assets/page.js` (what every page's script may use), served by
/// every service.
pub fn assets<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/assets/brandmint.css", get(|| async { asset("text/css; charset=utf-8", STYLESHEET) }))
        .route("/assets/page.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
}

/// A static asset compiled into the binary, cached for an hour.
pub fn asset(media: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// Whether the client prefers HTML (a browser following a link or a scanned QR code) to JSON.
pub fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let position = |media: &str| accept.find(media);
    match (position("text/html"), position("application/json")) {
        (Some(html), Some(json)) => html < json,
        (Some(_), None) => true,
        _ => false,
    }
}

/// The page-session routes every service serves (`/sign-in`, `/auth/staff-session`,
/// `/auth/sign-out`).
pub fn session_routes() -> utoipa_axum::router::OpenApiRouter<crate::AppState> {
    session::router()
}

/// A whole page: `title`, the `scripts` it loads (the service's own, deferred) and its `body`.
pub fn page(title: &str, scripts: &[&str], body: Markup) -> Response {
    document(title, scripts, None, body)
}

/// A page for signed-in staff: `nav`'s links (label, href) and a sign-out button in its header.
pub fn staff_page(title: &str, scripts: &[&str], nav: &[(&str, String)], body: Markup) -> Response {
    let nav = html! {
        nav aria-label="Main" {
            @for (label, href) in nav { a href=(href) { (label) } }
            form.inline data-api="/auth/sign-out" data-next="/sign-in" {
                button.link type="submit" { "Sign out" }
            }
        }
    };
    document(title, scripts, Some(nav), body)
}

/// Middleware: a person at a browser following a link never sees a problem document. Without
/// credentials they are sent to sign in (and back here afterwards); any other refusal or failure
/// is a page saying what the problem document says (its detail, else its field errors, else its
/// title: no internals, as in the API), with the same status.
pub async fn html_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let browser = wants_html(request.headers()).then(|| request.uri().clone());
    let response = next.run(request).await;
    let Some(uri) = browser else { return response };
    let problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(crate::http::PROBLEM_JSON.as_bytes()));
    if !problem {
        return response;
    }
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED {
        let here = uri.path_and_query().map_or("/", |p| p.as_str());
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return Redirect::to(&format!("/sign-in?next={next}")).into_response();
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let document: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let text = |key: &str| document.get(key).and_then(serde_json::Value::as_str).map(str::to_owned);
    let fields: Vec<String> = document
        .get("errors")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some(format!("{}: {}", e.get("field")?.as_str()?, e.get("message")?.as_str()?)))
        .collect();
    let (title, said) = match status {
        StatusCode::FORBIDDEN => ("Not allowed".to_owned(), "Your account may not open this page.".to_owned()),
        StatusCode::NOT_FOUND => {
            ("Not found".to_owned(), text("detail").unwrap_or_else(|| "There is nothing here.".to_owned()))
        }
        _ => (
            text("title").unwrap_or_else(|| "Something went wrong".to_owned()),
            text("detail").or_else(|| (!fields.is_empty()).then(|| fields.join("; "))).unwrap_or_default(),
        ),
    };
    let body = html! {
        section.card { h1 { (title) } @if !said.is_empty() { p { (said) } } p { a href="/" { "Home" } } }
    };
    let mut response = page(&title, &[], body);
    *response.status_mut() = status;
    response
}

fn document(title: &str, scripts: &[&str], nav: Option<Markup>, body: Markup) -> Response {
    let staff = nav.is_some();
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Brandmint" }
                link rel="stylesheet" href="/assets/brandmint.css";
                // No favicon to fetch (and no 404 in every page's log).
                link rel="icon" href="data:,";
                script src="/assets/page.js" defer {}
                @for script in scripts {
                    script src=(script) defer {}
                }
            }
            body class=[staff.then_some("staff")] {
                a.skip href="#main" { "Skip to content" }
                header.top { span.brand { "Brandmint" } @if let Some(nav) = nav { (nav) } }
                main #main { (body) }
            }
        }
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        markup.into_string(),
    )
        .into_response()
}

/// What a refusal says to the person on a page: the problem document's detail, else its field
/// errors, else its title (so an internal error shows no internals, as in the API).
pub fn refusal(error: &crate::http::ApiError) -> String {
    let problem = error.to_problem();
    let fields: Vec<String> = problem.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
    match problem.detail {
        Some(detail) => detail,
        None if !fields.is_empty() => fields.join("; "),
        None => problem.title,
    }
}

/// An amount in base units as a person reads it: `5000000` with 6 decimals is `5.00`; ETH
/// (18 decimals) keeps up to 6 significant decimals (`0.0125`).
pub fn amount(base_units: &str, decimals: usize) -> String {
    let digits = base_units.trim_start_matches('0');
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let shown = fraction.get(..decimals.min(6)).unwrap_or_default().trim_end_matches('0');
    match shown.len() {
        0 if decimals == 6 => format!("{whole}.00"),
        0 => whole.to_owned(),
        1 if decimals == 6 => format!("{whole}.{shown}0"),
        _ => format!("{whole}.{shown}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_as_people_write_them() {
        assert_eq!(amount("5000000", 6), "5.00");
        assert_eq!(amount("5500000", 6), "5.50");
        assert_eq!(amount("1234567", 6), "1.234567");
        assert_eq!(amount("12500000000000000", 18), "0.0125");
        assert_eq!(amount("2000000000000000000", 18), "2");
        assert_eq!(amount("0", 6), "0.00");
    }

    #[test]
    fn html_is_chosen_only_when_the_client_prefers_it() {
        let accept = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT, HeaderValue::from_static(value));
            wants_html(&headers)
        };
        assert!(accept("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(!accept("application/json"));
        assert!(!accept("*/*"));
        assert!(!accept("application/json, text/html"));
        assert!(!wants_html(&HeaderMap::new()));
    }
}

//! A local stand-in for Sentry's ingestion endpoints: `POST /api/{project_id}/envelope/` (what
//! sentry-rust sends) and the older `POST /api/{project_id}/store/` (one event as JSON), on one
//! loopback port. It records every event it receives so tests can count what was reported.
//!
//! An envelope (<https://develop.sentry.dev/sdk/envelopes/>) is newline-separated: a header line
//! of JSON, then per item a header line of JSON (`type`, optional `length` in bytes) and the
//! payload — `length` bytes when given, else up to the next newline. sentry-rust 0.49's
//! `reqwest` transport sends envelopes uncompressed; a `Content-Encoding` other than `identity`
//! is refused with 415 rather than guessed at.

use std::sync::{Arc, Mutex, PoisonError};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header::CONTENT_ENCODING},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinHandle};

type Events = Arc<Mutex<Vec<Value>>>;

/// The fake Sentry server; stops when dropped.
#[derive(Debug)]
pub struct SentryFake {
    port: u16,
    events: Events,
    server: JoinHandle<()>,
}

impl SentryFake {
    /// Starts on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let events = Events::default();
        let app = Router::new()
            .route("/api/{project_id}/envelope/", post(envelope))
            .route("/api/{project_id}/store/", post(store))
            .with_state(events.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "sentry fake stopped");
            }
        });
        Ok(Self { port, events, server })
    }

    /// The DSN pointing at this fake (project 1).
    pub fn dsn(&self) -> String {
        format!("http://public@127.0.0.1:{}/1", self.port)
    }

    /// Every event received so far, in order of arrival (the `event` items' JSON payloads).
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stops the server.
    pub fn shutdown(&self) {
        self.server.abort();
    }
}

impl Drop for SentryFake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The text an event reports: its `message`, else `logentry.formatted`/`logentry.message`, else
/// its exceptions' `type: value`s joined by newlines.
pub fn event_text(event: &Value) -> String {
    if let Some(message) = event["message"].as_str() {
        return message.to_owned();
    }
    for key in ["formatted", "message"] {
        if let Some(message) = event["logentry"][key].as_str() {
            return message.to_owned();
        }
    }
    let values = event["exception"]["values"].as_array().or_else(|| event["exception"].as_array());
    values
        .into_iter()
        .flatten()
        .map(|e| format!("{}: {}", e["type"].as_str().unwrap_or(""), e["value"].as_str().unwrap_or("")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn encoding_refused(headers: &HeaderMap) -> Option<Response> {
    let encoding = headers.get(CONTENT_ENCODING)?.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    (!encoding.is_empty() && encoding != "identity").then(|| {
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, Json(json!({ "detail": format!("unsupported encoding `{encoding}`") })))
            .into_response()
    })
}

fn bad_request(detail: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "detail": detail }))).into_response()
}

async fn envelope(
    State(events): State<Events>,
    Path(_project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = encoding_refused(&headers) {
        return refused;
    }
    match parse_envelope(&body) {
        Ok((header, items)) => {
            let mut id = header["event_id"].clone();
            let mut events = events.lock().unwrap_or_else(PoisonError::into_inner);
            for (kind, payload) in items {
                if kind == "event" {
                    if id.is_null() {
                        id = payload["event_id"].clone();
                    }
                    events.push(payload);
                }
            }
            Json(json!({ "id": id })).into_response()
        }
        Err(detail) => bad_request(detail),
    }
}

async fn store(
    State(events): State<Events>,
    Path(_project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = encoding_refused(&headers) {
        return refused;
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(event) => {
            let id = event["event_id"].clone();
            events.lock().unwrap_or_else(PoisonError::into_inner).push(event);
            Json(json!({ "id": id })).into_response()
        }
        Err(e) => bad_request(format!("the event is not JSON: {e}")),
    }
}

/// Splits an envelope into its header and its items (type, payload as JSON; a payload that is
/// not JSON, such as an attachment, is kept as a string).
pub fn parse_envelope(body: &[u8]) -> Result<(Value, Vec<(String, Value)>), String> {
    let mut rest = body;
    let header_line = take_line(&mut rest);
    let header: Value =
        serde_json::from_slice(header_line).map_err(|e| format!("the envelope header is not JSON: {e}"))?;
    let mut items = Vec::new();
    loop {
        // Blank lines between items are tolerated.
        while let Some(stripped) = rest.strip_prefix(b"\n") {
            rest = stripped;
        }
        if rest.is_empty() {
            break;
        }
        let item_line = take_line(&mut rest);
        let item: Value = serde_json::from_slice(item_line).map_err(|e| format!("an item header is not JSON: {e}"))?;
        let kind = item["type"].as_str().ok_or("an item header has no `type`")?.to_owned();
        let payload = match item["length"].as_u64() {
            Some(length) => {
                let length = usize::try_from(length).map_err(|_| "an item is too long".to_owned())?;
                if rest.len() < length {
                    return Err(format!("a `{kind}` item is shorter than its length {length}"));
                }
                let (payload, after) = rest.split_at(length);
                rest = after.strip_prefix(b"\n").unwrap_or(after);
                payload
            }
            None => take_line(&mut rest),
        };
        let payload = serde_json::from_slice(payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()));
        items.push((kind, payload));
    }
    Ok((header, items))
}

/// The bytes up to the next newline (or the end), consuming the newline.
fn take_line<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let all: &'a [u8] = rest;
    match all.iter().position(|&b| b == b'\n') {
        Some(at) => {
            *rest = &all[at + 1..];
            &all[..at]
        }
        None => {
            *rest = &[];
            all
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_envelope_with_and_without_lengths_is_read() {
        let body = b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n\
            {\"type\":\"event\",\"length\":18}\n{\"message\":\"a\\nb\"}\n\
            {\"type\":\"attachment\"}\nraw bytes\n\
            {\"type\":\"event\"}\n{\"logentry\":{\"formatted\":\"c\"}}\n";
        let (header, items) = parse_envelope(body).unwrap();
        assert_eq!(header["event_id"], "9ec79c33ec9942ab8353589fcb2e04dc");
        let kinds: Vec<_> = items.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["event", "attachment", "event"]);
        assert_eq!(event_text(&items[0].1), "a\nb");
        assert_eq!(items[1].1, "raw bytes");
        assert_eq!(event_text(&items[2].1), "c");
    }

    #[test]
    fn a_short_item_is_refused() {
        assert!(parse_envelope(b"{}\n{\"type\":\"event\",\"length\":99}\n{}").is_err());
    }
}

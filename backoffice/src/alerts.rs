//! Alerts to the platform's operators: a Telegram message (Bot API `sendMessage`) to the
//! configured chat on every new order, every failed contract deployment, and when a transaction
//! signer's balance falls below its threshold (and when it is refilled).
//!
//! The subscriber is always registered, and does nothing when Telegram is not configured: a
//! subscription left behind by a process that had it configured would otherwise collect
//! deliveries nobody processes. Alerts are at least once: a message whose acknowledgement is
//! lost is sent again on the outbox's retry.

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::workflow::{BoxFuture, OutboxEvent, Subscriber};
use sqlx::PgConnection;

use crate::config::TelegramConfig;

/// The events operators hear about.
const EVENTS: &[&str] = &["order.created", "deployment.failed", "signer.balance_low", "signer.balance_ok"];

/// Posts alerts to Telegram.
#[derive(Debug, Clone)]
pub(crate) struct TelegramAlerts {
    /// `None`: alerts are off.
    telegram: Option<(TelegramConfig, reqwest::Client)>,
}

impl TelegramAlerts {
    pub(crate) fn new(config: Option<&TelegramConfig>) -> reqwest::Result<Self> {
        let telegram = match config {
            Some(config) => {
                let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
                Some((config.clone(), client))
            }
            None => None,
        };
        Ok(Self { telegram })
    }
}

impl Subscriber for TelegramAlerts {
    fn name(&self) -> &'static str {
        "admin-telegram-alerts"
    }

    fn event_types(&self) -> &'static [&'static str] {
        EVENTS
    }

    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Some((config, client)) = &self.telegram else { return Ok(()) };
            let text = message(event, conn).await?;
            send(client, config, &text).await
        })
    }
}

/// The alert's text (plain, no markup to escape).
async fn message(event: &OutboxEvent, conn: &mut PgConnection) -> anyhow::Result<String> {
    if let Some(text) = signer_message(event) {
        return Ok(text);
    }
    let brand_id = event.payload.get("brand_id").and_then(Value::as_i64);
    let brand = match brand_id {
        Some(id) => sqlx::query_scalar!("SELECT name FROM brands WHERE id = $1", id)
            .fetch_optional(conn)
            .await?
            .map_or_else(|| format!("brand #{id}"), |name| format!("{name} (brand #{id})")),
        None => "no brand".to_owned(),
    };
    let mut text = match event.event_type.as_str() {
        "order.created" => format!("New order #{} for {brand}", event.aggregate_id),
        _ => format!("Deployment #{} failed for {brand}", event.aggregate_id),
    };
    if let Some(campaign) = event.payload.get("campaign_id").and_then(Value::as_i64) {
        text.push_str(&format!("\nCampaign #{campaign}"));
    }
    let reason = ["error", "reason", "cause"].iter().find_map(|key| event.payload.get(*key).and_then(Value::as_str));
    if let (Some(reason), "deployment.failed") = (reason, event.event_type.as_str()) {
        let reason: String = reason.chars().take(500).collect();
        text.push_str(&format!("\nReason: {reason}"));
    }
    Ok(text)
}

/// A signer's balance crossing its threshold (the transaction queue's `signer.balance_*`).
fn signer_message(event: &OutboxEvent) -> Option<String> {
    let field = |key: &str| event.payload.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
    let (signer, chain) = (field("signer")?, field("chain_id")?);
    let (balance, threshold) = (field("balance")?, field("threshold")?);
    match event.event_type.as_str() {
        "signer.balance_low" => Some(format!(
            "Signer {signer} on chain {chain} is low on funds: {balance} wei, below {threshold} wei. Refill it before the node refuses its transactions."
        )),
        "signer.balance_ok" => {
            Some(format!("Signer {signer} on chain {chain} is refilled: {balance} wei (threshold {threshold} wei)."))
        }
        _ => None,
    }
}

/// `POST {api}/bot{token}/sendMessage`. Errors never carry the URL (it holds the token).
async fn send(client: &reqwest::Client, config: &TelegramConfig, text: &str) -> anyhow::Result<()> {
    let url = format!(
        "{}/bot{}/sendMessage",
        config.api_url.as_str().trim_end_matches('/'),
        config.bot_token.expose_secret()
    );
    let response = client
        .post(url)
        .json(&json!({ "chat_id": config.chat_id, "text": text, "disable_web_page_preview": true }))
        .send()
        .await
        .map_err(reqwest::Error::without_url)
        .context("Telegram sendMessage")?;
    let status = response.status();
    if !status.is_success() {
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let description = answer.get("description").and_then(Value::as_str).unwrap_or("no description");
        anyhow::bail!("Telegram sendMessage answered HTTP {status}: {description}");
    }
    Ok(())
}

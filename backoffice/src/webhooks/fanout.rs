//! The outbox subscriber that turns a brand event into one delivery per matching endpoint.
//! It runs in the outbox delivery's transaction, so each (event, endpoint) gets exactly one
//! delivery however often the event is delivered (and `UNIQUE (endpoint_id, event_id)` says
//! so again).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use shared::workflow::{BoxFuture, OutboxEvent, Subscriber};
use sqlx::PgConnection;

use super::standard::{EVENT_TYPES, TEST_EVENT};

/// Every brand event type, and the test event.
static SUBSCRIBED: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| EVENT_TYPES.iter().copied().chain([TEST_EVENT]).collect());

/// Fans brand events out to the brand's endpoints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fanout;

impl Subscriber for Fanout {
    fn name(&self) -> &'static str {
        "webhook-fanout"
    }

    fn event_types(&self) -> &'static [&'static str] {
        &SUBSCRIBED
    }

    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(fan_out(event, conn))
    }
}

#[tracing::instrument(skip_all, fields(event.id = event.id, event.kind = %event.event_type))]
async fn fan_out(event: &OutboxEvent, conn: &mut PgConnection) -> anyhow::Result<()> {
    // Events that belong to no brand are not for brands.
    let Some(brand) = event.payload.get("brand_id").and_then(Value::as_i64) else { return Ok(()) };
    // A test event goes to the one endpoint it names, whatever it subscribes to.
    let (only, data) = if event.event_type == TEST_EVENT {
        let Some(endpoint) = event.payload.get("endpoint_id").and_then(Value::as_i64) else { return Ok(()) };
        (Some(endpoint), json!({ "endpoint_id": endpoint, "message": "This is a test event from Brandmint." }))
    } else {
        (None, event.payload.clone())
    };
    let occurred: DateTime<Utc> = sqlx::query_scalar!("SELECT created_at FROM outbox_events WHERE id = $1", event.id)
        .fetch_one(&mut *conn)
        .await?;
    let body = serde_json::to_string(&json!({ "type": event.event_type, "timestamp": occurred, "data": data }))?;
    let created = sqlx::query!(
        "INSERT INTO webhook_deliveries (brand_id, endpoint_id, event_id, event_type, message_id, body)
         SELECT brand_id, id, $2, $3, 'msg_' || replace(gen_random_uuid()::text, '-', ''), $4
         FROM webhook_endpoints
         WHERE brand_id = $1 AND enabled AND deleted_at IS NULL
           AND CASE WHEN $5::bigint IS NULL THEN $3 = ANY(event_types) ELSE id = $5 END
         ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        brand,
        event.id,
        event.event_type,
        body,
        only
    )
    .execute(conn)
    .await?;
    tracing::debug!(deliveries = created.rows_affected(), "webhook deliveries queued");
    Ok(())
}

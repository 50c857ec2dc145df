//! Persisted state machines.
//!
//! A machine is a table of allowed `(from, event) → to` transitions over an entity table that
//! has `id`, `state` and `updated_at` columns. [`apply`] moves one entity by one event in one
//! transaction: it locks the row, refuses a transition not in the table, updates the row,
//! appends to `state_transitions` and writes the `<machine>.<state>` event to the outbox.
//! Every transition names its cause (an event id, a webhook id, a request id); the same cause
//! never moves the same entity twice, so replays are no-ops.

use std::{fmt::Debug, str::FromStr};

use serde_json::{Value, json};
use sqlx::{Acquire, PgConnection};

use super::outbox::{self, NewEvent};

/// A state machine declaration. Implemented by a unit type per machine.
pub trait Machine: Send + Sync + 'static {
    /// Short name; also the prefix of its outbox events (`order` → `order.fulfilled`).
    const NAME: &'static str;
    /// The entity table (`id BIGINT`, `state TEXT`, `updated_at TIMESTAMPTZ`).
    const TABLE: &'static str;
    type State: Copy
        + Eq
        + std::hash::Hash
        + Debug
        + Send
        + Sync
        + FromStr
        + Into<&'static str>
        + strum::VariantArray
        + 'static;
    type Event: Copy + Eq + std::hash::Hash + Debug + Send + Sync + Into<&'static str> + strum::VariantArray + 'static;
    /// The state a new entity starts in (the column default).
    const INITIAL: Self::State;
    /// Every allowed transition; nothing else can happen.
    const TRANSITIONS: &'static [(Self::State, Self::Event, Self::State)];

    /// The state `event` moves `from` to, if the table allows it.
    fn transition(from: Self::State, event: Self::Event) -> Option<Self::State> {
        Self::TRANSITIONS.iter().find(|(f, e, _)| *f == from && *e == event).map(|(_, _, to)| *to)
    }
}

/// Why a transition was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The entity does not exist.
    #[error("{machine} {id} not found")]
    NotFound { machine: &'static str, id: i64 },
    /// The table has no transition for this event from the current state.
    #[error("{machine} {id}: `{event}` is not allowed in state `{from}`")]
    InvalidTransition { machine: &'static str, id: i64, from: &'static str, event: &'static str },
    /// The row holds a state the machine does not know (a bad migration or manual edit).
    #[error("{machine} {id} is in unknown state `{state}`")]
    UnknownState { machine: &'static str, id: i64, state: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// One requested transition.
#[derive(Debug, Clone)]
pub struct Transition<'a, M: Machine> {
    pub id: i64,
    pub event: M::Event,
    /// What caused it; unique per entity (replaying the same cause is a no-op).
    pub cause: &'a str,
    /// Who: `system`, `daemon:<name>`, `user:<id>`, `stripe`, …
    pub actor: &'a str,
    /// Extra members for the outbox event's payload.
    pub payload: Value,
    /// Whom the outbox event is for: `Some("order-mint")` makes it `<machine>.<state>.order-mint`,
    /// so the one subscriber that asked receives it (see `chain::txqueue::Requester`).
    pub addressee: Option<&'a str>,
}

impl<'a, M: Machine> Transition<'a, M> {
    pub fn new(id: i64, event: M::Event, cause: &'a str, actor: &'a str) -> Self {
        Self { id, event, cause, actor, payload: Value::Null, addressee: None }
    }

    /// Addresses the outbox event to one kind of subscriber (its type gets `.<addressee>`).
    pub fn addressed_to(mut self, addressee: &'a str) -> Self {
        self.addressee = Some(addressee);
        self
    }

    pub fn with_payload(mut self, payload: Value) -> Self {
        self.payload = payload;
        self
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied<S> {
    /// The entity moved; the outbox event has this id.
    Moved { from: S, to: S, event_id: i64 },
    /// This cause had already moved the entity (to `to`); nothing was done.
    AlreadyApplied { to: S },
}

impl<S: Copy> Applied<S> {
    /// The state the entity is in after the cause, whether applied now or before.
    pub fn state(&self) -> S {
        match self {
            Applied::Moved { to, .. } | Applied::AlreadyApplied { to } => *to,
        }
    }
}

/// Applies a transition atomically. Runs in the caller's transaction when there is one (as a
/// savepoint), so business columns updated by the caller commit together with it.
pub async fn apply<M: Machine>(
    conn: &mut PgConnection,
    transition: Transition<'_, M>,
) -> Result<Applied<M::State>, WorkflowError> {
    let mut tx = conn.begin().await?;
    let Transition { id, event, cause, actor, payload, addressee } = transition;
    // Lock first: concurrent transitions of one entity queue up here, and the replay check
    // below then sees whatever the previous one committed.
    let current: Option<String> =
        sqlx::query_scalar(&format!("SELECT state FROM {} WHERE id = $1 FOR UPDATE", M::TABLE))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let current = current.ok_or(WorkflowError::NotFound { machine: M::NAME, id })?;
    let from = parse_state::<M>(id, &current)?;

    let previous = sqlx::query_scalar!(
        "SELECT to_state FROM state_transitions WHERE machine = $1 AND entity_id = $2 AND cause = $3",
        M::NAME,
        id,
        cause
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(previous) = previous {
        return Ok(Applied::AlreadyApplied { to: parse_state::<M>(id, &previous)? });
    }

    let event_name: &'static str = event.into();
    let from_name: &'static str = from.into();
    let to = M::transition(from, event).ok_or(WorkflowError::InvalidTransition {
        machine: M::NAME,
        id,
        from: from_name,
        event: event_name,
    })?;
    let to_name: &'static str = to.into();

    let updated =
        sqlx::query(&format!("UPDATE {} SET state = $1, updated_at = now() WHERE id = $2 AND state = $3", M::TABLE))
            .bind(to_name)
            .bind(id)
            .bind(from_name)
            .execute(&mut *tx)
            .await?;
    debug_assert_eq!(updated.rows_affected(), 1, "the row is locked");

    sqlx::query!(
        "INSERT INTO state_transitions (machine, entity_id, from_state, to_state, event, cause, actor)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        M::NAME,
        id,
        from_name,
        to_name,
        event_name,
        cause,
        actor
    )
    .execute(&mut *tx)
    .await?;

    let mut body =
        json!({ "id": id, "from": from_name, "to": to_name, "event": event_name, "cause": cause, "actor": actor });
    if let (Value::Object(extra), Some(body)) = (payload, body.as_object_mut()) {
        body.extend(extra);
    }
    let event_id = outbox::append(
        &mut tx,
        NewEvent {
            event_type: match addressee {
                Some(addressee) => format!("{}.{to_name}.{addressee}", M::NAME),
                None => format!("{}.{to_name}", M::NAME),
            },
            aggregate_type: M::NAME,
            aggregate_id: id,
            payload: body,
            correlation_id: Some(cause.to_owned()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Applied::Moved { from, to, event_id })
}

fn parse_state<M: Machine>(id: i64, state: &str) -> Result<M::State, WorkflowError> {
    state.parse().map_err(|_| WorkflowError::UnknownState { machine: M::NAME, id, state: state.to_owned() })
}

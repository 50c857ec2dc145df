//! Persisted state machines: transitions are atomic, only the table's transitions happen, and
//! replaying a cause does nothing.

use proptest::{prelude::*, test_runner::TestRunner};
use serde_json::json;
use shared::{
    db,
    workflow::{
        Applied, Machine, Transition, WorkflowError, apply,
        machines::{Campaign, ChainTx, Deployment, Order, OrderEvent, OrderState, Redemption, RewardBatch},
    },
};
use sqlx::{Acquire, PgPool};
use strum::VariantArray;
use testkit::TestDb;

async fn pool() -> PgPool {
    let test_db = TestDb::create().await;
    let pool = PgPool::connect(&test_db.url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    pool
}

/// A fresh entity of machine `M` in its initial state. Machines whose table has required
/// business columns get fixture values (a brand with a campaign, an item and a reward).
async fn create<M: Machine>(pool: &PgPool) -> i64 {
    const FIXTURE: &str = "WITH b AS (INSERT INTO brands (name) VALUES ('Fixture') RETURNING id),
        c AS (INSERT INTO campaigns (brand_id, name, slug, symbol, royalty_bps)
              SELECT id, 'Fixture', 'fixture', 'FIX', 0 FROM b RETURNING brand_id, id),
        i AS (INSERT INTO campaign_items (brand_id, campaign_id, name, price_minor, currency, supply, payment_methods)
              SELECT brand_id, id, 'Item', 100, 'EUR', 10, '{card}' FROM c RETURNING brand_id, campaign_id, id),
        r AS (INSERT INTO campaign_rewards (brand_id, campaign_id, kind, name)
              SELECT brand_id, id, 'perk', 'Perk' FROM c RETURNING brand_id, campaign_id, id)";
    let insert = match M::TABLE {
        "chain_transactions" => "INSERT INTO chain_transactions (idempotency_key, chain_id, signer)
             VALUES ('fixture:' || gen_random_uuid(), 31337, '\\x00000000000000000000000000000000000000aa') RETURNING id"
            .to_owned(),
        "campaigns" => format!("{FIXTURE} SELECT id FROM c"),
        "orders" => format!(
            "{FIXTURE} INSERT INTO orders (brand_id, campaign_id, item_id, quantity, method, currency, subtotal_minor,
                 total_minor, buyer_email, wallet_address)
             SELECT brand_id, campaign_id, id, 1, 'card', 'EUR', 100, 100, 'buyer@example.com',
                 '\\x00000000000000000000000000000000000000bb' FROM i RETURNING id"
        ),
        "contract_deployments" => {
            format!("{FIXTURE} INSERT INTO contract_deployments (brand_id, campaign_id) SELECT brand_id, id FROM c RETURNING id")
        }
        "redemptions" => format!(
            "{FIXTURE} INSERT INTO redemptions (brand_id, campaign_id, reward_id, token_id, claimant, recipient,
                                                period_key, slot)
             SELECT brand_id, campaign_id, id, 1, '\\x00000000000000000000000000000000000000cc',
                    '\\x00000000000000000000000000000000000000cc', '', 1 FROM r RETURNING id"
        ),
        table => format!("INSERT INTO {table} DEFAULT VALUES RETURNING id"),
    };
    sqlx::query_scalar(&insert).fetch_one(pool).await.unwrap()
}

async fn state<M: Machine>(pool: &PgPool, id: i64) -> String {
    sqlx::query_scalar(&format!("SELECT state FROM {} WHERE id = $1", M::TABLE)).bind(id).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn a_transition_moves_the_row_records_history_and_writes_the_outbox_event() {
    let pool = pool().await;
    let order = create::<Order>(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let applied = apply::<Order>(
        &mut conn,
        Transition::new(order, OrderEvent::Authorize, "evt_1", "stripe")
            .with_payload(json!({"payment_intent": "pi_1"})),
    )
    .await
    .unwrap();
    let Applied::Moved { from, to, event_id } = applied else { panic!("{applied:?}") };
    assert_eq!((from, to), (OrderState::Pending, OrderState::Authorized));
    assert_eq!(state::<Order>(&pool, order).await, "authorized");

    let history: (String, String, String, String, String) = sqlx::query_as(
        "SELECT from_state, to_state, event, cause, actor FROM state_transitions WHERE machine = 'order' AND entity_id = $1",
    )
    .bind(order)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(history, ("pending".into(), "authorized".into(), "authorize".into(), "evt_1".into(), "stripe".into()));

    let (event_type, payload): (String, serde_json::Value) =
        sqlx::query_as("SELECT event_type, payload FROM outbox_events WHERE id = $1")
            .bind(event_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(event_type, "order.authorized");
    assert_eq!(payload["id"], order);
    assert_eq!(payload["from"], "pending");
    assert_eq!(payload["payment_intent"], "pi_1");
}

#[tokio::test]
async fn a_transition_not_in_the_table_is_refused_and_changes_nothing() {
    let pool = pool().await;
    let order = create::<Order>(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let err =
        apply::<Order>(&mut conn, Transition::new(order, OrderEvent::Capture, "evt_1", "stripe")).await.unwrap_err();
    assert!(matches!(err, WorkflowError::InvalidTransition { from: "pending", event: "capture", .. }), "{err}");
    assert_eq!(state::<Order>(&pool, order).await, "pending");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events").fetch_one(&pool).await.unwrap();
    assert_eq!(events, 0);
    let missing =
        apply::<Order>(&mut conn, Transition::new(999_999, OrderEvent::Authorize, "x", "y")).await.unwrap_err();
    assert!(matches!(missing, WorkflowError::NotFound { .. }));
}

#[tokio::test]
async fn replaying_a_cause_is_a_no_op() {
    let pool = pool().await;
    let order = create::<Order>(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let first =
        apply::<Order>(&mut conn, Transition::new(order, OrderEvent::Authorize, "evt_1", "stripe")).await.unwrap();
    assert!(matches!(first, Applied::Moved { .. }));
    apply::<Order>(&mut conn, Transition::new(order, OrderEvent::RequestMint, "evt_2", "system")).await.unwrap();
    // The first cause again, although `authorize` is no longer allowed: a no-op, not an error.
    let replay =
        apply::<Order>(&mut conn, Transition::new(order, OrderEvent::Authorize, "evt_1", "stripe")).await.unwrap();
    assert_eq!(replay, Applied::AlreadyApplied { to: OrderState::Authorized });
    assert_eq!(state::<Order>(&pool, order).await, "minting");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM state_transitions").fetch_one(&pool).await.unwrap();
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn a_transition_rolls_back_with_the_business_change_it_belongs_to() {
    let pool = pool().await;
    let order = create::<Order>(&pool).await;
    let mut conn = pool.acquire().await.unwrap();
    {
        let mut tx = conn.begin().await.unwrap();
        apply::<Order>(&mut tx, Transition::new(order, OrderEvent::Authorize, "evt_1", "stripe")).await.unwrap();
        // The caller's own work fails after the transition: everything goes.
        assert!(sqlx::query("SELECT 1/0").execute(&mut *tx).await.is_err());
        tx.rollback().await.unwrap();
    }
    assert_eq!(state::<Order>(&pool, order).await, "pending");
    let (history, events): (i64, i64) =
        sqlx::query_as("SELECT (SELECT count(*) FROM state_transitions), (SELECT count(*) FROM outbox_events)")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((history, events), (0, 0));
}

#[tokio::test]
async fn concurrent_events_for_one_entity_move_it_once() {
    let pool = pool().await;
    let order = create::<Order>(&pool).await;
    let attempts = (0..16).map(|i| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            let cause = format!("webhook_{i}");
            apply::<Order>(&mut conn, Transition::new(order, OrderEvent::Authorize, &cause, "stripe")).await
        })
    });
    let mut moved = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(Applied::Moved { .. }) => moved += 1,
            Err(WorkflowError::InvalidTransition { from: "authorized", .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(moved, 1);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_events").fetch_one(&pool).await.unwrap();
    assert_eq!(events, 1);
}

/// Drives one machine through random event sequences (some replaying earlier causes) and checks
/// the persisted history against the table.
fn random_sequences_follow_the_table<M: Machine>() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let pool = runtime.block_on(pool());
    let events = <M::Event as VariantArray>::VARIANTS;
    let steps = prop::collection::vec((0..events.len(), any::<bool>()), 1..30);
    let config = ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() };
    let mut runner = TestRunner::new(config);
    runner
        .run(&steps, |steps| {
            runtime.block_on(async {
                let id = create::<M>(&pool).await;
                let mut conn = pool.acquire().await.unwrap();
                let mut current = M::INITIAL;
                let mut causes: Vec<(String, M::State)> = Vec::new();
                let mut moves = 0_i64;
                for (n, (event_index, replay)) in steps.iter().enumerate() {
                    let event = events[*event_index];
                    let cause = match causes.last() {
                        Some((cause, _)) if *replay => cause.clone(),
                        _ => format!("cause-{n}"),
                    };
                    match apply::<M>(&mut conn, Transition::new(id, event, &cause, "proptest")).await {
                        Ok(Applied::Moved { from, to, .. }) => {
                            prop_assert_eq!(from, current);
                            prop_assert!(M::TRANSITIONS.contains(&(from, event, to)));
                            current = to;
                            moves += 1;
                            causes.push((cause, to));
                        }
                        Ok(Applied::AlreadyApplied { to }) => {
                            let earlier = causes.iter().find(|(c, _)| *c == cause).map(|(_, s)| *s);
                            prop_assert_eq!(earlier, Some(to), "only a replayed cause is a no-op");
                        }
                        Err(WorkflowError::InvalidTransition { .. }) => {
                            prop_assert!(M::transition(current, event).is_none());
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
                let history: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT from_state, event, to_state FROM state_transitions WHERE machine = $1 AND entity_id = $2 ORDER BY id",
                )
                .bind(M::NAME)
                .bind(id)
                .fetch_all(&pool)
                .await
                .unwrap();
                prop_assert_eq!(i64::try_from(history.len()).unwrap(), moves);
                let mut expected_from: &'static str = M::INITIAL.into();
                for (from, event, to) in &history {
                    prop_assert_eq!(from.as_str(), expected_from, "history is a chain");
                    let allowed = M::TRANSITIONS.iter().any(|(f, e, t)| {
                        let (f, e, t): (&str, &str, &str) = ((*f).into(), (*e).into(), (*t).into());
                        (f, e, t) == (from.as_str(), event.as_str(), to.as_str())
                    });
                    prop_assert!(allowed, "{from} --{event}--> {to} is not in the {} table", M::NAME);
                    expected_from = M::TRANSITIONS
                        .iter()
                        .map(|(_, _, t)| -> &'static str { (*t).into() })
                        .find(|t| t == to)
                        .unwrap();
                }
                let stored = state::<M>(&pool, id).await;
                let current_name: &'static str = current.into();
                prop_assert_eq!(stored.as_str(), current_name);
                let events: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE aggregate_type = $1 AND aggregate_id = $2")
                        .bind(M::NAME)
                        .bind(id)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                prop_assert_eq!(events, moves, "one outbox event per move");
                Ok(())
            })
        })
        .unwrap();
}

#[test]
fn random_order_events_only_take_allowed_transitions() {
    random_sequences_follow_the_table::<Order>();
}

#[test]
fn random_campaign_events_only_take_allowed_transitions() {
    random_sequences_follow_the_table::<Campaign>();
}

#[test]
fn random_deployment_events_only_take_allowed_transitions() {
    random_sequences_follow_the_table::<Deployment>();
}

#[test]
fn random_chain_transaction_events_only_take_allowed_transitions() {
    random_sequences_follow_the_table::<ChainTx>();
}

#[test]
fn random_redemption_events_only_take_allowed_transitions() {
    random_sequences_follow_the_table::<Redemption>();
}

#[test]
fn random_reward_batch_events_only_take_allowed_transitions() {
    random_sequences_follow_the_table::<RewardBatch>();
}

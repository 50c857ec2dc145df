//! Writing what was read: one batch of facts, the derived tables and the checkpoint in one
//! PostgreSQL transaction (bulk `UNNEST` inserts, never a row at a time); taking back everything
//! derived from blocks that left the canonical chain; marking facts confirmed. Every announced
//! fact gets its outbox event in the same transaction.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, B256, U256};
use serde_json::{Value, json};
use shared::workflow::outbox::{self, NewEvent};
use sqlx::{PgConnection, Row};

use crate::decode::{Event, Fact, Position, TokenTransfer};

/// A block whose hash is kept, to walk a reorg back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub number: u64,
    pub hash: B256,
    pub parent_hash: B256,
}

/// What one step read: the facts of `from..=to`, in chain order, and the hashes to keep.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub from: u64,
    pub to: u64,
    pub to_hash: Option<B256>,
    pub facts: Vec<Fact>,
    pub blocks: Vec<BlockRef>,
}

/// The checkpoint of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub indexed_block: Option<u64>,
    pub indexed_hash: Option<B256>,
}

/// A block number or chain id as PostgreSQL's BIGINT (saturating: no real one reaches it).
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn b256(bytes: &[u8]) -> B256 {
    B256::try_from(bytes).unwrap_or_default()
}

/// The chain's checkpoint, locked for this transaction; created (before `start`) if new.
pub async fn checkpoint(conn: &mut PgConnection, chain_id: u64, start: u64) -> sqlx::Result<Checkpoint> {
    sqlx::query("INSERT INTO indexer_chains (chain_id, indexed_block) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(int(chain_id))
        .bind(int(start) - 1)
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query("SELECT indexed_block, indexed_hash FROM indexer_chains WHERE chain_id = $1 FOR UPDATE")
        .bind(int(chain_id))
        .fetch_one(&mut *conn)
        .await?;
    let block: i64 = row.get(0);
    let hash: Option<Vec<u8>> = row.get(1);
    Ok(Checkpoint { indexed_block: u64::try_from(block).ok(), indexed_hash: hash.as_deref().map(b256) })
}

/// The kept hash of block `number`, if any.
pub async fn kept_hash(conn: &mut PgConnection, chain_id: u64, number: u64) -> sqlx::Result<Option<B256>> {
    let hash: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT hash FROM indexed_blocks WHERE chain_id = $1 AND number = $2")
            .bind(int(chain_id))
            .bind(int(number))
            .fetch_optional(conn)
            .await?;
    Ok(hash.as_deref().map(b256))
}

/// Kept block hashes from `below` down, newest first (the reorg walk).
pub async fn kept_blocks(conn: &mut PgConnection, chain_id: u64, below: u64) -> sqlx::Result<Vec<(u64, B256)>> {
    let rows = sqlx::query(
        "SELECT number, hash FROM indexed_blocks WHERE chain_id = $1 AND number <= $2 ORDER BY number DESC",
    )
    .bind(int(chain_id))
    .bind(int(below))
    .fetch_all(conn)
    .await?;
    Ok(rows.iter().map(|r| (u64::try_from(r.get::<i64, _>(0)).unwrap_or(0), b256(&r.get::<Vec<u8>, _>(1)))).collect())
}

/// The collections known on `chain_id`.
pub async fn collections(conn: &mut PgConnection, chain_id: u64) -> sqlx::Result<Vec<Address>> {
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT address FROM indexed_collections WHERE chain_id = $1")
        .bind(int(chain_id))
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(|a| Address::from_slice(a)).collect())
}

fn payload(chain_id: u64, at: &Position, address: Address, fields: &Value, confirmed: bool) -> Value {
    let mut payload = json!({
        "chain_id": chain_id, "block_number": at.block_number, "block_hash": at.block_hash,
        "tx_hash": at.tx_hash, "log_index": at.log_index, "address": address, "confirmed": confirmed,
    });
    if let (Some(payload), Value::Object(fields)) = (payload.as_object_mut(), fields) {
        payload.extend(fields.clone());
    }
    payload
}

async fn announce(
    conn: &mut PgConnection,
    event_type: String,
    block: u64,
    tx_hash: B256,
    payload: Value,
) -> sqlx::Result<()> {
    let event = NewEvent {
        event_type,
        aggregate_type: "chain",
        aggregate_id: int(block),
        payload,
        correlation_id: Some(tx_hash.to_string()),
    };
    outbox::append(conn, event).await.map(drop)
}

/// Writes `batch` on top of the checkpoint (which the caller locked and which must be
/// `batch.from - 1`), with the derived tables, the announcements and the new checkpoint.
/// `confirmed_up_to`: facts at or below it are written confirmed.
pub async fn write(
    conn: &mut PgConnection,
    chain_id: u64,
    batch: &Batch,
    head: u64,
    confirmed_up_to: u64,
    window: u64,
) -> sqlx::Result<()> {
    let chain = int(chain_id);
    let transfers: Vec<&TokenTransfer> = batch
        .facts
        .iter()
        .filter_map(|f| match f {
            Fact::Transfer(t) => Some(t),
            Fact::Event(_) => None,
        })
        .collect();
    let events: Vec<&Event> = batch
        .facts
        .iter()
        .filter_map(|f| match f {
            Fact::Event(e) => Some(e),
            Fact::Transfer(_) => None,
        })
        .collect();
    if !transfers.is_empty() {
        write_transfers(conn, chain, &transfers, confirmed_up_to).await?;
    }
    if !events.is_empty() {
        write_events(conn, chain_id, &events, confirmed_up_to).await?;
    }
    if !batch.blocks.is_empty() {
        sqlx::query(
            "INSERT INTO indexed_blocks (chain_id, number, hash, parent_hash)
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[], $4::bytea[])
             ON CONFLICT (chain_id, number) DO UPDATE SET hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash",
        )
        .bind(chain)
        .bind(batch.blocks.iter().map(|b| int(b.number)).collect::<Vec<_>>())
        .bind(batch.blocks.iter().map(|b| b.hash.to_vec()).collect::<Vec<_>>())
        .bind(batch.blocks.iter().map(|b| b.parent_hash.to_vec()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM indexed_blocks WHERE chain_id = $1 AND number < $2")
            .bind(chain)
            .bind(int(batch.to.saturating_sub(window)))
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query(
        "UPDATE indexer_chains SET indexed_block = $2, indexed_hash = $3, head_block = $4, updated_at = now()
         WHERE chain_id = $1",
    )
    .bind(chain)
    .bind(int(batch.to))
    .bind(batch.to_hash.map(|h| h.to_vec()))
    .bind(int(head))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_transfers(
    conn: &mut PgConnection,
    chain: i64,
    transfers: &[&TokenTransfer],
    confirmed_up_to: u64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO token_transfers (chain_id, block_number, block_hash, log_index, tx_hash, collection, token_id,
                                      from_address, to_address, confirmed)
         SELECT $1, b, h, i, t, c, id::numeric, f, o, b <= $10
         FROM UNNEST($2::bigint[], $3::bytea[], $4::int[], $5::bytea[], $6::bytea[], $7::text[], $8::bytea[], $9::bytea[])
              AS u(b, h, i, t, c, id, f, o)
         ON CONFLICT DO NOTHING",
    )
    .bind(chain)
    .bind(transfers.iter().map(|t| int(t.at.block_number)).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.at.block_hash.to_vec()).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| i32::try_from(t.at.log_index).unwrap_or(i32::MAX)).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.at.tx_hash.to_vec()).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.collection.to_vec()).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.token_id.to_string()).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.from.to_vec()).collect::<Vec<_>>())
    .bind(transfers.iter().map(|t| t.to.to_vec()).collect::<Vec<_>>())
    .bind(int(confirmed_up_to))
    .execute(&mut *conn)
    .await?;
    // Owners: the batch's last transfer of each token wins (the facts are in chain order). A
    // token whose first transfer here is its mint has no row yet: a plain insert, no upsert.
    let mut owners: BTreeMap<(Address, U256), (Address, u64)> = BTreeMap::new();
    let mut minted: std::collections::HashSet<(Address, U256)> = std::collections::HashSet::new();
    // Holders: what each (collection, holder) gained minus what it gave in the batch.
    let mut holders: BTreeMap<(Address, Address), i64> = BTreeMap::new();
    for t in transfers {
        if owners.insert((t.collection, t.token_id), (t.to, t.at.block_number)).is_none() && t.from.is_zero() {
            minted.insert((t.collection, t.token_id));
        }
        for (holder, delta) in [(t.from, -1), (t.to, 1)] {
            if !holder.is_zero() {
                *holders.entry((t.collection, holder)).or_default() += delta;
            }
        }
    }
    let (kept, burnt): (Vec<_>, Vec<_>) = owners.into_iter().partition(|(_, (owner, _))| !owner.is_zero());
    let (new, kept): (Vec<_>, Vec<_>) = kept.into_iter().partition(|(token, _)| minted.contains(token));
    if !new.is_empty() {
        sqlx::query(
            "INSERT INTO token_owners (chain_id, collection, token_id, owner, block_number)
             SELECT $1, c, id::numeric, o, b FROM UNNEST($2::bytea[], $3::text[], $4::bytea[], $5::bigint[]) AS u(c, id, o, b)",
        )
        .bind(chain)
        .bind(new.iter().map(|((c, _), _)| c.to_vec()).collect::<Vec<_>>())
        .bind(new.iter().map(|((_, id), _)| id.to_string()).collect::<Vec<_>>())
        .bind(new.iter().map(|(_, (o, _))| o.to_vec()).collect::<Vec<_>>())
        .bind(new.iter().map(|(_, (_, b))| int(*b)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !kept.is_empty() {
        sqlx::query(
            "INSERT INTO token_owners (chain_id, collection, token_id, owner, block_number)
             SELECT $1, c, id::numeric, o, b FROM UNNEST($2::bytea[], $3::text[], $4::bytea[], $5::bigint[]) AS u(c, id, o, b)
             ON CONFLICT (chain_id, collection, token_id) DO UPDATE SET owner = EXCLUDED.owner, block_number = EXCLUDED.block_number",
        )
        .bind(chain)
        .bind(kept.iter().map(|((c, _), _)| c.to_vec()).collect::<Vec<_>>())
        .bind(kept.iter().map(|((_, id), _)| id.to_string()).collect::<Vec<_>>())
        .bind(kept.iter().map(|(_, (o, _))| o.to_vec()).collect::<Vec<_>>())
        .bind(kept.iter().map(|(_, (_, b))| int(*b)).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !burnt.is_empty() {
        sqlx::query(
            "DELETE FROM token_owners o USING UNNEST($2::bytea[], $3::text[]) AS u(c, id)
             WHERE o.chain_id = $1 AND o.collection = u.c AND o.token_id = u.id::numeric",
        )
        .bind(chain)
        .bind(burnt.iter().map(|((c, _), _)| c.to_vec()).collect::<Vec<_>>())
        .bind(burnt.iter().map(|((_, id), _)| id.to_string()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    // A batch is written once (on top of the checkpoint it locked), so adding its changes to
    // the counts is exact; a reorg counts the collections it touched again from the owners.
    let changed: Vec<((Address, Address), i64)> = holders.into_iter().filter(|(_, delta)| *delta != 0).collect();
    // Gains insert or add; losses (a holder with a row already: they held what they gave)
    // subtract, and a holder left with none is removed. (The two cannot share one upsert: a
    // negative count would fail the table's check before the conflict is seen.)
    let (gains, losses): (Vec<_>, Vec<_>) = changed.into_iter().partition(|(_, delta)| *delta > 0);
    if !gains.is_empty() {
        sqlx::query(
            "INSERT INTO collection_holders AS ch (chain_id, collection, holder, tokens)
             SELECT $1, c, h, d FROM UNNEST($2::bytea[], $3::bytea[], $4::bigint[]) AS u(c, h, d)
             ON CONFLICT (chain_id, collection, holder) DO UPDATE SET tokens = ch.tokens + EXCLUDED.tokens",
        )
        .bind(chain)
        .bind(gains.iter().map(|((c, _), _)| c.to_vec()).collect::<Vec<_>>())
        .bind(gains.iter().map(|((_, h), _)| h.to_vec()).collect::<Vec<_>>())
        .bind(gains.iter().map(|(_, d)| *d).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    if !losses.is_empty() {
        let (collections, holders): (Vec<Vec<u8>>, Vec<Vec<u8>>) =
            losses.iter().map(|((c, h), _)| (c.to_vec(), h.to_vec())).unzip();
        sqlx::query(
            "UPDATE collection_holders ch SET tokens = ch.tokens + u.d
             FROM UNNEST($2::bytea[], $3::bytea[], $4::bigint[]) AS u(c, h, d)
             WHERE ch.chain_id = $1 AND ch.collection = u.c AND ch.holder = u.h",
        )
        .bind(chain)
        .bind(&collections)
        .bind(&holders)
        .bind(losses.iter().map(|(_, d)| *d).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "DELETE FROM collection_holders ch USING UNNEST($2::bytea[], $3::bytea[]) AS u(c, h)
             WHERE ch.chain_id = $1 AND ch.collection = u.c AND ch.holder = u.h AND ch.tokens = 0",
        )
        .bind(chain)
        .bind(&collections)
        .bind(&holders)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Whether facts of `kind` are announced in the outbox. Seaport's raw logs are not: they are
/// thousands per block on a busy chain, and the sales decoder reads them from `chain_events`.
pub fn announced(kind: &str) -> bool {
    !kind.starts_with("seaport_")
}

async fn write_events(
    conn: &mut PgConnection,
    chain_id: u64,
    events: &[&Event],
    confirmed_up_to: u64,
) -> sqlx::Result<()> {
    let chain = int(chain_id);
    // Topics travel as one concatenated BYTEA per log (an array of arrays cannot be UNNESTed).
    let inserted: Vec<(Vec<u8>, i32)> = sqlx::query_as(
        "INSERT INTO chain_events (chain_id, block_number, block_hash, log_index, tx_hash, address, kind, topics, data,
                                   fields, confirmed)
         SELECT $1, b, h, i, t, a, k,
                ARRAY(SELECT substring(tp FROM n * 32 + 1 FOR 32) FROM generate_series(0, length(tp) / 32 - 1) AS n),
                d, f, b <= $11
         FROM UNNEST($2::bigint[], $3::bytea[], $4::int[], $5::bytea[], $6::bytea[], $7::text[], $8::bytea[],
                     $9::bytea[], $10::jsonb[]) AS u(b, h, i, t, a, k, tp, d, f)
         ON CONFLICT DO NOTHING
         RETURNING block_hash, log_index",
    )
    .bind(chain)
    .bind(events.iter().map(|e| int(e.at.block_number)).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.at.block_hash.to_vec()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| i32::try_from(e.at.log_index).unwrap_or(i32::MAX)).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.at.tx_hash.to_vec()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.address.to_vec()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.kind).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.topics.iter().flat_map(|t| t.to_vec()).collect::<Vec<u8>>()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.data.clone()).collect::<Vec<_>>())
    .bind(events.iter().map(|e| e.fields.clone()).collect::<Vec<_>>())
    .bind(int(confirmed_up_to))
    .fetch_all(&mut *conn)
    .await?;
    let inserted: BTreeSet<(Vec<u8>, i32)> = inserted.into_iter().collect();
    for e in events {
        let key = (e.at.block_hash.to_vec(), i32::try_from(e.at.log_index).unwrap_or(i32::MAX));
        if !inserted.contains(&key) {
            continue;
        }
        if e.kind == "campaign_deployed" {
            let collection =
                e.fields["collection"].as_str().and_then(|a| a.parse::<Address>().ok()).unwrap_or_default();
            sqlx::query(
                "INSERT INTO indexed_collections (chain_id, address, campaign_ref, block_number, block_hash)
                 VALUES ($1, $2, $3::numeric, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(chain)
            .bind(collection.to_vec())
            .bind(e.fields["campaign_ref"].as_str().unwrap_or("0"))
            .bind(int(e.at.block_number))
            .bind(e.at.block_hash.to_vec())
            .execute(&mut *conn)
            .await?;
        }
        if !announced(e.kind) {
            continue;
        }
        let confirmed = e.at.block_number <= confirmed_up_to;
        let body = payload(chain_id, &e.at, e.address, &e.fields, confirmed);
        announce(conn, format!("chain.{}", e.kind), e.at.block_number, e.at.tx_hash, body.clone()).await?;
        if confirmed {
            announce(conn, format!("chain.{}.confirmed", e.kind), e.at.block_number, e.at.tx_hash, body).await?;
        }
    }
    Ok(())
}

/// Marks facts at or below `up_to` confirmed, announcing each event's confirmation; returns how
/// many events were confirmed.
pub async fn confirm(conn: &mut PgConnection, chain_id: u64, up_to: u64) -> sqlx::Result<u64> {
    let chain = int(chain_id);
    let rows = sqlx::query(
        "UPDATE chain_events SET confirmed = true WHERE chain_id = $1 AND NOT confirmed AND block_number <= $2
         RETURNING block_number, block_hash, log_index, tx_hash, address, kind, fields",
    )
    .bind(chain)
    .bind(int(up_to))
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE token_transfers SET confirmed = true WHERE chain_id = $1 AND NOT confirmed AND block_number <= $2",
    )
    .bind(chain)
    .bind(int(up_to))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE indexer_chains SET confirmed_block = GREATEST(COALESCE(confirmed_block, -1), $2) WHERE chain_id = $1",
    )
    .bind(chain)
    .bind(int(up_to))
    .execute(&mut *conn)
    .await?;
    let mut rows = rows;
    rows.sort_by_key(|r| (r.get::<i64, _>(0), r.get::<i32, _>(2)));
    for row in &rows {
        let at = event_position(row);
        let address = Address::from_slice(&row.get::<Vec<u8>, _>(4));
        let kind: String = row.get(5);
        if !announced(&kind) {
            continue;
        }
        let body = payload(chain_id, &at, address, &row.get::<Value, _>(6), true);
        announce(conn, format!("chain.{kind}.confirmed"), at.block_number, at.tx_hash, body).await?;
    }
    Ok(rows.len() as u64)
}

fn event_position(row: &sqlx::postgres::PgRow) -> Position {
    Position {
        block_number: u64::try_from(row.get::<i64, _>(0)).unwrap_or(0),
        block_hash: b256(&row.get::<Vec<u8>, _>(1)),
        log_index: u64::try_from(row.get::<i32, _>(2)).unwrap_or(0),
        tx_hash: b256(&row.get::<Vec<u8>, _>(3)),
    }
}

/// Takes back everything indexed above `ancestor` (blocks that left the canonical chain): each
/// fact is deleted and announced as reverted (`chain.<kind>.reverted`, `chain.transfer.reverted`)
/// once, owners and holders of the tokens concerned are recomputed from the transfers that stay,
/// and the checkpoint moves back to `ancestor`. Returns how many facts were reverted.
pub async fn revert(
    conn: &mut PgConnection,
    chain_id: u64,
    ancestor: u64,
    ancestor_hash: B256,
    depth: u64,
) -> sqlx::Result<u64> {
    let chain = int(chain_id);
    // Every block above the ancestor is kept (the backfill stops INDEXER_REORG_WINDOW below the
    // head; above it, blocks are indexed one by one with their hashes): their facts are found
    // by block hash. A gap would hide facts from this walk, so it is refused.
    let (checkpoint, dropped): (i64, Vec<Vec<u8>>) = sqlx::query_as(
        "SELECT c.indexed_block, COALESCE(array_agg(b.hash) FILTER (WHERE b.hash IS NOT NULL), '{}')
         FROM indexer_chains c LEFT JOIN indexed_blocks b ON b.chain_id = c.chain_id AND b.number > $2
         WHERE c.chain_id = $1 GROUP BY c.indexed_block",
    )
    .bind(chain)
    .bind(int(ancestor))
    .fetch_one(&mut *conn)
    .await?;
    if i64::try_from(dropped.len()).unwrap_or(i64::MAX) != checkpoint - int(ancestor) {
        return Err(sqlx::Error::Protocol(format!(
            "chain {chain_id}: {} kept block hashes above block {ancestor}, but {} blocks are indexed above it",
            dropped.len(),
            checkpoint - int(ancestor)
        )));
    }
    let events = sqlx::query(
        "DELETE FROM chain_events WHERE chain_id = $1 AND block_hash = ANY($2)
         RETURNING block_number, block_hash, log_index, tx_hash, address, kind, fields, confirmed",
    )
    .bind(chain)
    .bind(&dropped)
    .fetch_all(&mut *conn)
    .await?;
    let transfers = sqlx::query(
        "DELETE FROM token_transfers WHERE chain_id = $1 AND block_hash = ANY($2)
         RETURNING block_number, block_hash, log_index, tx_hash, collection, token_id::text, from_address, to_address, confirmed",
    )
    .bind(chain)
    .bind(&dropped)
    .fetch_all(&mut *conn)
    .await?;
    crate::sales::revert(conn, chain_id, &dropped).await?;
    sqlx::query("DELETE FROM indexed_collections WHERE chain_id = $1 AND block_number > $2")
        .bind(chain)
        .bind(int(ancestor))
        .execute(&mut *conn)
        .await?;
    let mut tokens: BTreeSet<(Vec<u8>, String)> = BTreeSet::new();
    for row in &events {
        let at = event_position(row);
        let address = Address::from_slice(&row.get::<Vec<u8>, _>(4));
        let kind: String = row.get(5);
        let body = payload(chain_id, &at, address, &row.get::<Value, _>(6), row.get(7));
        // Every reverted fact is announced, raw logs included: whoever read them must undo.
        announce(conn, format!("chain.{kind}.reverted"), at.block_number, at.tx_hash, body).await?;
    }
    for row in &transfers {
        let at = event_position(row);
        let collection: Vec<u8> = row.get(4);
        let token: String = row.get(5);
        let fields = json!({ "token_id": token, "from": Address::from_slice(&row.get::<Vec<u8>, _>(6)),
                             "to": Address::from_slice(&row.get::<Vec<u8>, _>(7)) });
        let body = payload(chain_id, &at, Address::from_slice(&collection), &fields, row.get(8));
        announce(conn, "chain.transfer.reverted".into(), at.block_number, at.tx_hash, body).await?;
        tokens.insert((collection, token));
    }
    if !tokens.is_empty() {
        let (collections, ids): (Vec<Vec<u8>>, Vec<String>) = tokens.iter().cloned().unzip();
        // Each token's owner is the receiver of its last transfer that stays (none: it is gone).
        sqlx::query(
            "DELETE FROM token_owners o USING UNNEST($2::bytea[], $3::text[]) AS u(c, id)
             WHERE o.chain_id = $1 AND o.collection = u.c AND o.token_id = u.id::numeric",
        )
        .bind(chain)
        .bind(&collections)
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO token_owners (chain_id, collection, token_id, owner, block_number)
             SELECT DISTINCT ON (t.collection, t.token_id) $1, t.collection, t.token_id, t.to_address, t.block_number
             FROM token_transfers t JOIN UNNEST($2::bytea[], $3::text[]) AS u(c, id)
               ON t.collection = u.c AND t.token_id = u.id::numeric
             WHERE t.chain_id = $1
             ORDER BY t.collection, t.token_id, t.block_number DESC, t.log_index DESC",
        )
        .bind(chain)
        .bind(&collections)
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
        sqlx::query("DELETE FROM token_owners WHERE chain_id = $1 AND owner = $2")
            .bind(chain)
            .bind(Address::ZERO.to_vec())
            .execute(&mut *conn)
            .await?;
        // Holders of the collections concerned, counted again from their owners.
        let affected: Vec<Vec<u8>> = collections.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        sqlx::query("DELETE FROM collection_holders WHERE chain_id = $1 AND collection = ANY($2)")
            .bind(chain)
            .bind(&affected)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO collection_holders (chain_id, collection, holder, tokens)
             SELECT $1, collection, owner, count(*) FROM token_owners
             WHERE chain_id = $1 AND collection = ANY($2) GROUP BY collection, owner",
        )
        .bind(chain)
        .bind(&affected)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM indexed_blocks WHERE chain_id = $1 AND number > $2")
        .bind(chain)
        .bind(int(ancestor))
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE indexer_chains SET indexed_block = $2, indexed_hash = $3, reorgs = reorgs + 1, last_reorg_at = now(),
                last_reorg_depth = $4, confirmed_block = LEAST(confirmed_block, $2), updated_at = now()
         WHERE chain_id = $1",
    )
    .bind(chain)
    .bind(int(ancestor))
    .bind(ancestor_hash.to_vec())
    .bind(i32::try_from(depth).unwrap_or(i32::MAX))
    .execute(&mut *conn)
    .await?;
    Ok((events.len() + transfers.len()) as u64)
}

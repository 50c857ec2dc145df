//! Migrations and the money column types against a real PostgreSQL.

use alloy::primitives::U256;
use shared::{db, money::Wei};
use sqlx::{Connection, PgConnection};
use testkit::TestDb;

async fn connect(db: &TestDb) -> PgConnection {
    PgConnection::connect(&db.url).await.unwrap()
}

#[tokio::test]
async fn migrations_apply_to_a_fresh_database_and_again_as_a_no_op() {
    let test_db = TestDb::create().await;
    let pool = sqlx::PgPool::connect(&test_db.url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    db::migrate(&pool).await.unwrap();
    let applied: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(&pool).await.unwrap();
    assert_eq!(applied, i64::try_from(db::MIGRATOR.iter().count()).unwrap());
}

#[tokio::test]
async fn wei_round_trips_through_the_uint256_column_exactly() {
    let test_db = TestDb::create().await;
    let pool = sqlx::PgPool::connect(&test_db.url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    let mut conn = connect(&test_db).await;
    sqlx::query("CREATE TEMP TABLE amounts (v uint256 NOT NULL)").execute(&mut conn).await.unwrap();
    for value in
        [Wei::ZERO, Wei::from_u128(1), Wei::from_u128(10_u128.pow(18)), Wei::MAX, Wei::new(U256::MAX - U256::from(1))]
    {
        let back: Wei = sqlx::query_scalar("INSERT INTO amounts (v) VALUES ($1) RETURNING v")
            .bind(value)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(back, value);
    }
    let sum: Wei = sqlx::query_scalar("SELECT sum(v) FROM amounts WHERE v < 1000000000000000001")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(sum, Wei::from_u128(10_u128.pow(18) + 1));
}

#[tokio::test]
async fn the_uint256_column_refuses_negative_and_oversized_values() {
    let test_db = TestDb::create().await;
    let pool = sqlx::PgPool::connect(&test_db.url).await.unwrap();
    db::migrate(&pool).await.unwrap();
    let mut conn = connect(&test_db).await;
    sqlx::query("CREATE TEMP TABLE amounts (v uint256 NOT NULL)").execute(&mut conn).await.unwrap();
    for bad in ["-1", "115792089237316195423570985008687907853269984665640564039457584007913129639936", "1.5"] {
        let result = sqlx::query(&format!("INSERT INTO amounts (v) VALUES ({bad})")).execute(&mut conn).await;
        // 1.5 is rounded by NUMERIC(78,0) to 2 — so only the out-of-range ones must fail.
        if bad != "1.5" {
            assert!(result.is_err(), "{bad} was accepted");
        }
    }
    // Reading a value that is not a whole number (from a wider column) is an error, not a
    // silent truncation.
    let fraction: Result<Wei, _> = sqlx::query_scalar("SELECT 1.5::numeric").fetch_one(&mut conn).await;
    assert!(fraction.is_err());
    let negative: Result<Wei, _> = sqlx::query_scalar("SELECT (-1)::numeric").fetch_one(&mut conn).await;
    assert!(negative.is_err());
}

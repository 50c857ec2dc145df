//! `.sqlx/` query data: regenerate it, or check the committed copy is current.
//!
//! The same thing `cargo sqlx prepare [--check]` does, without installing sqlx-cli: apply the
//! migrations to a fresh database, recompile every crate with the query macros online and
//! `SQLX_OFFLINE_DIR` set (the macros then write one file per query), and compare.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    str::FromStr,
    time::SystemTime,
};

use anyhow::{Context, Result, bail};
use sqlx::{Connection, Executor, PgConnection, migrate::Migrator, postgres::PgConnectOptions};

use crate::{
    infra::{self, Instance},
    util::{self, root},
};

const PREPARE_DB: &str = "brandmint_sqlx_prepare";

/// `cargo xtask sqlx-prepare [--check]`, with its own throwaway database server.
pub fn run(check: bool) -> Result<()> {
    let endpoints = infra::up(Instance::Test)?;
    let result = prepare(&endpoints.database_url, check);
    infra::down(Instance::Test)?;
    result
}

/// Regenerates `.sqlx/` from the schema in `migrations/`; with `check`, fails if the committed
/// data differs instead of replacing it.
pub fn prepare(database_url: &str, check: bool) -> Result<()> {
    let url = fresh_database(database_url)?;
    let out = root().join("target/infra/sqlx-prepare");
    drop(fs::remove_dir_all(&out));
    fs::create_dir_all(&out)?;
    touch_sources()?;
    util::run(
        Command::new(env!("CARGO"))
            .current_dir(root())
            .args(["check", "--workspace", "--all-targets", "--locked", "--quiet"])
            .env("SQLX_OFFLINE", "false")
            .env("SQLX_OFFLINE_DIR", &out)
            .env("DATABASE_URL", &url),
    )?;
    let committed_dir = root().join(".sqlx");
    let fresh = read_queries(&out)?;
    let committed = read_queries(&committed_dir)?;
    if fresh == committed {
        println!(".sqlx is current ({} queries)", fresh.len());
        return Ok(());
    }
    if check {
        let stale: Vec<&String> = fresh
            .iter()
            .filter(|(name, data)| committed.get(*name) != Some(data))
            .map(|(name, _)| name)
            .chain(committed.keys().filter(|name| !fresh.contains_key(*name)))
            .collect();
        bail!(
            ".sqlx is stale ({} files differ: {stale:?}); run `cargo xtask sqlx-prepare` and commit .sqlx",
            stale.len()
        );
    }
    drop(fs::remove_dir_all(&committed_dir));
    fs::create_dir_all(&committed_dir)?;
    for (name, data) in &fresh {
        fs::write(committed_dir.join(name), data)?;
    }
    println!("wrote {} queries to .sqlx", fresh.len());
    Ok(())
}

/// Creates an empty database beside the given one and applies the migrations to it.
fn fresh_database(database_url: &str) -> Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let admin = PgConnectOptions::from_str(database_url).context("DATABASE_URL")?;
        let mut conn = PgConnection::connect_with(&admin).await.context("connecting to PostgreSQL")?;
        conn.execute(format!("DROP DATABASE IF EXISTS {PREPARE_DB} WITH (FORCE)").as_str()).await?;
        conn.execute(format!("CREATE DATABASE {PREPARE_DB}").as_str()).await?;
        conn.close().await?;
        let mut conn = PgConnection::connect_with(&admin.database(PREPARE_DB)).await?;
        Migrator::new(root().join("migrations")).await?.run(&mut conn).await.context("applying migrations")?;
        conn.close().await?;
        anyhow::Ok(())
    })?;
    let (base, query) = database_url.split_once('?').map_or((database_url, None), |(b, q)| (b, Some(q)));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Ok(match query {
        Some(q) => format!("{server}/{PREPARE_DB}?{q}"),
        None => format!("{server}/{PREPARE_DB}"),
    })
}

/// Makes cargo recompile the workspace crates so every query macro runs again.
fn touch_sources() -> Result<()> {
    fn visit(dir: &Path, now: SystemTime) -> Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                visit(&path, now)?;
            } else if path.extension().is_some_and(|e| e == "rs") {
                fs::File::options().write(true).open(&path)?.set_modified(now)?;
            }
        }
        Ok(())
    }
    let now = SystemTime::now();
    for member in ["shared", "backoffice", "payment", "redemption", "indexer", "fakes", "testkit", "cli", "anvil-tests"]
    {
        for sub in ["src", "tests"] {
            let dir = root().join(member).join(sub);
            if dir.is_dir() {
                visit(&dir, now)?;
            }
        }
    }
    Ok(())
}

fn read_queries(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut queries = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(queries);
    }
    for entry in fs::read_dir(dir)? {
        let path: PathBuf = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            queries.insert(name, fs::read_to_string(&path)?);
        }
    }
    Ok(queries)
}

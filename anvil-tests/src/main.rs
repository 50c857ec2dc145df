//! `brandmint`: every service in one process, for local use.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::service::run(&anvil_tests::SERVICES).await
}

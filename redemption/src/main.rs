//! Runs the redemption service alone (production: one container per service).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::service::run(&[redemption::SERVICE]).await
}

//! Runs the payment service alone (production: one container per service).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shared::service::run(&[payment::SERVICE]).await
}

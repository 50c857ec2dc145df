//! `brandmint`: every service in one process, for local use.
//!
//! `brandmint deploy-local` instead deploys the contracts and a demo campaign to the local
//! chain in `RPC_URL` (what `cargo xtask dev` does first).

#![allow(clippy::print_stdout)] // prints the deployed addresses

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => shared::service::run(&anvil_tests::SERVICES).await,
        Some("deploy-local") => {
            let rpc_url = std::env::var("RPC_URL").map_err(|_| anyhow::anyhow!("RPC_URL is not set"))?;
            println!("{}", anvil_tests::local::deploy(&rpc_url).await?);
            Ok(())
        }
        Some(other) => anyhow::bail!("unknown command `{other}`; usage: brandmint [deploy-local]"),
    }
}

//! Access to the EVM chain through alloy: reads, and writes through the persisted
//! transaction queue ([`txqueue`]).

pub mod txqueue;

use std::sync::OnceLock;

use alloy::{
    providers::{DynProvider, Provider, ProviderBuilder},
    transports::TransportError,
};
use secrecy::ExposeSecret;

use crate::config::ChainConfig;

/// A handle on the chain's JSON-RPC endpoint.
#[derive(Clone, Debug)]
pub struct Chain {
    provider: DynProvider,
}

impl Chain {
    /// Builds a client for the configured RPC URL. Nothing is sent until the first call.
    pub fn connect(config: &ChainConfig) -> Result<Self, url::ParseError> {
        install_crypto_provider();
        let url = config.rpc_url.expose_secret().parse()?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        Ok(Self { provider })
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, TransportError> {
        self.provider.get_chain_id().await
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, TransportError> {
        self.provider.get_block_number().await
    }
}

/// rustls needs one process-wide crypto provider; the platform uses ring everywhere.
pub fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err means another provider was installed first, which is just as good.
        drop(rustls::crypto::ring::default_provider().install_default());
    });
}

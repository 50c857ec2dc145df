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

/// The platform's relayer: the first transaction-queue signer (it deploys campaigns, mints for
/// card orders and configures contracts); `None` when no signer key is configured.
pub fn relayer(config: &ChainConfig) -> Option<alloy::primitives::Address> {
    let key = config.signer_keys.first()?;
    key.expose_secret().parse::<alloy::signers::local::PrivateKeySigner>().ok().map(|signer| signer.address())
}

/// rustls needs one process-wide crypto provider; the platform uses ring everywhere.
pub fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err means another provider was installed first, which is just as good.
        drop(rustls::crypto::ring::default_provider().install_default());
    });
}

pub use crate::address::{checksummed, parse_address};

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_need_their_checksum() {
        let good = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        assert_eq!(super::parse_address(good).unwrap().to_checksum(None), good);
        for bad in [
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            "0xF39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "f39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb9226",
            "0x0000000000000000000000000000000000000000",
            "0xg39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        ] {
            assert!(super::parse_address(bad).is_err(), "{bad}");
        }
    }
}

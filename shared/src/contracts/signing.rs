//! EIP-712 signatures the platform gives out: wallet-checkout quotes (Checkout) and reward
//! vouchers (RewardVault). The domains match the contracts' (`name`, `version "1"`, chain id,
//! verifying contract).

use alloy::{
    primitives::{Address, B256, Bytes, U256},
    signers::{Signer, local::PrivateKeySigner},
    sol_types::{Eip712Domain, SolStruct, eip712_domain},
};

use super::{Checkout::Quote, RewardVault::Voucher};

/// Signs checkout quotes for one Checkout contract.
#[derive(Debug, Clone)]
pub struct QuoteSigner {
    signer: PrivateKeySigner,
    domain: Eip712Domain,
}

impl QuoteSigner {
    pub fn new(signer: PrivateKeySigner, chain_id: u64, checkout: Address) -> Self {
        let domain = eip712_domain! { name: "Brandmint Checkout", version: "1", chain_id: chain_id, verifying_contract: checkout, };
        Self { signer, domain }
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The digest the contract recovers from (`Checkout.hashQuote`).
    pub fn digest(&self, quote: &Quote) -> B256 {
        quote.eip712_signing_hash(&self.domain)
    }

    /// A 65-byte `r‖s‖v` signature.
    pub async fn sign(&self, quote: &Quote) -> alloy::signers::Result<Bytes> {
        let signature = self.signer.sign_hash(&self.digest(quote)).await?;
        Ok(Bytes::from(signature.as_bytes().to_vec()))
    }
}

/// Signs reward vouchers for one RewardVault.
#[derive(Debug, Clone)]
pub struct VoucherSigner {
    signer: PrivateKeySigner,
    domain: Eip712Domain,
}

impl VoucherSigner {
    pub fn new(signer: PrivateKeySigner, chain_id: u64, vault: Address) -> Self {
        let domain = eip712_domain! { name: "Brandmint RewardVault", version: "1", chain_id: chain_id, verifying_contract: vault, };
        Self { signer, domain }
    }

    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The digest the contract recovers from (`RewardVault.hashVoucher`).
    pub fn digest(&self, voucher: &Voucher) -> B256 {
        voucher.eip712_signing_hash(&self.domain)
    }

    /// A 65-byte `r‖s‖v` signature.
    pub async fn sign(&self, voucher: &Voucher) -> alloy::signers::Result<alloy::primitives::Signature> {
        self.signer.sign_hash(&self.digest(voucher)).await
    }
}

/// The packed arguments of `RewardVault.redeemCompact` (cheaper calldata for the same signed
/// voucher): `(ids, recipientAmount, tokenDeadline, r, vs)`. `None` if a field exceeds its
/// packed width (redemption and campaign ids 64 bits, token id 128, amount and deadline 96).
pub fn compact_voucher(
    voucher: &Voucher,
    signature: &alloy::primitives::Signature,
) -> Option<(U256, U256, U256, B256, B256)> {
    let fits = |value: U256, bits: usize| value.bit_len() <= bits;
    if !(fits(voucher.redemptionId, 64)
        && fits(voucher.campaignId, 64)
        && fits(voucher.tokenId, 128)
        && fits(voucher.amount, 96)
        && fits(voucher.deadline, 96))
    {
        return None;
    }
    let address = |a: Address| U256::from_be_slice(a.as_slice());
    let ids = (voucher.redemptionId << 192) | (voucher.campaignId << 128) | voucher.tokenId;
    let recipient_amount = (address(voucher.recipient) << 96) | voucher.amount;
    let token_deadline = (address(voucher.token) << 96) | voucher.deadline;
    // EIP-2098: the parity bit goes in the top bit of s.
    let vs = signature.s() | (U256::from(u8::from(signature.v())) << 255);
    Some((ids, recipient_amount, token_deadline, B256::from(signature.r()), B256::from(vs)))
}

//! Building and signing EIP-1559 transactions, and the fee arithmetic of a replacement.

use alloy::{
    consensus::{SignableTransaction, TxEip1559, TxEnvelope},
    eips::{eip1559::Eip1559Estimation, eip2718::Encodable2718},
    primitives::{Address, B256, Bytes, TxKind, U256},
    signers::{SignerSync, local::PrivateKeySigner},
};

/// The two EIP-1559 fee fields, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fees {
    pub(crate) max_fee_per_gas: u128,
    pub(crate) max_priority_fee_per_gas: u128,
}

impl Fees {
    /// A fresh estimate, held under `cap` (the priority fee never exceeds the max fee).
    pub(crate) fn from_estimate(estimate: Eip1559Estimation, cap: Option<u128>) -> Self {
        let max_fee = cap.map_or(estimate.max_fee_per_gas, |cap| estimate.max_fee_per_gas.min(cap));
        Self { max_fee_per_gas: max_fee, max_priority_fee_per_gas: estimate.max_priority_fee_per_gas.min(max_fee) }
    }

    /// The fees of a replacement: each field at least `percent` % above the current one plus
    /// 1 wei (nodes want ≥ 10 % on both; the extra wei covers rounding), and no lower than a
    /// fresh `estimate` (when the base fee has jumped, a 10 % step is not enough). `None` when
    /// `cap` leaves no room for a valid replacement.
    pub(crate) fn bumped(self, percent: u32, estimate: Fees, cap: Option<u128>) -> Option<Fees> {
        let step = |fee: u128| fee.saturating_add(fee.saturating_mul(u128::from(percent)) / 100).saturating_add(1);
        let (min_max_fee, min_priority) = (step(self.max_fee_per_gas), step(self.max_priority_fee_per_gas));
        let priority = min_priority.max(estimate.max_priority_fee_per_gas);
        let mut max_fee = min_max_fee.max(estimate.max_fee_per_gas).max(priority);
        if let Some(cap) = cap {
            max_fee = max_fee.min(cap);
        }
        let priority = priority.min(max_fee);
        (max_fee >= min_max_fee && priority >= min_priority)
            .then_some(Fees { max_fee_per_gas: max_fee, max_priority_fee_per_gas: priority })
    }
}

/// Everything that goes into one signature.
#[derive(Debug, Clone)]
pub(crate) struct Unsigned {
    pub(crate) chain_id: u64,
    pub(crate) nonce: u64,
    pub(crate) gas_limit: u64,
    pub(crate) fees: Fees,
    pub(crate) to: Option<Address>,
    pub(crate) value: U256,
    pub(crate) input: Bytes,
}

/// A signed transaction as broadcast: its EIP-2718 bytes and their hash.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) hash: B256,
    pub(crate) raw: Vec<u8>,
}

/// Signs `tx` (an EIP-1559 transaction) with `signer`.
pub(crate) fn sign(signer: &PrivateKeySigner, tx: &Unsigned) -> Result<Signed, alloy::signers::Error> {
    let unsigned = TxEip1559 {
        chain_id: tx.chain_id,
        nonce: tx.nonce,
        gas_limit: tx.gas_limit,
        max_fee_per_gas: tx.fees.max_fee_per_gas,
        max_priority_fee_per_gas: tx.fees.max_priority_fee_per_gas,
        to: tx.to.map_or(TxKind::Create, TxKind::Call),
        value: tx.value,
        access_list: Default::default(),
        input: tx.input.clone(),
    };
    let signature = signer.sign_hash_sync(&unsigned.signature_hash())?;
    let envelope = TxEnvelope::from(unsigned.into_signed(signature));
    Ok(Signed { hash: *envelope.tx_hash(), raw: envelope.encoded_2718() })
}

#[cfg(test)]
mod tests {
    use alloy::{consensus::Transaction, eips::eip2718::Decodable2718};

    use super::*;

    fn fees(max: u128, priority: u128) -> Fees {
        Fees { max_fee_per_gas: max, max_priority_fee_per_gas: priority }
    }

    #[test]
    fn a_bump_raises_both_fees_by_at_least_the_percentage_plus_one_wei() {
        let bumped = fees(1_000, 100).bumped(10, fees(0, 0), None).unwrap();
        assert_eq!(bumped, fees(1_101, 111));
        // Rounding never lets a small fee escape the bump.
        let bumped = fees(9, 1).bumped(10, fees(0, 0), None).unwrap();
        assert!(bumped.max_fee_per_gas >= 10 && bumped.max_priority_fee_per_gas >= 2);
    }

    #[test]
    fn a_bump_follows_a_fresh_estimate_when_the_base_fee_jumped() {
        let bumped = fees(1_000, 100).bumped(10, fees(50_000, 150), None).unwrap();
        assert_eq!(bumped, fees(50_000, 150));
    }

    #[test]
    fn a_bump_stays_under_the_cap_or_is_refused() {
        let bumped = fees(1_000, 100).bumped(10, fees(50_000, 150), Some(2_000)).unwrap();
        assert_eq!(bumped, fees(2_000, 150));
        assert_eq!(fees(1_000, 100).bumped(10, fees(0, 0), Some(1_050)), None);
    }

    #[test]
    fn a_signed_transaction_decodes_back_to_its_fields_and_signer() {
        let signer = PrivateKeySigner::random();
        let to = Address::repeat_byte(7);
        let signed = sign(
            &signer,
            &Unsigned {
                chain_id: 31_337,
                nonce: 5,
                gas_limit: 21_000,
                fees: fees(2_000_000_000, 1_000_000_000),
                to: Some(to),
                value: U256::from(1),
                input: Bytes::new(),
            },
        )
        .unwrap();
        let decoded = TxEnvelope::decode_2718(&mut signed.raw.as_slice()).unwrap();
        assert_eq!(*decoded.tx_hash(), signed.hash);
        assert_eq!(decoded.nonce(), 5);
        assert_eq!(decoded.to(), Some(to));
        assert_eq!(decoded.max_fee_per_gas(), 2_000_000_000);
        let TxEnvelope::Eip1559(inner) = &decoded else { panic!("not an EIP-1559 transaction") };
        let recovered = inner.signature().recover_address_from_prehash(&inner.signature_hash()).unwrap();
        assert_eq!(recovered, signer.address());
    }
}

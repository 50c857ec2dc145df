//! Royalty enforcement, a campaign's option beyond EIP-2981 (in the manner of ERC721-C): the
//! collection names the platform's `OperatorAllowlistValidator`, which lets a token move between
//! holders only when its owner moves it, or through a marketplace operator on the collection's
//! allowlist (`ROYALTY_ENFORCEMENT_OPERATORS`: Seaport and its conduit by default). A
//! marketplace that skips royalties can no longer move the tokens; a Seaport sale still works.
//!
//! The campaign's flag is what the brand chose; the chain follows it through the transaction
//! queue, when the collection is deployed (if the flag is on) and at each change after that.
//! The operators are allowlisted first (one queue key per operator, so never twice), then the
//! collection's validator is set, or cleared, under a key of its own for each change (the
//! campaign's `royalty_enforcement_version`). One signer sends both in the order they were
//! queued, so Seaport is allowed before the validator starts refusing anyone.

use alloy::{primitives::Address, sol_types::SolCall};
use shared::{
    contracts::{CampaignNFT, OperatorAllowlistValidator},
    service::Resources,
};
use sqlx::PgConnection;

use crate::{
    config::BackofficeConfig,
    deploy::{SetupCall, queue_setup},
};

/// Queues what brings campaign `id`'s collection in line with its flag. Does nothing before the
/// collection exists (its deployment calls this once it is confirmed, if the flag is on). Run it
/// in the transaction that changed the flag (or recorded the collection).
pub(crate) async fn follow(conn: &mut PgConnection, resources: &Resources, id: i64) -> anyhow::Result<()> {
    let row = sqlx::query!(
        "SELECT brand_id, chain_id, collection_address, royalty_enforcement, royalty_enforcement_version
         FROM campaigns WHERE id = $1",
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let (Some(collection), Some(chain_id)) = (row.collection_address, row.chain_id) else {
        return Ok(());
    };
    let collection = Address::try_from(collection.as_slice())?;
    let chain_id = u64::try_from(chain_id)?;
    let config = resources.config();
    let relayer = shared::chain::relayer(&config.chain).ok_or_else(|| anyhow::anyhow!("no transaction signer"))?;
    let validator = config.chain.contracts.transfer_validator;
    let what = "royalty-enforcement";
    let mut calls = Vec::new();
    let switch_to = match (row.royalty_enforcement, validator) {
        (true, Some(validator)) => {
            for operator in &resources.part::<BackofficeConfig>()?.enforcement_operators {
                let call =
                    OperatorAllowlistValidator::setOperatorCall { collection, operator: *operator, allowed: true };
                let key = format!("campaign-setup:{id}:allow:{operator}");
                calls.push(SetupCall { key, to: validator, data: call.abi_encode(), what });
            }
            validator
        }
        (true, None) => {
            // Chosen while the platform had one (the API refuses the option without it).
            tracing::warn!(campaign = id, "royalty enforcement chosen but no TRANSFER_VALIDATOR_ADDRESS is configured");
            return Ok(());
        }
        (false, _) => Address::ZERO,
    };
    let version = row.royalty_enforcement_version;
    let call = CampaignNFT::setTransferValidatorCall { validator: switch_to };
    let key = format!("campaign-enforcement:{id}:{version}");
    calls.push(SetupCall { key, to: collection, data: call.abi_encode(), what });
    queue_setup(conn, id, row.brand_id, chain_id, relayer, calls).await
}

//! Deploying a campaign's collection: the deploy request asks the transaction queue to call
//! `CampaignFactory.deployCampaign`; [`DeploymentWatcher`] reacts to the queue's `tx.confirmed`
//! / `tx.failed` and moves the deployment and the campaign on (live, or deploy_failed with the
//! revert reason, to be retried).
//!
//! Re-clicking deploy never deploys twice: the campaign row is locked, a deployment exists at
//! most once per campaign, each attempt has its own idempotency key in the queue, and the
//! factory itself refuses a second collection for one campaign id (CREATE2 salt).

use alloy::{
    primitives::{Address, U256},
    providers::Provider,
    sol_types::SolCall,
};
use axum::{extract::State, http::StatusCode};
use serde_json::{Value, json};
use shared::{
    AppState,
    audit::{self, Entry},
    auth::{Caller, Permission, require},
    chain::txqueue::{self, IdempotencyKey, Requester, TxRequest},
    contracts::{CampaignFactory, Checkout, RewardVault, campaign_factory::CampaignNFT},
    http::{
        ApiError, ApiResult, FieldError, Problem,
        extract::{Json, Path},
    },
    service::Resources,
    workflow::{
        BoxFuture, OutboxEvent, Subscriber, Transition, apply,
        machines::{Campaign as CampaignMachine, CampaignEvent, CampaignState, Deployment, DeploymentEvent},
    },
};
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    campaigns::{self, Campaign, CampaignPath},
    enforcement,
};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(require(Permission::CampaignsManage, routes!(deploy)))
}

/// Deploys the campaign's collection (or retries a failed deployment). Answers 202 while the
/// transaction is on its way, and the current deployment unchanged when one is under way or
/// done.
#[utoipa::path(post, path = "/brands/{brand_id}/campaigns/{campaign_id}/deploy", tag = "campaigns",
    params(("brand_id" = i64, Path), ("campaign_id" = i64, Path)),
    responses(
        (status = 202, description = "Deployment requested", body = Campaign),
        (status = 200, description = "Already deploying or deployed; nothing new was sent", body = Campaign),
        (status = 409, description = "Archived, or the platform has no factory or signer", body = Problem),
        (status = 422, description = "Not ready: what is missing, by field", body = Problem),
    ))]
#[tracing::instrument(skip_all)]
async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path(CampaignPath { campaign_id: id }): Path<CampaignPath>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    let brand = caller.brand()?.id;
    let mut tx = state.db().begin().await?;
    let current = campaigns::lock(&mut tx, brand.get(), id).await?;
    let contracts = &state.config().chain.contracts;
    let unavailable = |detail: &str| ApiError::Conflict {
        code: shared::http::ConflictCode::DeploymentUnavailable,
        detail: detail.to_owned(),
    };
    let factory = contracts.campaign_factory.ok_or_else(|| unavailable("no CampaignFactory is configured"))?;
    let relayer = shared::chain::relayer(&state.config().chain)
        .ok_or_else(|| unavailable("no transaction signer is configured"))?;
    let chain_id = match state.config().chain.expected_chain_id {
        Some(id) => id,
        None => state
            .chain()
            .chain_id()
            .await
            .map_err(|e| ApiError::Unavailable { detail: format!("the chain cannot be reached: {e}"), checks: None })?,
    };

    if !campaigns::before_deployment(current) {
        if current == CampaignState::Archived {
            return Err(ApiError::Conflict {
                code: shared::http::ConflictCode::CampaignArchived,
                detail: "the campaign is archived".into(),
            });
        }
        let campaign = campaigns::load(&mut tx, &state, brand.get(), id).await?;
        return Ok((StatusCode::OK, Json(campaign)));
    }
    let row = sqlx::query!(
        "SELECT c.name, c.symbol, c.royalty_bps, COALESCE(c.royalty_receiver, b.treasury_address) AS receiver,
                c.artwork_key, (SELECT sum(supply) FROM campaign_items i WHERE i.campaign_id = c.id) AS supply
         FROM campaigns c JOIN brands b ON b.id = c.brand_id WHERE c.id = $1",
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    let mut missing = Vec::new();
    if row.supply.is_none() {
        missing.push(FieldError::new("items", "add at least one item: their supplies make the collection's cap"));
    }
    if row.artwork_key.is_none() {
        missing.push(FieldError::new("artwork", "upload the artwork the tokens show"));
    }
    let receiver = row.receiver.as_deref().and_then(|bytes| Address::try_from(bytes).ok());
    if receiver.is_none() {
        missing.push(FieldError::new("royalty_receiver", "set a royalty receiver or the brand's treasury address"));
    }
    let (Some(supply), Some(receiver), true) = (row.supply, receiver, missing.is_empty()) else {
        return Err(ApiError::Validation(missing));
    };

    // One deployment per campaign; a retry is a new attempt with its own queue key.
    let existing = sqlx::query!("SELECT id, attempt FROM contract_deployments WHERE campaign_id = $1", id)
        .fetch_optional(&mut *tx)
        .await?;
    let actor = caller.principal.actor();
    let (deployment, attempt) = match existing {
        Some(existing) => {
            let attempt = existing.attempt + 1;
            let cause = format!("retry:{attempt}");
            apply::<Deployment>(&mut tx, Transition::new(existing.id, DeploymentEvent::Retry, &cause, &actor)).await?;
            sqlx::query!(
                "UPDATE contract_deployments SET attempt = $2, error = NULL WHERE id = $1",
                existing.id,
                attempt
            )
            .execute(&mut *tx)
            .await?;
            (existing.id, attempt)
        }
        None => {
            let id = sqlx::query_scalar!(
                "INSERT INTO contract_deployments (brand_id, campaign_id) VALUES ($1, $2) RETURNING id",
                brand.get(),
                id
            )
            .fetch_one(&mut *tx)
            .await?;
            (id, 1)
        }
    };
    let base_uri = state.config().http.public.link(shared::config::Site::Backoffice, &format!("/metadata/{id}/"));
    let minters = contracts.checkout.into_iter().chain([relayer]).collect();
    let call = CampaignFactory::deployCampaignCall {
        campaignId: U256::from(id),
        params: CampaignNFT::InitParams {
            name: row.name,
            symbol: row.symbol,
            baseURI: base_uri,
            maxSupply: U256::from(supply.to_string().parse::<u64>().map_err(|e| ApiError::Internal(e.into()))?),
            royaltyReceiver: receiver,
            royaltyBps: alloy::primitives::Uint::from(u16::try_from(row.royalty_bps).unwrap_or(0)),
            admin: relayer,
            minters,
        },
    };
    let key = IdempotencyKey::new(format!("campaign-deploy:{id}:{attempt}"))?;
    let request = TxRequest::call(key, chain_id, relayer, factory, call.abi_encode().into())
        .requested_by(Requester::CampaignDeployment)
        .with_context(json!({ "deployment_id": deployment, "campaign_id": id, "brand_id": brand }));
    let queued = txqueue::enqueue(&mut tx, &request).await?;
    sqlx::query!("UPDATE contract_deployments SET chain_tx_id = $2 WHERE id = $1", deployment, queued.id.get())
        .execute(&mut *tx)
        .await?;
    let cause = format!("tx:{}", queued.id.get());
    apply::<Deployment>(&mut tx, Transition::new(deployment, DeploymentEvent::Submit, &cause, &actor)).await?;
    let cause = format!("deploy:{attempt}");
    let transition = Transition::<CampaignMachine>::new(id, CampaignEvent::Deploy, &cause, &actor)
        .with_payload(json!({ "brand_id": brand, "attempt": attempt }));
    apply(&mut tx, transition).await?;
    let campaign = campaigns::load(&mut tx, &state, brand.get(), id).await?;
    let entry = Entry::new("campaign.deploy_requested", format!("campaign:{id}"))
        .after(json!({ "attempt": attempt, "chain_tx_id": queued.id.get(), "chain_id": chain_id }));
    audit::record(&mut tx, &caller, entry).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(campaign)))
}

/// Moves deployments (and their campaigns) on when the queue confirms or fails their
/// transaction; once a collection exists, queues its set-up on the platform's other contracts
/// (the vault's campaign admin, the checkout's treasury) and, when the campaign enforces
/// royalties, its transfer validator.
pub(crate) struct DeploymentWatcher {
    resources: Resources,
}

impl DeploymentWatcher {
    pub(crate) fn new(resources: &Resources) -> Self {
        Self { resources: resources.clone() }
    }

    async fn confirmed(&self, conn: &mut PgConnection, deployment: i64, event: &OutboxEvent) -> anyhow::Result<()> {
        let row = sqlx::query!(
            "SELECT d.brand_id, d.campaign_id, d.attempt, b.treasury_address, c.royalty_receiver
             FROM contract_deployments d JOIN brands b ON b.id = d.brand_id JOIN campaigns c ON c.id = d.campaign_id
             WHERE d.id = $1",
            deployment
        )
        .fetch_one(&mut *conn)
        .await?;
        let contracts = &self.resources.config().chain.contracts;
        let factory = contracts.campaign_factory.ok_or_else(|| anyhow::anyhow!("no CampaignFactory configured"))?;
        let provider = self.resources.chain().provider();
        let factory = CampaignFactory::new(factory, provider);
        let collection = factory.collectionOf(U256::from(row.campaign_id)).call().await?;
        anyhow::ensure!(
            !collection.is_zero() && !provider.get_code_at(collection).await?.is_empty(),
            "campaign {}: the factory reports no collection although the deployment confirmed",
            row.campaign_id
        );
        let chain_id = event.payload["chain_id"].as_i64();
        sqlx::query!(
            "UPDATE contract_deployments SET collection_address = $2 WHERE id = $1",
            deployment,
            collection.as_slice()
        )
        .execute(&mut *conn)
        .await?;
        // Waits for a change of the campaign being committed, then sees its flag as changed.
        let enforce = sqlx::query_scalar!(
            "UPDATE campaigns SET collection_address = $2, chain_id = $3, updated_at = now() WHERE id = $1
             RETURNING royalty_enforcement",
            row.campaign_id,
            collection.as_slice(),
            chain_id
        )
        .fetch_one(&mut *conn)
        .await?;
        let cause = format!("event:{}", event.id);
        let payload = json!({ "brand_id": row.brand_id, "campaign_id": row.campaign_id, "collection": collection });
        apply::<Deployment>(
            conn,
            Transition::new(deployment, DeploymentEvent::Confirm, &cause, "txqueue").with_payload(payload.clone()),
        )
        .await?;
        apply::<CampaignMachine>(
            conn,
            Transition::new(row.campaign_id, CampaignEvent::DeployConfirmed, &cause, "txqueue").with_payload(payload),
        )
        .await?;

        if enforce {
            enforcement::follow(conn, &self.resources, row.campaign_id).await?;
        }
        // Set-up calls on the other contracts, each once (their own queue keys).
        let treasury = row.treasury_address.or(row.royalty_receiver).and_then(|b| Address::try_from(b.as_slice()).ok());
        let (Some(treasury), Some(chain_id), Some(relayer)) = (
            treasury,
            chain_id.and_then(|id| u64::try_from(id).ok()),
            shared::chain::relayer(&self.resources.config().chain),
        ) else {
            return Ok(());
        };
        let mut setup = Vec::new();
        let key = |what: &str| format!("campaign-setup:{}:{what}", row.campaign_id);
        if let Some(vault) = contracts.reward_vault {
            let call = RewardVault::setCampaignAdminCall { campaignId: U256::from(row.campaign_id), admin: treasury };
            let what = "vault-admin";
            setup.push(SetupCall { key: key(what), to: vault, data: call.abi_encode(), what });
        }
        if let Some(checkout) = contracts.checkout {
            let call = Checkout::setCollectionTreasuryCall { collection, treasury };
            let what = "checkout-treasury";
            setup.push(SetupCall { key: key(what), to: checkout, data: call.abi_encode(), what });
        }
        queue_setup(conn, row.campaign_id, row.brand_id, chain_id, relayer, setup).await
    }

    async fn failed(&self, conn: &mut PgConnection, deployment: i64, event: &OutboxEvent) -> anyhow::Result<()> {
        let row = sqlx::query!("SELECT brand_id, campaign_id FROM contract_deployments WHERE id = $1", deployment)
            .fetch_one(&mut *conn)
            .await?;
        let reason = failure_reason(&event.payload);
        sqlx::query!("UPDATE contract_deployments SET error = $2 WHERE id = $1", deployment, reason)
            .execute(&mut *conn)
            .await?;
        let cause = format!("event:{}", event.id);
        let payload = json!({ "brand_id": row.brand_id, "campaign_id": row.campaign_id, "error": reason });
        apply::<Deployment>(
            conn,
            Transition::new(deployment, DeploymentEvent::Fail, &cause, "txqueue").with_payload(payload.clone()),
        )
        .await?;
        apply::<CampaignMachine>(
            conn,
            Transition::new(row.campaign_id, CampaignEvent::DeployFailed, &cause, "txqueue").with_payload(payload),
        )
        .await?;
        Ok(())
    }
}

/// A call setting a deployed campaign up, queued once under `key` (`what` names it in the
/// transaction's context).
pub(crate) struct SetupCall {
    pub(crate) key: String,
    pub(crate) to: Address,
    pub(crate) data: Vec<u8>,
    pub(crate) what: &'static str,
}

/// Queues campaign `campaign`'s set-up calls from the relayer, in order (one signer sends them
/// in the order queued).
pub(crate) async fn queue_setup(
    conn: &mut PgConnection,
    campaign: i64,
    brand: i64,
    chain_id: u64,
    relayer: Address,
    calls: Vec<SetupCall>,
) -> anyhow::Result<()> {
    for SetupCall { key, to, data, what } in calls {
        let request = TxRequest::call(IdempotencyKey::new(key)?, chain_id, relayer, to, data.into())
            .requested_by(Requester::CampaignSetup)
            .with_context(json!({ "campaign_id": campaign, "brand_id": brand, "setup": what }));
        txqueue::enqueue(conn, &request).await?;
    }
    Ok(())
}

/// Why a deployment transaction failed, for the operator: the revert reason, else the factory's
/// (or the collection's) custom error decoded from the revert data, else the queue's error.
fn failure_reason(payload: &Value) -> String {
    use alloy::sol_types::SolInterface;
    if let Some(reason) = payload["revert_reason"].as_str() {
        return reason.to_owned();
    }
    let data = payload["revert_data"].as_str().and_then(|hex| alloy::hex::decode(hex).ok());
    let decoded = data.as_deref().and_then(|data| {
        CampaignFactory::CampaignFactoryErrors::abi_decode(data)
            .map(|e| format!("{e:?}"))
            .or_else(|_| shared::contracts::CampaignNFT::CampaignNFTErrors::abi_decode(data).map(|e| format!("{e:?}")))
            .ok()
    });
    let error = payload["error"].as_str().unwrap_or("the transaction failed");
    match decoded {
        Some(decoded) => format!("{error}: {decoded}"),
        None => error.to_owned(),
    }
}

impl Subscriber for DeploymentWatcher {
    fn name(&self) -> &'static str {
        "backoffice.deployments"
    }

    fn event_types(&self) -> &'static [&'static str] {
        Requester::CampaignDeployment.outcomes()
    }

    fn handle<'a>(&'a self, event: &'a OutboxEvent, conn: &'a mut PgConnection) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let Some(deployment) = event.payload["context"]["deployment_id"].as_i64() else {
                anyhow::bail!("deployment transaction {} without its deployment id", event.aggregate_id);
            };
            // The transaction of an older attempt is stale news.
            let current = sqlx::query_scalar!("SELECT chain_tx_id FROM contract_deployments WHERE id = $1", deployment)
                .fetch_optional(&mut *conn)
                .await?
                .flatten();
            if current != Some(event.aggregate_id) {
                return Ok(());
            }
            match Requester::is_confirmed(&event.event_type) {
                true => self.confirmed(conn, deployment, event).await,
                false => self.failed(conn, deployment, event).await,
            }
        })
    }
}

//! The platform's state machines. Each is one table of allowed transitions; the business
//! logic that fires the events lives with the service that owns the entity.

use strum::{EnumString, IntoStaticStr, VariantArray};

use super::Machine;

macro_rules! names {
    ($(#[$meta:meta])* $name:ident { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray,
            serde::Serialize, serde::Deserialize, utoipa::ToSchema,
        )]
        #[strum(serialize_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        $crate::text_sql_type!($name);

        impl $name {
            /// The name stored on rows and used on the wire.
            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Order: card path pending → authorized → minting → minted → fulfilled; wallet path
// pending → fulfilled (payment and mint are one on-chain transaction).

names!(
    /// Where an order is.
    OrderState { Pending, Authorized, Minting, Minted, Fulfilled, Expired, Failed, Refunded }
);
names!(
    /// What can happen to an order.
    OrderEvent { Authorize, RequestMint, MintConfirmed, MintFailed, Capture, PaidOnChain, Expire, Fail, Refund }
);

/// A buyer's order.
#[derive(Debug)]
pub struct Order;

impl Machine for Order {
    const NAME: &'static str = "order";
    const TABLE: &'static str = "orders";
    type State = OrderState;
    type Event = OrderEvent;
    const INITIAL: OrderState = OrderState::Pending;
    const TRANSITIONS: &'static [(OrderState, OrderEvent, OrderState)] = {
        use OrderEvent as E;
        use OrderState as S;
        &[
            (S::Pending, E::Authorize, S::Authorized),
            (S::Pending, E::PaidOnChain, S::Fulfilled),
            (S::Pending, E::Expire, S::Expired),
            (S::Pending, E::Fail, S::Failed),
            (S::Authorized, E::RequestMint, S::Minting),
            (S::Authorized, E::Expire, S::Expired),
            (S::Authorized, E::Fail, S::Failed),
            (S::Minting, E::MintConfirmed, S::Minted),
            (S::Minting, E::MintFailed, S::Failed),
            (S::Minted, E::Capture, S::Fulfilled),
            (S::Fulfilled, E::Refund, S::Refunded),
        ]
    };
}

// ---------------------------------------------------------------------------------------------
// Campaign: set up in draft, deployed on chain, sold while live (or paused), ended, archived.

names!(
    /// Where a campaign is.
    CampaignState { Draft, Deploying, DeployFailed, Live, Paused, Ended, Archived }
);
names!(
    /// What can happen to a campaign.
    CampaignEvent { Deploy, DeployConfirmed, DeployFailed, Pause, Resume, End, Archive }
);

/// A brand's campaign.
#[derive(Debug)]
pub struct Campaign;

impl Machine for Campaign {
    const NAME: &'static str = "campaign";
    const TABLE: &'static str = "campaigns";
    type State = CampaignState;
    type Event = CampaignEvent;
    const INITIAL: CampaignState = CampaignState::Draft;
    const TRANSITIONS: &'static [(CampaignState, CampaignEvent, CampaignState)] = {
        use CampaignEvent as E;
        use CampaignState as S;
        &[
            (S::Draft, E::Deploy, S::Deploying),
            (S::DeployFailed, E::Deploy, S::Deploying),
            (S::Deploying, E::DeployConfirmed, S::Live),
            (S::Deploying, E::DeployFailed, S::DeployFailed),
            (S::Live, E::Pause, S::Paused),
            (S::Paused, E::Resume, S::Live),
            (S::Live, E::End, S::Ended),
            (S::Paused, E::End, S::Ended),
            (S::Ended, E::Archive, S::Archived),
            (S::Draft, E::Archive, S::Archived),
            (S::DeployFailed, E::Archive, S::Archived),
        ]
    };
}

// ---------------------------------------------------------------------------------------------
// Contract deployment: asks the transaction queue, waits for confirmation; a failure can be
// retried.

names!(
    /// Where a campaign's contract deployment is.
    DeploymentState { Requested, Submitted, Confirmed, Failed }
);
names!(
    /// What can happen to a deployment.
    DeploymentEvent { Submit, Confirm, Fail, Retry }
);

/// Deploying a campaign's collection through the factory.
#[derive(Debug)]
pub struct Deployment;

impl Machine for Deployment {
    const NAME: &'static str = "deployment";
    const TABLE: &'static str = "contract_deployments";
    type State = DeploymentState;
    type Event = DeploymentEvent;
    const INITIAL: DeploymentState = DeploymentState::Requested;
    const TRANSITIONS: &'static [(DeploymentState, DeploymentEvent, DeploymentState)] = {
        use DeploymentEvent as E;
        use DeploymentState as S;
        &[
            (S::Requested, E::Submit, S::Submitted),
            (S::Requested, E::Fail, S::Failed),
            (S::Submitted, E::Confirm, S::Confirmed),
            (S::Submitted, E::Fail, S::Failed),
            (S::Failed, E::Retry, S::Requested),
        ]
    };
}

// ---------------------------------------------------------------------------------------------
// Chain transaction: the persisted transaction queue's request (`chain::txqueue`). Signed before
// broadcast (the raw transaction is stored first), re-signed with higher fees when stuck,
// re-broadcast when a reorg drops it, final at N confirmations.

names!(
    /// Where a queued chain transaction is.
    TxState { Queued, Signed, Broadcast, Mined, Confirmed, Failed }
);
names!(
    /// What can happen to a queued chain transaction.
    TxEvent { Sign, Broadcast, Bump, Mine, Reorg, Confirm, Revert, Fail, Requeue, Cancel, DeepReorg }
);

/// A contract call (or transfer) through the transaction queue. Its events are `tx.confirmed`
/// and `tx.failed`, which the requesting machine waits for.
#[derive(Debug)]
pub struct ChainTx;

impl Machine for ChainTx {
    const NAME: &'static str = "tx";
    const TABLE: &'static str = "chain_transactions";
    type State = TxState;
    type Event = TxEvent;
    const INITIAL: TxState = TxState::Queued;
    const TRANSITIONS: &'static [(TxState, TxEvent, TxState)] = {
        use TxEvent as E;
        use TxState as S;
        &[
            (S::Queued, E::Sign, S::Signed),
            // Refused before a nonce was spent on it (the call reverts when estimated).
            (S::Queued, E::Fail, S::Failed),
            (S::Signed, E::Broadcast, S::Broadcast),
            // Found mined while we were unsure whether the broadcast went out.
            (S::Signed, E::Mine, S::Mined),
            // The node refused it for good; its nonce is handed on or filled.
            (S::Signed, E::Fail, S::Failed),
            // Its nonce was used by a transaction sent outside the queue: sign it again with a
            // fresh nonce.
            (S::Signed, E::Requeue, S::Queued),
            (S::Broadcast, E::Requeue, S::Queued),
            // Stuck: the same nonce re-signed with higher fees, to be broadcast again.
            (S::Broadcast, E::Bump, S::Signed),
            (S::Broadcast, E::Mine, S::Mined),
            // The block holding it was orphaned: broadcast the signed transaction again.
            (S::Mined, E::Reorg, S::Signed),
            (S::Mined, E::Confirm, S::Confirmed),
            (S::Mined, E::Revert, S::Failed),
            // An operator cancelled it: before it was signed, or its nonce went to a 0-value
            // self-transfer (mined in its place). Its requester hears `tx.failed`.
            (S::Queued, E::Cancel, S::Failed),
            (S::Mined, E::Cancel, S::Failed),
            // A reorg deeper than its confirmations removed it before its block was finalized:
            // broadcast the signed transaction again.
            (S::Confirmed, E::DeepReorg, S::Signed),
            (S::Failed, E::DeepReorg, S::Signed),
        ]
    };
}

// ---------------------------------------------------------------------------------------------
// Redemption of a reward by a holder.

names!(
    /// Where a redemption is.
    RedemptionState { Claimed, AwaitingKyc, Submitted, VoucherIssued, Completed, Failed, Refused, Expired }
);
names!(
    /// What can happen to a redemption.
    RedemptionEvent { HoldForKyc, Submit, IssueVoucher, Deliver, Confirm, Fail, Refuse, Expire }
);

impl RedemptionState {
    /// States of a claim that did not pay and gave the token's use back (the unique index
    /// `redemptions_once_idx` leaves them out too).
    pub const RELEASED: [RedemptionState; 3] =
        [RedemptionState::Failed, RedemptionState::Refused, RedemptionState::Expired];

    /// The names of [`Self::RELEASED`], for `state <> ALL($n)` in SQL.
    pub fn released_names() -> Vec<&'static str> {
        Self::RELEASED.iter().map(|state| state.as_str()).collect()
    }
}

/// A holder redeeming a reward for a token (wallet signature or QR code). A token reward is
/// paid by the vault: the platform submits its voucher (`submitted`) or hands it to the
/// customer to send (`voucher_issued`); either way `completed` comes with the vault's payout. A
/// perk is `completed` when its code is handed out. Above the reward's KYC threshold a claim
/// waits in `awaiting_kyc` for the customer's approval.
#[derive(Debug)]
pub struct Redemption;

impl Machine for Redemption {
    const NAME: &'static str = "redemption";
    const TABLE: &'static str = "redemptions";
    type State = RedemptionState;
    type Event = RedemptionEvent;
    const INITIAL: RedemptionState = RedemptionState::Claimed;
    const TRANSITIONS: &'static [(RedemptionState, RedemptionEvent, RedemptionState)] = {
        use RedemptionEvent as E;
        use RedemptionState as S;
        &[
            (S::Claimed, E::HoldForKyc, S::AwaitingKyc),
            (S::Claimed, E::Submit, S::Submitted),
            (S::Claimed, E::IssueVoucher, S::VoucherIssued),
            (S::Claimed, E::Deliver, S::Completed),
            (S::AwaitingKyc, E::Submit, S::Submitted),
            (S::AwaitingKyc, E::IssueVoucher, S::VoucherIssued),
            (S::AwaitingKyc, E::Refuse, S::Refused),
            (S::Submitted, E::Confirm, S::Completed),
            (S::Submitted, E::Fail, S::Failed),
            (S::VoucherIssued, E::Confirm, S::Completed),
            (S::VoucherIssued, E::Expire, S::Expired),
        ]
    };
}

// ---------------------------------------------------------------------------------------------
// Reward distribution batch (royalty share paid to holders in one vault call).

names!(
    /// Where a reward distribution batch is.
    RewardBatchState { Draft, Sealed, Submitted, Distributed, Failed }
);
names!(
    /// What can happen to a reward batch.
    RewardBatchEvent { Seal, Submit, Confirm, Fail, Retry }
);

/// A batch of royalty-share payouts.
#[derive(Debug)]
pub struct RewardBatch;

impl Machine for RewardBatch {
    const NAME: &'static str = "reward_batch";
    const TABLE: &'static str = "reward_batches";
    type State = RewardBatchState;
    type Event = RewardBatchEvent;
    const INITIAL: RewardBatchState = RewardBatchState::Draft;
    const TRANSITIONS: &'static [(RewardBatchState, RewardBatchEvent, RewardBatchState)] = {
        use RewardBatchEvent as E;
        use RewardBatchState as S;
        &[
            (S::Draft, E::Seal, S::Sealed),
            (S::Sealed, E::Submit, S::Submitted),
            (S::Submitted, E::Confirm, S::Distributed),
            (S::Submitted, E::Fail, S::Failed),
            (S::Failed, E::Retry, S::Sealed),
        ]
    };
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// Structural checks every machine table must pass.
    fn check_table<M: Machine>() {
        let mut seen = HashSet::new();
        for (from, event, _) in M::TRANSITIONS {
            assert!(seen.insert((*from, *event)), "{}: ({from:?}, {event:?}) appears twice", M::NAME);
        }
        // Every state is reachable from the initial one.
        let mut reachable = HashSet::from([M::INITIAL]);
        loop {
            let before = reachable.len();
            for (from, _, to) in M::TRANSITIONS {
                if reachable.contains(from) {
                    reachable.insert(*to);
                }
            }
            if reachable.len() == before {
                break;
            }
        }
        for state in <M::State as VariantArray>::VARIANTS {
            assert!(reachable.contains(state), "{}: {state:?} is unreachable", M::NAME);
        }
        // Every event is used somewhere.
        for event in <M::Event as VariantArray>::VARIANTS {
            assert!(M::TRANSITIONS.iter().any(|(_, e, _)| e == event), "{}: {event:?} is never allowed", M::NAME);
        }
        // Names round-trip (they are what the database stores).
        for state in <M::State as VariantArray>::VARIANTS {
            let name: &'static str = (*state).into();
            assert!(name.parse::<M::State>().is_ok_and(|s| s == *state), "{name}");
        }
    }

    #[test]
    fn every_machine_table_is_deterministic_reachable_and_named() {
        check_table::<Order>();
        check_table::<Campaign>();
        check_table::<Deployment>();
        check_table::<ChainTx>();
        check_table::<Redemption>();
        check_table::<RewardBatch>();
    }

    #[test]
    fn transitions_not_in_the_table_are_refused() {
        assert_eq!(Order::transition(OrderState::Pending, OrderEvent::Capture), None);
        assert_eq!(Order::transition(OrderState::Fulfilled, OrderEvent::Expire), None);
        assert_eq!(Order::transition(OrderState::Minted, OrderEvent::Capture), Some(OrderState::Fulfilled));
        assert_eq!(ChainTx::transition(TxState::Confirmed, TxEvent::Reorg), None);
    }
}

//! The access-control list: roles, named permissions, and the one table mapping one to the other.
//!
//! Platform roles (staff of Brandmint) hold permissions on every brand; brand roles hold them on
//! their own brand only. A route declares the permission it needs with [`super::require`]; the
//! permission's [`Scope`] says whether a brand is resolved from the path (`{brand_id}`) first.

use serde::{Deserialize, Serialize};
use strum::{EnumIter, EnumString, IntoEnumIterator, IntoStaticStr};
use utoipa::ToSchema;

/// What a permission applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Not tied to a brand (the caller's own account, platform-wide lists, operations).
    Platform,
    /// One brand, named by the route's `{brand_id}`: members need the permission on that brand,
    /// platform staff need it as platform staff.
    Brand,
}

/// Everything a route can require.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, EnumString, IntoStaticStr, Serialize, Deserialize, ToSchema,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum Permission {
    // ---- platform scope
    /// Any signed-in account: its own profile and sessions.
    Account,
    /// Any signed-in customer (wallet or email): their own orders and rewards.
    Customer,
    /// Create brands.
    BrandsCreate,
    /// List every brand.
    BrandsList,
    /// Read the whole audit log and verify its chain.
    AuditReadAll,
    /// Operational data: error log, daemon runs, dead letters (no financial data).
    OpsRead,
    /// Act on operations: cancel or replace a stuck chain transaction (platform admins only).
    OpsManage,
    /// Review brands' KYC submissions.
    KycReview,
    /// Handle support tickets.
    TicketsManage,
    /// Royalty reports across every brand.
    FinanceReadAll,
    // ---- brand scope
    /// Read the brand's profile.
    BrandRead,
    /// Change the brand's profile and treasury address.
    BrandEdit,
    /// List the brand's members and invitations.
    MembersRead,
    /// Invite, re-role and remove members.
    MembersManage,
    /// Create, list and revoke the brand's API keys.
    ApiKeysManage,
    /// Create and edit the brand's stores.
    StoresManage,
    /// Read campaigns and rewards.
    CampaignsRead,
    /// Create and change campaigns and rewards, deploy contracts.
    CampaignsManage,
    /// Orders, revenue, royalties, payouts.
    FinanceRead,
    /// Refund orders.
    RefundsIssue,
    /// Scan QR codes and redeem rewards (verifiers: only at their stores).
    RedemptionsScan,
    /// The brand's own audit-log rows.
    AuditRead,
    /// Register, rotate and replay the brand's webhook endpoints.
    WebhooksManage,
}

impl Permission {
    pub fn scope(self) -> Scope {
        use Permission::*;
        match self {
            Account | Customer | BrandsCreate | BrandsList | AuditReadAll | OpsRead | OpsManage | KycReview
            | TicketsManage | FinanceReadAll => Scope::Platform,
            BrandRead | BrandEdit | MembersRead | MembersManage | ApiKeysManage | StoresManage | CampaignsRead
            | CampaignsManage | FinanceRead | RefundsIssue | RedemptionsScan | AuditRead | WebhooksManage => {
                Scope::Brand
            }
        }
    }

    /// Its kebab-case name (`members-manage`), as in API keys and the OpenAPI `x-permission`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether an API key may carry it: brand permissions, except those that hand out access.
    pub fn grantable_to_api_key(self) -> bool {
        self.scope() == Scope::Brand && !matches!(self, Permission::MembersManage | Permission::ApiKeysManage)
    }
}

/// Brandmint's own staff.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, EnumString, IntoStaticStr, Serialize, Deserialize, ToSchema,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum PlatformRole {
    /// Everything.
    Admin,
    /// Tickets, KYC review, refunds, read-only brand data.
    Support,
    /// Operations (error log, daemon runs); no financial or customer data.
    Developer,
}

/// A member's role in one brand.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, EnumString, IntoStaticStr, Serialize, Deserialize, ToSchema,
)]
#[strum(serialize_all = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum BrandRole {
    /// Everything in the brand, including members, API keys and its audit log.
    Owner,
    /// Runs campaigns, stores and finances; cannot change membership.
    Manager,
    /// Reads campaigns and redeems at any store.
    Staff,
    /// Redeems at the stores it is assigned to, nothing else.
    Verifier,
}

impl BrandRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl PlatformRole {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The permission table: what each platform role may do (on every brand, for brand permissions).
pub fn platform_grants(role: PlatformRole) -> &'static [Permission] {
    use Permission::*;
    match role {
        PlatformRole::Admin => ALL.as_slice(),
        PlatformRole::Support => &[
            Account,
            BrandsList,
            KycReview,
            TicketsManage,
            FinanceReadAll,
            BrandRead,
            MembersRead,
            CampaignsRead,
            FinanceRead,
            RefundsIssue,
        ],
        PlatformRole::Developer => &[Account, OpsRead],
    }
}

/// The permission table: what each brand role may do in its own brand.
pub fn brand_grants(role: BrandRole) -> &'static [Permission] {
    use Permission::*;
    match role {
        BrandRole::Owner => &[
            BrandRead,
            BrandEdit,
            MembersRead,
            MembersManage,
            ApiKeysManage,
            StoresManage,
            CampaignsRead,
            CampaignsManage,
            FinanceRead,
            RefundsIssue,
            RedemptionsScan,
            AuditRead,
            WebhooksManage,
        ],
        BrandRole::Manager => &[
            BrandRead,
            MembersRead,
            StoresManage,
            CampaignsRead,
            CampaignsManage,
            FinanceRead,
            RedemptionsScan,
            WebhooksManage,
        ],
        BrandRole::Staff => &[BrandRead, CampaignsRead, RedemptionsScan],
        BrandRole::Verifier => &[RedemptionsScan],
    }
}

/// Every permission except [`Permission::Customer`] (admins are not customers), derived from
/// the enum so a new permission is an admin's without being listed twice.
static ALL: std::sync::LazyLock<Vec<Permission>> =
    std::sync::LazyLock::new(|| Permission::iter().filter(|p| *p != Permission::Customer).collect());

/// Permissions that every account holds by being signed in.
pub const ACCOUNT_GRANTS: &[Permission] = &[Permission::Account];
/// Permissions that every customer holds by being signed in.
pub const CUSTOMER_GRANTS: &[Permission] = &[Permission::Customer];

/// All permissions, for documentation and tests.
pub fn all_permissions() -> impl Iterator<Item = Permission> {
    Permission::iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_holds_every_permission_but_customer() {
        for permission in Permission::iter() {
            assert_eq!(platform_grants(PlatformRole::Admin).contains(&permission), permission != Permission::Customer);
        }
    }

    #[test]
    fn brand_roles_hold_only_brand_permissions_and_developers_no_brand_data() {
        for role in BrandRole::iter() {
            assert!(brand_grants(role).iter().all(|p| p.scope() == Scope::Brand), "{role:?}");
        }
        assert!(platform_grants(PlatformRole::Developer).iter().all(|p| p.scope() == Scope::Platform));
        assert!(!platform_grants(PlatformRole::Support).contains(&Permission::MembersManage));
    }

    #[test]
    fn names_round_trip() {
        for permission in Permission::iter() {
            assert_eq!(permission.as_str().parse::<Permission>().unwrap(), permission);
        }
        assert_eq!(Permission::MembersManage.as_str(), "members-manage");
    }
}

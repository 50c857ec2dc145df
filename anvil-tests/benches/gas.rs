//! `cargo xtask bench gas`: real transaction gas (receipt `gasUsed`, i.e. 21,000 intrinsic +
//! calldata + execution) of the platform's contract calls on a private anvil, next to a plain
//! OpenZeppelin ERC-721 single mint measured in the same run.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a benchmark report

use alloy::{
    primitives::{Address, U256, keccak256},
    providers::DynProvider,
    rpc::types::TransactionReceipt,
};
use shared::contracts::{
    BaselineERC721, CampaignParams, Checkout, ETH, Platform, PlatformRoles, QuoteSigner, RewardVault, VoucherSigner,
    compact_voucher,
};
use testkit as testing;

fn fresh(n: u64) -> Address {
    Address::from_word(keccak256(n.to_be_bytes()))
}

async fn gas<F>(pending: F) -> u64
where
    F: Future<Output = alloy::contract::Result<alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>>>,
{
    let receipt: TransactionReceipt = pending.await.expect("send").get_receipt().await.expect("receipt");
    assert!(receipt.status(), "transaction reverted");
    receipt.gas_used
}

struct Row {
    what: String,
    total: u64,
    per_unit: Option<(u64, &'static str)>,
    target: &'static str,
}

#[tokio::main]
async fn main() {
    let anvil = testing::anvil();
    let admin: DynProvider = testing::wallet(&anvil, 0);
    let (quote_key, voucher_key) = (testing::signer(&anvil, 1), testing::signer(&anvil, 2));
    let distributor = testing::wallet(&anvil, 3);
    let buyer = testing::wallet(&anvil, 4);
    let (me, buyer_address) = (anvil.addresses()[0], anvil.addresses()[4]);
    let roles = PlatformRoles {
        admin: me,
        deployer: me,
        quote_signer: quote_key.address(),
        voucher_signer: voucher_key.address(),
        distributor: anvil.addresses()[3],
    };
    let platform = Platform::deploy(admin.clone(), roles).await.unwrap();
    let params = CampaignParams {
        campaign_id: 1,
        name: "Bench".into(),
        symbol: "B".into(),
        base_uri: "https://meta.test/".into(),
        max_supply: 100_000,
        royalty_receiver: me,
        royalty_bps: 500,
        admin: me,
        relayer: me,
    };
    let mut rows = Vec::new();
    let deploy = gas(platform.deploy_campaign(&params).send()).await;
    rows.push(Row {
        what: "deploy campaign (EIP-1167 clone + init)".into(),
        total: deploy,
        per_unit: None,
        target: "",
    });
    let collection = platform.collection(platform.factory.collectionOf(U256::from(1)).call().await.unwrap());

    // Baseline: a plain OpenZeppelin ERC-721, one token per call, to a fresh owner.
    let baseline = BaselineERC721::deploy(admin.clone()).await.unwrap();
    let single = gas(baseline.mint(fresh(1)).send()).await;
    rows.push(Row {
        what: "baseline: OZ ERC721 single mint".into(),
        total: single,
        per_unit: Some((single, "token")),
        target: "",
    });

    // Batch mints to fresh owners.
    let mut batch = Vec::new();
    for (i, n) in [1_u64, 10, 100].into_iter().enumerate() {
        let used = gas(Platform::mint_batch(&collection, fresh(100 + i as u64), n).send()).await;
        batch.push((n, used));
        rows.push(Row {
            what: format!("batch mint n={n}"),
            total: used,
            per_unit: Some((used / n, "token")),
            target: "",
        });
    }
    let marginal = (batch[2].1 - batch[0].1) / 99;
    rows.push(Row {
        what: "batch mint: marginal cost per extra token".into(),
        total: marginal,
        per_unit: None,
        target: "<= ERC721A (~2,000)",
    });

    // Wallet checkout (ETH and stablecoin), one token.
    platform
        .checkout
        .setCollectionTreasury(*collection.address(), me)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let quotes = QuoteSigner::new(quote_key, anvil.chain_id(), *platform.checkout.address());
    let deadline = U256::from(u64::MAX);
    let as_buyer = Checkout::new(*platform.checkout.address(), buyer.clone());
    let eth_quote = Checkout::Quote {
        orderId: keccak256("bench:eth"),
        buyer: buyer_address,
        collection: *collection.address(),
        quantity: U256::from(1),
        payToken: ETH,
        amount: U256::from(10_000_000_000_000_000_u64),
        deadline,
    };
    let signature = quotes.sign(&eth_quote).await.unwrap();
    let used = gas(as_buyer.buy(eth_quote.clone(), signature).value(eth_quote.amount).send()).await;
    rows.push(Row { what: "wallet checkout, ETH, 1 token".into(), total: used, per_unit: None, target: "" });
    let usd = *platform.stablecoin.address();
    let stable_as_buyer = shared::contracts::TestStablecoin::new(usd, buyer.clone());
    stable_as_buyer.mint(buyer_address, U256::from(1_000_000_000)).send().await.unwrap().get_receipt().await.unwrap();
    stable_as_buyer.approve(*platform.checkout.address(), U256::MAX).send().await.unwrap().get_receipt().await.unwrap();
    let usd_quote =
        Checkout::Quote { orderId: keccak256("bench:usd"), payToken: usd, amount: U256::from(25_000_000), ..eth_quote };
    let signature = quotes.sign(&usd_quote).await.unwrap();
    let used = gas(as_buyer.buy(usd_quote, signature).send()).await;
    rows.push(Row { what: "wallet checkout, stablecoin, 1 token".into(), total: used, per_unit: None, target: "" });

    // Vault: fund, then redeem vouchers paying the stablecoin to fresh addresses.
    let funding = U256::from(10_000_000_000_000_u64);
    platform.stablecoin.mint(me, funding).send().await.unwrap().get_receipt().await.unwrap();
    platform.stablecoin.approve(*platform.vault.address(), funding).send().await.unwrap().get_receipt().await.unwrap();
    platform.vault.setCampaignAdmin(U256::from(1), me).send().await.unwrap().get_receipt().await.unwrap();
    platform.vault.fund(U256::from(1), usd, funding).send().await.unwrap().get_receipt().await.unwrap();
    let vouchers = VoucherSigner::new(voucher_key, anvil.chain_id(), *platform.vault.address());
    let voucher = |id: u64| RewardVault::Voucher {
        redemptionId: U256::from(id),
        campaignId: U256::from(1),
        tokenId: U256::from(id),
        recipient: fresh(1_000 + id),
        token: usd,
        amount: U256::from(25_000_000),
        deadline: U256::from(4_000_000_000_u64),
    };
    let first = voucher(1);
    let signature = vouchers.sign(&first).await.unwrap();
    let opening = gas(platform.redeem(first, signature.as_bytes().to_vec().into()).send()).await;
    let second = voucher(2);
    let signature = vouchers.sign(&second).await.unwrap();
    let full = gas(platform.redeem(second, signature.as_bytes().to_vec().into()).send()).await;
    let third = voucher(3);
    let signature = vouchers.sign(&third).await.unwrap();
    let (ids, recipient_amount, token_deadline, r, vs) = compact_voucher(&third, &signature).unwrap();
    let compact = gas(platform.vault.redeemCompact(ids, recipient_amount, token_deadline, r, vs).send()).await;
    rows.push(Row {
        what: "voucher redeem, ERC-20 to fresh address (compact)".into(),
        total: compact,
        per_unit: None,
        target: "<= 70,000",
    });
    rows.push(Row {
        what: "voucher redeem, same, ABI-encoded voucher".into(),
        total: full,
        per_unit: None,
        target: "",
    });
    rows.push(Row {
        what: "voucher redeem opening a new 256-id bitmap word".into(),
        total: opening,
        per_unit: None,
        target: "",
    });

    // Distribute royalty shares to fresh recipients.
    let as_distributor = platform.as_sender(distributor);
    let mut distributed = Vec::new();
    let mut next = 10_000_u64;
    for (batch_id, n) in [1_u64, 10, 100].into_iter().enumerate() {
        let recipients: Vec<Address> = (0..n).map(|i| fresh(next + i)).collect();
        next += n;
        let amounts = vec![U256::from(1_000); n as usize];
        let used = gas(as_distributor.distribute(1, usd, recipients, amounts, batch_id as u64 + 1).send()).await;
        distributed.push((n, used));
        rows.push(Row {
            what: format!("distribute n={n}"),
            total: used,
            per_unit: Some((used / n, "recipient")),
            target: if n == 1 { "" } else { "<= 30,000 per fresh recipient" },
        });
    }
    let marginal = (distributed[2].1 - distributed[0].1) / 99;
    rows.push(Row {
        what: "distribute: marginal cost per extra recipient".into(),
        total: marginal,
        per_unit: None,
        target: "<= 30,000",
    });

    // Royalty enforcement (ERC721-C style): a transfer between holders to a fresh owner, with no
    // validator, then with the operator allowlist (the owner moving it; an allowlisted operator).
    // Four tokens minted one by one, so each of the three transferred has its own ownership slot
    // and a neighbour's after it (ERC721A writes more for a token inside a batch).
    let first = collection.nextTokenId().call().await.unwrap();
    for _ in 0..4 {
        gas(collection.mint(me, U256::from(1)).send()).await;
    }
    let plain = gas(collection.transferFrom(me, fresh(90_001), first).send()).await;
    let validator = &platform.validator;
    gas(collection.setTransferValidator(*validator.address()).send()).await;
    let operator = anvil.addresses()[3];
    gas(validator.setOperator(*collection.address(), operator, true).send()).await;
    gas(collection.setApprovalForAll(operator, true).send()).await;
    let by_owner = gas(collection.transferFrom(me, fresh(90_002), first + U256::from(1)).send()).await;
    let as_operator = shared::contracts::CampaignNFT::new(*collection.address(), testing::wallet(&anvil, 3));
    let by_operator = gas(as_operator.transferFrom(me, fresh(90_003), first + U256::from(2)).send()).await;
    for (what, total) in [
        ("transfer between holders, enforcement off", plain),
        ("transfer, enforcement on, by the owner", by_owner),
        ("transfer, enforcement on, by an allowlisted operator", by_operator),
    ] {
        rows.push(Row { what: what.into(), total, per_unit: None, target: "" });
    }

    println!("\nGas on anvil (receipt gasUsed: 21,000 intrinsic + calldata + execution)\n");
    println!("{:<52} {:>10} {:>18}   target", "operation", "gas", "per unit");
    println!("{}", "-".repeat(110));
    for row in rows {
        let per = row.per_unit.map(|(g, unit)| format!("{g} / {unit}")).unwrap_or_default();
        println!("{:<52} {:>10} {:>18}   {}", row.what, row.total, per, row.target);
    }
    println!(
        "\n100 tokens: one batch mint costs {} gas; 100 baseline single mints cost {} gas ({}x).",
        batch[2].1,
        100 * single,
        100 * single / batch[2].1
    );
}

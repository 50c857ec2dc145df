//! The contract suite through the Rust bindings on a real anvil: deploy the platform, create
//! a campaign, mint a batch, complete a wallet checkout with a signed quote, redeem vouchers,
//! distribute royalty shares — and read every event back.

use alloy::{
    primitives::{Address, U256, keccak256},
    providers::Provider,
    rpc::types::TransactionReceipt,
    sol_types::SolEvent,
};
use shared::contracts::{
    CampaignFactory, CampaignNFT, CampaignParams, Checkout, ETH, Platform, PlatformRoles, QuoteSigner, RewardVault,
    TestStablecoin, VoucherSigner, compact_voucher,
};
use testkit as testing;

/// The one event of type `E` in a receipt.
fn event<E: SolEvent>(receipt: &TransactionReceipt) -> E {
    let mut found = events::<E>(receipt).into_iter();
    let first = found.next().unwrap_or_else(|| panic!("no {} event", E::SIGNATURE));
    assert!(found.next().is_none(), "more than one {} event", E::SIGNATURE);
    first
}

fn events<E: SolEvent>(receipt: &TransactionReceipt) -> Vec<E> {
    receipt.inner.logs().iter().filter_map(|log| log.log_decode::<E>().ok()).map(|l| l.inner.data).collect()
}

#[tokio::test]
async fn the_contract_suite_works_end_to_end_through_the_bindings() {
    let anvil = testing::anvil();
    let platform_key = testing::wallet(&anvil, 0); // admin, deployer, relayer
    let (quote_key, voucher_key, distributor) =
        (testing::signer(&anvil, 1), testing::signer(&anvil, 2), anvil.addresses()[3]);
    let buyer = testing::wallet(&anvil, 4);
    let (buyer_address, treasury, brand) = (anvil.addresses()[4], anvil.addresses()[5], anvil.addresses()[6]);
    let relayer = anvil.addresses()[0];
    let chain_id = anvil.chain_id();

    let roles = PlatformRoles {
        admin: relayer,
        deployer: relayer,
        quote_signer: quote_key.address(),
        voucher_signer: voucher_key.address(),
        distributor,
    };
    let platform = Platform::deploy(platform_key.clone(), roles).await.unwrap();

    // --- A campaign's collection: an EIP-1167 clone at the predicted address.
    let params = CampaignParams {
        campaign_id: 42,
        name: "Spring Drop".into(),
        symbol: "SPRING".into(),
        base_uri: "https://meta.brandmint.test/42/".into(),
        max_supply: 100,
        royalty_receiver: treasury,
        royalty_bps: 500,
        admin: brand,
        relayer,
    };
    let predicted = platform.factory.predictCollection(U256::from(42)).call().await.unwrap();
    let receipt = platform.deploy_campaign(&params).send().await.unwrap().get_receipt().await.unwrap();
    let deployed: CampaignFactory::CampaignDeployed = event(&receipt);
    assert_eq!((deployed.campaignId, deployed.collection), (U256::from(42), predicted));
    assert_eq!(
        (deployed.name.as_str(), deployed.maxSupply, deployed.royaltyBps.to::<u16>()),
        ("Spring Drop", U256::from(100), 500)
    );
    let code = platform_key.get_code_at(predicted).await.unwrap();
    assert_eq!(code.len(), 45, "an EIP-1167 minimal proxy");
    let collection = platform.collection(predicted);
    assert_eq!(collection.name().call().await.unwrap(), "Spring Drop");
    assert_eq!(collection.maxSupply().call().await.unwrap(), U256::from(100));
    let royalty = collection.royaltyInfo(U256::from(1), U256::from(10_000)).call().await.unwrap();
    assert_eq!((royalty.receiver, royalty.amount), (treasury, U256::from(500)));
    // The same campaign cannot be deployed twice.
    let again = platform.deploy_campaign(&params).send().await.unwrap_err();
    let decoded = again.as_decoded_interface_error::<CampaignFactory::CampaignFactoryErrors>();
    assert!(matches!(decoded, Some(CampaignFactory::CampaignFactoryErrors::CampaignAlreadyDeployed(_))), "{again}");

    // --- Card path: the relayer mints a batch.
    let receipt =
        Platform::mint_batch(&collection, buyer_address, 10).send().await.unwrap().get_receipt().await.unwrap();
    let transfers: Vec<CampaignNFT::Transfer> = events(&receipt);
    assert_eq!(transfers.len(), 10);
    assert!(transfers.iter().all(|t| t.from == Address::ZERO && t.to == buyer_address));
    assert_eq!(transfers.iter().map(|t| t.tokenId).collect::<Vec<_>>(), (1..=10).map(U256::from).collect::<Vec<_>>());
    assert_eq!(collection.totalMinted().call().await.unwrap(), U256::from(10));

    // --- Wallet path: a signed quote, paid in ETH by the buyer's wallet.
    platform.checkout.setCollectionTreasury(predicted, treasury).send().await.unwrap().get_receipt().await.unwrap();
    let quote_signer = QuoteSigner::new(quote_key, chain_id, *platform.checkout.address());
    let now = platform_key.get_block_by_number(Default::default()).await.unwrap().unwrap().header.timestamp;
    let amount = U256::from(50_000_000_000_000_000_u128); // 0.05 ETH
    let quote = Checkout::Quote {
        orderId: keccak256("order:1"),
        buyer: buyer_address,
        collection: predicted,
        quantity: U256::from(2),
        payToken: ETH,
        amount,
        deadline: U256::from(now + 300),
    };
    assert_eq!(quote_signer.digest(&quote), platform.checkout.hashQuote(quote.clone()).call().await.unwrap());
    let signature = quote_signer.sign(&quote).await.unwrap();
    let treasury_before = platform_key.get_balance(treasury).await.unwrap();
    let checkout_as_buyer = Checkout::new(*platform.checkout.address(), buyer.clone());
    let receipt = checkout_as_buyer
        .buy(quote.clone(), signature.clone())
        .value(amount)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    let paid: Checkout::OrderPaid = event(&receipt);
    assert_eq!((paid.orderId, paid.buyer, paid.payToken, paid.amount), (quote.orderId, buyer_address, ETH, amount));
    assert_eq!((paid.firstTokenId, paid.quantity), (U256::from(11), U256::from(2)));
    assert_eq!(collection.ownerOf(U256::from(12)).call().await.unwrap(), buyer_address);
    assert_eq!(platform_key.get_balance(treasury).await.unwrap() - treasury_before, amount);
    // The same quote again is refused on chain with a decodable error.
    let replay = checkout_as_buyer.buy(quote.clone(), signature).value(amount).send().await.unwrap_err();
    let decoded = replay.as_decoded_interface_error::<Checkout::CheckoutErrors>();
    assert!(matches!(decoded, Some(Checkout::CheckoutErrors::OrderAlreadyPaid(_))), "{replay}");

    // --- Rewards: fund the vault in the test stablecoin, redeem vouchers, distribute shares.
    let usd = *platform.stablecoin.address();
    let funding = U256::from(1_000_000_000_u64); // 1,000.000000 tUSD
    platform.vault.setCampaignAdmin(U256::from(42), brand).send().await.unwrap().get_receipt().await.unwrap();
    platform.stablecoin.mint(relayer, funding).send().await.unwrap().get_receipt().await.unwrap();
    platform.stablecoin.approve(*platform.vault.address(), funding).send().await.unwrap().get_receipt().await.unwrap();
    let receipt = platform.vault.fund(U256::from(42), usd, funding).send().await.unwrap().get_receipt().await.unwrap();
    let funded: RewardVault::VaultFunded = event(&receipt);
    assert_eq!((funded.campaignId, funded.token, funded.amount), (U256::from(42), usd, funding));

    let voucher_signer = VoucherSigner::new(voucher_key, chain_id, *platform.vault.address());
    let fresh = Address::repeat_byte(0x42);
    let voucher = RewardVault::Voucher {
        redemptionId: U256::from(1),
        campaignId: U256::from(42),
        tokenId: U256::from(11),
        recipient: fresh,
        token: usd,
        amount: U256::from(25_000_000),
        deadline: U256::from(now + 3600),
    };
    assert_eq!(voucher_signer.digest(&voucher), platform.vault.hashVoucher(voucher.clone()).call().await.unwrap());
    let signature = voucher_signer.sign(&voucher).await.unwrap();
    let receipt = platform
        .redeem(voucher.clone(), signature.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let redeemed: RewardVault::RewardRedeemed = event(&receipt);
    assert_eq!(redeemed.redemptionId, U256::from(1));
    let stablecoin = TestStablecoin::new(usd, platform_key.clone());
    assert_eq!(stablecoin.balanceOf(fresh).call().await.unwrap(), U256::from(25_000_000));
    let replay = platform.redeem(voucher.clone(), signature.as_bytes().to_vec().into()).send().await.unwrap_err();
    let decoded = replay.as_decoded_interface_error::<RewardVault::RewardVaultErrors>();
    assert!(matches!(decoded, Some(RewardVault::RewardVaultErrors::AlreadyRedeemed(_))), "{replay}");

    // The compact form of another voucher (cheaper calldata, same signature scheme).
    let second = RewardVault::Voucher { redemptionId: U256::from(2), tokenId: U256::from(12), ..voucher.clone() };
    let signature = voucher_signer.sign(&second).await.unwrap();
    let (ids, recipient_amount, token_deadline, r, vs) = compact_voucher(&second, &signature).unwrap();
    let receipt = platform
        .vault
        .redeemCompact(ids, recipient_amount, token_deadline, r, vs)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(event::<RewardVault::RewardRedeemed>(&receipt).redemptionId, U256::from(2));
    assert_eq!(stablecoin.balanceOf(fresh).call().await.unwrap(), U256::from(50_000_000));

    // Royalty shares in one call, once per batch, by the distributor.
    let distributor_key = testing::wallet(&anvil, 3);
    let as_distributor = platform.as_sender(distributor_key);
    let (a, b) = (Address::repeat_byte(0xa1), Address::repeat_byte(0xb2));
    let shares = vec![U256::from(1_000_000), U256::from(2_000_000)];
    let receipt = as_distributor
        .distribute(42, usd, vec![a, b], shares.clone(), 7)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let distributed: RewardVault::RewardsDistributed = event(&receipt);
    assert_eq!(
        (distributed.batchId, distributed.recipients, distributed.total),
        (U256::from(7), U256::from(2), U256::from(3_000_000))
    );
    assert_eq!(stablecoin.balanceOf(b).call().await.unwrap(), U256::from(2_000_000));
    let twice = as_distributor.distribute(42, usd, vec![a, b], shares, 7).send().await.unwrap_err();
    let decoded = twice.as_decoded_interface_error::<RewardVault::RewardVaultErrors>();
    assert!(matches!(decoded, Some(RewardVault::RewardVaultErrors::BatchAlreadyDistributed(_))), "{twice}");
    let left = platform.vault.campaignBalance(U256::from(42), usd).call().await.unwrap();
    assert_eq!(left, funding - U256::from(53_000_000));
}

#[tokio::test]
async fn the_local_deployment_is_complete_and_recognised_when_run_again() {
    let anvil = testing::anvil();
    let first = cli::local::deploy(anvil.endpoint_url().as_str()).await.unwrap();
    for name in [
        "CAMPAIGN_FACTORY_ADDRESS",
        "CHECKOUT_ADDRESS",
        "REWARD_VAULT_ADDRESS",
        "STABLECOIN_ADDRESS",
        "TRANSFER_VALIDATOR_ADDRESS",
        "SEAPORT_ADDRESS",
    ] {
        let line = first.lines().find(|l| l.starts_with(&format!("{name}="))).unwrap_or_else(|| panic!("{first}"));
        let address = line.split_once('=').unwrap().1;
        assert_eq!(shared::chain::parse_address(address).unwrap().to_checksum(None), address, "checksummed");
    }
    // A reused node is found as it is, not deployed to again.
    let second = cli::local::deploy(anvil.endpoint_url().as_str()).await.unwrap();
    assert_eq!(first, second);
    let provider = testing::wallet(&anvil, 0);
    assert_eq!(
        provider.get_transaction_count(anvil.addresses()[0]).await.unwrap(),
        6,
        "5 deployments + the relayer's test dollars, nothing more the second time"
    );
    // Seaport is live where the lines say (its domain answers), deployed once by account 9.
    let seaport = first.lines().find_map(|l| l.strip_prefix("SEAPORT_ADDRESS=")).unwrap().parse().unwrap();
    let market = fakes::seaport::binding::Seaport::new(seaport, provider.clone());
    assert_eq!(market.name().call().await.unwrap(), "Seaport");
    assert_eq!(provider.get_transaction_count(anvil.addresses()[9]).await.unwrap(), 2, "ConduitController, Seaport");
}

#[tokio::test]
async fn the_local_deployment_refuses_a_chain_whose_deployer_has_been_used() {
    let anvil = testing::anvil();
    // Account 0 sends something first: the suite would not be where the platform looks for it.
    let provider = testing::wallet(&anvil, 0);
    let nudge = alloy::rpc::types::TransactionRequest::default().to(anvil.addresses()[1]).value(U256::from(1));
    provider.send_transaction(nudge).await.unwrap().get_receipt().await.unwrap();
    let refused = cli::local::deploy(anvil.endpoint_url().as_str()).await.unwrap_err().to_string();
    assert!(refused.contains("account 0 had sent transactions"), "{refused}");
}

//! From Seaport 1.6's `OrderFulfilled` logs of one transaction to sales: who sold which token to
//! whom, for how much, and who was paid what out of it. Pure: no chain, no database.
//!
//! - **Listing filled**: the offer holds the NFTs, the consideration the payments (the seller's
//!   proceeds, the marketplace's fee, the creator's royalty). Price = every consideration
//!   payment in the currency of the first one. Seller = offerer; buyer = the fulfiller
//!   (`recipient`), or in a `matchOrders` the offerer of the order that asked for the NFT (the
//!   event's `recipient` is then the caller of `matchOrders`).
//! - **Offer accepted**: the offer holds the payment, the consideration the NFTs (to the
//!   offerer, the buyer) and the fees, which the seller pays out of the price. Price = the offered
//!   amount; seller = the fulfiller, or in a `matchOrders` the offerer of the listing.
//! - **`matchOrders`**: both orders of a trade are logged. The order that only describes the
//!   other side (its NFTs are the ones another order of the transaction offers) is not a sale of
//!   its own.
//! - **Bundles**: one sale per token. The stated rule: every payment is split by units (an
//!   ERC-1155 amount counts as that many units), rounded down, the remainder going to the first
//!   token of the bundle; a token's price is the sum of its parts. So each token's payments add
//!   up to its price, and the tokens' prices to the order's.
//! - **Partial fills** need nothing special: the event carries the amounts actually exchanged.
//!
//! NFT-for-NFT swaps and payments in several currencies within one order carry no single price
//! and are not sales.

use alloy::primitives::{Address, B256, U256};

use crate::decode::{ReceivedItem, SpentItem};

const NATIVE: u8 = 0;
const ERC20: u8 = 1;
const ERC721: u8 = 2;
const ERC1155: u8 = 3;
// Criteria items are resolved before the event is emitted, but a criteria type is still an NFT.
const ERC721_CRITERIA: u8 = 4;
const ERC1155_CRITERIA: u8 = 5;

fn is_money(item_type: u8) -> bool {
    matches!(item_type, NATIVE | ERC20)
}

fn is_nft(item_type: u8) -> bool {
    matches!(item_type, ERC721 | ERC1155 | ERC721_CRITERIA | ERC1155_CRITERIA)
}

/// One `OrderFulfilled`, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fulfilment {
    pub log_index: u64,
    pub order_hash: B256,
    pub offerer: Address,
    pub zone: Address,
    pub recipient: Address,
    pub offer: Vec<SpentItem>,
    pub consideration: Vec<ReceivedItem>,
}

/// How the trade was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A listing filled by a buyer.
    Listing,
    /// A buyer's offer accepted by a seller.
    Offer,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Listing => "listing",
            Side::Offer => "offer",
        }
    }
}

/// One token sold (a bundle gives one per token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    /// The `OrderFulfilled` log that carries it.
    pub log_index: u64,
    pub order_hash: B256,
    pub zone: Address,
    pub side: Side,
    pub collection: Address,
    pub token_id: U256,
    /// Units (1 for an ERC-721).
    pub quantity: U256,
    pub seller: Address,
    pub buyer: Address,
    /// `Address::ZERO` for ETH, else the ERC-20.
    pub currency: Address,
    /// What the buyer paid for this token, in the currency's base units.
    pub price: U256,
    /// Who received what out of `price` (the seller's proceeds, fees, royalty), by recipient in
    /// order of first appearance; the amounts add up to `price`.
    pub payments: Vec<(Address, U256)>,
}

/// `total` split over `weights`: each part rounded down, the remainder to the first.
fn split(total: U256, weights: &[U256]) -> Vec<U256> {
    let units: U256 = weights.iter().copied().fold(U256::ZERO, |a, w| a.saturating_add(w));
    if units.is_zero() {
        return vec![U256::ZERO; weights.len()];
    }
    let mut parts: Vec<U256> = weights.iter().map(|w| total.saturating_mul(*w) / units).collect();
    let given = parts.iter().copied().fold(U256::ZERO, |a, p| a.saturating_add(p));
    if let Some(first) = parts.first_mut() {
        *first = first.saturating_add(total.saturating_sub(given));
    }
    parts
}

fn add(payments: &mut Vec<(Address, U256)>, to: Address, amount: U256) {
    if amount.is_zero() {
        return;
    }
    match payments.iter_mut().find(|(r, _)| *r == to) {
        Some((_, sum)) => *sum = sum.saturating_add(amount),
        None => payments.push((to, amount)),
    }
}

/// The NFTs an order gives (listings) or asks for (offers), as (collection, id, units).
fn nfts_offered(f: &Fulfilment) -> Vec<(Address, U256, U256)> {
    f.offer.iter().filter(|i| is_nft(i.itemType)).map(|i| (i.token, i.identifier, i.amount)).collect()
}

fn nfts_asked(f: &Fulfilment) -> Vec<(Address, U256, U256, Address)> {
    f.consideration
        .iter()
        .filter(|i| is_nft(i.itemType))
        .map(|i| (i.token, i.identifier, i.amount, i.recipient))
        .collect()
}

/// The sales of one transaction's fulfilments (in log order).
pub fn sales(fulfilments: &[Fulfilment]) -> Vec<Sale> {
    let mut out = Vec::new();
    for f in fulfilments {
        let offered = nfts_offered(f);
        let money_offered: Vec<&SpentItem> = f.offer.iter().filter(|i| is_money(i.itemType)).collect();
        if !offered.is_empty() && money_offered.is_empty() {
            listing(f, fulfilments, &offered, &mut out);
        } else if offered.is_empty() && !money_offered.is_empty() {
            // An offer whose NFTs another order of the transaction offers is the buyer's side of
            // a matched listing: that listing is the sale.
            let asked = nfts_asked(f);
            let matched = fulfilments.iter().any(|other| {
                other.log_index != f.log_index
                    && asked
                        .iter()
                        .all(|(c, id, ..)| nfts_offered(other).iter().any(|(oc, oid, _)| oc == c && oid == id))
            });
            if !asked.is_empty() && !matched {
                offer(f, fulfilments, &money_offered, &asked, &mut out);
            }
        }
    }
    out
}

fn listing(f: &Fulfilment, all: &[Fulfilment], offered: &[(Address, U256, U256)], out: &mut Vec<Sale>) {
    let Some(first) = f.consideration.iter().find(|i| is_money(i.itemType)) else { return };
    let currency = first.token;
    let mut payments = Vec::new();
    for item in &f.consideration {
        if is_money(item.itemType) {
            if item.token != currency || item.itemType != first.itemType {
                return; // several currencies: no single price
            }
            add(&mut payments, item.recipient, item.amount);
        }
    }
    // The buyer: in a match, the offerer of the order that asked for the NFT (the event's
    // `recipient` is then whoever called `matchOrders`); else whoever this order's consideration
    // sends it to; else the fulfiller.
    let (collection, id, _) = offered[0];
    let buyer = all
        .iter()
        .find(|o| o.log_index != f.log_index && nfts_asked(o).iter().any(|(c, i, ..)| *c == collection && *i == id))
        .map(|o| o.offerer)
        .or_else(|| {
            f.consideration
                .iter()
                .find(|i| is_nft(i.itemType) && i.token == collection && i.identifier == id)
                .map(|i| i.recipient)
        })
        .unwrap_or(f.recipient);
    push_bundle(f, Side::Listing, offered, f.offerer, buyer, currency, &payments, out);
}

fn offer(
    f: &Fulfilment,
    all: &[Fulfilment],
    money: &[&SpentItem],
    asked: &[(Address, U256, U256, Address)],
    out: &mut Vec<Sale>,
) {
    let currency = money[0].token;
    if money.iter().any(|i| i.token != currency || i.itemType != money[0].itemType) {
        return;
    }
    let price = money.iter().fold(U256::ZERO, |a, i| a.saturating_add(i.amount));
    // A price is what the buyer paid: the seller's part is what the fees leave of it.
    let (collection, id, ..) = asked[0];
    // The seller: in a match, the offerer of the listing; else the fulfiller.
    let seller = all
        .iter()
        .find(|o| o.log_index != f.log_index && nfts_offered(o).iter().any(|(c, i, _)| *c == collection && *i == id))
        .map_or(f.recipient, |o| o.offerer);
    // The fees come out of the price; the seller gets the rest.
    let mut payments = Vec::new();
    let mut fees = U256::ZERO;
    for item in f.consideration.iter().filter(|i| is_money(i.itemType) && i.token == currency) {
        fees = fees.saturating_add(item.amount);
        add(&mut payments, item.recipient, item.amount);
    }
    let mut all_payments = vec![(seller, price.saturating_sub(fees))];
    for (to, amount) in payments {
        add(&mut all_payments, to, amount);
    }
    all_payments.retain(|(_, amount)| !amount.is_zero());
    let nfts: Vec<(Address, U256, U256)> = asked.iter().map(|(c, i, a, _)| (*c, *i, *a)).collect();
    push_bundle(f, Side::Offer, &nfts, seller, f.offerer, currency, &all_payments, out);
}

#[allow(clippy::too_many_arguments)]
fn push_bundle(
    f: &Fulfilment,
    side: Side,
    nfts: &[(Address, U256, U256)],
    seller: Address,
    buyer: Address,
    currency: Address,
    payments: &[(Address, U256)],
    out: &mut Vec<Sale>,
) {
    let weights: Vec<U256> = nfts.iter().map(|(_, _, units)| (*units).max(U256::from(1))).collect();
    let shares: Vec<Vec<U256>> = payments.iter().map(|(_, amount)| split(*amount, &weights)).collect();
    for (n, (collection, token_id, quantity)) in nfts.iter().enumerate() {
        out.push(Sale {
            log_index: f.log_index,
            order_hash: f.order_hash,
            zone: f.zone,
            side,
            collection: *collection,
            token_id: *token_id,
            quantity: *quantity,
            seller,
            buyer,
            currency,
            price: shares.iter().fold(U256::ZERO, |a, parts| a.saturating_add(parts[n])),
            payments: payments.iter().zip(&shares).map(|((to, _), parts)| (*to, parts[n])).collect(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NFT: Address = Address::repeat_byte(0xAA);
    const SELLER: Address = Address::repeat_byte(0x51);
    const BUYER: Address = Address::repeat_byte(0xB0);
    const ROYALTY: Address = Address::repeat_byte(0x2A);
    const FEE: Address = Address::repeat_byte(0xFE);
    const USD: Address = Address::repeat_byte(0x05);

    fn nft(id: u64) -> SpentItem {
        SpentItem { itemType: ERC721, token: NFT, identifier: U256::from(id), amount: U256::from(1) }
    }

    fn pay(item_type: u8, token: Address, amount: u64, to: Address) -> ReceivedItem {
        ReceivedItem { itemType: item_type, token, identifier: U256::ZERO, amount: U256::from(amount), recipient: to }
    }

    fn fulfilment(
        log_index: u64,
        offerer: Address,
        recipient: Address,
        offer: Vec<SpentItem>,
        consideration: Vec<ReceivedItem>,
    ) -> Fulfilment {
        Fulfilment {
            log_index,
            order_hash: B256::repeat_byte(log_index as u8),
            offerer,
            zone: Address::ZERO,
            recipient,
            offer,
            consideration,
        }
    }

    #[test]
    fn a_listing_filled_in_eth_is_priced_at_every_payment_and_bought_by_the_fulfiller() {
        let f = fulfilment(
            3,
            SELLER,
            BUYER,
            vec![nft(7)],
            vec![
                pay(NATIVE, Address::ZERO, 9_250, SELLER),
                pay(NATIVE, Address::ZERO, 250, FEE),
                pay(NATIVE, Address::ZERO, 500, ROYALTY),
            ],
        );
        let sales = sales(&[f]);
        assert_eq!(sales.len(), 1);
        let s = &sales[0];
        assert_eq!(
            (s.side, s.seller, s.buyer, s.currency, s.price),
            (Side::Listing, SELLER, BUYER, Address::ZERO, U256::from(10_000))
        );
        assert_eq!(s.payments, vec![(SELLER, U256::from(9_250)), (FEE, U256::from(250)), (ROYALTY, U256::from(500))]);
    }

    #[test]
    fn an_accepted_offer_in_a_stablecoin_pays_the_seller_what_the_fees_leave() {
        let bid = SpentItem { itemType: ERC20, token: USD, identifier: U256::ZERO, amount: U256::from(1_000_000) };
        let f = fulfilment(
            1,
            BUYER,
            SELLER,
            vec![bid],
            vec![
                ReceivedItem {
                    itemType: ERC721,
                    token: NFT,
                    identifier: U256::from(4),
                    amount: U256::from(1),
                    recipient: BUYER,
                },
                pay(ERC20, USD, 50_000, ROYALTY),
            ],
        );
        let sales = sales(&[f]);
        let s = &sales[0];
        assert_eq!(
            (s.side, s.seller, s.buyer, s.currency, s.price),
            (Side::Offer, SELLER, BUYER, USD, U256::from(1_000_000))
        );
        assert_eq!(s.payments, vec![(SELLER, U256::from(950_000)), (ROYALTY, U256::from(50_000))]);
    }

    #[test]
    fn a_bundle_is_split_by_units_with_the_remainder_on_the_first_token() {
        let f = fulfilment(
            0,
            SELLER,
            BUYER,
            vec![nft(1), nft(2), nft(3)],
            vec![pay(NATIVE, Address::ZERO, 1_000, SELLER), pay(NATIVE, Address::ZERO, 101, ROYALTY)],
        );
        let sales = sales(&[f]);
        let prices: Vec<u64> = sales.iter().map(|s| s.price.to::<u64>()).collect();
        assert_eq!(prices, vec![369, 366, 366]);
        let royalties: Vec<u64> = sales.iter().map(|s| s.payments[1].1.to::<u64>()).collect();
        assert_eq!(royalties, vec![35, 33, 33]);
        let proceeds: Vec<u64> = sales.iter().map(|s| s.payments[0].1.to::<u64>()).collect();
        assert_eq!(proceeds, vec![334, 333, 333]);
        assert_eq!(prices.iter().sum::<u64>(), 1_101);
    }

    #[test]
    fn match_orders_is_one_sale_to_the_offerer_of_the_matching_bid() {
        let listing = fulfilment(
            5,
            SELLER,
            Address::ZERO,
            vec![nft(9)],
            vec![pay(NATIVE, Address::ZERO, 900, SELLER), pay(NATIVE, Address::ZERO, 100, ROYALTY)],
        );
        let bid = fulfilment(
            6,
            BUYER,
            Address::ZERO,
            vec![SpentItem {
                itemType: NATIVE,
                token: Address::ZERO,
                identifier: U256::ZERO,
                amount: U256::from(1_000),
            }],
            vec![ReceivedItem {
                itemType: ERC721,
                token: NFT,
                identifier: U256::from(9),
                amount: U256::from(1),
                recipient: BUYER,
            }],
        );
        for order in [vec![listing.clone(), bid.clone()], vec![bid, listing]] {
            let sales = sales(&order);
            assert_eq!(sales.len(), 1, "{sales:?}");
            assert_eq!(
                (sales[0].seller, sales[0].buyer, sales[0].price, sales[0].log_index),
                (SELLER, BUYER, U256::from(1_000), 5)
            );
        }
    }

    #[test]
    fn swaps_and_mixed_currencies_are_not_sales() {
        let swap = fulfilment(
            0,
            SELLER,
            BUYER,
            vec![nft(1)],
            vec![ReceivedItem {
                itemType: ERC721,
                token: NFT,
                identifier: U256::from(2),
                amount: U256::from(1),
                recipient: SELLER,
            }],
        );
        let mixed = fulfilment(
            1,
            SELLER,
            BUYER,
            vec![nft(3)],
            vec![pay(NATIVE, Address::ZERO, 1, SELLER), pay(ERC20, USD, 1, ROYALTY)],
        );
        assert!(sales(&[swap]).is_empty());
        assert!(sales(&[mixed]).is_empty());
    }

    #[test]
    fn split_always_adds_up() {
        for (total, weights) in [(0u64, vec![1u64, 1]), (1, vec![1, 1, 1]), (10, vec![3, 1]), (u64::MAX, vec![7, 5, 3])]
        {
            let weights: Vec<U256> = weights.into_iter().map(U256::from).collect();
            let parts = split(U256::from(total), &weights);
            assert_eq!(parts.iter().copied().fold(U256::ZERO, |a, p| a + p), U256::from(total));
        }
    }
}

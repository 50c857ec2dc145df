//! EVM addresses as people and rows hold them: the EIP-55 checksummed text that is shown and
//! typed, and the 20 bytes that are stored. Below both configuration and chain access, which
//! each need it.

/// The EIP-55 form of an address stored as 20 bytes (the hex of whatever else is stored, so a
/// malformed value still shows).
pub fn checksummed(bytes: &[u8]) -> String {
    alloy::primitives::Address::try_from(bytes)
        .map_or_else(|_| format!("0x{}", alloy::hex::encode(bytes)), |a| a.to_checksum(None))
}

/// Parses an address typed by a person: `0x` and 40 hex digits in the EIP-55 checksummed form,
/// so a mistyped character is caught instead of sending tokens or money to a stranger.
/// An address as wallets hand it over: all lower case (or all upper case) is taken as it is;
/// mixed case must be a valid EIP-55 checksum, as for [`parse_address`].
pub fn parse_wallet_address(text: &str) -> Result<alloy::primitives::Address, String> {
    let hex = text.trim().strip_prefix("0x").unwrap_or_default();
    let letters = || hex.bytes().filter(u8::is_ascii_alphabetic);
    if !letters().all(|b| b.is_ascii_lowercase()) && !letters().all(|b| b.is_ascii_uppercase()) {
        return parse_address(text);
    }
    let lower = format!("0x{}", hex.to_ascii_lowercase());
    let address: alloy::primitives::Address =
        lower.parse().map_err(|_| "must be 0x followed by 40 hexadecimal digits")?;
    if hex.len() != 40 {
        return Err("must be 0x followed by 40 hexadecimal digits".into());
    }
    parse_address(&address.to_checksum(None))
}

pub fn parse_address(text: &str) -> Result<alloy::primitives::Address, String> {
    use alloy::primitives::Address;
    let text = text.trim();
    let hex = text.strip_prefix("0x").ok_or("must start with 0x")?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be 0x followed by 40 hexadecimal digits".into());
    }
    let address: Address = text.parse().map_err(|_| "not an address".to_owned())?;
    if address.is_zero() {
        return Err("must not be the zero address".into());
    }
    if address.to_checksum(None) != text {
        return Err("checksum does not match: copy the address in its EIP-55 mixed-case form".into());
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wallet_address_in_one_case_is_taken_and_a_bad_checksum_is_not() {
        let good = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
        let address = parse_address(good);
        assert!(address.is_ok());
        assert_eq!(parse_wallet_address(&good.to_ascii_lowercase()), address);
        assert_eq!(parse_wallet_address(&format!("0x{}", good[2..].to_ascii_uppercase())), address);
        assert_eq!(parse_wallet_address(good), address);
        assert!(
            parse_wallet_address("0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266").is_err(),
            "mixed case, wrong checksum"
        );
        for bad in [
            "",
            "0x",
            "0x1234",
            "f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
            "0xzz9fd6e51aad88f6f4ce6ab8827279cfffb92266",
        ] {
            assert!(parse_wallet_address(bad).is_err(), "{bad}");
        }
    }
}

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

//! QR codes, authenticated with the platform's `QR_CODE_KEY`:
//!
//! - **Brand codes**, printed on packaging, receipts and posters: a random 80-bit id and an
//!   80-bit HMAC-SHA256 tag over it, written as 32 base32 characters. A forged or mistyped code
//!   is refused from its tag alone, before any database read; the id names the code's row.
//! - **Counter codes**, shown by a customer at a store's counter: who they are, which reward
//!   and token, and when the code was made, with a tag. A scan accepts one only while it is
//!   fresh (its validity plus a grace for a slow scan), so a screenshot soon stops working.
//!
//! The two kinds are tagged under different domains, so one can never pass for the other. Both
//! render to PNG (for print and for screens) and SVG.

use std::{sync::Arc, time::Duration};

use alloy::primitives::{Address, U256};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use qrcode::{EcLevel, QrCode, render::svg};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Bytes of a brand code's random id.
pub const ID_BYTES: usize = 10;
/// Bytes of a brand code's tag (80 bits: a forger's odds per guess are 2⁻⁸⁰).
const TAG_BYTES: usize = 10;
/// Characters of a brand code's text.
pub const BRAND_CODE_LEN: usize = (ID_BYTES + TAG_BYTES) * 8 / 5;
/// What starts a counter code's text.
const COUNTER_PREFIX: &str = "BMC1.";
/// The longest counter code read (a real one is about 250 characters).
const MAX_COUNTER_LEN: usize = 600;
/// Pixels per QR module in PNGs: 6 px prints sharp at 300 dpi on a 2 cm code and scans from a
/// screen.
const MODULE_PX: u32 = 6;

/// A brand code's id (its row is found by it).
pub type CodeId = [u8; ID_BYTES];

/// Why a code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not a code this platform made: malformed, mistyped, or forged.
    #[error("this is not a code issued by this platform (mistyped, damaged or forged)")]
    NotOurs,
    /// A counter code older than its validity and grace (or from the future).
    #[error("this code has expired: refresh it on your phone and show it again")]
    Expired,
}

/// The key every QR code is tagged with (redacted in `Debug`).
#[derive(Clone)]
pub struct CodeKey(Arc<SecretBox<[u8; 32]>>);

impl std::fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

/// What a counter code says: the customer, the wallet that proved it holds `token_id`, the
/// reward to redeem, and when the code was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterClaim {
    #[serde(rename = "c")]
    pub customer_id: i64,
    #[serde(rename = "w")]
    pub wallet: Address,
    #[serde(rename = "r")]
    pub reward_id: i64,
    #[serde(rename = "t")]
    pub token_id: U256,
    /// Unix seconds.
    #[serde(rename = "i")]
    pub issued_at: i64,
}

impl CodeKey {
    pub fn new(key: [u8; 32]) -> Self {
        Self(Arc::new(SecretBox::new(Box::new(key))))
    }

    fn tag(&self, domain: &[u8], data: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("HMAC accepts any key length");
        mac.update(domain);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// A fresh random brand code: its id and its text.
    pub fn new_brand_code(&self) -> (CodeId, String) {
        let id: CodeId = rand::random();
        (id, self.brand_code(&id))
    }

    /// The text of brand code `id` (32 characters of A–Z and 2–7).
    pub fn brand_code(&self, id: &CodeId) -> String {
        let mut bytes = [0u8; ID_BYTES + TAG_BYTES];
        bytes[..ID_BYTES].copy_from_slice(id);
        bytes[ID_BYTES..].copy_from_slice(&self.tag(b"brand-code/v1", id)[..TAG_BYTES]);
        BASE32_NOPAD.encode(&bytes)
    }

    /// The id of a brand code's text (case is ignored), if its tag is right.
    pub fn read_brand_code(&self, text: &str) -> Result<CodeId, CodeError> {
        if text.len() != BRAND_CODE_LEN || !text.is_ascii() {
            return Err(CodeError::NotOurs);
        }
        let bytes = BASE32_NOPAD.decode(text.to_ascii_uppercase().as_bytes()).map_err(|_| CodeError::NotOurs)?;
        let (id, tag) = bytes.split_at(ID_BYTES);
        let expected = self.tag(b"brand-code/v1", id);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(tag, &expected[..TAG_BYTES])) {
            return Err(CodeError::NotOurs);
        }
        id.try_into().map_err(|_| CodeError::NotOurs)
    }

    /// The text of a counter code.
    pub fn counter_code(&self, claim: &CounterClaim) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claim).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(&self.tag(b"counter-code/v1", body.as_bytes())[..16]);
        format!("{COUNTER_PREFIX}{body}.{tag}")
    }

    /// What a counter code says, if its tag is right and it was made within `valid + grace`
    /// before `now` (and not more than the grace after it: clocks drift).
    pub fn read_counter_code(
        &self,
        text: &str,
        now: DateTime<Utc>,
        valid: Duration,
        grace: Duration,
    ) -> Result<CounterClaim, CodeError> {
        let rest = text.trim().strip_prefix(COUNTER_PREFIX).filter(|_| text.len() <= MAX_COUNTER_LEN);
        let (body, tag) = rest.and_then(|rest| rest.split_once('.')).ok_or(CodeError::NotOurs)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| CodeError::NotOurs)?;
        let expected = self.tag(b"counter-code/v1", body.as_bytes());
        if tag.len() != 16 || !bool::from(subtle::ConstantTimeEq::ct_eq(tag.as_slice(), &expected[..16])) {
            return Err(CodeError::NotOurs);
        }
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| CodeError::NotOurs)?;
        let claim: CounterClaim = serde_json::from_slice(&json).map_err(|_| CodeError::NotOurs)?;
        let age = now.timestamp().saturating_sub(claim.issued_at);
        let limit = i64::try_from(valid.saturating_add(grace).as_secs()).unwrap_or(i64::MAX);
        let ahead = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
        // `age < -ahead`, not `-age > ahead`: the age saturates at i64::MIN, which has no negation.
        if age > limit || age < -ahead {
            return Err(CodeError::Expired);
        }
        Ok(claim)
    }
}

/// Why a QR code could not be drawn (the text is too long for a QR code).
#[derive(Debug, thiserror::Error)]
#[error("cannot draw a QR code: {0}")]
pub struct RenderError(String);

fn symbol(text: &str) -> Result<QrCode, RenderError> {
    // Level M: readable with 15 % of the symbol damaged (a scuffed box, a glare on a screen).
    QrCode::with_error_correction_level(text, EcLevel::M).map_err(|e| RenderError(e.to_string()))
}

/// `text` as a black-and-white PNG, 6 px per module with the standard 4-module quiet zone.
///
/// One bit per pixel (a QR code has two shades), written straight from the symbol's modules: a
/// sixth of the work and a twentieth of the bytes of an 8-bit grayscale image.
pub fn png(text: &str) -> Result<Vec<u8>, RenderError> {
    const QUIET: usize = 4;
    let code = symbol(text)?;
    let (modules, px) = (code.width(), MODULE_PX as usize);
    let side = (modules + 2 * QUIET) * px;
    let stride = side.div_ceil(8);
    // 1 is white; every row starts white, dark modules clear their pixels.
    let mut pixels = vec![0xff_u8; stride * side];
    let colors = code.to_colors();
    for (y, row) in colors.chunks(modules).enumerate() {
        let mut line = vec![0xff_u8; stride];
        for (x, _) in row.iter().enumerate().filter(|(_, c)| **c == qrcode::Color::Dark) {
            for bit in (QUIET + x) * px..(QUIET + x + 1) * px {
                line[bit / 8] &= !(0x80 >> (bit % 8));
            }
        }
        let top = (QUIET + y) * px;
        for copy in pixels[top * stride..(top + px) * stride].chunks_mut(stride) {
            copy.copy_from_slice(&line);
        }
    }
    let side = u32::try_from(side).map_err(|e| RenderError(e.to_string()))?;
    let mut out = Vec::with_capacity(1024);
    let mut encoder = ::png::Encoder::new(&mut out, side, side);
    encoder.set_color(::png::ColorType::Grayscale);
    encoder.set_depth(::png::BitDepth::One);
    encoder.set_compression(::png::Compression::Fast);
    let written = encoder.write_header().and_then(|mut writer| {
        writer.write_image_data(&pixels)?;
        writer.finish()
    });
    written.map_err(|e| RenderError(e.to_string()))?;
    Ok(out)
}

/// `text` as an SVG document (scales to any print size).
pub fn svg(text: &str) -> Result<String, RenderError> {
    Ok(symbol(text)?.render::<svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key() -> CodeKey {
        CodeKey::new([7; 32])
    }

    #[test]
    fn a_brand_code_reads_back_and_any_change_is_refused() {
        let (id, text) = key().new_brand_code();
        assert_eq!(text.len(), BRAND_CODE_LEN);
        assert_eq!(key().read_brand_code(&text), Ok(id));
        assert_eq!(key().read_brand_code(&text.to_ascii_lowercase()), Ok(id), "case does not matter");
        for at in 0..text.len() {
            let mut tampered = text.clone().into_bytes();
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            assert_eq!(key().read_brand_code(&tampered), Err(CodeError::NotOurs), "{tampered}");
        }
        assert_eq!(CodeKey::new([8; 32]).read_brand_code(&text), Err(CodeError::NotOurs), "another key");
        for junk in ["", "x", "é".repeat(16).as_str(), &"A".repeat(32), &"A".repeat(10_000), "\0\n"] {
            assert_eq!(key().read_brand_code(junk), Err(CodeError::NotOurs));
        }
    }

    #[test]
    fn a_counter_code_is_accepted_while_fresh_and_never_as_another_kind() {
        let now = Utc::now();
        let claim = CounterClaim {
            customer_id: 42,
            wallet: Address::repeat_byte(0xab),
            reward_id: 7,
            token_id: U256::MAX,
            issued_at: now.timestamp(),
        };
        let text = key().counter_code(&claim);
        let (valid, grace) = (Duration::from_secs(30), Duration::from_secs(10));
        let read = |at: DateTime<Utc>| key().read_counter_code(&text, at, valid, grace);
        assert_eq!(read(now), Ok(claim.clone()));
        assert_eq!(read(now + chrono::Duration::seconds(40)), Ok(claim));
        assert_eq!(read(now + chrono::Duration::seconds(41)), Err(CodeError::Expired));
        assert_eq!(read(now - chrono::Duration::seconds(11)), Err(CodeError::Expired), "from the future");
        let (body, _) = text.rsplit_once('.').unwrap();
        let forged = format!("{body}.{}", URL_SAFE_NO_PAD.encode([0u8; 16]));
        assert_eq!(key().read_counter_code(&forged, now, valid, grace), Err(CodeError::NotOurs));
        let (_, brand) = key().new_brand_code();
        assert_eq!(key().read_counter_code(&brand, now, valid, grace), Err(CodeError::NotOurs));
        assert_eq!(key().read_brand_code(&text), Err(CodeError::NotOurs));
        for junk in ["BMC1.", "BMC1..", "BMC1.a.b", &format!("BMC1.{}", "a".repeat(10_000))] {
            assert_eq!(key().read_counter_code(junk, now, valid, grace), Err(CodeError::NotOurs));
        }
    }

    #[test]
    fn a_png_decodes_back_to_its_text_and_an_svg_is_drawn() {
        let url = format!("https://brand.example/r/{}", key().new_brand_code().1);
        let drawn = png(&url).unwrap();
        let image = image::load_from_memory(&drawn).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        assert_eq!(grids[0].decode().unwrap().1, url);
        assert!(svg(&url).unwrap().starts_with("<?xml"));
        assert!(png(&"x".repeat(5_000)).is_err(), "too long for any QR code");
    }
}

/// Fuzz targets: codes are read from whatever a scanner or a customer sends. Reading never
/// panics, a genuine code is accepted and a changed one refused. 256 cases each, or
/// `PROPTEST_CASES`.
#[cfg(test)]
mod fuzz {
    #![allow(clippy::unwrap_used)]

    use proptest::{prelude::*, sample::Index};

    use super::*;

    fn key() -> CodeKey {
        CodeKey::new([7; 32])
    }

    fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let (min, max) = (DateTime::<Utc>::MIN_UTC.timestamp(), DateTime::<Utc>::MAX_UTC.timestamp());
        prop_oneof![min..=max, 1_500_000_000i64..2_500_000_000].prop_map(|t| DateTime::from_timestamp(t, 0).unwrap())
    }

    fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            (0u64..3600).prop_map(Duration::from_secs),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
            Just(Duration::MAX),
        ]
    }

    fn claim() -> impl Strategy<Value = CounterClaim> {
        let issued_at = prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), 1_500_000_000i64..2_500_000_000];
        (any::<i64>(), any::<[u8; 20]>(), any::<i64>(), any::<[u8; 32]>(), issued_at).prop_map(
            |(customer_id, wallet, reward_id, token, issued_at)| CounterClaim {
                customer_id,
                wallet: Address::from(wallet),
                reward_id,
                token_id: U256::from_be_bytes(token),
                issued_at,
            },
        )
    }

    /// Text that looks like a code, or anything at all.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            ".{0,700}",
            "[A-Za-z2-7]{32}",
            "[A-Za-z0-9=]{30,34}",
            "\\PC{32}",
            "BMC1\\.[A-Za-z0-9_-]{0,400}\\.[A-Za-z0-9_-]{0,30}",
            "BMC1\\.[A-Za-z0-9_=+/.-]{0,700}",
            "\\s{0,3}BMC1\\..{0,300}",
        ]
    }

    /// One character substituted (not by the same letter in another case), inserted or removed.
    fn mutate(text: &str, op: u8, at: Index, with: char) -> Option<String> {
        let mut chars: Vec<char> = text.chars().collect();
        match op % 3 {
            0 => {
                let i = at.index(chars.len());
                if chars[i].eq_ignore_ascii_case(&with) {
                    return None;
                }
                chars[i] = with;
            }
            1 => chars.insert(at.index(chars.len() + 1), with),
            _ => drop(chars.remove(at.index(chars.len()))),
        }
        Some(chars.into_iter().collect())
    }

    #[test]
    fn qr_a_counter_code_is_judged_at_extreme_times_and_settings_without_panicking() {
        // Found by the targets below: `valid + grace` overflowed, and so did negating an age
        // that saturated at i64::MIN (a code "made" at i64::MAX read before 1970).
        let claim = |issued_at| CounterClaim {
            customer_id: 0,
            wallet: Address::ZERO,
            reward_id: 0,
            token_id: U256::ZERO,
            issued_at,
        };
        let now = DateTime::from_timestamp(0, 0).unwrap();
        let text = key().counter_code(&claim(0));
        assert_eq!(key().read_counter_code(&text, now, Duration::from_secs(1), Duration::MAX), Ok(claim(0)));
        let text = key().counter_code(&claim(i64::MAX));
        let before_1970 = DateTime::from_timestamp(-1, 0).unwrap();
        assert_eq!(
            key().read_counter_code(&text, before_1970, Duration::ZERO, Duration::ZERO),
            Err(CodeError::Expired)
        );
    }

    proptest! {
        #[test]
        fn qr_codes_never_panic_on_arbitrary_text(
            text in text(), now in instant(), valid in duration(), grace in duration(),
        ) {
            prop_assert_eq!(key().read_brand_code(&text), Err(CodeError::NotOurs));
            prop_assert_eq!(key().read_counter_code(&text, now, valid, grace), Err(CodeError::NotOurs));
        }

        #[test]
        fn qr_a_brand_code_is_accepted_in_any_case_and_any_one_character_change_refused(
            id in any::<CodeId>(), op in any::<u8>(), at in any::<Index>(),
            with in prop_oneof![prop::char::range('A', 'Z'), prop::char::range('2', '7'), any::<char>()],
            lower in any::<bool>(),
        ) {
            let text = key().brand_code(&id);
            prop_assert_eq!(text.len(), BRAND_CODE_LEN);
            let shown = if lower { text.to_ascii_lowercase() } else { text.clone() };
            prop_assert_eq!(key().read_brand_code(&shown), Ok(id));
            if let Some(mutated) = mutate(&shown, op, at, with) {
                prop_assert_eq!(key().read_brand_code(&mutated), Err(CodeError::NotOurs), "{} from {}", mutated, text);
            }
        }

        #[test]
        fn qr_a_counter_code_is_read_back_while_fresh_and_judged_at_any_time_without_panicking(
            claim in claim(), now in instant(), age in -10i64..=40, valid in duration(), grace in duration(),
        ) {
            let text = key().counter_code(&claim);
            prop_assert!(text.len() <= MAX_COUNTER_LEN);
            // At any time and with any settings: read, or refused as expired, never anything else.
            match key().read_counter_code(&text, now, valid, grace) {
                Ok(read) => prop_assert_eq!(read, claim.clone()),
                Err(e) => prop_assert_eq!(e, CodeError::Expired),
            }
            // Within 30 s and a grace of 10 s of when it was made: read back exactly.
            if let Some(at) = claim.issued_at.checked_add(age).and_then(|t| DateTime::from_timestamp(t, 0)) {
                let read = key().read_counter_code(&text, at, Duration::from_secs(30), Duration::from_secs(10));
                prop_assert_eq!(read, Ok(claim));
            }
        }

        #[test]
        fn qr_any_one_character_change_to_a_counter_code_is_refused(
            claim in claim(), op in any::<u8>(), at in any::<Index>(), with in any::<char>(),
        ) {
            let text = key().counter_code(&claim);
            let now = DateTime::from_timestamp(claim.issued_at.clamp(0, 4_000_000_000), 0).unwrap();
            let valid = Duration::from_secs(u64::MAX / 4);
            if let Some(mutated) = mutate(&text, op, at, with) {
                // Only white space added at either end is ignored (a scanner's trailing newline).
                if mutated.trim() != text {
                    let read = key().read_counter_code(&mutated, now, valid, valid);
                    prop_assert_eq!(read, Err(CodeError::NotOurs), "{} from {}", mutated, text);
                }
            }
        }
    }
}

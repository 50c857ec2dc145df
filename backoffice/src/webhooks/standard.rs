//! Brand webhooks in the [Standard Webhooks](https://www.standardwebhooks.com) format: the
//! event types brands can subscribe to, endpoint secrets (`whsec_<base64>`), the
//! `webhook-signature` header, and which targets the platform agrees to call (SSRF guard).
//!
//! The target guard works at two levels. [`TargetPolicy::check`] looks at a URL (scheme,
//! credentials, an IP literal host) and resolves its host name, refusing it when any address
//! is not public; it runs when an endpoint is registered or changed. [`client`] builds the
//! HTTP client deliveries go through: no redirects, no proxy, and a DNS resolver that refuses
//! non-public addresses, so the address checked is the address connected to (no DNS
//! rebinding between check and use). IP literals never reach a resolver, so senders also call
//! [`TargetPolicy::check_url`] before each attempt.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The event types a brand can subscribe an endpoint to. Each carries `brand_id` in its
/// payload; the payload is delivered as `data`.
pub(crate) const EVENT_TYPES: &[&str] = &[
    "order.created",
    "order.authorized",
    "order.fulfilled",
    "order.failed",
    "order.expired",
    "order.refunded",
    "campaign.live",
    "campaign.paused",
    "campaign.ended",
    "deployment.confirmed",
    "deployment.failed",
    "redemption.completed",
];

/// The event a brand sends itself to try an endpoint ("send test event").
pub(crate) const TEST_EVENT: &str = "webhook.test";

/// How long a rotated-out secret keeps signing deliveries next to the new one.
pub(crate) const ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);

const SECRET_PREFIX: &str = "whsec_";
/// 32 bytes: the HMAC-SHA256 block-size sweet spot, inside the spec's 24..=64.
const SECRET_LEN: usize = 32;

/// An endpoint's signing secret. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A secret that is not `whsec_<base64 of 24 to 64 bytes>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a webhook secret (whsec_<base64>)")]
pub(crate) struct InvalidSecret;

impl Secret {
    /// A fresh random secret.
    pub(crate) fn generate() -> Self {
        let mut key = vec![0; SECRET_LEN];
        rand::rng().fill_bytes(&mut key);
        Self(key)
    }

    /// Reads `whsec_<base64>`.
    pub(crate) fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let key = text.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
        let key = BASE64.decode(key).map_err(|_| InvalidSecret)?;
        if !(24..=64).contains(&key.len()) {
            return Err(InvalidSecret);
        }
        Ok(Self(key))
    }

    /// `whsec_<base64>`: shown to the brand once, stored for signing.
    pub(crate) fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", BASE64.encode(&self.0))
    }

    /// One `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` signature.
    pub(crate) fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", BASE64.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether a `webhook-signature` header (space-separated signatures) holds a valid `v1`
    /// signature by this secret. Constant-time per signature. What a receiver does: the platform
    /// only signs, so this checks its signatures in the tests.
    #[cfg(test)]
    pub(crate) fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.mac(id, timestamp, body);
        header
            .split(' ')
            .filter_map(|signature| signature.strip_prefix("v1,"))
            .filter_map(|signature| BASE64.decode(signature).ok())
            .any(|signature| bool::from(signature.ct_eq(&expected)))
    }
}

/// The `webhook-signature` header: by the current secret and, during a rotation's grace
/// period, by the previous one too (space-separated, as the spec allows), so a receiver that
/// has not switched yet keeps verifying.
pub(crate) fn signature_header(
    current: &Secret,
    previous: Option<&Secret>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut header = current.sign(id, timestamp, body);
    if let Some(previous) = previous {
        header.push(' ');
        header.push_str(&previous.sign(id, timestamp, body));
    }
    header
}

/// Whether an address is on the public internet: not private, loopback, link-local,
/// unspecified, shared (CGNAT), multicast, documentation or reserved, including IPv4
/// addresses embedded in IPv6 (mapped, NAT64, 6to4).
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
            match s {
                // IPv4-mapped (::ffff:a.b.c.d) and IPv4-translated (::ffff:0:a.b.c.d, RFC 2765):
                // an IPv4 address in IPv6 clothing, which some stacks connect to as IPv4. No
                // public webhook receiver is published this way: refused whatever they embed.
                [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0xffff, 0, _, _] => false,
                // Local-use NAT64 (64:ff9b:1::/48, RFC 8215) translates to private networks.
                [0x64, 0xff9b, 1, ..] => false,
                // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the embedded IPv4 address.
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded(hi, lo)),
                [0x2002, hi, lo, ..] => is_public_v4(embedded(hi, lo)),
                // Deprecated IPv4-compatible (::a.b.c.d), documentation, site-local.
                [0, 0, 0, 0, 0, 0, _, _] | [0x2001, 0xdb8, ..] => false,
                [first, ..] if first & 0xffc0 == 0xfec0 => false,
                _ => {
                    !(v6.is_loopback()
                        || v6.is_unspecified()
                        || v6.is_multicast()
                        || v6.is_unique_local()
                        || v6.is_unicast_link_local())
                }
            }
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let special = ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240; // reserved
    !special
}

/// Why a webhook target is refused; the message is for the brand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetError {
    #[error("must be an absolute http(s) URL")]
    NotAUrl,
    #[error("must use https://")]
    NotHttps,
    #[error("must not contain a user name or password")]
    Credentials,
    #[error("must not point at a private, loopback, link-local or unspecified address")]
    NotPublic,
    #[error("its host name does not resolve")]
    Unresolvable,
}

/// Which webhook targets are acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TargetPolicy {
    /// Local development: private and loopback addresses are fine.
    pub allow_private: bool,
    /// Production: plain http is refused.
    pub require_https: bool,
}

impl TargetPolicy {
    /// What can be decided without DNS: scheme, credentials, an IP literal host.
    pub(crate) fn check_url(&self, url: &url::Url) -> Result<(), TargetError> {
        match url.scheme() {
            "https" => {}
            "http" if !self.require_https => {}
            "http" => return Err(TargetError::NotHttps),
            _ => return Err(TargetError::NotAUrl),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(TargetError::Credentials);
        }
        match url.host() {
            None => Err(TargetError::NotAUrl),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
        }
    }

    /// [`Self::check_url`], then every address the host name resolves to.
    pub(crate) async fn check(&self, url: &url::Url) -> Result<(), TargetError> {
        self.check_url(url)?;
        let Some(url::Host::Domain(host)) = url.host() else { return Ok(()) };
        let port = url.port_or_known_default().unwrap_or(443);
        let lookup = tokio::net::lookup_host((host, port));
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(Duration::from_secs(5), lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            _ => return Err(TargetError::Unresolvable),
        };
        if addrs.is_empty() {
            return Err(TargetError::Unresolvable);
        }
        addrs.iter().try_for_each(|addr| self.check_ip(addr.ip()))
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), TargetError> {
        if self.allow_private || is_public(ip) { Ok(()) } else { Err(TargetError::NotPublic) }
    }
}

/// Resolves with the system resolver and refuses names with any non-public address.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver(TargetPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            addrs.iter().try_for_each(|addr| policy.check_ip(addr.ip()))?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The client deliveries go through: the policy's resolver, no redirects (a 3xx is a failed
/// attempt), no proxy from the environment, and a per-attempt timeout.
pub(crate) fn client(policy: TargetPolicy, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("Brandmint-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's test vectors.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, timestamp) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330);
        let body = br#"{"test": 2432232314}"#;
        let signature = secret.sign(id, timestamp, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify(id, timestamp, body, &format!("v1,bm90IGl0 {signature}")));
        assert!(!secret.verify(id, timestamp + 1, body, &signature));
        assert!(!secret.verify(id, timestamp, b"{}", &signature));
    }

    #[test]
    fn a_rotation_signs_with_both_secrets_and_either_verifies() {
        let (old, new) = (Secret::generate(), Secret::generate());
        let header = signature_header(&new, Some(&old), "msg_1", 42, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(old.verify("msg_1", 42, b"{}", &header) && new.verify("msg_1", 42, b"{}", &header));
        assert!(!Secret::generate().verify("msg_1", 42, b"{}", &header));
    }

    #[test]
    fn secrets_round_trip_and_malformed_ones_are_refused() {
        let secret = Secret::generate();
        assert_eq!(Secret::parse(&secret.expose()).unwrap(), secret);
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(InvalidSecret));
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(InvalidSecret));
        assert_eq!(Secret::parse("whsec_!!!"), Err(InvalidSecret));
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
            // IPv4-translated and IPv4-mapped forms, whatever they embed; local-use NAT64.
            "::ffff:0:7f00:1",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:101:101",
            "::ffff:1.1.1.1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "64:ff9b::101:101"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn the_policy_refuses_private_targets_http_in_production_and_credentials() {
        let production = TargetPolicy { allow_private: false, require_https: true };
        let local = TargetPolicy { allow_private: true, require_https: false };
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert_eq!(production.check(&url("https://127.0.0.1/hook")).await, Err(TargetError::NotPublic));
        assert_eq!(production.check(&url("https://[::1]:8443/hook")).await, Err(TargetError::NotPublic));
        assert_eq!(production.check(&url("https://localhost/hook")).await, Err(TargetError::NotPublic));
        assert_eq!(production.check(&url("http://1.1.1.1/hook")).await, Err(TargetError::NotHttps));
        assert_eq!(production.check(&url("https://u:p@1.1.1.1/")).await, Err(TargetError::Credentials));
        assert_eq!(production.check(&url("ftp://1.1.1.1/")).await, Err(TargetError::NotAUrl));
        assert_eq!(production.check(&url("https://1.1.1.1/hook")).await, Ok(()));
        assert_eq!(local.check(&url("http://127.0.0.1:9000/hook")).await, Ok(()));
    }
}

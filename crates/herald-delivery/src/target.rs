//! Which addresses a delivery may connect to (the SSRF guard).
//!
//! A tenant chooses its endpoint URLs, so without a guard herald could be pointed at the
//! machine's own services or its private network. By default every address that is not public
//! unicast is refused; an operator allows ranges explicitly (`--allow-target 127.0.0.0/8`). The
//! check is applied to the addresses actually connected to, after DNS resolution, so a name that
//! resolves to a private address is refused as surely as the address itself.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

/// Why an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10/8`, `172.16/12`, `192.168/16`, `fc00::/7`.
    Private,
    /// `169.254/16`, `fe80::/10`.
    LinkLocal,
    /// `100.64.0.0/10` (carrier-grade NAT).
    SharedAddressSpace,
    /// `224/4`, `ff00::/8`, and the broadcast address.
    Multicast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Everything else set aside: `240/4`, `192.0.0/24`, `198.18/15`, `100::/64`, `2001::/23`,
    /// `fec0::/10`, `5f00::/16`.
    Reserved,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Unspecified => "an unspecified address",
            Refusal::Loopback => "a loopback address",
            Refusal::Private => "a private-network address",
            Refusal::LinkLocal => "a link-local address",
            Refusal::SharedAddressSpace => "a carrier-grade NAT address",
            Refusal::Multicast => "a multicast or broadcast address",
            Refusal::Documentation => "a documentation address",
            Refusal::Reserved => "a reserved address",
        })
    }
}

/// Why `ip` is not a public unicast address, if it is not.
pub fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => Refusal::Unspecified,
        (127, _, _) => Refusal::Loopback,
        (10, _, _) | (192, 168, _) => Refusal::Private,
        (172, 16..=31, _) => Refusal::Private,
        (169, 254, _) => Refusal::LinkLocal,
        (100, 64..=127, _) => Refusal::SharedAddressSpace,
        (224..=239, _, _) => Refusal::Multicast,
        _ if ip.is_broadcast() => Refusal::Multicast,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Refusal::Documentation,
        (240..=255, _, _) | (192, 0, 0) | (198, 18..=19, _) | (192, 88, 99) => Refusal::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    // An IPv4 address in IPv6 clothing (mapped, NAT64, 6to4) is judged as the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = s;
        let ([a, b], [c, d]) = (hi.to_be_bytes(), lo.to_be_bytes());
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    if s[0] == 0x2002 {
        let [hi, lo] = [s[1].to_be_bytes(), s[2].to_be_bytes()];
        return classify_v4(Ipv4Addr::new(hi[0], hi[1], lo[0], lo[1]));
    }
    Some(match s {
        _ if ip.is_unspecified() => Refusal::Unspecified,
        _ if ip.is_loopback() => Refusal::Loopback,
        [0, 0, 0, 0, 0, 0, _, _] => Refusal::Reserved, // IPv4-compatible, deprecated
        [x, ..] if x & 0xfe00 == 0xfc00 => Refusal::Private,
        [x, ..] if x & 0xffc0 == 0xfe80 => Refusal::LinkLocal,
        [x, ..] if x & 0xffc0 == 0xfec0 => Refusal::Reserved,
        [x, ..] if x & 0xff00 == 0xff00 => Refusal::Multicast,
        [0x2001, 0xdb8, ..] => Refusal::Documentation,
        [0x3fff, y, ..] if y < 0x1000 => Refusal::Documentation,
        [0x2001, y, ..] if y < 0x200 => Refusal::Reserved,
        [0x100, 0, 0, 0, ..] => Refusal::Reserved,
        [0x5f00, ..] => Refusal::Reserved,
        // Local-use NAT64 (RFC 8215): a translator of the operator's own reaches any IPv4
        // address behind it, with the address at a place only that translator knows.
        [0x64, 0xff9b, 1, ..] => Refusal::Private,
        _ => return None,
    })
}

/// Which addresses deliveries may reach: public unicast, plus the ranges explicitly allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    allowed: Vec<IpNet>,
}

impl TargetPolicy {
    /// Public unicast only.
    pub fn new() -> TargetPolicy {
        TargetPolicy::default()
    }

    /// Also allows `range`, e.g. `127.0.0.0/8` for tests and local development.
    pub fn allow(mut self, range: IpNet) -> TargetPolicy {
        self.allowed.push(range);
        self
    }

    /// `Ok` if deliveries may connect to `ip`; otherwise why not.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refusal> {
        let Some(refusal) = classify(ip) else {
            return Ok(());
        };
        // Allowed ranges are matched on the address as written and on its IPv4 form, so
        // allowing 127.0.0.0/8 also allows ::ffff:127.0.0.1.
        let v4 = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = self
            .allowed
            .iter()
            .any(|range| range.contains(&ip) || v4.is_some_and(|v4| range.contains(&v4)));
        if allowed { Ok(()) } else { Err(refusal) }
    }
}

/// Parses an allowed range: a CIDR (`127.0.0.0/8`) or a single address (`::1`).
pub fn parse_range(text: &str) -> Result<IpNet, String> {
    IpNet::from_str(text)
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .map_err(|_| format!("`{text}` is not a CIDR range such as 127.0.0.0/8 or an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        use Refusal::*;
        let cases: [(&str, Option<Refusal>); 49] = [
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("100.128.0.1", None),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("255.255.255.255", Some(Multicast)),
            ("192.0.2.1", Some(Documentation)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.9", Some(Documentation)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.0.8", Some(Reserved)),
            ("198.18.0.1", Some(Reserved)),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::7f00:1", Some(Private)),
            ("64:ff9b:1:7f00:1::", Some(Private)),
            ("64:ff9b:2::1", None),
            ("2002:7f00:1::", Some(Loopback)),
            ("::127.0.0.1", Some(Reserved)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("fec0::1", Some(Reserved)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("3fff:fff::1", Some(Documentation)),
            ("3fff:1000::1", None),
            ("2001::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001:80e::200e", None),
        ];
        for (text, expected) in cases {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(classify(ip), expected, "{text}");
        }
    }

    #[test]
    fn allowed_ranges_open_exactly_themselves() {
        let policy = TargetPolicy::new()
            .allow(parse_range("127.0.0.0/8").unwrap())
            .allow(parse_range("fd00::5").unwrap());
        let cases = [
            ("127.0.0.1", Ok(())),
            ("::ffff:127.0.0.1", Ok(())),
            ("fd00::5", Ok(())),
            ("fd00::6", Err(Refusal::Private)),
            ("::1", Err(Refusal::Loopback)),
            ("10.0.0.1", Err(Refusal::Private)),
            ("8.8.8.8", Ok(())),
        ];
        for (text, expected) in cases {
            assert_eq!(policy.check(text.parse().unwrap()), expected, "{text}");
        }
        assert_eq!(
            TargetPolicy::new().check("127.0.0.1".parse().unwrap()),
            Err(Refusal::Loopback)
        );
    }

    #[test]
    fn ranges_parse_or_explain() {
        assert!(parse_range("10.0.0.0/8").is_ok());
        assert!(parse_range("::1").is_ok());
        let error = parse_range("localhost").unwrap_err();
        assert!(error.contains("`localhost` is not a CIDR range"), "{error}");
    }
}

//! Where a login attempt comes from, as the throttle counts it.

use std::net::{IpAddr, Ipv6Addr};

/// The client address a login attempt is counted under (see `crate::users::login`).
///
/// It comes from the host, never from the request: API Gateway's `sourceIp` on Lambda, the
/// socket peer under `serve`. An IPv4 address is itself; an IPv6 address counts as its /64
/// network, which one device or site holds whole, so that walking through the 2^64
/// addresses of one network is not a way around the per-address cap.
///
/// When the host knows no address, every such attempt shares one key, [`Self::unknown`]:
/// the throttle then works as a per-email one (strict, never switched off). Hosts that
/// serve the public always know the address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientAddress(String);

/// Text of the longest key: `ffff:ffff:ffff:ffff::/64`, well within the column's 45.
const IPV6_PREFIX_SEGMENTS: usize = 4;

impl ClientAddress {
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(v4.to_string()),
                None => {
                    let mut segments = [0u16; 8];
                    segments[..IPV6_PREFIX_SEGMENTS]
                        .copy_from_slice(&v6.segments()[..IPV6_PREFIX_SEGMENTS]);
                    Self(format!("{}/64", Ipv6Addr::from(segments)))
                }
            },
        }
    }

    /// The address in the text a host reports it in; text that is no IP address is no
    /// known address.
    pub fn parse(text: &str) -> Self {
        text.trim()
            .parse()
            .map(Self::from_ip)
            .unwrap_or_else(|_| Self::unknown())
    }

    /// The one key of every attempt whose address the host does not know.
    pub fn unknown() -> Self {
        Self(String::new())
    }

    pub fn is_known(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_keyed_by_host_and_ipv6_by_network() {
        assert_eq!(ClientAddress::parse("192.0.2.1").as_str(), "192.0.2.1");
        assert_eq!(
            ClientAddress::parse("::ffff:192.0.2.1").as_str(),
            "192.0.2.1"
        );
        let one = ClientAddress::parse("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
        let neighbour = ClientAddress::parse("2001:db8:1:2::1");
        assert_eq!(one.as_str(), "2001:db8:1:2::/64");
        assert_eq!(one, neighbour);
        assert_ne!(one, ClientAddress::parse("2001:db8:1:3::1"));
        let widest = ClientAddress::parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
        assert!(widest.as_str().len() <= 45, "{}", widest.as_str());
        for unknown in ["", "unknown", "192.0.2.1, 198.51.100.7", "999.1.1.1"] {
            assert!(!ClientAddress::parse(unknown).is_known(), "{unknown}");
        }
        assert_eq!(ClientAddress::unknown().as_str(), "");
    }
}

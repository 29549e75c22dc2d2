//! Where the control plane and its nodes may be sent by a URL from the API.
//!
//! A backup endpoint is contacted by the control plane (the test upload) and by every node;
//! an archive or git URL is fetched by a node. Pointed at loopback, link-local (cloud
//! metadata at 169.254.169.254), private or other internal ranges, such a URL would reach
//! services that trust their network. Those addresses are refused, as literals and as what a
//! name resolves to here, unless `allow_private_networks` is set (a fleet on a private
//! network, the test suite's loopback services).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::model::validate::Invalid;

/// Whether an address lies in a range a URL from the API must not reach.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => internal_v4(v4),
            None => internal_v6(v6),
        },
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), often internal to a provider.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments and reserved (class E).
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local (fc00::/7) and link-local (fe80::/10).
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // NAT64 well-known prefix: maps onto IPv4, internal ones included.
        || (first == 0x0064 && ip.segments()[1] == 0xff9b)
}

/// Host and port of a URL the API accepted: `scheme://host[:port]/...` or git's
/// `user@host:path`. `None` when there is no host to speak of.
pub fn host_and_port(url: &str) -> Option<(String, u16)> {
    let (authority, default_port) = if let Some((scheme, rest)) = url.split_once("://") {
        let port = match scheme {
            "https" => 443,
            "http" => 80,
            "ssh" => 22,
            _ => return None,
        };
        (rest.split(['/', '?', '#']).next()?, port)
    } else {
        // scp-like git syntax: user@host:path
        let (_, rest) = url.split_once('@')?;
        (rest.split(':').next()?, 22)
    };
    let authority = authority.rsplit('@').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, rest) = v6.split_once(']')?;
        let port = match rest.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        return Some((host.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((authority.to_owned(), default_port)),
    }
    .filter(|(host, _)| !host.is_empty())
}

/// Refuses `url` (the request field `field`) when its host is, or resolves here to, an
/// internal address, unless `allow_private` is set. A name that does not resolve here passes
/// (a node may resolve it; the fetch itself fails otherwise).
pub async fn check_url(field: &'static str, url: &str, allow_private: bool) -> Result<()> {
    if allow_private {
        return Ok(());
    }
    let refuse = |ip: IpAddr| {
        Error::Invalid(Invalid {
            field,
            message: format!(
                "points at {ip}, a loopback, link-local or private address; set \
                 allow_private_networks = true in the server configuration to allow it"
            ),
        })
    };
    let Some((host, port)) = host_and_port(url) else {
        return Err(Error::Invalid(Invalid {
            field,
            message: "must name a host".into(),
        }));
    };
    if let Ok(ip) = host.parse::<IpAddr>() {
        return if is_internal(ip) {
            Err(refuse(ip))
        } else {
            Ok(())
        };
    }
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return Err(refuse(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
    let lookup = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await;
    if let Ok(Ok(addrs)) = lookup {
        for addr in addrs {
            if is_internal(addr.ip()) {
                return Err(refuse(addr.ip()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_recognised() {
        for internal in [
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
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_internal(internal.parse().expect("ip")), "{internal}");
        }
        for public in ["93.184.216.34", "1.1.1.1", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn hosts_and_ports_are_read_from_every_url_form() {
        let cases = [
            ("https://example.com/a.tar.gz", Some(("example.com", 443))),
            ("http://example.com:8080/x?y#z", Some(("example.com", 8080))),
            ("https://[fd00::1]:9000/", Some(("fd00::1", 9000))),
            ("https://[::1]/", Some(("::1", 443))),
            (
                "ssh://git@example.com:2222/r.git",
                Some(("example.com", 2222)),
            ),
            ("git@github.com:org/repo.git", Some(("github.com", 22))),
            ("ftp://example.com/", None),
            ("https:///nothing", None),
        ];
        for (url, expected) in cases {
            assert_eq!(
                host_and_port(url),
                expected.map(|(h, p)| (h.to_owned(), p)),
                "{url}"
            );
        }
    }

    #[tokio::test]
    async fn internal_targets_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:8333",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::1]/x",
            "http://localhost:9000/",
            "git@10.0.0.5:repo.git",
        ] {
            assert!(check_url("url", url, false).await.is_err(), "{url}");
            check_url("url", url, true).await.expect("allowed");
        }
        check_url("url", "https://93.184.216.34/a.tar.gz", false)
            .await
            .expect("a public address");
    }
}

//! Push endpoints are URLs residents hand us, so a request to one must not reach inside our
//! network: only `https` on public hosts, unless `HEJNAL_PUSH_ALLOW_LOCAL=true` (tests, dev).
//! The URL is checked on input and again before each send; names are checked again when they
//! resolve ([`GuardedResolver`]), so a public-looking name pointing at 10.0.0.5 is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Longer than any push service's endpoint; a bound on what we store and send to.
const MAX_LENGTH: usize = 2048;

/// Is this a URL we may send pushes to? The reason names what is wrong.
pub fn check_push_endpoint(url: &str, allow_local: bool) -> Result<(), String> {
    if url.len() > MAX_LENGTH {
        return Err(format!("the endpoint is longer than {MAX_LENGTH} characters"));
    }
    let parsed = Url::parse(url).map_err(|e| format!("the endpoint is not a URL: {e}"))?;
    match (parsed.scheme(), allow_local) {
        ("https", _) | ("http", true) => {}
        (scheme, _) => return Err(format!("the endpoint's scheme is {scheme}; push endpoints must use https")),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("the endpoint must not carry a user name or password".into());
    }
    if allow_local {
        return parsed.host().map(|_| ()).ok_or_else(|| "the endpoint has no host".into());
    }
    match parsed.host() {
        None => Err("the endpoint has no host".into()),
        Some(Host::Ipv4(ip)) => public_ip(IpAddr::V4(ip)).map_err(|kind| format!("the endpoint's host {ip} is {kind}")),
        Some(Host::Ipv6(ip)) => public_ip(IpAddr::V6(ip)).map_err(|kind| format!("the endpoint's host {ip} is {kind}")),
        Some(Host::Domain(name)) => public_name(name).map_err(|kind| format!("the endpoint's host {name} is {kind}")),
    }
}

/// Names that never leave the machine or the site.
fn public_name(name: &str) -> Result<(), &'static str> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let local_suffixes = [".localhost", ".local", ".internal", ".home.arpa", ".lan"];
    if name == "localhost" || local_suffixes.iter().any(|s| name.ends_with(s)) {
        Err("a local name")
    } else if !name.contains('.') {
        Err("a single-label name, which only resolves on a local network")
    } else {
        Ok(())
    }
}

/// `Err` names the kind of non-public address.
pub(crate) fn public_ip(ip: IpAddr) -> Result<(), &'static str> {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> Result<(), &'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Err("a loopback address")
    } else if ip.is_private() {
        Err("a private address")
    } else if ip.is_link_local() {
        Err("a link-local address")
    } else if a == 100 && (64..128).contains(&b) {
        Err("a shared (carrier-grade NAT) address")
    } else if ip.is_unspecified() || a == 0 || ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Err("not a unicast address")
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) || (a == 192 && b == 0 && c == 0) {
        Err("a reserved address")
    } else {
        Ok(())
    }
}

fn public_v6(ip: Ipv6Addr) -> Result<(), &'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Err("a loopback address")
    } else if ip.is_unspecified() || ip.is_multicast() {
        Err("not a unicast address")
    } else if first & 0xffc0 == 0xfe80 {
        Err("a link-local address")
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        Err("a private address")
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        Err("a reserved address")
    } else {
        Ok(())
    }
}

/// DNS for the push client: resolves as usual, then keeps only public addresses.
pub(crate) struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.iter().copied().filter(|a| public_ip(a.ip()).is_ok()).collect();
            if public.is_empty() {
                let err = format!("push endpoint host {host} resolves to no public address ({all:?})");
                return Err(err.into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_inside_are_named_by_kind() {
        let kind = |ip: &str| public_ip(ip.parse().unwrap()).err();
        assert_eq!(kind("142.250.74.10"), None);
        assert_eq!(kind("2a00:1450:4001::200a"), None);
        assert_eq!(kind("127.0.0.1"), Some("a loopback address"));
        assert_eq!(kind("::1"), Some("a loopback address"));
        assert_eq!(kind("10.1.2.3"), Some("a private address"));
        assert_eq!(kind("172.20.0.1"), Some("a private address"));
        assert_eq!(kind("192.168.1.1"), Some("a private address"));
        assert_eq!(kind("fd00::1"), Some("a private address"));
        assert_eq!(kind("169.254.169.254"), Some("a link-local address"));
        assert_eq!(kind("fe80::1"), Some("a link-local address"));
        assert_eq!(kind("::ffff:10.0.0.1"), Some("a private address"));
        assert_eq!(kind("100.64.0.1"), Some("a shared (carrier-grade NAT) address"));
        assert_eq!(kind("0.0.0.0"), Some("not a unicast address"));
    }

    #[test]
    fn local_names_are_refused_by_name() {
        for name in ["localhost", "push.localhost", "printer.local", "metadata.google.internal", "intranet"] {
            assert!(public_name(name).is_err(), "{name}");
        }
        assert!(public_name("fcm.googleapis.com").is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_names_that_resolve_inside() {
        let name: Name = "localhost".parse().unwrap();
        let err = GuardedResolver.resolve(name).await.err().expect("localhost refused");
        assert!(err.to_string().contains("no public address"), "{err}");
    }
}

//! Which IP a daemon advertises to the cluster: the address other hosts use to reach its node
//! (object fetches, actor calls, task leases). The bound address only says where the daemon
//! listens; `0.0.0.0` or `::` is no address another host can connect to.
//!
//! In order: `--node-ip-address`; the bound address when it is a specific one; for a node,
//! the local address of its connection to the head (resolved by the node when it joins); for
//! a head on every interface, the address of a non-loopback interface that is up, or
//! `127.0.0.1` with a warning when the host has none.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, ErrorKind, Result};

/// Parses `--node-ip-address`: an IP address (no host name, no port), not `0.0.0.0` or `::`.
pub(crate) fn parse_node_ip(text: &str) -> Result<IpAddr> {
    let ip: IpAddr = text.trim().parse().map_err(|_| {
        Error::new(
            ErrorKind::Config,
            format!(
                "--node-ip-address must be an IP address such as 10.0.0.5, got `{text}` \
                 (no host name, no port)"
            ),
        )
    })?;
    if ip.is_unspecified() {
        return Err(Error::new(
            ErrorKind::Config,
            format!("--node-ip-address {ip} is no address another host can connect to"),
        ));
    }
    Ok(ip)
}

/// The IP a daemon bound to `bind` advertises when told `node_ip`: `None` when only its
/// connection to the head can tell (a node on every interface).
pub(crate) fn advertised_ip(node_ip: Option<IpAddr>, bind: IpAddr, head: bool) -> Option<IpAddr> {
    if let Some(ip) = node_ip {
        return Some(ip);
    }
    if !bind.is_unspecified() {
        return Some(bind);
    }
    if !head {
        return None;
    }
    let v6 = bind.is_ipv6();
    Some(match pick_interface(&interface_addresses(), v6) {
        Some(ip) => ip,
        None => {
            let ip = if v6 {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            };
            tracing::warn!(
                "this host has no network interface but loopback: the head advertises {ip}, \
                 which other hosts cannot reach (pass --node-ip-address)"
            );
            ip
        }
    })
}

/// A warning for a daemon that listens on loopback only while its cluster's head is on another
/// address: other hosts would be handed an address they cannot reach (or that names themselves).
/// `head_address` is `HOST:PORT`; a name is resolved, and one that does not resolve is left to
/// the join to report.
pub(crate) fn loopback_only_warning(head_address: &str, bind: IpAddr) -> Option<String> {
    use std::net::ToSocketAddrs;
    if !bind.is_loopback() {
        return None;
    }
    let head = head_address.to_socket_addrs().ok()?.next()?.ip();
    if head.is_loopback() {
        return None;
    }
    Some(format!(
        "this node listens on {bind} only, but its head is at {head_address}: other hosts cannot \
         fetch its objects or call its actors (start it with --bind 0.0.0.0, or the address of \
         this host's interface towards the head)"
    ))
}

/// One address of a network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InterfaceAddress {
    /// The interface's name (`eth0`).
    pub(crate) name: String,
    /// The interface is up.
    pub(crate) up: bool,
    /// The interface is a loopback.
    pub(crate) loopback: bool,
    /// The address.
    pub(crate) ip: IpAddr,
}

/// The address to advertise among `addrs`: of an interface that is up and not a loopback,
/// of the family asked for (IPv4 unless `v6`); for IPv6 a global address before a link-local
/// one (which needs a scope no peer knows). The first such address, in the system's order.
pub(crate) fn pick_interface(addrs: &[InterfaceAddress], v6: bool) -> Option<IpAddr> {
    let usable = |a: &&InterfaceAddress| {
        a.up && !a.loopback && !a.ip.is_loopback() && !a.ip.is_unspecified() && a.ip.is_ipv6() == v6
    };
    let link_local = |ip: &IpAddr| match ip {
        IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
        IpAddr::V4(ip) => ip.is_link_local(),
    };
    addrs
        .iter()
        .filter(usable)
        .find(|a| !link_local(&a.ip))
        .or_else(|| addrs.iter().find(usable))
        .map(|a| a.ip)
}

/// The addresses of this host's interfaces (`getifaddrs`); empty when they cannot be read.
pub(crate) fn interface_addresses() -> Vec<InterfaceAddress> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list that stays valid until freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points at a sockaddr whose family says its real type.
        let ip = unsafe {
            match i32::from((*ifa.ifa_addr).sa_family) {
                libc::AF_INET => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
                libc::AF_INET6 => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))
                }
                _ => continue,
            }
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let flags = ifa.ifa_flags;
        out.push(InterfaceAddress {
            name,
            up: flags & libc::IFF_UP as u32 != 0,
            loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
            ip,
        });
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, up: bool, loopback: bool, ip: &str) -> InterfaceAddress {
        InterfaceAddress {
            name: name.into(),
            up,
            loopback,
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn a_head_on_every_interface_picks_an_interface_other_hosts_reach() {
        let addrs = [
            iface("lo", true, true, "127.0.0.1"),
            iface("lo", true, true, "::1"),
            iface("eth1", false, false, "10.9.9.9"),
            iface("eth0", true, false, "fe80::1"),
            iface("eth0", true, false, "192.0.2.7"),
            iface("eth0", true, false, "fd00::7"),
        ];
        assert_eq!(
            pick_interface(&addrs, false),
            Some("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            pick_interface(&addrs, true),
            Some("fd00::7".parse().unwrap())
        );
        let only_link_local = [iface("eth0", true, false, "fe80::1")];
        assert_eq!(
            pick_interface(&only_link_local, true),
            Some("fe80::1".parse().unwrap())
        );
        let only_loopback = [
            iface("lo", true, true, "127.0.0.1"),
            iface("eth1", false, false, "10.1.1.1"),
        ];
        assert_eq!(pick_interface(&only_loopback, false), None);
    }

    #[test]
    fn a_node_on_loopback_is_warned_when_its_head_is_on_another_address() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let warning = loopback_only_warning("10.0.0.1:6380", lo).expect("a warning");
        assert!(warning.contains("--bind 0.0.0.0"), "{warning}");
        assert_eq!(loopback_only_warning("10.0.0.1:6380", any), None);
        assert_eq!(loopback_only_warning("127.0.0.1:6380", lo), None);
        assert_eq!(loopback_only_warning("localhost:6380", lo), None);
        assert_eq!(loopback_only_warning("not an address", lo), None);
    }

    #[test]
    fn the_advertised_ip_follows_the_flag_then_the_bound_address() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let given: IpAddr = "10.1.2.3".parse().unwrap();
        let bound: IpAddr = "10.4.5.6".parse().unwrap();
        assert_eq!(advertised_ip(Some(given), any, true), Some(given));
        assert_eq!(advertised_ip(Some(given), bound, false), Some(given));
        assert_eq!(advertised_ip(None, bound, true), Some(bound));
        assert_eq!(advertised_ip(None, any, false), None);
        let head = advertised_ip(None, any, true).unwrap();
        let expected = pick_interface(&interface_addresses(), false)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(head, expected);
    }

    #[test]
    fn a_node_ip_address_must_be_a_connectable_ip() {
        assert_eq!(
            parse_node_ip("10.0.0.5").unwrap(),
            "10.0.0.5".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse_node_ip("fd00::5").unwrap(),
            "fd00::5".parse::<IpAddr>().unwrap()
        );
        for bad in ["example.com", "10.0.0.5:6380", "", "0.0.0.0", "::"] {
            let e = parse_node_ip(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(e.to_string().contains("--node-ip-address"), "{e}");
        }
    }
}

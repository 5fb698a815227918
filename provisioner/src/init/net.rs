//! A short-lived IPv4 network in the initramfs, for datasources that are
//! only reachable over the network (the EC2 metadata service). The NIC
//! driver comes from the verified /usr (already mounted at
//! `/sysroot/usr`), so the initramfs carries no network modules; the
//! address comes from DHCP (`dhcp.rs`) over a plain UDP socket; a host
//! route for 255.255.255.255 lets the kernel send the broadcasts before
//! the interface has an address. [`Lease::release`] removes the address
//! and takes the link down again, so the real root's network manager
//! starts from a clean interface.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::dhcp::{self, MessageType, Reply};
use super::fatal;
use super::sys::{self, IfReq, RtEntry, SockaddrIn};

/// NIC drivers tried, in order (virtio for QEMU/KVM clouds, ENA for EC2 Nitro).
pub const NIC_MODULES: &[&str] = &["virtio_net", "ena"];
const IFF_UP: u16 = 0x1;
const RTF_UP: u16 = 0x1;
const RTF_GATEWAY: u16 = 0x2;
const RTF_HOST: u16 = 0x4;
const DHCP_CLIENT_PORT: u16 = 68;
const DHCP_SERVER_PORT: u16 = 67;
/// Per-attempt wait for a reply, and attempts per message.
const REPLY_WAIT: Duration = Duration::from_secs(3);
const ATTEMPTS: u32 = 4;
const LINK_WAIT: Duration = Duration::from_secs(10);

/// The module files (dependencies first) that provide `name`, from a
/// `modules.dep` text (paths relative to the modules directory).
pub fn dep_chain(modules_dep: &str, name: &str) -> Option<Vec<String>> {
    let norm = |p: &str| {
        let base = p.rsplit('/').next().unwrap_or(p);
        base.split(".ko").next().unwrap_or(base).replace('-', "_")
    };
    for line in modules_dep.lines() {
        let Some((module, deps)) = line.split_once(':') else {
            continue;
        };
        if norm(module) == name {
            // modules.dep lists dependencies so that loading them in
            // reverse order satisfies each before its users.
            let mut chain: Vec<String> =
                deps.split_whitespace().rev().map(str::to_string).collect();
            chain.push(module.trim().to_string());
            return Some(chain);
        }
    }
    None
}

/// Load the NIC drivers found in the real root's module tree. Returns the
/// modules loaded (or already present).
pub fn load_nic_modules(sysroot: &Path) -> Result<Vec<String>, String> {
    let uname = rustix::system::uname();
    let kver = uname.release().to_string_lossy().into_owned();
    let dir = sysroot.join("usr/lib/modules").join(&kver);
    let dep = std::fs::read_to_string(dir.join("modules.dep"))
        .map_err(|e| format!("reading {}/modules.dep: {e}", dir.display()))?;
    let mut loaded = Vec::new();
    for name in NIC_MODULES {
        let Some(chain) = dep_chain(&dep, name) else {
            continue;
        };
        let mut ok = true;
        for rel in chain {
            if let Err(e) = super::modules::load(&dir.join(&rel)) {
                fatal::warn(format!("network: {e}"));
                ok = false;
                break;
            }
        }
        if ok {
            loaded.push(name.to_string());
        }
    }
    Ok(loaded)
}

/// The first network interface other than loopback, waiting for the
/// driver to register one.
pub fn wait_for_interface(sys_net: &Path, timeout: Duration) -> Option<String> {
    let start = Instant::now();
    loop {
        if let Ok(rd) = std::fs::read_dir(sys_net) {
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n != "lo")
                .collect();
            names.sort();
            if let Some(n) = names.into_iter().next() {
                return Some(n);
            }
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ifreq(name: &str) -> Result<IfReq, String> {
    let mut r = IfReq {
        name: [0; 16],
        data: [0; 24],
    };
    if name.len() >= r.name.len() {
        return Err(format!("interface name {name:?} is too long"));
    }
    r.name[..name.len()].copy_from_slice(name.as_bytes());
    Ok(r)
}

fn addr_req(name: &str, addr: Ipv4Addr) -> Result<IfReq, String> {
    let mut r = ifreq(name)?;
    let sa = SockaddrIn::v4(addr.octets());
    r.data[..2].copy_from_slice(&sa.family.to_ne_bytes());
    r.data[4..8].copy_from_slice(&sa.addr);
    Ok(r)
}

fn set_up(sock: &UdpSocket, name: &str, up: bool) -> Result<(), String> {
    let mut r = ifreq(name)?;
    sys::if_ioctl(sock.as_fd(), sys::SIOCGIFFLAGS, &mut r)
        .map_err(|e| format!("reading the flags of {name}: {e}"))?;
    let mut flags = u16::from_ne_bytes([r.data[0], r.data[1]]);
    if up {
        flags |= IFF_UP;
    } else {
        flags &= !IFF_UP;
    }
    r.data[..2].copy_from_slice(&flags.to_ne_bytes());
    sys::if_ioctl(sock.as_fd(), sys::SIOCSIFFLAGS, &mut r)
        .map_err(|e| format!("setting {name} {}: {e}", if up { "up" } else { "down" }))
}

fn mac_of(sock: &UdpSocket, name: &str) -> Result<[u8; 6], String> {
    let mut r = ifreq(name)?;
    sys::if_ioctl(sock.as_fd(), sys::SIOCGIFHWADDR, &mut r)
        .map_err(|e| format!("reading the MAC address of {name}: {e}"))?;
    // struct sockaddr: 2 bytes family, then the hardware address.
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&r.data[2..8]);
    Ok(mac)
}

fn route(
    sock: &UdpSocket,
    add: bool,
    name: &str,
    dst: Ipv4Addr,
    gw: Ipv4Addr,
    mask: Ipv4Addr,
    flags: u16,
) -> Result<(), String> {
    let dev =
        std::ffi::CString::new(name).map_err(|_| "interface name with a NUL byte".to_string())?;
    let mut rt = RtEntry::new(
        dst.octets(),
        gw.octets(),
        mask.octets(),
        flags,
        dev.as_ptr().cast(),
    );
    sys::route_ioctl(sock.as_fd(), add, &mut rt).map_err(|e| {
        format!(
            "{} route {dst}/{mask} via {gw} dev {name}: {e}",
            if add { "adding" } else { "deleting" }
        )
    })
}

/// An address leased for this boot step.
#[derive(Debug)]
pub struct Lease {
    pub interface: String,
    pub address: Ipv4Addr,
    pub netmask: Ipv4Addr,
    pub router: Option<Ipv4Addr>,
    pub server: Ipv4Addr,
    sock: UdpSocket,
}

fn exchange(
    sock: &UdpSocket,
    msg: &[u8],
    mac: [u8; 6],
    xid: u32,
    want: &[MessageType],
) -> Result<Reply, String> {
    let dest = SocketAddrV4::new(Ipv4Addr::BROADCAST, DHCP_SERVER_PORT);
    let mut buf = [0u8; 1500];
    for _ in 0..ATTEMPTS {
        sock.send_to(msg, dest)
            .map_err(|e| format!("sending a DHCP message: {e}"))?;
        let deadline = Instant::now() + REPLY_WAIT;
        while Instant::now() < deadline {
            let n = match sock.recv_from(&mut buf) {
                Ok((n, _)) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break;
                }
                Err(e) => return Err(format!("receiving DHCP replies: {e}")),
            };
            if let Some(r) = dhcp::parse_reply(&buf[..n], mac) {
                if r.xid == xid && want.contains(&r.kind) {
                    return Ok(r);
                }
            }
        }
    }
    Err(format!(
        "no DHCP {:?} after {ATTEMPTS} attempts of {} s",
        want,
        REPLY_WAIT.as_secs()
    ))
}

/// Bring `name` up and lease an address by DHCP.
pub fn dhcp_up(name: &str) -> Result<Lease, String> {
    let sock = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, DHCP_CLIENT_PORT))
        .map_err(|e| format!("binding the DHCP client port: {e}"))?;
    sock.set_broadcast(true).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    set_up(&sock, name, true)?;
    let mac = mac_of(&sock, name)?;
    // The transaction id only has to differ between clients: the MAC does.
    let xid = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    let bcast = Ipv4Addr::BROADCAST;
    let any = Ipv4Addr::UNSPECIFIED;
    route(&sock, true, name, bcast, any, bcast, RTF_UP | RTF_HOST)?;
    let link_start = Instant::now();
    let result = (|| {
        let offer = exchange(
            &sock,
            &dhcp::client_message(MessageType::Discover, xid, mac, None),
            mac,
            xid,
            &[MessageType::Offer],
        )?;
        let server = offer
            .server_id
            .ok_or("DHCP offer without a server identifier")?;
        let ack = exchange(
            &sock,
            &dhcp::client_message(
                MessageType::Request,
                xid,
                mac,
                Some((offer.your_ip, server)),
            ),
            mac,
            xid,
            &[MessageType::Ack, MessageType::Nak],
        )?;
        if ack.kind == MessageType::Nak {
            return Err(format!("DHCP server {server} refused {}", offer.your_ip));
        }
        Ok((ack, server))
    })();
    let _ = route(&sock, false, name, bcast, any, bcast, RTF_UP | RTF_HOST);
    let (ack, server) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = set_up(&sock, name, false);
            return Err(format!("{e} (link up for {:.0?})", link_start.elapsed()));
        }
    };
    let netmask = ack.netmask.unwrap_or(Ipv4Addr::new(255, 255, 255, 0));
    let lease = Lease {
        interface: name.to_string(),
        address: ack.your_ip,
        netmask,
        router: ack.router,
        server,
        sock,
    };
    let configure = || -> Result<(), String> {
        let mut r = addr_req(name, lease.address)?;
        sys::if_ioctl(lease.sock.as_fd(), sys::SIOCSIFADDR, &mut r)
            .map_err(|e| format!("setting {} on {name}: {e}", lease.address))?;
        let mut r = addr_req(name, netmask)?;
        sys::if_ioctl(lease.sock.as_fd(), sys::SIOCSIFNETMASK, &mut r)
            .map_err(|e| format!("setting netmask {netmask} on {name}: {e}"))?;
        if let Some(gw) = lease.router {
            route(&lease.sock, true, name, any, gw, any, RTF_UP | RTF_GATEWAY)?;
        }
        Ok(())
    };
    if let Err(e) = configure() {
        lease.release();
        return Err(e);
    }
    Ok(lease)
}

impl Lease {
    /// Remove the address (and with it the routes) and take the link down.
    pub fn release(self) {
        if let Ok(mut r) = addr_req(&self.interface, Ipv4Addr::UNSPECIFIED) {
            let _ = sys::if_ioctl(self.sock.as_fd(), sys::SIOCSIFADDR, &mut r);
        }
        if let Err(e) = set_up(&self.sock, &self.interface, false) {
            fatal::warn(format!("network: {e}"));
        }
    }
}

/// Where sysfs lists network interfaces.
pub fn sys_class_net() -> PathBuf {
    PathBuf::from("/sys/class/net")
}

/// Load a NIC driver from the real root, find the interface, lease an address.
pub fn bring_up(sysroot: &Path) -> Result<Lease, String> {
    let loaded = load_nic_modules(sysroot)?;
    let iface = wait_for_interface(&sys_class_net(), LINK_WAIT).ok_or_else(|| {
        format!(
            "no network interface appeared within {} s (drivers loaded: {})",
            LINK_WAIT.as_secs(),
            if loaded.is_empty() {
                "none".to_string()
            } else {
                loaded.join(", ")
            }
        )
    })?;
    let lease = dhcp_up(&iface)?;
    fatal::info(format!(
        "network: {iface} has {}/{} from DHCP server {}{}",
        lease.address,
        lease.netmask,
        lease.server,
        lease
            .router
            .map(|r| format!(", router {r}"))
            .unwrap_or_default()
    ));
    Ok(lease)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_chain_table() {
        let dep = "kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko.xz kernel/net/core/failover.ko.xz\n\
                   kernel/net/core/failover.ko.xz:\n\
                   kernel/drivers/net/ethernet/amazon/ena/ena.ko.xz:\n\
                   kernel/drivers/block/virtio-blk.ko:\n";
        let cases: &[(&str, Option<&[&str]>)] = &[
            (
                "virtio_net",
                Some(&[
                    "kernel/net/core/failover.ko.xz",
                    "kernel/drivers/net/net_failover.ko.xz",
                    "kernel/drivers/net/virtio_net.ko.xz",
                ]),
            ),
            (
                "ena",
                Some(&["kernel/drivers/net/ethernet/amazon/ena/ena.ko.xz"]),
            ),
            ("virtio_blk", Some(&["kernel/drivers/block/virtio-blk.ko"])),
            ("e1000", None),
        ];
        for (name, want) in cases {
            let got = dep_chain(dep, name);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn interface_names() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(wait_for_interface(d.path(), Duration::ZERO), None);
        for n in ["lo", "eth1", "enp0s2"] {
            std::fs::create_dir(d.path().join(n)).unwrap();
        }
        assert_eq!(
            wait_for_interface(d.path(), Duration::ZERO).as_deref(),
            Some("enp0s2")
        );
        assert!(ifreq("a-very-long-interface-name").is_err());
        let r = addr_req("eth0", Ipv4Addr::new(10, 0, 2, 15)).unwrap();
        assert_eq!(&r.name[..5], b"eth0\0");
        assert_eq!(&r.data[..8], &[2, 0, 0, 0, 10, 0, 2, 15]);
    }
}

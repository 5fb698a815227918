//! Host ports for the forwarded sshd and the extra forwards.

use std::net::{Ipv4Addr, TcpListener};

use super::error::QemuError;
use super::forward::Forward;

/// A port on 127.0.0.1 that is free right now (the kernel picks it). QEMU
/// binds it moments later; another program could take it in between, in which
/// case QEMU fails to start with a clear "could not set up host forwarding".
pub fn free_port() -> Result<u16, QemuError> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(QemuError::NoFreePort)?;
    Ok(l.local_addr().map_err(QemuError::NoFreePort)?.port())
}

/// Checks that the user's port can be bound on 127.0.0.1.
pub fn check_port(port: u16) -> Result<u16, QemuError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .map_err(|source| QemuError::PortBusy { port, source })?;
    Ok(port)
}

/// Checks that each extra forward's host port is its own (not the ssh port,
/// not another forward's) and can be bound on 127.0.0.1.
pub fn check_forwards(forwards: &[Forward], ssh_port: u16) -> Result<(), QemuError> {
    for (i, f) in forwards.iter().enumerate() {
        let bad = |why: String| QemuError::BadForward {
            forward: f.to_string(),
            why,
        };
        if f.host == ssh_port {
            return Err(bad(format!("host port {} is the ssh port", f.host)));
        }
        if forwards[..i].iter().any(|o| o.host == f.host) {
            return Err(bad(format!("host port {} is forwarded twice", f.host)));
        }
        TcpListener::bind((Ipv4Addr::LOCALHOST, f.host)).map_err(|e| {
            bad(format!(
                "host port {} on 127.0.0.1 is not free: {e}",
                f.host
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_are_checked() {
        let (a, b) = (free_port().unwrap(), free_port().unwrap());
        let fw = |host: u16| Forward { host, guest: 80 };
        assert!(check_forwards(&[fw(a)], b).is_ok());
        for (forwards, ssh, says) in [
            (vec![fw(a)], a, "is the ssh port"),
            (vec![fw(a), fw(a)], b, "is forwarded twice"),
        ] {
            let e = check_forwards(&forwards, ssh).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, a)).unwrap();
        let e = check_forwards(&[fw(a)], b).unwrap_err().to_string();
        assert!(e.contains("is not free"), "{e}");
        drop(held);
    }

    #[test]
    fn free_port_is_bindable_and_busy_port_is_refused() {
        let p = free_port().unwrap();
        assert_ne!(p, 0);
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, p)).unwrap();
        let e = check_port(p).unwrap_err().to_string();
        assert!(
            e.contains(&format!("ssh port {p} on 127.0.0.1 is not free")),
            "{e}"
        );
        drop(held);
        assert_eq!(check_port(p).unwrap(), p);
    }
}

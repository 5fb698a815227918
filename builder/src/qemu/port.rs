//! Host ports for the forwarded sshd.

use std::net::{Ipv4Addr, TcpListener};

use super::error::QemuError;

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

#[cfg(test)]
mod tests {
    use super::*;

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

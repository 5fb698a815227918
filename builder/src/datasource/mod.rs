//! Cloud datasources for `basalt boot --datasource`: the user-data goes to
//! the guest the way that cloud delivers it, so a config can be tried
//! locally before it meets the real platform.
//!
//! | datasource  | what the guest sees |
//! |-------------|---------------------|
//! | `ec2-imdsv1`| the same service without the IMDSv2 token API (as the EC2-compatible metadata services of other clouds), to try the v1 fallback |
//! | `ec2`       | an IMDSv2/v1 service (`imds.rs`) on the host's loopback, reached at 169.254.169.254:80 through QEMU user networking (guestfwd); SMBIOS system vendor "Amazon EC2" so the image knows to look there |
//! | `openstack` | a read-only ISO 9660 disk labelled `config-2` with `openstack/latest/user_data` and `meta_data.json` (`iso.rs`) |
//! | `nocloud`   | a read-only ISO 9660 disk labelled `cidata` with `user-data` and `meta-data` |

pub mod imds;
pub mod iso;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Which cloud's delivery to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Datasource {
    Ec2,
    /// EC2 metadata without IMDSv2 tokens (`PUT /latest/api/token` is 404).
    #[value(name = "ec2-imdsv1")]
    Ec2Imdsv1,
    Openstack,
    Nocloud,
}

/// Instance identity the media and the metadata service report.
pub const INSTANCE_ID: &str = "i-0basalt0local0";
pub const HOSTNAME: &str = "basalt-local";
/// The EC2 metadata service address (link-local).
pub const IMDS_ADDR: &str = "169.254.169.254";
pub const CONFIG_DRIVE_LABEL: &str = "config-2";
pub const NOCLOUD_LABEL: &str = "cidata";
/// SMBIOS type 1 as EC2 (Nitro) reports it; the image's /init keys on it.
pub const EC2_SMBIOS: &str = "type=1,manufacturer=Amazon EC2,product=basalt-local";

/// An OpenStack config drive's files (OpenStack "config drive" layout).
pub fn config_drive_files(user_data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let meta = serde_json::json!({
        "uuid": INSTANCE_ID,
        "hostname": HOSTNAME,
        "name": HOSTNAME,
    });
    BTreeMap::from([
        ("openstack/latest/user_data".into(), user_data.to_vec()),
        (
            "openstack/latest/meta_data.json".into(),
            meta.to_string().into_bytes(),
        ),
    ])
}

/// A NoCloud seed's files.
pub fn nocloud_files(user_data: &[u8]) -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        ("user-data".into(), user_data.to_vec()),
        (
            "meta-data".into(),
            format!("instance-id: {INSTANCE_ID}\nlocal-hostname: {HOSTNAME}\n").into_bytes(),
        ),
    ])
}

/// What a datasource adds to the VM. Owns the scratch directory of its
/// media and the metadata service, both gone when this is dropped.
#[derive(Debug)]
pub struct Attached {
    /// Extra read-only raw disks.
    pub drives: Vec<PathBuf>,
    /// `guestfwd` for the metadata service: (guest address, command QEMU
    /// runs per connection).
    pub guestfwd: Option<(String, String)>,
    pub smbios: Vec<String>,
    pub imds: Option<imds::Imds>,
    _dir: tempfile::TempDir,
}

/// The command QEMU runs for each guest connection to the metadata
/// address: this program relaying stdin/stdout to the loopback service.
pub fn relay_command(program: &Path, to: std::net::SocketAddr) -> anyhow::Result<String> {
    let p = program
        .to_str()
        .context("the basalt program path is not UTF-8")?;
    anyhow::ensure!(
        !p.contains([',', ' ', '\'', '"']),
        "the basalt program path {p:?} contains a comma, space or quote, which QEMU's guestfwd command cannot carry"
    );
    Ok(format!("{p} boot --relay-to {to}"))
}

/// Prepare `kind` with `user_data`; `program` is what QEMU runs to relay
/// metadata connections (this binary).
pub fn attach(kind: Datasource, user_data: &[u8], program: &Path) -> anyhow::Result<Attached> {
    let dir = tempfile::Builder::new()
        .prefix("basalt-datasource-")
        .tempdir()
        .context("creating the datasource scratch directory")?;
    let mut a = Attached {
        drives: vec![],
        guestfwd: None,
        smbios: vec![],
        imds: None,
        _dir: dir,
    };
    let media =
        |label: &str, files: BTreeMap<String, Vec<u8>>, name: &str| -> anyhow::Result<PathBuf> {
            let img =
                iso::build(label, &files).with_context(|| format!("writing the {label} ISO"))?;
            let path = a._dir.path().join(name);
            std::fs::write(&path, img).with_context(|| format!("writing {}", path.display()))?;
            Ok(path)
        };
    match kind {
        Datasource::Openstack => {
            let p = media(
                CONFIG_DRIVE_LABEL,
                config_drive_files(user_data),
                "config-2.iso",
            )?;
            a.drives.push(p);
        }
        Datasource::Nocloud => {
            let p = media(NOCLOUD_LABEL, nocloud_files(user_data), "cidata.iso")?;
            a.drives.push(p);
        }
        Datasource::Ec2 | Datasource::Ec2Imdsv1 => {
            let service = imds::Imds::start(imds::Metadata {
                user_data: user_data.to_vec(),
                instance_id: INSTANCE_ID.into(),
                hostname: HOSTNAME.into(),
                require_token: false,
                token_api: kind == Datasource::Ec2,
            })
            .context("starting the metadata service on 127.0.0.1")?;
            a.guestfwd = Some((
                format!("{IMDS_ADDR}:80"),
                relay_command(program, service.addr)?,
            ));
            a.smbios.push(EC2_SMBIOS.into());
            a.imds = Some(service);
        }
    }
    Ok(a)
}

/// Copy stdin to `to` and `to` to stdout until both sides close: what QEMU
/// runs per guestfwd connection (`basalt boot --relay-to ADDR`).
pub fn relay(to: &str) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    let stream = std::net::TcpStream::connect(to).with_context(|| format!("connecting to {to}"))?;
    let mut up = stream.try_clone().context("cloning the relay socket")?;
    let writer = std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = up.shutdown(std::net::Shutdown::Write);
    });
    let mut down = stream;
    let mut stdout = std::io::stdout().lock();
    std::io::copy(&mut down, &mut stdout).context("relaying to stdout")?;
    stdout.flush().ok();
    // The service closes after one answer; do not wait for the guest's
    // side to close as well.
    drop(writer);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_contents() {
        let ud = b"#cloud-config\nhostname: x\n";
        let cd = config_drive_files(ud);
        assert_eq!(cd["openstack/latest/user_data"], ud);
        let meta: serde_json::Value =
            serde_json::from_slice(&cd["openstack/latest/meta_data.json"]).unwrap();
        assert_eq!(meta["uuid"], INSTANCE_ID);
        let nc = nocloud_files(ud);
        assert_eq!(nc["user-data"], ud);
        assert!(String::from_utf8_lossy(&nc["meta-data"]).starts_with("instance-id: "));
    }

    #[test]
    fn attach_each_kind() {
        let prog = Path::new("/usr/bin/basalt");
        for kind in [Datasource::Openstack, Datasource::Nocloud] {
            let a = attach(kind, b"#!/bin/sh\n", prog).unwrap();
            assert_eq!(a.drives.len(), 1);
            let img = std::fs::read(&a.drives[0]).unwrap();
            let want = if kind == Datasource::Openstack {
                "config-2"
            } else {
                "cidata"
            };
            assert_eq!(
                &img[16 * 2048 + 40..16 * 2048 + 40 + want.len()],
                want.as_bytes()
            );
            assert!(a.guestfwd.is_none() && a.smbios.is_empty());
        }
        let a = attach(Datasource::Ec2, b"#!/bin/sh\n", prog).unwrap();
        let (guest, cmd) = a.guestfwd.clone().unwrap();
        assert_eq!(guest, "169.254.169.254:80");
        let port = a.imds.as_ref().unwrap().addr.port();
        assert_eq!(
            cmd,
            format!("/usr/bin/basalt boot --relay-to 127.0.0.1:{port}")
        );
        assert!(a.drives.is_empty());
        assert!(relay_command(Path::new("/a b/basalt"), a.imds.as_ref().unwrap().addr).is_err());
        // ec2 offers IMDSv2 tokens, ec2-imdsv1 does not.
        for (kind, want) in [(Datasource::Ec2, "200"), (Datasource::Ec2Imdsv1, "404")] {
            use std::io::{Read, Write};
            let a = attach(kind, b"#!/bin/sh\n", prog).unwrap();
            assert_eq!(a.smbios, vec![EC2_SMBIOS.to_string()]);
            let mut s = std::net::TcpStream::connect(a.imds.as_ref().unwrap().addr).unwrap();
            s.write_all(b"PUT /latest/api/token HTTP/1.1\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            assert_eq!(&out[9..12], want, "{kind:?}: {out}");
        }
    }
}

//! Device-mapper through its ioctl interface (include/uapi/linux/dm-ioctl.h,
//! interface version 4): create a device, load a table, resume it. The
//! request is a `struct dm_ioctl` header followed by the payload; for
//! DM_TABLE_LOAD the payload is `struct dm_target_spec` records, each
//! followed by its NUL-terminated parameter string, 8-byte aligned.

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::Path;

use super::error::{InitError, Result};
use super::sys::dm_ioctl;

/// sizeof(struct dm_ioctl).
pub const DM_IOCTL_SIZE: usize = 312;
/// sizeof(struct dm_target_spec).
pub const DM_TARGET_SPEC_SIZE: usize = 40;
/// Request buffer size: header plus room for a table.
pub const DM_BUFFER_LEN: usize = 16 * 1024;
pub const DM_NAME_LEN: usize = 128;
pub const DM_UUID_LEN: usize = 129;
pub const DM_MAX_TYPE_NAME: usize = 16;
/// Interface version /init speaks (the kernel accepts a lower minor).
pub const DM_VERSION: [u32; 3] = [4, 0, 0];
pub const CONTROL: &str = "/dev/mapper/control";

/// Field offsets in struct dm_ioctl.
mod off {
    pub const VERSION: usize = 0;
    pub const DATA_SIZE: usize = 12;
    pub const DATA_START: usize = 16;
    pub const TARGET_COUNT: usize = 20;
    pub const FLAGS: usize = 28;
    pub const DEV: usize = 40;
    pub const NAME: usize = 48;
    pub const UUID: usize = 176;
    pub const DATA: usize = 305;
}
const _: () = assert!(off::UUID == off::NAME + DM_NAME_LEN);
const _: () = assert!(off::DATA == off::UUID + DM_UUID_LEN);
const _: () = assert!(off::DATA + 7 == DM_IOCTL_SIZE);

/// Command numbers (enum in dm-ioctl.h).
pub mod cmd {
    pub const VERSION: u8 = 0;
    pub const DEV_CREATE: u8 = 3;
    pub const DEV_REMOVE: u8 = 4;
    pub const DEV_SUSPEND: u8 = 6;
    pub const TABLE_LOAD: u8 = 9;
}

/// Flags of struct dm_ioctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DmFlags(pub u32);

impl DmFlags {
    pub const READONLY: DmFlags = DmFlags(1 << 0);
    pub const SUSPEND: DmFlags = DmFlags(1 << 1);
}

/// One target line of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub start_sector: u64,
    pub sectors: u64,
    pub kind: String,
    pub params: String,
}

/// The request buffer, aligned like the kernel structure.
#[repr(C, align(8))]
pub struct DmBuffer {
    pub bytes: [u8; DM_BUFFER_LEN],
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_ne_bytes());
}

fn put_str(
    b: &mut [u8],
    at: usize,
    cap: usize,
    s: &str,
    what: &str,
) -> std::result::Result<(), String> {
    if s.len() >= cap || s.contains('\0') {
        return Err(format!(
            "{what} {s:?} must be shorter than {cap} bytes and contain no NUL"
        ));
    }
    b[at..at + s.len()].copy_from_slice(s.as_bytes());
    Ok(())
}

impl DmBuffer {
    pub fn new() -> Box<DmBuffer> {
        Box::new(DmBuffer {
            bytes: [0; DM_BUFFER_LEN],
        })
    }

    /// Fill the header for a request on device `name`.
    pub fn header(
        &mut self,
        name: &str,
        uuid: &str,
        flags: DmFlags,
        data_size: usize,
        targets: u32,
    ) -> std::result::Result<(), String> {
        if !(DM_IOCTL_SIZE..=DM_BUFFER_LEN).contains(&data_size) {
            return Err(format!(
                "request of {data_size} bytes does not fit {DM_IOCTL_SIZE}..={DM_BUFFER_LEN}"
            ));
        }
        let b = &mut self.bytes;
        b[..DM_IOCTL_SIZE].fill(0);
        for (i, v) in DM_VERSION.iter().enumerate() {
            put_u32(b, off::VERSION + 4 * i, *v);
        }
        // Both fit in u32: bounded by DM_BUFFER_LEN above.
        put_u32(
            b,
            off::DATA_SIZE,
            u32::try_from(data_size).map_err(|e| e.to_string())?,
        );
        put_u32(
            b,
            off::DATA_START,
            u32::try_from(DM_IOCTL_SIZE).map_err(|e| e.to_string())?,
        );
        put_u32(b, off::TARGET_COUNT, targets);
        put_u32(b, off::FLAGS, flags.0);
        put_str(b, off::NAME, DM_NAME_LEN, name, "device name")?;
        put_str(b, off::UUID, DM_UUID_LEN, uuid, "device uuid")
    }

    /// Encode a DM_TABLE_LOAD request.
    pub fn table(
        &mut self,
        name: &str,
        targets: &[Target],
        flags: DmFlags,
    ) -> std::result::Result<(), String> {
        let mut at = DM_IOCTL_SIZE;
        self.bytes[at..].fill(0);
        for t in targets {
            let params_len = t.params.len() + 1;
            let spec_len = (DM_TARGET_SPEC_SIZE + params_len).next_multiple_of(8);
            if at + spec_len > DM_BUFFER_LEN {
                return Err(format!(
                    "table of {} targets does not fit {DM_BUFFER_LEN} bytes",
                    targets.len()
                ));
            }
            if t.params.contains('\0') {
                return Err("target parameters contain a NUL byte".into());
            }
            put_u64(&mut self.bytes, at, t.start_sector);
            put_u64(&mut self.bytes, at + 8, t.sectors);
            // `next`: from this spec to the following one.
            put_u32(
                &mut self.bytes,
                at + 20,
                u32::try_from(spec_len).map_err(|e| e.to_string())?,
            );
            put_str(
                &mut self.bytes,
                at + 24,
                DM_MAX_TYPE_NAME,
                &t.kind,
                "target type",
            )?;
            let p = at + DM_TARGET_SPEC_SIZE;
            self.bytes[p..p + t.params.len()].copy_from_slice(t.params.as_bytes());
            at += spec_len;
        }
        let n = u32::try_from(targets.len()).map_err(|e| e.to_string())?;
        self.header(name, "", flags, at, n)
    }

    /// The `dev` field the kernel returns (huge_encode_dev format).
    pub fn dev(&self) -> (u32, u32) {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.bytes[off::DEV..off::DEV + 8]);
        decode_dev(u64::from_ne_bytes(b))
    }
}

/// Kernel `new_decode_dev`: 12-bit major in bits 8..20, minor split
/// around it.
pub fn decode_dev(dev: u64) -> (u32, u32) {
    let major = (dev & 0xfff00) >> 8;
    let minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    // Both masks keep the values under 2^20.
    (
        u32::try_from(major).unwrap_or(u32::MAX),
        u32::try_from(minor).unwrap_or(u32::MAX),
    )
}

/// An open /dev/mapper/control.
pub struct Control {
    file: File,
}

impl Control {
    pub fn open(path: &Path) -> Result<Control> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(InitError::io("opening", path))?;
        Ok(Control { file })
    }

    fn run(&self, op: &'static str, name: &str, nr: u8, buf: &mut DmBuffer) -> Result<()> {
        dm_ioctl(self.file.as_fd(), nr, buf).map_err(|source| InitError::DeviceMapper {
            op,
            name: name.into(),
            source,
        })
    }

    fn simple(
        &self,
        op: &'static str,
        name: &str,
        uuid: &str,
        nr: u8,
        flags: DmFlags,
    ) -> Result<Box<DmBuffer>> {
        let mut buf = DmBuffer::new();
        buf.header(name, uuid, flags, DM_IOCTL_SIZE, 0)
            .map_err(|why| InitError::DeviceMapper {
                op,
                name: name.into(),
                source: std::io::Error::other(why),
            })?;
        self.run(op, name, nr, &mut buf)?;
        Ok(buf)
    }

    /// Create device `name`, load `targets`, resume it; returns (major, minor).
    /// On failure the half-made device is removed again.
    pub fn create_device(
        &self,
        name: &str,
        uuid: &str,
        targets: &[Target],
        readonly: bool,
    ) -> Result<(u32, u32)> {
        self.simple("create", name, uuid, cmd::DEV_CREATE, DmFlags::default())?;
        let made = (|| {
            let mut buf = DmBuffer::new();
            let flags = if readonly {
                DmFlags::READONLY
            } else {
                DmFlags::default()
            };
            buf.table(name, targets, flags)
                .map_err(|why| InitError::DeviceMapper {
                    op: "table load",
                    name: name.into(),
                    source: std::io::Error::other(why),
                })?;
            self.run("table load", name, cmd::TABLE_LOAD, &mut buf)?;
            // DM_DEV_SUSPEND without the SUSPEND flag resumes (activates) the table.
            let buf = self.simple("resume", name, "", cmd::DEV_SUSPEND, DmFlags::default())?;
            Ok(buf.dev())
        })();
        if made.is_err() {
            let _ = self.simple("remove", name, "", cmd::DEV_REMOVE, DmFlags::default());
        }
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &DmBuffer, at: usize) -> u32 {
        u32::from_ne_bytes(b.bytes[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_layout() {
        let mut b = DmBuffer::new();
        b.header("usr", "BASALT-USR-A", DmFlags::READONLY, DM_IOCTL_SIZE, 0)
            .unwrap();
        assert_eq!([u32_at(&b, 0), u32_at(&b, 4), u32_at(&b, 8)], DM_VERSION);
        assert_eq!(u32_at(&b, off::DATA_SIZE), 312);
        assert_eq!(u32_at(&b, off::DATA_START), 312);
        assert_eq!(u32_at(&b, off::FLAGS), 1);
        assert_eq!(&b.bytes[48..52], b"usr\0");
        assert_eq!(&b.bytes[176..189], b"BASALT-USR-A\0");
    }

    #[test]
    fn header_errors_table() {
        let long = "x".repeat(128);
        let cases = [
            (long.as_str(), "", 312usize),
            ("ok", "", 100),
            ("ok", "", DM_BUFFER_LEN + 1),
            ("a\0b", "", 312),
        ];
        for (name, uuid, size) in cases {
            assert!(
                DmBuffer::new()
                    .header(name, uuid, DmFlags::default(), size, 0)
                    .is_err(),
                "{name:?} {size}"
            );
        }
    }

    #[test]
    fn table_layout() {
        let mut b = DmBuffer::new();
        let params = "1 259:3 259:3 4096 4096 262144 262145 sha256 aa bb".to_string();
        let t = Target {
            start_sector: 0,
            sectors: 262144 * 8,
            kind: "verity".into(),
            params: params.clone(),
        };
        b.table("usr", &[t], DmFlags::READONLY).unwrap();
        let spec = DM_IOCTL_SIZE;
        let total = (40 + params.len() + 1).next_multiple_of(8);
        assert_eq!(u32_at(&b, off::DATA_SIZE) as usize, DM_IOCTL_SIZE + total);
        assert_eq!(u32_at(&b, off::TARGET_COUNT), 1);
        assert_eq!(
            u64::from_ne_bytes(b.bytes[spec + 8..spec + 16].try_into().unwrap()),
            262144 * 8
        );
        assert_eq!(u32_at(&b, spec + 20) as usize, total);
        assert_eq!(&b.bytes[spec + 24..spec + 31], b"verity\0");
        assert_eq!(
            &b.bytes[spec + 40..spec + 40 + params.len() + 1],
            format!("{params}\0").as_bytes()
        );
        assert_eq!(DM_IOCTL_SIZE % 8, 0);
    }

    #[test]
    fn decode_dev_table() {
        let cases = [
            (0x0000_FC00u64, (252, 0)),
            (0xFC05, (252, 5)),
            (0x0010_FC01, (252, 0x101)),
            (0x10300, (259, 0)),
        ];
        for (dev, want) in cases {
            assert_eq!(decode_dev(dev), want, "{dev:#x}");
        }
    }
}

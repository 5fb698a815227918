//! The one place /init uses `unsafe`: the device-mapper ioctl, which rustix
//! can only issue through its unsafe `ioctl` entry point because the
//! kernel reads and writes a caller-provided buffer.

use std::io;
use std::os::fd::BorrowedFd;

use rustix::ioctl::{Opcode, Updater, opcode};

use super::devmapper::{DM_IOCTL_SIZE, DmBuffer};

/// Stand-in with the size of `struct dm_ioctl`, which the opcode encodes
/// (`_IOWR(DM_IOCTL, nr, struct dm_ioctl)`, include/uapi/linux/dm-ioctl.h).
#[repr(C)]
struct DmIoctlStruct([u8; DM_IOCTL_SIZE]);
const _: () = assert!(std::mem::size_of::<DmIoctlStruct>() == 312);

/// The ioctl type number of device-mapper.
const DM_IOCTL: u8 = 0xfd;

const fn dm_op(nr: u8) -> Opcode {
    opcode::read_write::<DmIoctlStruct>(DM_IOCTL, nr)
}

fn call<const OP: Opcode>(fd: BorrowedFd<'_>, buf: &mut DmBuffer) -> io::Result<()> {
    // SAFETY: OP is one of the device-mapper opcodes built by `dm_op`, all of
    // which take a pointer to a `struct dm_ioctl` followed by `data_size - 312`
    // bytes of payload. `DmBuffer` is 8-aligned and `DM_BUFFER_LEN` long, and
    // every caller sets `data_size` no larger than that (checked in
    // `DmBuffer::header`), so the kernel never reads or writes past it.
    let updater = unsafe { Updater::<OP, DmBuffer>::new(buf) };
    // SAFETY: as above; the buffer outlives the call and is not aliased.
    unsafe { rustix::ioctl::ioctl(fd, updater) }.map_err(io::Error::from)
}

/// Issue device-mapper command `nr` (DM_DEV_CREATE, DM_TABLE_LOAD, ...).
pub fn dm_ioctl(fd: BorrowedFd<'_>, nr: u8, buf: &mut DmBuffer) -> io::Result<()> {
    use super::devmapper::cmd;
    match nr {
        cmd::VERSION => call::<{ dm_op(cmd::VERSION) }>(fd, buf),
        cmd::DEV_CREATE => call::<{ dm_op(cmd::DEV_CREATE) }>(fd, buf),
        cmd::DEV_REMOVE => call::<{ dm_op(cmd::DEV_REMOVE) }>(fd, buf),
        cmd::DEV_SUSPEND => call::<{ dm_op(cmd::DEV_SUSPEND) }>(fd, buf),
        cmd::TABLE_LOAD => call::<{ dm_op(cmd::TABLE_LOAD) }>(fd, buf),
        _ => Err(io::Error::other(format!(
            "device-mapper command {nr} is not used by /init"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_the_uapi_header() {
        // _IOWR(0xfd, 3, struct dm_ioctl): dir 3 << 30 | 312 << 16 | 0xfd << 8 | 3.
        assert_eq!(u64::from(dm_op(3) as u32), 0xC138_FD03);
        assert_eq!(u64::from(dm_op(9) as u32), 0xC138_FD09);
    }
}

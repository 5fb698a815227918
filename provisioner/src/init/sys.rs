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

/// `struct blkpg_partition` (include/uapi/linux/blkpg.h).
#[repr(C)]
pub struct BlkpgPartition {
    /// Byte offset and length of the partition.
    pub start: i64,
    pub length: i64,
    pub pno: i32,
    pub devname: [u8; 64],
    pub volname: [u8; 64],
}
const _: () = assert!(std::mem::size_of::<BlkpgPartition>() == 152);

/// `struct blkpg_ioctl_arg`.
#[repr(C)]
struct BlkpgIoctlArg {
    op: i32,
    flags: i32,
    datalen: i32,
    data: *mut BlkpgPartition,
}
const _: () = assert!(std::mem::size_of::<BlkpgIoctlArg>() == 24);

/// BLKPG = _IO(0x12, 105) (include/uapi/linux/fs.h).
const BLKPG: Opcode = opcode::none(0x12, 105);
/// BLKPG_RESIZE_PARTITION.
const BLKPG_RESIZE_PARTITION: i32 = 3;
/// EXT4_IOC_RESIZE_FS = _IOW('f', 16, __u64) (fs/ext4/ext4.h).
const EXT4_IOC_RESIZE_FS: Opcode = opcode::write::<u64>(b'f', 16);

/// Tell the kernel that partition `pno` of the disk open as `disk` now has
/// `length` bytes (its start is unchanged).
pub fn blkpg_resize(disk: BorrowedFd<'_>, pno: i32, start: i64, length: i64) -> io::Result<()> {
    let mut part = BlkpgPartition {
        start,
        length,
        pno,
        devname: [0; 64],
        volname: [0; 64],
    };
    let datalen = i32::try_from(std::mem::size_of::<BlkpgPartition>()).map_err(io::Error::other)?;
    let mut arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen,
        data: &mut part,
    };
    // SAFETY: BLKPG takes a pointer to struct blkpg_ioctl_arg whose `data`
    // points to a struct blkpg_partition of `datalen` bytes; both are
    // #[repr(C)] with the uapi layout (size asserts above) and live on this
    // stack frame for the duration of the call.
    let updater = unsafe { Updater::<BLKPG, BlkpgIoctlArg>::new(&mut arg) };
    // SAFETY: as above.
    unsafe { rustix::ioctl::ioctl(disk, updater) }.map_err(io::Error::from)
}

/// Grow the mounted ext4 filesystem whose directory is open as `dir` to
/// `blocks` filesystem blocks (online resize).
pub fn ext4_resize(dir: BorrowedFd<'_>, blocks: u64) -> io::Result<()> {
    let mut value = blocks;
    // SAFETY: EXT4_IOC_RESIZE_FS reads one __u64 (the new block count) from
    // the pointer; `value` is a live u64 for the duration of the call.
    let updater = unsafe { Updater::<EXT4_IOC_RESIZE_FS, u64>::new(&mut value) };
    // SAFETY: as above.
    unsafe { rustix::ioctl::ioctl(dir, updater) }.map_err(io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcodes_match_the_uapi_header() {
        // _IOWR(0xfd, 3, struct dm_ioctl): dir 3 << 30 | 312 << 16 | 0xfd << 8 | 3.
        assert_eq!(u64::from(dm_op(3) as u32), 0xC138_FD03);
        assert_eq!(u64::from(dm_op(9) as u32), 0xC138_FD09);
        assert_eq!(u64::from(BLKPG as u32), 0x1269);
        assert_eq!(u64::from(EXT4_IOC_RESIZE_FS as u32), 0x4008_6610);
    }
}

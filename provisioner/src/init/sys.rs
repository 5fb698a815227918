//! The one place /init uses `unsafe`: the device-mapper, block, ext4 and
//! socket ioctls, which rustix can only issue through its unsafe `ioctl`
//! entry point because the kernel reads and writes a caller-provided
//! buffer; and fork(2), which neither std nor rustix offers safely.

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

/// `struct sockaddr_in` inside a `struct sockaddr` slot (include/uapi/linux/in.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockaddrIn {
    pub family: u16,
    pub port_be: u16,
    pub addr: [u8; 4],
    pub zero: [u8; 8],
}
const _: () = assert!(std::mem::size_of::<SockaddrIn>() == 16);
const AF_INET: u16 = 2;

impl SockaddrIn {
    pub fn v4(addr: [u8; 4]) -> SockaddrIn {
        SockaddrIn {
            family: AF_INET,
            port_be: 0,
            addr,
            zero: [0; 8],
        }
    }
}

/// `struct ifreq` (include/uapi/linux/if.h): name, then a 24-byte union of
/// which /init uses the address and the flags.
#[repr(C)]
pub struct IfReq {
    pub name: [u8; 16],
    pub data: [u8; 24],
}
const _: () = assert!(std::mem::size_of::<IfReq>() == 40);

/// `struct rtentry` (include/uapi/linux/route.h), x86_64 layout.
#[repr(C)]
pub struct RtEntry {
    pad1: u64,
    pub dst: SockaddrIn,
    pub gateway: SockaddrIn,
    pub genmask: SockaddrIn,
    pub flags: u16,
    pad2: i16,
    pad3: u64,
    pad4: *mut u8,
    pub metric: i16,
    pub dev: *const u8,
    mtu: u64,
    window: u64,
    irtt: u16,
}
const _: () = assert!(std::mem::size_of::<RtEntry>() == 120);

impl RtEntry {
    /// A route entry; `dev` must point to a NUL-terminated interface name
    /// that outlives the ioctl.
    pub fn new(
        dst: [u8; 4],
        gateway: [u8; 4],
        mask: [u8; 4],
        flags: u16,
        dev: *const u8,
    ) -> RtEntry {
        RtEntry {
            pad1: 0,
            dst: SockaddrIn::v4(dst),
            gateway: SockaddrIn::v4(gateway),
            genmask: SockaddrIn::v4(mask),
            flags,
            pad2: 0,
            pad3: 0,
            pad4: std::ptr::null_mut(),
            metric: 0,
            dev,
            mtu: 0,
            window: 0,
            irtt: 0,
        }
    }
}

/// Socket ioctls (include/uapi/linux/sockios.h); old-style numbers.
pub const SIOCADDRT: Opcode = 0x890B;
pub const SIOCDELRT: Opcode = 0x890C;
pub const SIOCGIFFLAGS: Opcode = 0x8913;
pub const SIOCSIFFLAGS: Opcode = 0x8914;
pub const SIOCSIFADDR: Opcode = 0x8916;
pub const SIOCSIFNETMASK: Opcode = 0x891C;
pub const SIOCSIFNAME: Opcode = 0x8923;
pub const SIOCGIFHWADDR: Opcode = 0x8927;

/// An interface ioctl on any AF_INET socket: `req` is read and written.
pub fn if_ioctl(sock: BorrowedFd<'_>, op: Opcode, req: &mut IfReq) -> io::Result<()> {
    fn call<const OP: Opcode>(sock: BorrowedFd<'_>, req: &mut IfReq) -> io::Result<()> {
        // SAFETY: every SIOC[GS]IF* request below takes a pointer to a
        // struct ifreq (40 bytes, #[repr(C)], size asserted above); `req`
        // is live and exclusively borrowed for the call.
        let updater = unsafe { Updater::<OP, IfReq>::new(req) };
        // SAFETY: as above.
        unsafe { rustix::ioctl::ioctl(sock, updater) }.map_err(io::Error::from)
    }
    match op {
        SIOCGIFFLAGS => call::<SIOCGIFFLAGS>(sock, req),
        SIOCSIFFLAGS => call::<SIOCSIFFLAGS>(sock, req),
        SIOCSIFADDR => call::<SIOCSIFADDR>(sock, req),
        SIOCSIFNETMASK => call::<SIOCSIFNETMASK>(sock, req),
        SIOCSIFNAME => call::<SIOCSIFNAME>(sock, req),
        SIOCGIFHWADDR => call::<SIOCGIFHWADDR>(sock, req),
        _ => Err(io::Error::other(format!(
            "interface ioctl {op:#x} is not used by /init"
        ))),
    }
}

/// Add (`SIOCADDRT`) or delete (`SIOCDELRT`) an IPv4 route.
pub fn route_ioctl(sock: BorrowedFd<'_>, add: bool, rt: &mut RtEntry) -> io::Result<()> {
    fn call<const OP: Opcode>(sock: BorrowedFd<'_>, rt: &mut RtEntry) -> io::Result<()> {
        // SAFETY: SIOCADDRT/SIOCDELRT read a struct rtentry (120 bytes,
        // #[repr(C)], size asserted above); its `dev` pointer is either null
        // or points to a NUL-terminated name the caller keeps alive.
        let updater = unsafe { Updater::<OP, RtEntry>::new(rt) };
        // SAFETY: as above.
        unsafe { rustix::ioctl::ioctl(sock, updater) }.map_err(io::Error::from)
    }
    if add {
        call::<SIOCADDRT>(sock, rt)
    } else {
        call::<SIOCDELRT>(sock, rt)
    }
}

/// `struct loop_info64` (include/uapi/linux/loop.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LoopInfo64 {
    pub device: u64,
    pub inode: u64,
    pub rdevice: u64,
    pub offset: u64,
    pub sizelimit: u64,
    pub number: u32,
    pub encrypt_type: u32,
    pub encrypt_key_size: u32,
    pub flags: u32,
    pub file_name: [u8; 64],
    pub crypt_name: [u8; 64],
    pub encrypt_key: [u8; 32],
    pub init: [u64; 2],
}
const _: () = assert!(std::mem::size_of::<LoopInfo64>() == 232);

/// `struct loop_config` (include/uapi/linux/loop.h, Linux 5.8+): the file
/// descriptor to back the device, the block size (0: default) and the
/// status, set in one call.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LoopConfig {
    pub fd: u32,
    pub block_size: u32,
    pub info: LoopInfo64,
    pub reserved: [u64; 8],
}
const _: () = assert!(std::mem::size_of::<LoopConfig>() == 304);

/// Loop ioctls (include/uapi/linux/loop.h); plain numbers there, which
/// equal `_IO('L', nr)`.
pub const LOOP_CONFIGURE: Opcode = 0x4C0A;
pub const LOOP_CLR_FD: Opcode = 0x4C01;
pub const LOOP_CTL_GET_FREE: Opcode = 0x4C82;

/// LOOP_CTL_GET_FREE on /dev/loop-control: takes no argument and returns
/// the number of a free loop device (creating one if needed).
struct LoopCtlGetFree;

// SAFETY: LOOP_CTL_GET_FREE passes no pointer (`as_ptr` is null) and
// nothing in userspace is written; the result is the ioctl's return value.
unsafe impl rustix::ioctl::Ioctl for LoopCtlGetFree {
    type Output = rustix::ioctl::IoctlOutput;
    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        LOOP_CTL_GET_FREE
    }

    fn as_ptr(&mut self) -> *mut core::ffi::c_void {
        std::ptr::null_mut()
    }

    unsafe fn output_from_ptr(
        out: rustix::ioctl::IoctlOutput,
        _: *mut core::ffi::c_void,
    ) -> rustix::io::Result<Self::Output> {
        Ok(out)
    }
}

/// The number of a free loop device (`/dev/loop-control` open as `ctl`).
pub fn loop_get_free(ctl: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: see the `Ioctl` impl: no argument, result by return value.
    let n = unsafe { rustix::ioctl::ioctl(ctl, LoopCtlGetFree) }.map_err(io::Error::from)?;
    u32::try_from(n).map_err(|_| io::Error::other(format!("LOOP_CTL_GET_FREE returned {n}")))
}

/// LOOP_CONFIGURE on the loop device open as `dev`.
pub fn loop_configure(dev: BorrowedFd<'_>, cfg: LoopConfig) -> io::Result<()> {
    // SAFETY: LOOP_CONFIGURE reads one struct loop_config (304 bytes,
    // #[repr(C)], size asserted above) from the pointer; the Setter owns
    // the value for the duration of the call.
    let setter = unsafe { rustix::ioctl::Setter::<LOOP_CONFIGURE, LoopConfig>::new(cfg) };
    // SAFETY: as above.
    unsafe { rustix::ioctl::ioctl(dev, setter) }.map_err(io::Error::from)
}

/// LOOP_CLR_FD: detach the backing file (undo after a failed setup).
pub fn loop_clear(dev: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: LOOP_CLR_FD takes no argument.
    let none = unsafe { rustix::ioctl::NoArg::<LOOP_CLR_FD>::new() };
    // SAFETY: as above.
    unsafe { rustix::ioctl::ioctl(dev, none) }.map_err(io::Error::from)
}

/// Runs `child` in a new process and returns in the caller at once; the
/// new process exits with status 0 once `child` returns. /init uses it for
/// work that may finish after it has exec'd systemd (which, as PID 1, reaps
/// the process).
///
/// The caller must be single-threaded: every thread it started has been
/// joined. The child gets a copy of only the calling thread.
pub fn fork_detached(child: impl FnOnce()) -> io::Result<()> {
    // SAFETY: fork(2) through glibc (which also resets its own locks and
    // cached thread id in the child). The caller is single-threaded (the
    // documented contract, kept by `init::run`: the NIC-driver thread is
    // joined first), so no other thread can hold a lock (allocator, stdio)
    // that the child would then wait on forever; the child is a full copy
    // of this one thread's state, runs only safe Rust and then exits.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            child();
            std::process::exit(0)
        }
        _ => Ok(()),
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
        assert_eq!(u64::from(BLKPG as u32), 0x1269);
        assert_eq!(u64::from(EXT4_IOC_RESIZE_FS as u32), 0x4008_6610);
        assert_eq!(LOOP_CONFIGURE, opcode::none(b'L', 0x0A));
        assert_eq!(LOOP_CLR_FD, opcode::none(b'L', 0x01));
        assert_eq!(LOOP_CTL_GET_FREE, opcode::none(b'L', 0x82));
    }
}

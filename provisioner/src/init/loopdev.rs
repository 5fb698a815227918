//! Loop devices: a regular file (the /usr image a diskless boot carries in
//! its initramfs) as a read-only block device, so that device-mapper can
//! put dm-verity on top of it. A free device comes from
//! `/dev/loop-control` (LOOP_CTL_GET_FREE), and one LOOP_CONFIGURE call
//! (Linux 5.8+) attaches the file read-only
//! (include/uapi/linux/loop.h; the ioctls are in `sys.rs`).

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::disk::Part;
use super::error::{InitError, Result};
use super::sys::{self, LoopConfig, LoopInfo64};

pub const LOOP_CONTROL: &str = "/dev/loop-control";
/// Block major number of loop devices (Documentation/admin-guide/devices.txt).
pub const LOOP_MAJOR: u32 = 7;
/// `LO_FLAGS_READ_ONLY` of struct loop_info64.
pub const LO_FLAGS_READ_ONLY: u32 = 1;
/// Attempts when another process takes the free device first (EBUSY).
const ATTEMPTS: u32 = 3;
/// How long devtmpfs gets to create `/dev/loopN`.
const NODE_WAIT: Duration = Duration::from_secs(2);

/// The loop_config that attaches `fd` read-only over the whole file;
/// `name` goes into `file_name` (what LOOP_GET_STATUS64 reports).
pub fn config_for(fd: u32, name: &Path) -> LoopConfig {
    let mut file_name = [0u8; 64];
    let bytes = name.as_os_str().as_encoded_bytes();
    // Truncated names are fine: informational only, NUL-terminated.
    let n = bytes.len().min(file_name.len() - 1);
    file_name[..n].copy_from_slice(&bytes[..n]);
    LoopConfig {
        fd,
        block_size: 0,
        info: LoopInfo64 {
            device: 0,
            inode: 0,
            rdevice: 0,
            offset: 0,
            sizelimit: 0,
            number: 0,
            encrypt_type: 0,
            encrypt_key_size: 0,
            flags: LO_FLAGS_READ_ONLY,
            file_name,
            crypt_name: [0; 64],
            encrypt_key: [0; 32],
            init: [0; 2],
        },
        reserved: [0; 8],
    }
}

/// `/dev/loopN`, waiting briefly for devtmpfs; else our own node in /run.
fn node(n: u32) -> Result<PathBuf> {
    let dev = PathBuf::from(format!("/dev/loop{n}"));
    let start = Instant::now();
    while start.elapsed() < NODE_WAIT {
        if dev.exists() {
            return Ok(dev);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let own = PathBuf::from(format!("/run/basalt-loop{n}"));
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &own,
        rustix::fs::FileType::BlockDevice,
        rustix::fs::Mode::from_raw_mode(0o600),
        rustix::fs::makedev(LOOP_MAJOR, n),
    )
    .map_err(|e| InitError::io("creating loop device node", &own)(e.into()))?;
    Ok(own)
}

/// Attach `image` read-only to a free loop device. The returned [`Part`]
/// names the device, its `major:minor` and its size (the file's).
pub fn attach_read_only(image: &Path) -> Result<Part> {
    let file = File::open(image).map_err(InitError::io("opening", image))?;
    let size = file
        .metadata()
        .map_err(InitError::io("inspecting", image))?
        .len();
    let fd = u32::try_from(file.as_raw_fd())
        .map_err(|_| InitError::io("opening", image)(std::io::Error::other("negative fd")))?;
    let ctl = OpenOptions::new()
        .read(true)
        .write(true)
        .open(LOOP_CONTROL)
        .map_err(InitError::io(
            "opening (is the loop driver loaded?)",
            LOOP_CONTROL,
        ))?;
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let n = sys::loop_get_free(ctl.as_fd())
            .map_err(InitError::io("asking for a free loop device", LOOP_CONTROL))?;
        let path = node(n)?;
        let dev = File::open(&path).map_err(InitError::io("opening", &path))?;
        match sys::loop_configure(dev.as_fd(), config_for(fd, image)) {
            Ok(()) => {
                return Ok(Part {
                    number: 0,
                    devno: format!("{LOOP_MAJOR}:{n}"),
                    dev: path,
                    size,
                });
            }
            // Someone else took it between GET_FREE and CONFIGURE.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) => {
                last = Some(e)
            }
            Err(e) => {
                let _ = sys::loop_clear(dev.as_fd());
                return Err(InitError::Io {
                    what: "attaching (LOOP_CONFIGURE, Linux 5.8+) the /usr image to",
                    path,
                    source: e,
                });
            }
        }
    }
    Err(InitError::Io {
        what: "finding a free loop device for",
        path: image.to_path_buf(),
        source: last.unwrap_or_else(|| std::io::Error::other("every attempt was busy")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_read_only_whole_file() {
        let c = config_for(5, Path::new("/usr.img"));
        assert_eq!((c.fd, c.block_size), (5, 0));
        assert_eq!(c.info.flags, LO_FLAGS_READ_ONLY);
        assert_eq!((c.info.offset, c.info.sizelimit), (0, 0));
        assert_eq!(&c.info.file_name[..9], b"/usr.img\0");
        let long = "/x".repeat(100);
        let c = config_for(1, Path::new(&long));
        assert_eq!(c.info.file_name[63], 0, "always NUL-terminated");
        assert_eq!(c.info.file_name[62], b'/');
    }
}

//! The one place with `unsafe`: tie QEMU's life to ours.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the kernel send SIGTERM to the child when the thread that spawned it
/// exits, so that killing `basalt boot` never leaves an orphaned VM running.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(2), which is async-signal-safe; it touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

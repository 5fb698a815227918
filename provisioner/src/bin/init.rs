//! `basalt-init`: the initramfs /init. Built statically:
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p basalt-provisioner --bin basalt-init --target x86_64-unknown-linux-gnu`.

use basalt_provisioner::init::{Hooks, fatal, grow, run};

fn main() {
    let hooks = Hooks {
        // A ROOT that cannot grow still boots (loudly): the system is correct,
        // only smaller than the disk.
        grow_root: Some(Box::new(|ctx| {
            match grow::grow_root(ctx.disk, ctx.sysroot) {
                Ok(grow::Grown::AlreadyFull { bytes }) => {
                    fatal::info(format!("ROOT already fills the disk ({bytes} bytes)"))
                }
                Ok(grow::Grown::Grew {
                    from_bytes,
                    to_bytes,
                    fs_blocks,
                }) => fatal::info(format!(
                    "ROOT grown from {from_bytes} to {to_bytes} bytes (ext4 now {fs_blocks} blocks)"
                )),
                Err(e) => fatal::warn(format!(
                    "could not grow ROOT: {e}; continuing with its current size"
                )),
            }
            Ok(())
        })),
        // The provisioner library is wired here once its entry point for
        // /init exists; until then /init reports it as not wired and never
        // stamps the machine as provisioned.
        provision: None,
    };
    run(hooks)
}

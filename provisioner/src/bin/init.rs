//! `basalt-init`: the initramfs /init. Built statically:
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p basalt-provisioner --bin basalt-init --target x86_64-unknown-linux-gnu`.

use basalt_provisioner::init::{Hooks, run};

fn main() {
    // First-boot hooks: growing ROOT and the provisioner are wired here once
    // their library entry points exist; until then /init reports them as
    // not wired (and never stamps the machine as provisioned).
    run(Hooks::default())
}

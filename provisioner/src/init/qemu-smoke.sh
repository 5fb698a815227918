#!/bin/sh
# Boot smoke test of basalt-init under QEMU (TCG is fine): a real kernel
# unpacks our xz newc initramfs, /init loads the modules, finds the GPT
# disk, sets up dm-verity for USR-A, mounts ROOT and /usr, seeds /etc, grows
# ROOT, and switch_roots. The "real init" on the verity /usr is basalt-init
# itself: its second start (PID 1 in the new root) proves the exec worked,
# and it then stops on purpose ("device-mapper create usr: ... busy").
#
# usage: qemu-smoke.sh UNPACKED_KERNEL_DIR [WORKDIR]
#   UNPACKED_KERNEL_DIR: `dpkg-deb -x linux-image-*.deb DIR` (needs boot/vmlinuz-*)
# needs: qemu-system-x86, sgdisk (gdisk), mkfs.ext4 (e2fsprogs), veritysetup (cryptsetup-bin)
set -eu
KROOT=$(realpath "$1")
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
VMLINUZ=$(ls "$KROOT"/boot/vmlinuz-* | head -n1)
KVER=${VMLINUZ##*/vmlinuz-}

cd "$REPO"
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release -p basalt-provisioner \
  --bin basalt-init --target x86_64-unknown-linux-gnu
INIT=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/basalt-init
cargo run -q --release -p basalt-kmod --example mkinitramfs -- "$KROOT" "$KVER" "$INIT" "$WORK/initrd.xz"

cd "$WORK"
rm -rf usrdir disk.img usr.img root.img serial.log
mkdir -p usrdir/lib/systemd usrdir/share/factory/etc
cp "$INIT" usrdir/lib/systemd/systemd
echo basalt-smoke > usrdir/share/factory/etc/hostname
truncate -s 32M usr.img
mkfs.ext4 -q -F -b 4096 -d usrdir usr.img 32M
truncate -s 40M usr.img
HASH=$(veritysetup format --hash-offset=33554432 --data-blocks=8192 usr.img usr.img | awk '/Root hash/ {print $3}')
truncate -s 64M root.img
mkfs.ext4 -q -F root.img
truncate -s 200M disk.img
sgdisk -n 1:1M:+8M -c 1:EFI-SYSTEM -n 3:0:+40M -c 3:USR-A -n 4:0:+40M -c 4:USR-B \
  -n 6:0:+8M -c 6:OEM -n 9:0:+64M -c 9:ROOT disk.img >/dev/null
first() { sgdisk -i "$1" disk.img | awk '/First sector/ {print $3}'; }
dd if=usr.img of=disk.img bs=512 seek="$(first 3)" conv=notrunc status=none
dd if=root.img of=disk.img bs=512 seek="$(first 9)" conv=notrunc status=none

timeout 600 qemu-system-x86_64 -m 512 -nodefaults -display none -no-reboot \
  -serial file:serial.log -kernel "$VMLINUZ" -initrd initrd.xz \
  -drive file=disk.img,format=raw,if=virtio \
  -append "console=ttyS0 panic=-1 basalt.slot=a basalt.usrhash=$HASH basalt.usr_hash_offset=33554432 basalt.usr_data_blocks=8192" || true

grep basalt-init serial.log || true
ok=1
for want in "switching root to /sysroot" "FATAL: device-mapper create usr"; do
  grep -q "$want" serial.log || { echo "MISSING: $want"; ok=0; }
done
[ "$(grep -c '^basalt-init: booting /usr slot a' serial.log)" = 2 ] || { echo "MISSING: second start from the verity /usr"; ok=0; }
[ $ok = 1 ] && echo "qemu-smoke: OK ($WORK/serial.log)" || { echo "qemu-smoke: FAILED ($WORK/serial.log)"; exit 1; }

//! Prints the generated grub.cfg and slot files for two example slots.
//! `cargo run -p basalt-grub --example print_cfg`

fn main() -> Result<(), basalt_grub::GrubError> {
    let cfg = basalt_grub::GrubConfig::ab(
        "basalt.slot=A basalt.usrhash=<hash-a> console=ttyS0,115200",
        "basalt.slot=B basalt.usrhash=<hash-b> console=ttyS0,115200",
    );
    print!("{}", basalt_grub::grub_cfg(&cfg)?);
    for s in &cfg.slots {
        println!("==> {} <==", basalt_grub::config::slot_cfg_path(s.name));
        print!("{}", basalt_grub::slot_cfg(s)?);
    }
    Ok(())
}

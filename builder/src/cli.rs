//! The command line: clap derive, one subcommand per verb.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "basalt",
    version,
    about = "Build immutable, CoreOS-style OS images from Debian packages"
)]
pub struct Cli {
    /// Show detail lines (mirror, per-step figures).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build the image's artifacts from a profile.
    Build(BuildArgs),
    /// Boot an image under QEMU (serial console, ssh forward, config through fw_cfg).
    Boot(crate::cmd::boot::BootArgs),
    /// Resolve the profile's packages and write `<profile>.lock`.
    Lock(LockArgs),
    /// Show the resolved package set and why each package is in it.
    Packages(PackagesArgs),
    /// Create an Ed25519 key pair for signing update payloads (PREFIX.key, PREFIX.pub).
    Keygen {
        /// Path prefix of the key files.
        prefix: PathBuf,
    },
    /// Inspect profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Write an image to a disk or a file, with a first-boot config on its OEM partition.
    Install(crate::cmd::install::InstallArgs),
    /// Serve a directory of update payloads over HTTP with a signed index.
    ServeUpdates(crate::cmd::serve::ServeArgs),
}

/// Options shared by every command that reads a profile.
#[derive(Debug, Clone, Args)]
pub struct ProfileArgs {
    /// Profile YAML file (default: the embedded profiles/qemu.yaml).
    #[arg(short = 'p', long = "profile")]
    pub profile: Option<PathBuf>,
    /// Debian mirror URL (http, https or file://), overriding the profile and the host's apt configuration.
    #[arg(long)]
    pub mirror: Option<String>,
    /// Lock file (default: the profile's path with `.lock`; `./qemu.lock` for the embedded default).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Use only the download cache; never touch the network.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Sparse raw GPT disk image (`<name>.img`).
    Raw,
    /// Raw disk image compressed with multithreaded xz (`<name>.img.xz`).
    #[value(name = "raw.xz")]
    RawXz,
    /// qcow2 disk image (`<name>.qcow2`).
    Qcow2,
    /// Tar archive of the whole tree (`<name>.tar`).
    Tar,
    /// OCI image layout archive for `docker load` (`<name>.oci.tar`); needs no kernel.
    Oci,
    /// VMDK streamOptimized disk for VMware and cloud imports (`<name>.vmdk`).
    Vmdk,
    /// Fixed VHD, 1 MiB aligned, for Azure (`<name>.vhd`).
    Vhd,
    /// Google Compute Engine image: `disk.raw` in a tar.gz (`<name>.tar.gz`).
    Gce,
    /// Network boot: kernel, an initrd that carries /usr, and an iPXE script
    /// (`<name>-vmlinuz`, `<name>-initrd.img`, `<name>.ipxe`).
    Pxe,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::RawXz => "raw.xz",
            Format::Qcow2 => "qcow2",
            Format::Tar => "tar",
            Format::Oci => "oci",
            Format::Vmdk => "vmdk",
            Format::Vhd => "vhd",
            Format::Gce => "gce",
            Format::Pxe => "pxe",
        }
    }
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Output directory.
    #[arg(short = 'o', long = "output", default_value = "out")]
    pub output: PathBuf,
    /// Artifact formats to write (repeatable, or comma-separated).
    #[arg(
        short = 'f',
        long = "format",
        value_enum,
        value_delimiter = ',',
        default_value = "raw"
    )]
    pub format: Vec<Format>,
    /// Override the profile's image version.
    #[arg(long = "image-version")]
    pub image_version: Option<String>,
    /// Ed25519 key that signs the update payload (default: the profile's
    /// `update.signing_key`, else $XDG_CONFIG_HOME/basalt/update.key, created if missing).
    #[arg(long = "signing-key")]
    pub signing_key: Option<PathBuf>,
    /// Print the manifest as JSON on stdout when done.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
}

#[derive(Debug, Args)]
pub struct PackagesArgs {
    #[command(flatten)]
    pub profile: ProfileArgs,
    /// Explain why this package is in the set.
    #[arg(long)]
    pub why: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Print the merged, validated profile as JSON.
    Show {
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(long = "image-version")]
        image_version: Option<String>,
    },
}

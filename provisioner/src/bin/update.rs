//! `basalt-update`: applies signed A/B /usr update payloads and manages the
//! boot-slot state. See provisioner/src/update/README.md.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use basalt_provisioner::update::{
    self, ApplyOptions, Machine, Rollback, Stage, UpdateConf,
    esp::Esp,
    poll::{Decision, Polled},
    reboot, source,
};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "basalt-update",
    about = "Signed A/B /usr updates with automatic rollback"
)]
struct Cli {
    /// Boot disk (block device or image file); default: the disk holding
    /// the partition labelled USR-A.
    #[arg(long, global = true)]
    disk: Option<PathBuf>,
    /// Mounted ESP directory; default: the ESP's existing mount, or the ESP
    /// (partition EFI-SYSTEM) mounted for the duration of the command.
    #[arg(long, global = true)]
    esp: Option<PathBuf>,
    /// Booted slot (A or B); default: basalt.slot= on the kernel command line.
    #[arg(long, global = true)]
    booted: Option<char>,
    /// Kernel command line to read the booted slot from.
    #[arg(long, global = true, default_value = "/proc/cmdline")]
    cmdline_file: PathBuf,
    /// etcd client URL (etcd-lock reboot strategy; v3 JSON gateway).
    /// Default: ETCD_ENDPOINT= in the config file, else http://127.0.0.1:2379.
    #[arg(long, global = true)]
    etcd_endpoint: Option<String>,
    /// Reboot strategy file (REBOOT_STRATEGY, GROUP).
    #[arg(long, global = true, default_value = update::DEFAULT_CONF)]
    config: PathBuf,
    /// Where a held reboot lock is remembered across the reboot.
    #[arg(long, global = true, default_value = update::etcd::HELD_MARKER)]
    lock_marker: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Verify a payload (local file or http(s) URL) and install it into the
    /// inactive slot, to be tried at the next boot.
    Apply {
        source: String,
        /// Public key payloads must be signed with.
        #[arg(long, default_value = update::DEFAULT_KEY)]
        key: PathBuf,
        /// Where URLs are downloaded to.
        #[arg(long, default_value = source::DOWNLOAD_DIR)]
        download_dir: PathBuf,
        /// Do not reboot, whatever the strategy says.
        #[arg(long)]
        no_reboot: bool,
        /// Command that reboots the machine.
        #[arg(long, num_args = 1.., default_values = ["systemctl", "reboot"])]
        reboot_command: Vec<String>,
        /// Fault injection: fail right after slot-written, slot-verified or
        /// esp-written.
        #[arg(long, hide = true)]
        stop_after: Option<Stage>,
    },
    /// Ask an update server (basalt serve-updates) for its signed index and
    /// apply the newest payload above the booted version; then follow the
    /// reboot strategy. Without URL, SERVER= from the config file is used;
    /// with neither, nothing is done.
    Poll {
        /// Base URL of the server (index.json is fetched below it).
        url: Option<String>,
        /// Public key the index and payloads must be signed with.
        #[arg(long, default_value = update::DEFAULT_KEY)]
        key: PathBuf,
        /// Where the payload is downloaded to (removed after the apply).
        #[arg(long, default_value = source::DOWNLOAD_DIR)]
        download_dir: PathBuf,
        /// The running image's os-release (IMAGE_ID, IMAGE_VERSION).
        #[arg(long, default_value = update::poll::OS_RELEASE)]
        os_release: PathBuf,
        /// Do not reboot, whatever the strategy says.
        #[arg(long)]
        no_reboot: bool,
        /// Command that reboots the machine.
        #[arg(long, num_args = 1.., default_values = ["systemctl", "reboot"])]
        reboot_command: Vec<String>,
    },
    /// Slot versions and state, booted and next slot, last failed attempt.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Make the other good slot boot next (or cancel a staged update).
    Rollback,
    /// Mark the booted slot good (basalt-mark-good.service).
    MarkGood,
}

fn booted(cli: &Cli) -> Result<char> {
    if let Some(b) = cli.booted {
        return match b.to_ascii_uppercase() {
            c @ ('A' | 'B') => Ok(c),
            _ => bail!("--booted {b}: expected A or B"),
        };
    }
    let line = std::fs::read_to_string(&cli.cmdline_file)
        .with_context(|| format!("reading {}", cli.cmdline_file.display()))?;
    update::booted_slot(&line)?.with_context(|| {
        format!(
            "{} has no basalt.slot=: not booted from a Basalt /usr slot (use --booted)",
            cli.cmdline_file.display()
        )
    })
}

fn by_label(label: &str) -> Result<PathBuf> {
    let link = Path::new("/dev/disk/by-partlabel").join(label);
    std::fs::canonicalize(&link).with_context(|| format!("finding partition {}", link.display()))
}

/// The whole disk a partition device belongs to (via sysfs).
fn parent_disk(part: &Path) -> Result<PathBuf> {
    let name = part.file_name().context("partition device has no name")?;
    let sys = Path::new("/sys/class/block").join(name);
    let parent = std::fs::canonicalize(sys.join(".."))
        .with_context(|| format!("finding the disk of {}", part.display()))?;
    let disk = parent.file_name().context("no parent disk in sysfs")?;
    Ok(Path::new("/dev").join(disk))
}

/// The ESP: given, already mounted, or mounted here until dropped.
struct EspMount {
    dir: PathBuf,
    mounted_here: bool,
}

impl Drop for EspMount {
    fn drop(&mut self) {
        if !self.mounted_here {
            return;
        }
        if let Err(e) = rustix::mount::unmount(&self.dir, rustix::mount::UnmountFlags::empty()) {
            eprintln!("basalt-update: unmounting {}: {e}", self.dir.display());
        }
    }
}

fn esp(cli: &Cli) -> Result<EspMount> {
    if let Some(d) = &cli.esp {
        return Ok(EspMount {
            dir: d.clone(),
            mounted_here: false,
        });
    }
    let dev = by_label("EFI-SYSTEM")?;
    let rdev = std::fs::metadata(&dev)
        .with_context(|| format!("stat {}", dev.display()))?
        .rdev();
    let (maj, min) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    let info = std::fs::read_to_string("/proc/self/mountinfo").context("reading mountinfo")?;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() > 4 && f[2] == format!("{maj}:{min}") {
            return Ok(EspMount {
                dir: PathBuf::from(f[4].replace("\\040", " ")),
                mounted_here: false,
            });
        }
    }
    let dir = PathBuf::from("/run/basalt-update/esp");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    rustix::mount::mount(
        &dev,
        &dir,
        "vfat",
        rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
        None,
    )
    .with_context(|| format!("mounting the ESP {} on {}", dev.display(), dir.display()))?;
    Ok(EspMount {
        dir,
        mounted_here: true,
    })
}

fn machine(cli: &Cli, esp: &EspMount) -> Result<Machine> {
    let disk = match &cli.disk {
        Some(d) => d.clone(),
        None => parent_disk(&by_label("USR-A")?)?,
    };
    Ok(Machine {
        disk,
        esp: Esp::new(&esp.dir),
        booted: booted(cli)?,
    })
}

fn lock_settings(cli: &Cli, conf: &UpdateConf) -> Result<update::etcd::LockSettings> {
    Ok(update::etcd::LockSettings {
        endpoint: cli
            .etcd_endpoint
            .clone()
            .or_else(|| conf.etcd_endpoint.clone())
            .unwrap_or_else(|| update::etcd::DEFAULT_ENDPOINT.to_string()),
        group: conf.group.clone(),
        id: update::etcd::machine_id()?,
        marker: cli.lock_marker.clone(),
        poll: std::time::Duration::from_secs(30),
        max_wait: None,
    })
}

/// The reboot strategy's step after a successful apply.
fn after_apply(cli: &Cli, conf: &UpdateConf, reboot_command: &[String]) -> Result<()> {
    let lock = match conf.strategy {
        update::Strategy::EtcdLock => Some(lock_settings(cli, conf)?),
        _ => None,
    };
    match reboot::after_apply(&conf.strategy, reboot_command, lock.as_ref())? {
        reboot::Outcome::Staged => {
            println!("basalt-update: reboot strategy off: reboot to activate")
        }
        reboot::Outcome::Rebooting => println!("basalt-update: rebooting"),
    }
    Ok(())
}

fn describe(d: &Decision) -> String {
    match d {
        Decision::UpToDate => "up to date: nothing newer on the server".into(),
        Decision::BootedNotGood => {
            "the booted slot is not marked good yet; updates wait for it".into()
        }
        Decision::AlreadyStaged(e) => {
            format!(
                "{} is already installed in the other slot; reboot to use it",
                e.version
            )
        }
        Decision::PreviouslyFailed(e) => format!(
            "{} failed its trial boot before; not applying it again (waiting for a newer version)",
            e.version
        ),
        Decision::Apply(e) => format!("{} to apply", e.version),
    }
}

fn run(cli: Cli) -> Result<()> {
    let mount = esp(&cli)?;
    let m = machine(&cli, &mount)?;
    match &cli.cmd {
        Cmd::Apply {
            source: src,
            key,
            download_dir,
            no_reboot,
            reboot_command,
            stop_after,
        } => {
            let conf = UpdateConf::load(&cli.config)?;
            let key = basalt_payload::keys::load_verifying_key(key)
                .context("loading the update public key")?;
            let file: File = source::open(src, download_dir)?;
            let done = update::apply(
                &m,
                file,
                &key,
                &ApplyOptions {
                    stop_after: *stop_after,
                },
            )
            .with_context(|| format!("applying {src}"))?;
            println!(
                "basalt-update: {} {} installed in slot {}; it is tried at the next boot",
                done.name, done.version, done.slot
            );
            drop(mount);
            if !*no_reboot {
                after_apply(&cli, &conf, reboot_command)?;
            }
        }
        Cmd::Poll {
            url,
            key,
            download_dir,
            os_release,
            no_reboot,
            reboot_command,
        } => {
            let conf = UpdateConf::load(&cli.config)?;
            let Some(server) = url.clone().or_else(|| conf.server.clone()) else {
                println!(
                    "basalt-update: no update server configured (SERVER= in {}, from cloud-config coreos.update.server or an Ignition file); nothing to do",
                    cli.config.display()
                );
                return Ok(());
            };
            let key = basalt_payload::keys::load_verifying_key(key)
                .context("loading the update public key")?;
            let release = update::poll::read_os_release(os_release)?;
            println!(
                "basalt-update: polling {server} (running {} {}, slot {})",
                release.name, release.version, m.booted
            );
            let o = update::poll::PollOptions {
                server: server.clone(),
                download_dir: download_dir.clone(),
                release,
                apply: ApplyOptions::default(),
            };
            match update::poll::poll(&m, &key, &o)? {
                // Staged by an earlier run whose reboot step did not happen
                // (e.g. stopped while waiting for the etcd lock): redo it.
                Polled::Nothing(d @ Decision::AlreadyStaged(_)) => {
                    println!("basalt-update: {}", describe(&d))
                }
                Polled::Nothing(d) => {
                    println!("basalt-update: {}", describe(&d));
                    return Ok(());
                }
                Polled::Applied { apply, .. } => println!(
                    "basalt-update: {} {} installed in slot {}; it is tried at the next boot",
                    apply.name, apply.version, apply.slot
                ),
            }
            drop(mount);
            if !*no_reboot {
                after_apply(&cli, &conf, reboot_command)?;
            }
        }
        Cmd::Status { json } => {
            let s = update::status(&m)?;
            if *json {
                println!("{}", s.to_json());
            } else {
                print!("{}", s.to_text());
            }
        }
        Cmd::Rollback => match update::rollback(&m)? {
            Rollback::ToOther(s) => println!("basalt-update: slot {s} boots next"),
            Rollback::Cancelled(s) => {
                println!("basalt-update: staged update in slot {s} cancelled")
            }
        },
        Cmd::MarkGood => {
            if let Some(f) = update::mark_good(&m)? {
                eprintln!(
                    "basalt-update: the trial of slot {} (version {}) failed; running on {}",
                    f.slot,
                    f.version.as_deref().unwrap_or("unknown"),
                    f.fell_back_to
                );
            }
            println!("basalt-update: slot {} marked good", m.booted);
            if cli.lock_marker.exists() {
                let conf = UpdateConf::load(&cli.config)?;
                if update::etcd::release_if_held(&lock_settings(&cli, &conf)?)
                    .context("releasing the reboot lock")?
                {
                    println!("basalt-update: reboot lock released");
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("basalt-update: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

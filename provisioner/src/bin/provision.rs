//! `basalt-provision`: validate, translate and apply first-boot configs.

use anyhow::{Context, Result, bail};
use basalt_provisioner::apply;
use basalt_provisioner::diag::Report;
use basalt_provisioner::fetch::Fetcher;
use basalt_provisioner::firstboot::{self, ConfigInput};
use basalt_provisioner::sources;
use basalt_provisioner::userdata::{self, Format};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "basalt-provision",
    about = "First-boot provisioning: Ignition 3.x and cloud-config"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Validate, fetch and apply a config to a root directory.
    Apply {
        /// Root directory to apply into (the real root at boot).
        #[arg(long)]
        root: PathBuf,
        /// Config file; without it, the platform's sources are searched.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Seconds since the epoch to record (default: the current time).
        #[arg(long)]
        now: Option<i64>,
        #[command(flatten)]
        env: SourceArgs,
    },
    /// Check a config; prints FILE:LINE:COL: message per problem.
    Validate {
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Translate a cloud-config into Ignition JSON (stdout).
    Translate { file: PathBuf },
    /// Config source commands.
    Source {
        #[command(subcommand)]
        cmd: SourceCmd,
    },
}

#[derive(Subcommand)]
enum SourceCmd {
    /// Find the config in the platform's sources and print it.
    Fetch {
        #[command(flatten)]
        env: SourceArgs,
    },
}

#[derive(clap::Args)]
struct SourceArgs {
    /// sysfs mount point (fw_cfg).
    #[arg(long, default_value = "/sys")]
    sysfs: PathBuf,
    /// Kernel command line file.
    #[arg(long, default_value = "/proc/cmdline")]
    cmdline: PathBuf,
    /// Mounted config drive (label config-2).
    #[arg(long)]
    config_drive: Option<PathBuf>,
    /// Mounted NoCloud seed (label cidata).
    #[arg(long)]
    nocloud: Option<PathBuf>,
    /// Mounted OEM partition.
    #[arg(long)]
    oem: Option<PathBuf>,
    /// EC2 metadata base URL.
    #[arg(long)]
    imds_base: Option<String>,
}

impl SourceArgs {
    fn env(&self) -> sources::Env {
        sources::Env {
            sysfs: self.sysfs.clone(),
            cmdline: std::fs::read_to_string(&self.cmdline).unwrap_or_default(),
            config_drive: self.config_drive.clone(),
            nocloud: self.nocloud.clone(),
            imds_base: self.imds_base.clone(),
            oem: self.oem.clone(),
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("basalt-provision: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_report(file: &str, r: &Report) {
    eprint!("{}", r.render(file));
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.cmd {
        Cmd::Validate { file, strict } => {
            let report = userdata::validate_file(&file)?;
            print_report(&file.display().to_string(), &report);
            let bad = report.has_errors() || (strict && report.warnings().next().is_some());
            Ok(if bad {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Translate { file } => {
            let name = file.display().to_string();
            let bytes = std::fs::read(&file).with_context(|| format!("reading {name}"))?;
            let text =
                userdata::to_text(&bytes).map_err(|r| anyhow::anyhow!("{}", r.render(&name)))?;
            let loaded = match userdata::load_str(&text) {
                Ok(l) => l,
                Err(r) => {
                    print_report(&name, &r);
                    return Ok(ExitCode::FAILURE);
                }
            };
            print_report(&name, &loaded.warnings);
            if loaded.format != Format::CloudConfig {
                bail!("{name} is not a cloud-config (translate takes #cloud-config input)");
            }
            let v = basalt_provisioner::translate::to_ignition(&loaded.plan)?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Source {
            cmd: SourceCmd::Fetch { env },
        } => {
            let f = Fetcher::new();
            match sources::discover(&env.env(), &f)? {
                Some(found) => {
                    eprintln!("basalt-provision: config from {}", found.source);
                    use std::io::Write;
                    std::io::stdout().write_all(&found.data)?;
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!("basalt-provision: no config found");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Cmd::Apply {
            root,
            config,
            now,
            env,
        } => {
            let env = env.env();
            let input = match config {
                Some(p) => ConfigInput::Given {
                    source: format!("file:{}", p.display()),
                    bytes: std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
                },
                None => ConfigInput::Discover(&env),
            };
            // The clock is read here, at the edge; the library takes it as input.
            let now = now.or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .and_then(|d| i64::try_from(d.as_secs()).ok())
            });
            let Some(run) = firstboot::provision(&root, input, now)? else {
                eprintln!("basalt-provision: no config found; nothing to do");
                return Ok(ExitCode::SUCCESS);
            };
            for w in &run.warnings {
                eprintln!("{w}");
            }
            if run.outcome.skipped {
                eprintln!(
                    "basalt-provision: already provisioned ({} exists); nothing to do",
                    apply::STAMP_FILE
                );
            }
            for w in &run.outcome.warnings {
                eprintln!("basalt-provision: warning: {w}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

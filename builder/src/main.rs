//! `basalt`: builds immutable, CoreOS-style OS images from Debian packages.

mod assemble;
mod atomic;
mod cli;
mod cmd;
mod datasource;
mod embedded;
mod lock;
mod log;
mod manifest;
mod output;
mod profile;
mod qemu;
mod stages;

use clap::Parser;

use cli::{Cli, Command, ProfileCommand};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    log::set_verbose(cli.verbose);
    log::init_library_logs(cli.verbose);
    let res = match &cli.command {
        Command::Build(a) => cmd::build::run(a),
        Command::Boot(a) => cmd::boot::run(a),
        Command::Lock(a) => cmd::lock::run(a),
        Command::Packages(a) => cmd::packages::run(a),
        Command::Keygen { prefix } => cmd::keygen::keygen(prefix),
        Command::Profile(ProfileCommand::Show {
            profile,
            image_version,
        }) => cmd::profile::show(profile, image_version.clone()),
        Command::Install(a) => cmd::install::run(a),
        Command::ServeUpdates(a) => cmd::serve::run(a),
    };
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

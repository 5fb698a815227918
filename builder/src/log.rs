//! Log lines on stderr: one plain line per step. Results go to stdout.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(v: bool) {
    VERBOSE.store(v, Ordering::Relaxed);
}

/// A pipeline step, always shown.
pub fn step(msg: &str) {
    eprintln!("==> {msg}");
}

/// Detail, shown with `-v`.
pub fn detail(msg: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        eprintln!("    {msg}");
    }
}

pub fn warn(msg: &str) {
    eprintln!("warning: {msg}");
}

/// Route the libraries' `log` records (cache repairs, retries) to stderr.
pub fn init_library_logs(verbose: bool) {
    // Library chatter (HTTP internals) stays hidden even with -v.
    let level = if verbose { "info,basalt=debug" } else { "info" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .format_target(false)
        .init();
}

//! One module per subcommand.

pub mod boot;
pub mod build;
pub mod install;
pub mod keygen;
pub mod lock;
pub mod packages;
pub mod profile;
pub mod serve;

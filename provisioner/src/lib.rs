//! Basalt provisioner library.
pub mod init;

pub mod apply;
pub mod check;
pub mod cloudconfig;
pub mod diag;
pub mod fetch;
pub mod firstboot;
pub mod ignition;
pub mod intent;
pub mod jsonloc;
pub mod plan;
pub mod sources;
pub mod translate;
pub mod userdata;

pub use userdata::{Format, Loaded, load_str, validate_file, validate_str};
pub mod update;

//! `basalt`: builds immutable, CoreOS-style OS images from Debian packages.

mod assemble;
mod profile;

fn main() {}

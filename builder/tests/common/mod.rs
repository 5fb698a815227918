//! Helpers for the boot tests: the shared image build, guests under
//! `basalt boot`, ssh, and the test configs.

#![allow(dead_code)]

pub mod configs;
pub mod guest;
pub mod image;

//! basalt-cpio (placeholder until its owner fills it).

//! basalt-verity (placeholder until its owner fills it).

//! basalt-ext4 (placeholder until its owner fills it).

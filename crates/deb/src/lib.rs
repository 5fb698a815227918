//! basalt-deb (placeholder until its owner fills it).

//! basalt-apt (placeholder until its owner fills it).

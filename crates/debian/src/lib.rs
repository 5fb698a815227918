//! basalt-debian (placeholder until its owner fills it).

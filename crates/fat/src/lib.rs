//! basalt-fat (placeholder until its owner fills it).

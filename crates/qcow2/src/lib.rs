//! basalt-qcow2 (placeholder until its owner fills it).

//! basalt-gpt (placeholder until its owner fills it).

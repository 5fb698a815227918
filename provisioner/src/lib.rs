//! Basalt provisioner library.

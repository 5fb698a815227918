#![no_main]
//! Ignition parser: any input either parses or yields diagnostics with
//! positions inside the input; it never panics.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.lines().count().max(1);
    match basalt_provisioner::ignition::parse(text) {
        Ok(p) => {
            for d in &p.warnings.diagnostics {
                assert!(d.line >= 1 && d.line <= lines + 1);
            }
        }
        Err(r) => {
            assert!(r.has_errors());
            for d in &r.diagnostics {
                assert!(d.line <= lines + 1, "line {} beyond input", d.line);
            }
        }
    }
});

#![no_main]
//! cloud-config parser (and format detection): never panics; errors carry
//! positions inside the input; a parsed plan translates to Ignition.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    let text = format!("#cloud-config\n{body}");
    // YAML breaks lines at \n, \r\n and a lone \r.
    let lines = text.replace("\r\n", "\n").matches(['\n', '\r']).count() + 1;
    match basalt_provisioner::cloudconfig::parse(&text) {
        Ok((plan, _)) => {
            let _ = basalt_provisioner::translate::to_ignition(&plan);
        }
        Err(r) => {
            assert!(r.has_errors());
            for d in &r.diagnostics {
                assert!(d.line <= lines + 1, "line {} beyond input", d.line);
            }
        }
    }
});

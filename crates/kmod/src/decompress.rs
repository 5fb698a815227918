//! Module files come plain (`.ko`) or compressed (`.ko.xz`, `.ko.zst`).

use std::io::Read;

use crate::error::KmodError;

/// The uncompressed ELF image of the module at `path` with bytes `raw`.
pub fn module_image(path: &str, raw: Vec<u8>) -> Result<Vec<u8>, KmodError> {
    let err = |algo, source| KmodError::Decompress {
        path: path.to_string(),
        algo,
        source,
    };
    if path.ends_with(".ko.xz") {
        let mut out = Vec::with_capacity(raw.len() * 4);
        liblzma::read::XzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| err("xz", e))?;
        Ok(out)
    } else if path.ends_with(".ko.zst") {
        zstd::decode_all(&raw[..]).map_err(|e| err("zstd", e))
    } else if path.ends_with(".ko.gz") {
        Err(KmodError::UnsupportedCompression {
            path: path.to_string(),
            algo: "gzip",
        })
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_table() {
        let plain = b"\x7fELF plain".to_vec();
        let mut xz = Vec::new();
        liblzma::read::XzEncoder::new(&plain[..], 6)
            .read_to_end(&mut xz)
            .unwrap();
        let zst = zstd::encode_all(&plain[..], 3).unwrap();
        let cases: Vec<(&str, Vec<u8>, bool)> = vec![
            ("a.ko", plain.clone(), true),
            ("a.ko.xz", xz, true),
            ("a.ko.zst", zst, true),
            ("a.ko.xz", plain.clone(), false),
            ("a.ko.gz", plain.clone(), false),
        ];
        for (path, raw, ok) in cases {
            let got = module_image(path, raw);
            assert_eq!(got.is_ok(), ok, "{path}: {got:?}");
            if let Ok(g) = got {
                assert_eq!(g, plain);
            }
        }
    }
}

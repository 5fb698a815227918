//! Decompressors for the control and data members of a .deb (deb(5):
//! uncompressed, gzip, xz and zstd; bzip2 and lzma are not supported).

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

/// A member name with a compression suffix this crate cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSuffix;

/// How a member is compressed, from its name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// The compression of member `name` if it is `<stem>` or
    /// `<stem>.{gz,xz,zst}`; `Err(UnknownSuffix)` for a `<stem>.<other>` suffix; `Ok(None)`
    /// when the name is not that member at all.
    pub fn of_member(name: &str, stem: &str) -> Result<Option<Compression>, UnknownSuffix> {
        let Some(rest) = name.strip_prefix(stem) else {
            return Ok(None);
        };
        match rest {
            "" => Ok(Some(Compression::None)),
            ".gz" => Ok(Some(Compression::Gzip)),
            ".xz" => Ok(Some(Compression::Xz)),
            ".zst" => Ok(Some(Compression::Zstd)),
            r if r.starts_with('.') => Err(UnknownSuffix),
            _ => Ok(None),
        }
    }

    /// A reader of the decompressed bytes of `r`.
    pub fn decoder<'a, R: Read + 'a>(self, r: R) -> io::Result<Box<dyn Read + 'a>> {
        self.decoder_with(r, Integrity::Check)
    }

    /// A reader of the decompressed bytes of `r`; with
    /// [`Integrity::Prehashed`] an xz stream's own check (CRC64 or SHA-256,
    /// xz-file-format §3.4) is not recomputed.
    pub fn decoder_with<'a, R: Read + 'a>(
        self,
        r: R,
        integrity: Integrity,
    ) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(r))),
            Compression::Xz => {
                let flags = match integrity {
                    Integrity::Check => liblzma::stream::CONCATENATED,
                    Integrity::Prehashed => {
                        liblzma::stream::CONCATENATED | liblzma::stream::IGNORE_CHECK
                    }
                };
                let stream = liblzma::stream::Stream::new_stream_decoder(u64::MAX, flags)
                    .map_err(io::Error::other)?;
                Box::new(liblzma::read::XzDecoder::new_stream(
                    BufReader::new(r),
                    stream,
                ))
            }
            Compression::Zstd => Box::new(ZstdFrames::new(BufReader::with_capacity(1 << 16, r))?),
        })
    }
}

/// Whether a decoder verifies the compressed stream's own integrity check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Integrity {
    /// Verify it (the default).
    #[default]
    Check,
    /// The caller has already verified every byte of the archive (its
    /// SHA-256 against a signed index), so the stream's CRC is redundant
    /// work. Decoding errors are still errors.
    Prehashed,
}

/// A zstd reader that decodes every frame of a stream in turn (zstd streams
/// may be a concatenation of frames).
struct ZstdFrames<R: BufRead> {
    dec: Option<StreamingDecoder<R, FrameDecoder>>,
}

fn zerr(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}"))
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(r: R) -> io::Result<Self> {
        Ok(ZstdFrames {
            dec: Some(StreamingDecoder::new(r).map_err(zerr)?),
        })
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(dec) = self.dec.as_mut() else {
                return Ok(0);
            };
            let n = dec.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            let Some(dec) = self.dec.take() else {
                return Ok(0);
            };
            let (mut src, fd) = dec.into_parts();
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            // new_with_decoder reads the next frame's header.
            self.dec = Some(StreamingDecoder::new_with_decoder(src, fd).map_err(zerr)?);
        }
    }
}

/// Compress `data` (used to build test packages in code).
pub fn compress(c: Compression, data: &[u8]) -> io::Result<Vec<u8>> {
    use std::io::Write;
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data)?;
            e.finish()
        }
        Compression::Xz => {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
            e.write_all(data)?;
            e.finish()
        }
        Compression::Zstd => Ok(ruzstd::encoding::compress_to_vec(
            data,
            ruzstd::encoding::CompressionLevel::Fastest,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_table() {
        let cases = [
            ("data.tar", Ok(Some(Compression::None))),
            ("data.tar.gz", Ok(Some(Compression::Gzip))),
            ("data.tar.xz", Ok(Some(Compression::Xz))),
            ("data.tar.zst", Ok(Some(Compression::Zstd))),
            ("data.tar.bz2", Err(UnknownSuffix)),
            ("control.tar.xz", Ok(None)),
            ("data.tarx", Ok(None)),
        ];
        for (name, want) in cases {
            assert_eq!(Compression::of_member(name, "data.tar"), want, "{name}");
        }
    }

    #[test]
    fn round_trip_every_codec() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Xz,
            Compression::Zstd,
        ] {
            let z = compress(c, &data).expect("compress");
            for integrity in [Integrity::Check, Integrity::Prehashed] {
                let mut out = Vec::new();
                c.decoder_with(&z[..], integrity)
                    .expect("decoder")
                    .read_to_end(&mut out)
                    .expect("decode");
                assert_eq!(out, data, "{c:?} {integrity:?}");
            }
        }
        // Two concatenated zstd frames decode as one stream.
        let mut two = compress(Compression::Zstd, b"hello ").expect("z");
        two.extend(compress(Compression::Zstd, b"world").expect("z"));
        let mut out = Vec::new();
        Compression::Zstd
            .decoder(&two[..])
            .expect("d")
            .read_to_end(&mut out)
            .expect("read");
        assert_eq!(out, b"hello world");
    }

    #[test]
    fn xz_check_is_verified_unless_prehashed() {
        let data = vec![7u8; 10_000];
        let mut z = compress(Compression::Xz, &data).expect("xz");
        // The stream ends with the check (CRC64, 8 bytes), the index and the
        // 12-byte footer; flip a bit of the check by locating it in the
        // block: compress() uses one block, so the check is just before the
        // index, which starts with a 0x00 indicator byte after padding.
        let footer = 12;
        let index_size = {
            // Backward Size (footer bytes 4..8) is (real size / 4) - 1.
            let b = &z[z.len() - footer + 4..z.len() - footer + 8];
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize + 1) * 4
        };
        let check_at = z.len() - footer - index_size - 8;
        z[check_at] ^= 1;
        let read = |i| {
            let mut out = Vec::new();
            Compression::Xz
                .decoder_with(&z[..], i)
                .expect("decoder")
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert!(read(Integrity::Check).is_err(), "a bad CRC64 is an error");
        assert_eq!(read(Integrity::Prehashed).expect("ignored check"), data);
    }
}

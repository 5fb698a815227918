//! Compression of the archive stream. The kernel's xz decoder only accepts
//! the CRC32 (or no) integrity check, so xz streams are always written with
//! `--check=crc32` (Documentation/staging/xz.rst). Both encoders run single
//! threaded so the output is a pure function of the input.

use std::io::{self, Write};

use liblzma::stream::{Check, Stream};
use liblzma::write::XzEncoder;

use crate::error::CpioError;

/// How to compress an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    /// xz with a CRC32 check; `level` is the preset 0..=9, `extreme` adds `-e`.
    Xz {
        level: u32,
        extreme: bool,
    },
    /// zstd frame; `level` 1..=19 (22 with ultra is not used).
    Zstd {
        level: i32,
    },
}

impl Compression {
    /// xz at preset 6, what `xz` uses by default.
    pub fn xz() -> Compression {
        Compression::Xz {
            level: 6,
            extreme: false,
        }
    }

    pub fn zstd() -> Compression {
        Compression::Zstd { level: 19 }
    }

    fn check(&self) -> Result<(), CpioError> {
        match *self {
            Compression::Xz { level, .. } if level > 9 => Err(CpioError::BadLevel {
                algo: "xz",
                level: i32::try_from(level).unwrap_or(i32::MAX),
                min: 0,
                max: 9,
            }),
            Compression::Zstd { level } if !(1..=19).contains(&level) => Err(CpioError::BadLevel {
                algo: "zstd",
                level,
                min: 1,
                max: 19,
            }),
            _ => Ok(()),
        }
    }
}

enum Inner<W: Write> {
    Plain(W),
    Xz(XzEncoder<W>),
    Zstd(zstd::stream::Encoder<'static, W>),
}

/// A writer that compresses into `W`. Call [`Compressor::finish`] to end the
/// stream and get `W` back; dropping it without finishing loses the tail.
pub struct Compressor<W: Write> {
    inner: Inner<W>,
}

impl<W: Write> Compressor<W> {
    pub fn new(w: W, c: Compression) -> Result<Compressor<W>, CpioError> {
        c.check()?;
        let inner = match c {
            Compression::None => Inner::Plain(w),
            Compression::Xz { level, extreme } => {
                let preset = if extreme {
                    level | liblzma::stream::PRESET_EXTREME
                } else {
                    level
                };
                let stream = Stream::new_easy_encoder(preset, Check::Crc32).map_err(|e| {
                    CpioError::Compressor {
                        algo: "xz",
                        source: io::Error::other(e),
                    }
                })?;
                Inner::Xz(XzEncoder::new_stream(w, stream))
            }
            Compression::Zstd { level } => {
                let mut enc = zstd::stream::Encoder::new(w, level).map_err(|source| {
                    CpioError::Compressor {
                        algo: "zstd",
                        source,
                    }
                })?;
                // Record the content checksum so corruption is detected.
                enc.include_checksum(true)
                    .map_err(|source| CpioError::Compressor {
                        algo: "zstd",
                        source,
                    })?;
                Inner::Zstd(enc)
            }
        };
        Ok(Compressor { inner })
    }

    /// End the compressed stream and return the underlying writer.
    pub fn finish(self) -> Result<W, CpioError> {
        match self.inner {
            Inner::Plain(w) => Ok(w),
            Inner::Xz(e) => e.finish().map_err(CpioError::Write),
            Inner::Zstd(e) => e.finish().map_err(CpioError::Write),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(w) => w.write(buf),
            Inner::Xz(e) => e.write(buf),
            Inner::Zstd(e) => e.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.flush(),
            Inner::Xz(e) => e.flush(),
            Inner::Zstd(e) => e.flush(),
        }
    }
}

/// Compress `data` in one go.
pub fn compress_bytes(data: &[u8], c: Compression) -> Result<Vec<u8>, CpioError> {
    let mut enc = Compressor::new(Vec::new(), c)?;
    enc.write_all(data).map_err(CpioError::Write)?;
    enc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xz_uses_crc32_check() {
        let out = compress_bytes(b"hello initramfs", Compression::xz()).expect("xz");
        // Stream header: magic (6 bytes), then stream flags 0x00 <check id>;
        // check id 0x01 is CRC32 (xz file format spec, 2.1.1.2).
        assert_eq!(&out[..6], b"\xFD7zXZ\0");
        assert_eq!(&out[6..8], &[0x00, 0x01]);
        let mut back = Vec::new();
        liblzma::read::XzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .expect("decode");
        assert_eq!(back, b"hello initramfs");
    }

    #[test]
    fn zstd_round_trip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8).collect();
        let out = compress_bytes(&data, Compression::zstd()).expect("zstd");
        assert_eq!(&out[..4], &[0x28, 0xB5, 0x2F, 0xFD]);
        assert_eq!(zstd::decode_all(&out[..]).expect("decode"), data);
    }

    #[test]
    fn levels_checked() {
        let cases = [
            (
                Compression::Xz {
                    level: 10,
                    extreme: false,
                },
                false,
            ),
            (
                Compression::Xz {
                    level: 9,
                    extreme: true,
                },
                true,
            ),
            (Compression::Zstd { level: 0 }, false),
            (Compression::Zstd { level: 20 }, false),
            (Compression::Zstd { level: 3 }, true),
            (Compression::None, true),
        ];
        for (c, ok) in cases {
            assert_eq!(compress_bytes(b"x", c).is_ok(), ok, "{c:?}");
        }
    }

    use std::io::Read;
}

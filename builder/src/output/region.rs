//! A window of a file, seen as a file of its own: writers that produce a
//! whole image (`Write + Seek` from 0) can write a partition in place.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// Bytes `[offset, offset + len)` of `file`.
pub struct Region<'a> {
    file: &'a File,
    offset: u64,
    len: u64,
    pos: u64,
}

impl<'a> Region<'a> {
    pub fn new(file: &'a File, offset: u64, len: u64) -> Region<'a> {
        Region {
            file,
            offset,
            len,
            pos: 0,
        }
    }
}

impl Write for Region<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.len.saturating_sub(self.pos);
        if room < buf.len() as u64 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!(
                    "write of {} bytes at {} overruns a {}-byte region",
                    buf.len(),
                    self.pos,
                    self.len
                ),
            ));
        }
        self.file.write_all_at(buf, self.offset + self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for Region<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let base = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match base {
            Some(n) if n <= self.len => {
                self.pos = n;
                Ok(n)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek outside the region",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_at_offset_and_stay_inside() {
        let p = std::env::temp_dir().join(format!("basalt-region-{}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .unwrap();
        f.set_len(64).unwrap();
        let mut r = Region::new(&f, 16, 8);
        r.write_all(b"ab").unwrap();
        r.seek(SeekFrom::Start(6)).unwrap();
        r.write_all(b"yz").unwrap();
        assert!(r.write_all(b"!").is_err());
        assert!(r.seek(SeekFrom::Start(9)).is_err());
        let data = std::fs::read(&p).unwrap();
        assert_eq!(&data[16..24], b"ab\0\0\0\0yz");
        assert!(data[..16].iter().all(|&b| b == 0) && data[24..].iter().all(|&b| b == 0));
        std::fs::remove_file(&p).ok();
    }
}

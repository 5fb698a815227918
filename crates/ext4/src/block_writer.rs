//! Coalescing positional writer: contiguous pieces are gathered into one
//! large buffer; gaps are skipped with a seek so they stay holes.

use std::io::{Seek, SeekFrom, Write};

use crate::error::Error;

/// Size of the gather buffer.
pub const BUF_SIZE: usize = 8 << 20;

pub struct BlockWriter<W: Write + Seek> {
    w: W,
    /// Allocated once; `buf[..len]` is pending output, the rest is stale.
    buf: Vec<u8>,
    len: usize,
    /// Output offset of `buf[0]`.
    buf_at: u64,
    /// Current position of `w`.
    pos: u64,
    /// One past the last byte written.
    end: u64,
}

impl<W: Write + Seek> BlockWriter<W> {
    pub fn new(w: W) -> BlockWriter<W> {
        BlockWriter {
            w,
            buf: vec![0; BUF_SIZE],
            len: 0,
            buf_at: 0,
            pos: u64::MAX,
            end: 0,
        }
    }

    fn flush_buf(&mut self) -> Result<(), Error> {
        if self.len == 0 {
            return Ok(());
        }
        if self.pos != self.buf_at {
            self.w
                .seek(SeekFrom::Start(self.buf_at))
                .map_err(Error::Write)?;
        }
        self.w
            .write_all(&self.buf[..self.len])
            .map_err(Error::Write)?;
        self.buf_at += self.len as u64;
        self.pos = self.buf_at;
        self.end = self.end.max(self.pos);
        self.len = 0;
        Ok(())
    }

    /// Append `len` (at most `BUF_SIZE`) bytes at `offset` (which must not
    /// precede earlier pieces); `f` must overwrite the whole slice, which
    /// holds stale bytes.
    pub fn fill_with(
        &mut self,
        offset: u64,
        len: usize,
        f: impl FnOnce(&mut [u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        debug_assert!(offset >= self.buf_at + self.len as u64 || self.len == 0);
        if offset != self.buf_at + self.len as u64 || self.len + len > BUF_SIZE {
            self.flush_buf()?;
            self.buf_at = offset;
        }
        let at = self.len;
        self.len += len;
        f(&mut self.buf[at..at + len])
    }

    pub fn put(&mut self, offset: u64, data: &[u8]) -> Result<(), Error> {
        if data.len() > BUF_SIZE {
            self.flush_buf()?;
            self.w.seek(SeekFrom::Start(offset)).map_err(Error::Write)?;
            self.w.write_all(data).map_err(Error::Write)?;
            self.pos = offset + data.len() as u64;
            self.end = self.end.max(self.pos);
            self.buf_at = self.pos;
            return Ok(());
        }
        self.fill_with(offset, data.len(), |b| {
            b.copy_from_slice(data);
            Ok(())
        })
    }

    /// Flush and make sure the output is at least `total` bytes long
    /// (writing one zero byte at the end only when it is shorter).
    pub fn finish(mut self, total: u64) -> Result<W, Error> {
        self.flush_buf()?;
        let len = self.w.seek(SeekFrom::End(0)).map_err(Error::Write)?;
        if len < total && self.end < total {
            self.w
                .seek(SeekFrom::Start(total - 1))
                .map_err(Error::Write)?;
            self.w.write_all(&[0]).map_err(Error::Write)?;
        }
        self.w.flush().map_err(Error::Write)?;
        Ok(self.w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn gathers_and_skips() {
        let mut bw = BlockWriter::new(Cursor::new(Vec::new()));
        bw.put(0, b"ab").expect("put");
        bw.put(2, b"cd").expect("put");
        bw.put(10, b"z").expect("put");
        bw.fill_with(11, 2, |b| {
            b.copy_from_slice(&[0, b'q']);
            Ok(())
        })
        .expect("fill");
        let out = bw.finish(16).expect("finish").into_inner();
        assert_eq!(out, b"abcd\0\0\0\0\0\0z\0q\0\0\0".to_vec());
    }
}

//! A buffered positional writer over a [`FileHandle`], for the chunk file
//! and the metadata zip (so both go through the file layer).

use std::sync::Arc;

use crate::error::Result;
use crate::io::FileHandle;

/// Buffer size: large sequential writes, few system calls.
const BUF: usize = 1 << 20;
/// Bytes per write and writeback step.
const STEP: usize = 256 << 10;

/// Positional writer with a write-behind buffer.
pub(crate) struct FileWriter {
    file: Arc<dyn FileHandle>,
    /// File position of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
}

impl FileWriter {
    pub(crate) fn new(file: Arc<dyn FileHandle>) -> FileWriter {
        FileWriter {
            file,
            base: 0,
            buf: Vec::with_capacity(BUF),
        }
    }

    /// Current position (end of what was written).
    pub(crate) fn position(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// Writes `data` at the current position.
    pub(crate) fn put(&mut self, data: &[u8]) -> Result<()> {
        if self.buf.len() + data.len() > BUF {
            self.flush_buf()?;
            if data.len() >= BUF {
                return self.write_through(data);
            }
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Writes out the buffer.
    pub(crate) fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            let mut buf = std::mem::take(&mut self.buf);
            let r = self.write_through(&buf);
            buf.clear();
            self.buf = buf;
            r?;
        }
        Ok(())
    }

    /// Writes `data` at the end in steps, each handed to writeback at once,
    /// so that the disk queue never holds more than a couple of steps of
    /// this writer's data in front of a node's `store` (see
    /// [`crate::io::foreground`]).
    fn write_through(&mut self, data: &[u8]) -> Result<()> {
        for step in data.chunks(STEP) {
            self.file.write_all_at(step, self.base)?;
            self.file.write_behind(self.base, step.len() as u64);
            self.base += step.len() as u64;
        }
        Ok(())
    }

    /// Writes out the buffer and fsyncs the file.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.flush_buf()?;
        self.file.sync()
    }

    /// The underlying file.
    pub(crate) fn file(&self) -> &Arc<dyn FileHandle> {
        &self.file
    }

    /// Moves the write position to `pos` (records of a chunk go after its
    /// offset table, which is written last).
    pub(crate) fn seek_to(&mut self, pos: u64) -> Result<()> {
        if pos != self.position() {
            self.flush_buf()?;
            self.base = pos;
        }
        Ok(())
    }
}

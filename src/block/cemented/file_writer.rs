//! A buffered, seekable writer over a [`FileHandle`], so that the chunk file
//! and the zip writer (which needs `Write + Seek`) go through the file layer.

use std::io::{self, Seek, SeekFrom, Write};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::io::FileHandle;

/// Buffer size: large sequential writes, few system calls.
const BUF: usize = 1 << 20;

/// The first file-layer error of a [`FileWriter`].
#[derive(Clone, Default)]
pub(crate) struct ErrorSlot(Arc<Mutex<Option<Error>>>);

impl ErrorSlot {
    /// Takes the recorded error, if any.
    pub(crate) fn take(&self) -> Option<Error> {
        self.0.lock().take()
    }
}

/// Positional writer with a write-behind buffer.
pub(crate) struct FileWriter {
    file: Arc<dyn FileHandle>,
    /// File position of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
    /// The first error of the file layer, kept with its `Error` kind (the
    /// `io::Error` given to the zip crate loses it); shared so that the
    /// owner of a `ZipWriter` around this writer can still read it.
    failed: ErrorSlot,
}

impl FileWriter {
    pub(crate) fn new(file: Arc<dyn FileHandle>) -> FileWriter {
        FileWriter {
            file,
            base: 0,
            buf: Vec::with_capacity(BUF),
            failed: ErrorSlot::default(),
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
                self.file.write_all_at(data, self.base)?;
                self.base += data.len() as u64;
                return Ok(());
            }
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Writes out the buffer.
    pub(crate) fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.base)?;
            self.base += self.buf.len() as u64;
            self.buf.clear();
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

    /// Where the file-layer error behind a failed `io::Write` call is kept.
    pub(crate) fn error_slot(&self) -> ErrorSlot {
        self.failed.clone()
    }

    fn io_err(&mut self, e: Error) -> io::Error {
        let msg = e.to_string();
        self.failed.0.lock().get_or_insert(e);
        io::Error::other(msg)
    }
}

impl Write for FileWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.put(data) {
            Ok(()) => Ok(data.len()),
            Err(e) => Err(self.io_err(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_buf().map_err(|e| self.io_err(e))
    }
}

impl Seek for FileWriter {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let target = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.position().checked_add_signed(d),
            SeekFrom::End(d) => {
                let end = self
                    .file
                    .len()
                    .map_err(|e| self.io_err(e))?
                    .max(self.position());
                end.checked_add_signed(d)
            }
        };
        let Some(target) = target else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            ));
        };
        if target != self.position() {
            self.flush_buf().map_err(|e| self.io_err(e))?;
            self.base = target;
        }
        Ok(target)
    }
}

//! Writes zip archives (APPNOTE 6.3) whose entries arrive already
//! compressed, so that metadata is compressed with reusable zstd contexts
//! sized to each entry. The zip crate can only compress entries itself, with
//! a new streaming context per entry whose tables are sized for an unknown,
//! possibly huge input: clearing them cost four times the compression of an
//! 8 KiB entry. Archives are read back with the zip crate, which the tests
//! check.
//!
//! Entries have no data descriptor (sizes and CRC are known before the local
//! header is written). Zip64 records are written only when a count or an
//! offset does not fit the classic fields; a single entry must stay below
//! 4 GiB (Octez caps a block's metadata far below that).

use super::file_writer::FileWriter;
use crate::error::{Error, Result};

/// Zip method number of zstd (APPNOTE 4.4.5).
pub(crate) const METHOD_ZSTD: u16 = 93;
/// Zip method number of an entry stored as it is (APPNOTE 4.4.5).
pub(crate) const METHOD_STORED: u16 = 0;
/// Version needed to extract zstd entries (APPNOTE 4.4.3.2: 6.3).
const VERSION: u16 = 63;
/// Version needed to extract stored entries (2.0), or stored entries with
/// a Zip64 extra field (4.5).
const VERSION_STORED: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// "Made by" Unix (high byte 3), so that `external_attributes` are a mode.
const MADE_BY: u16 = (3 << 8) | VERSION;
/// Regular file, rw-r--r--.
const EXTERNAL_ATTRIBUTES: u32 = 0o100644 << 16;
/// MS-DOS date of 1980-01-01 (the zip epoch) and midnight: entries carry no
/// meaningful time, and a fixed one keeps archives reproducible.
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL: u32 = 0x0605_4b50;
const ZIP64_END_OF_CENTRAL: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EXTRA: u16 = 0x0001;

/// One compressed (or stored) entry, ready to be written.
pub(crate) struct RawEntry {
    pub(crate) name: String,
    /// [`METHOD_ZSTD`] or [`METHOD_STORED`].
    pub(crate) method: u16,
    pub(crate) crc32: u32,
    pub(crate) uncompressed_size: u64,
    pub(crate) data: Vec<u8>,
}

/// Appends entries to a zip being written through a [`FileWriter`] that
/// starts at offset 0, then writes the central directory.
pub(crate) struct ZipOut {
    central: Vec<u8>,
    entries: u64,
    /// Offsets at or above this get a Zip64 extra field (`u32::MAX` but in
    /// tests, which lower it to exercise the Zip64 records).
    zip64_offset: u64,
}

fn put_u16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put_u64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

impl ZipOut {
    pub(crate) fn new() -> ZipOut {
        ZipOut {
            central: Vec::new(),
            entries: 0,
            zip64_offset: u64::from(u32::MAX),
        }
    }

    #[cfg(test)]
    fn with_zip64_offset(limit: u64) -> ZipOut {
        ZipOut {
            zip64_offset: limit,
            ..ZipOut::new()
        }
    }

    /// Writes `e`'s local header and data at the writer's position.
    pub(crate) fn add(&mut self, w: &mut FileWriter, e: &RawEntry) -> Result<()> {
        let name = e.name.as_bytes();
        let (Ok(csize), Ok(usize), Ok(name_len)) = (
            u32::try_from(e.data.len()),
            u32::try_from(e.uncompressed_size),
            u16::try_from(name.len()),
        ) else {
            return Err(Error::invalid(format!(
                "zip entry {:?}: {} bytes is too large for one entry",
                e.name, e.uncompressed_size
            )));
        };
        if csize == u32::MAX || usize == u32::MAX {
            return Err(Error::invalid(format!(
                "zip entry {:?}: {} bytes is too large for one entry",
                e.name, e.uncompressed_size
            )));
        }
        let offset = w.position();
        let big = offset >= self.zip64_offset;
        let version = match (e.method, big) {
            (METHOD_ZSTD, _) => VERSION,
            (_, true) => VERSION_ZIP64,
            (_, false) => VERSION_STORED,
        };
        let mut local = Vec::with_capacity(30 + name.len());
        put_u32(&mut local, LOCAL_HEADER);
        put_u16(&mut local, version);
        put_u16(&mut local, 0); // flags
        put_u16(&mut local, e.method);
        put_u16(&mut local, DOS_TIME);
        put_u16(&mut local, DOS_DATE);
        put_u32(&mut local, e.crc32);
        put_u32(&mut local, csize);
        put_u32(&mut local, usize);
        put_u16(&mut local, name_len);
        put_u16(&mut local, 0); // extra field length
        local.extend_from_slice(name);
        w.put(&local)?;
        w.put(&e.data)?;

        let c = &mut self.central;
        put_u32(c, CENTRAL_HEADER);
        put_u16(c, MADE_BY);
        put_u16(c, version);
        put_u16(c, 0);
        put_u16(c, e.method);
        put_u16(c, DOS_TIME);
        put_u16(c, DOS_DATE);
        put_u32(c, e.crc32);
        put_u32(c, csize);
        put_u32(c, usize);
        put_u16(c, name_len);
        put_u16(c, if big { 12 } else { 0 });
        put_u16(c, 0); // comment length
        put_u16(c, 0); // disk number
        put_u16(c, 0); // internal attributes
        put_u32(c, EXTERNAL_ATTRIBUTES);
        put_u32(c, if big { u32::MAX } else { offset as u32 });
        c.extend_from_slice(name);
        if big {
            put_u16(c, ZIP64_EXTRA);
            put_u16(c, 8);
            put_u64(c, offset);
        }
        self.entries += 1;
        Ok(())
    }

    /// Writes the central directory and its end records; the caller flushes
    /// and syncs the writer.
    pub(crate) fn finish(self, w: &mut FileWriter) -> Result<()> {
        let cd_offset = w.position();
        let cd_size = self.central.len() as u64;
        w.put(&self.central)?;
        let zip64 = self.entries >= u64::from(u16::MAX)
            || cd_offset >= self.zip64_offset
            || cd_size >= u64::from(u32::MAX);
        let mut end = Vec::with_capacity(98);
        if zip64 {
            let record_offset = w.position();
            put_u32(&mut end, ZIP64_END_OF_CENTRAL);
            put_u64(&mut end, 44); // size of the rest of this record
            put_u16(&mut end, MADE_BY);
            put_u16(&mut end, VERSION);
            put_u32(&mut end, 0); // this disk
            put_u32(&mut end, 0); // disk of the central directory
            put_u64(&mut end, self.entries);
            put_u64(&mut end, self.entries);
            put_u64(&mut end, cd_size);
            put_u64(&mut end, cd_offset);
            put_u32(&mut end, ZIP64_LOCATOR);
            put_u32(&mut end, 0);
            put_u64(&mut end, record_offset);
            put_u32(&mut end, 1); // total disks
        }
        let clamp16 = |x: u64| if zip64 { u16::MAX } else { x as u16 };
        let clamp32 = |x: u64| if zip64 { u32::MAX } else { x as u32 };
        put_u32(&mut end, END_OF_CENTRAL);
        put_u16(&mut end, 0);
        put_u16(&mut end, 0);
        put_u16(&mut end, clamp16(self.entries));
        put_u16(&mut end, clamp16(self.entries));
        put_u32(&mut end, clamp32(cd_size));
        put_u32(&mut end, clamp32(cd_offset));
        put_u16(&mut end, 0); // comment length
        w.put(&end)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Read};
    use std::sync::Arc;

    use super::*;
    use crate::io::{FileSystem, OpenMode, StdFs};

    /// Entry `i`: zstd-compressed when even, stored when odd (a store
    /// made with zstd level 0).
    fn entry(i: u32) -> RawEntry {
        let plain = format!("metadata of level {i} ").repeat(i as usize % 7 + 1);
        let (method, data) = if i % 2 == 0 {
            let z = zstd::bulk::compress(plain.as_bytes(), 3).expect("compress");
            (METHOD_ZSTD, z)
        } else {
            (METHOD_STORED, plain.clone().into_bytes())
        };
        RawEntry {
            name: i.to_string(),
            method,
            crc32: crc32fast::hash(plain.as_bytes()),
            uncompressed_size: plain.len() as u64,
            data,
        }
    }

    fn write(zip: ZipOut, n: u32) -> Vec<u8> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("z.zip");
        let fs: Arc<dyn FileSystem> = Arc::new(StdFs::new(false));
        let mut w = FileWriter::new(fs.open(&path, OpenMode::Truncate).expect("open"));
        let mut zip = zip;
        for i in 0..n {
            zip.add(&mut w, &entry(i)).expect("add");
        }
        zip.finish(&mut w).expect("finish");
        w.flush_buf().expect("flush");
        std::fs::read(&path).expect("read")
    }

    fn check_with_zip_crate(bytes: Vec<u8>, n: u32) {
        let mut a = zip::ZipArchive::new(Cursor::new(bytes)).expect("zip crate parses it");
        assert_eq!(a.len(), n as usize);
        for i in (0..n).step_by(997).chain([n - 1]) {
            let mut f = a.by_name(&i.to_string()).expect("entry");
            let method = if i % 2 == 0 {
                zip::CompressionMethod::Zstd
            } else {
                zip::CompressionMethod::Stored
            };
            assert_eq!(f.compression(), method);
            let mut out = String::new();
            f.read_to_string(&mut out)
                .expect("decompress and CRC check");
            assert_eq!(
                out,
                format!("metadata of level {i} ").repeat(i as usize % 7 + 1)
            );
        }
    }

    #[test]
    fn classic_archive_reads_back_with_the_zip_crate() {
        check_with_zip_crate(write(ZipOut::new(), 300), 300);
    }

    #[test]
    fn zip64_offsets_read_back_with_the_zip_crate() {
        // Every entry past the first 1,000 bytes gets a Zip64 offset, and the
        // end records are Zip64 ones.
        check_with_zip_crate(write(ZipOut::with_zip64_offset(1000), 300), 300);
    }

    #[test]
    fn zip64_entry_count_reads_back_with_the_zip_crate() {
        let bytes = write(ZipOut::new(), 70_000);
        assert_eq!(
            super::super::metadata::directory_count(&bytes),
            Some(70_000)
        );
        check_with_zip_crate(bytes, 70_000);
    }

    #[test]
    fn directory_count_reads_classic_and_zip64_records() {
        assert_eq!(
            super::super::metadata::directory_count(&write(ZipOut::new(), 300)),
            Some(300)
        );
        let z64 = write(ZipOut::with_zip64_offset(1000), 300);
        assert_eq!(super::super::metadata::directory_count(&z64), Some(300));
        assert_eq!(
            super::super::metadata::directory_count(&z64[..z64.len() - 1]),
            None
        );
    }
}

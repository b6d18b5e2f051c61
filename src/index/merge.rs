//! Writing a new data file: the old data merged with the frozen log table.
//!
//! The file is built under a temporary name, fsynced, renamed onto `data`
//! and the directory fsynced, so a crash leaves either the old data or the
//! new one (a leftover temporary is removed at the next read-write open).

use std::path::Path;

use super::data::{self, DataFile, Header};
use super::hash::{Table, key_hash};
use crate::error::Result;
use crate::io::{FileHandle, FileSystem, OpenMode, atomic};

/// Bytes buffered before each write of the new file.
const CHUNK: usize = 1 << 20;

struct Out<'a> {
    file: &'a dyn FileHandle,
    pos: u64,
    buf: Vec<u8>,
    crc: crc32fast::Hasher,
}

impl Out<'_> {
    fn push(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(key);
        self.buf.extend_from_slice(value);
        if self.buf.len() >= CHUNK {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        self.crc.update(&self.buf);
        self.file.write_all_at(&self.buf, self.pos)?;
        self.pos += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Writes `old ∪ frozen` (frozen wins; removable tombstones dropped) as
/// data file `generation` at `path`, atomically and durably.
#[allow(clippy::too_many_arguments)] // the parts of one data file's identity
pub(crate) fn write(
    fs: &dyn FileSystem,
    path: &Path,
    old: &DataFile,
    frozen: &Table,
    generation: u64,
    ksize: usize,
    vsize: usize,
    flags: u32,
) -> Result<()> {
    let removable = flags & data::FLAG_REMOVABLE != 0;
    let live = |v: &[u8]| !removable || v.first() == Some(&1);
    let mut order: Vec<(u64, u32)> = (0..frozen.len())
        .filter_map(|i| frozen.entry(i).map(|(h, _, _)| (h, i as u32)))
        .collect();
    let key_of = |i: u32| frozen.entry(i as usize).map(|(_, k, _)| k).unwrap_or(&[]);
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| key_of(a.1).cmp(key_of(b.1))));

    let fan_bits = data::fan_bits_for(old.count() + order.len() as u64);
    let fans = (1usize << fan_bits) + 1;
    let entries_off = (data::HEADER + fans * 8) as u64;
    let mut bucket_counts = vec![0u64; fans];

    let tmp = atomic::tmp_path(path)?;
    let file = fs.open(&tmp, OpenMode::Truncate)?;
    let result = (|| -> Result<()> {
        let mut out = Out {
            file: file.as_ref(),
            pos: entries_off,
            buf: Vec::with_capacity(CHUNK + ksize + vsize),
            crc: crc32fast::Hasher::new(),
        };
        let mut count = 0u64;
        let mut emit = |out: &mut Out, h: u64, k: &[u8], v: &[u8]| -> Result<()> {
            if live(v) {
                bucket_counts[data::bucket(h, fan_bits)] += 1;
                count += 1;
                out.push(k, v)?;
            }
            Ok(())
        };
        let mut i = 0u64;
        let mut j = 0usize;
        let mut old_head: Option<(u64, &[u8], &[u8])> = None;
        loop {
            if old_head.is_none() && i < old.count() {
                let (k, v) = old.entry(i);
                old_head = Some((key_hash(k), k, v));
                i += 1;
            }
            let new_head = order
                .get(j)
                .and_then(|&(_, idx)| frozen.entry(idx as usize));
            match (old_head, new_head) {
                (None, None) => break,
                (Some((h, k, v)), None) => {
                    emit(&mut out, h, k, v)?;
                    old_head = None;
                }
                (None, Some((h, k, v))) => {
                    emit(&mut out, h, k, v)?;
                    j += 1;
                }
                (Some((oh, ok, ov)), Some((nh, nk, nv))) => {
                    match oh.cmp(&nh).then_with(|| ok.cmp(nk)) {
                        std::cmp::Ordering::Less => {
                            emit(&mut out, oh, ok, ov)?;
                            old_head = None;
                        }
                        std::cmp::Ordering::Greater => {
                            emit(&mut out, nh, nk, nv)?;
                            j += 1;
                        }
                        std::cmp::Ordering::Equal => {
                            emit(&mut out, nh, nk, nv)?;
                            old_head = None;
                            j += 1;
                        }
                    }
                }
            }
        }
        out.write()?;
        let entries_crc = out.crc.finalize();
        // bucket counts -> starting indices; fan[last] = count.
        let mut fan = Vec::with_capacity(fans * 8);
        let mut acc = 0u64;
        for c in &bucket_counts {
            fan.extend_from_slice(&acc.to_le_bytes());
            acc += c;
        }
        // The last slot is a sentinel; its count is always zero.
        let last = fan.len() - 8;
        fan[last..].copy_from_slice(&count.to_le_bytes());
        let header = Header {
            ksize: ksize as u32,
            vsize: vsize as u32,
            flags,
            fan_bits,
            generation,
            count,
            fan_crc: crc32fast::hash(&fan),
            entries_crc,
        };
        file.write_all_at(&fan, data::HEADER as u64)?;
        file.write_all_at(&header.encode(), 0)?;
        file.sync()
    })();
    drop(file);
    if let Err(e) = result {
        let _ = fs.remove_file(&tmp);
        return Err(e);
    }
    fs.rename(&tmp, path)?;
    fs.sync_dir(atomic::parent_dir(path))
}

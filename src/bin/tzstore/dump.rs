//! `tzstore dump PATH [--json]` (alias `list`): every record of a store,
//! read-only, streamed (a large store is never held in memory): index and
//! indexed-file entries, the kv tree, cemented chunks and floating blocks,
//! a singleton's value. Text is one record a line; `--json` one JSON
//! document with the records in an array.

use std::io::{BufWriter, StdoutLock, Write};
use std::path::Path;

use serde_json::{Map, Value, json};
use tzstore::kv::Kind;
use tzstore::{Error, Result};

use crate::detect::{StoreKind, detect};
use crate::fmt::{hex, thousands};
use crate::progress::{Unit, bar};
use crate::{open, walk};

/// Writes records as text lines or as one streamed JSON document.
struct Out {
    w: BufWriter<StdoutLock<'static>>,
    json: bool,
    /// No item written yet in the open JSON array.
    first: bool,
}

impl Out {
    /// Opens the document with `head`'s fields (JSON only).
    fn begin(&mut self, head: Map<String, Value>) -> std::io::Result<()> {
        if self.json {
            let s = Value::Object(head).to_string();
            // The head object without its closing brace: arrays follow.
            write!(self.w, "{}", &s[..s.len() - 1])?;
        }
        Ok(())
    }

    fn list(&mut self, name: &str) -> std::io::Result<()> {
        if self.json {
            write!(self.w, ",{}:[", Value::from(name))?;
            self.first = true;
        }
        Ok(())
    }

    fn item(&mut self, v: Value, text: impl FnOnce() -> String) -> std::io::Result<()> {
        if self.json {
            if !self.first {
                self.w.write_all(b",")?;
            }
            self.first = false;
            write!(self.w, "{v}")
        } else {
            writeln!(self.w, "{}", text())
        }
    }

    fn end_list(&mut self) -> std::io::Result<()> {
        if self.json {
            self.w.write_all(b"]")?;
        }
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if self.json {
            self.w.write_all(b"}\n")?;
        }
        self.w.flush()
    }
}

pub fn run(path: &Path, json: bool) -> Result<()> {
    let kind = detect(path)?;
    let mut out = Out {
        w: BufWriter::new(std::io::stdout().lock()),
        json,
        first: true,
    };
    let mut head = Map::new();
    head.insert("kind".into(), kind.to_string().into());
    head.insert("path".into(), path.display().to_string().into());
    match dump(kind, path, head, &mut out) {
        Ok(r) => r,
        // `tzstore dump | head`: the reader had enough.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io("write", Path::new("stdout"), e)),
    }
}

/// The outer result is the output's, the inner one the store's.
fn dump(
    kind: StoreKind,
    path: &Path,
    mut head: Map<String, Value>,
    out: &mut Out,
) -> std::io::Result<Result<()>> {
    macro_rules! tri {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            }
        };
    }
    match kind {
        StoreKind::Index => {
            let idx = tri!(open::index(path));
            head.insert("key_size".into(), idx.key_size().into());
            head.insert("value_size".into(), idx.value_size().into());
            out.begin(head)?;
            out.list("entries")?;
            let pb = bar(idx.len(), Unit::Records("entries"), "dumping");
            for e in tri!(idx.iter()) {
                let (k, v) = tri!(e);
                out.item(json!({"key": hex(&k), "value": hex(&v)}), || {
                    format!("{} {}", hex(&k), hex(&v))
                })?;
                pb.inc(1);
            }
            pb.finish_and_clear();
            out.end_list()?;
        }
        StoreKind::IndexedFile => {
            let s = tri!(open::indexed_file(path));
            let keys = tri!(s.keys());
            out.begin(head)?;
            out.list("entries")?;
            let pb = bar(keys.len() as u64, Unit::Records("keys"), "dumping");
            for k in keys {
                // A key removed by a compaction since the listing is skipped.
                if let Some((value, header)) = tri!(s.read(&k)) {
                    out.item(
                        json!({"key": hex(&k), "header": hex(&header), "value": hex(&value)}),
                        || format!("{} {} {}", hex(&k), hex(&header), hex(&value)),
                    )?;
                }
                pb.inc(1);
            }
            pb.finish_and_clear();
            out.end_list()?;
        }
        StoreKind::Kv => {
            let kv = tri!(open::kv(path));
            let tree = tri!(walk::kv_tree(&kv));
            out.begin(head)?;
            out.list("entries")?;
            let pb = bar(tree.len() as u64, Unit::Records("keys"), "dumping");
            for (key, k) in tree {
                match k {
                    Kind::Dictionary => out
                        .item(json!({"key": key, "kind": "dictionary"}), || {
                            format!("dictionary {key}")
                        })?,
                    Kind::Value => {
                        let v = tri!(kv.get(&key));
                        out.item(
                            json!({"key": key, "kind": "value", "size": v.len(), "value": hex(&v)}),
                            || format!("value {key} {} {}", v.len(), hex(&v)),
                        )?
                    }
                }
                pb.inc(1);
            }
            pb.finish_and_clear();
            out.end_list()?;
        }
        StoreKind::Singleton => {
            let v = tri!(open::singleton(path)).read();
            head.insert("value".into(), v.as_deref().map(hex).into());
            out.begin(head)?;
            if !out.json {
                match &v {
                    Some(v) => writeln!(out.w, "{}", hex(v))?,
                    None => writeln!(out.w, "unset")?,
                }
            }
        }
        StoreKind::BlockStore => {
            let s = tri!(open::block_store(path));
            out.begin(head)?;
            chunks(&s.cemented_chunks(), &s.cemented_metadata_chunks(), out)?;
            let blocks = tri!(walk::floating_headers(&s));
            floating(blocks.into_iter().map(|(h, l, p)| (None, h, l, p)), out)?;
        }
        StoreKind::Cemented => {
            let c = tri!(open::cemented(path));
            out.begin(head)?;
            chunks(&c.chunks(), &c.metadata_chunks(), out)?;
        }
        StoreKind::Floating => {
            let stores = tri!(open::floating(path));
            out.begin(head)?;
            let mut all = Vec::new();
            for s in &stores {
                // The iterator, unlike `headers`, ends quietly at an entry
                // a writer is still appending.
                for e in s.iter(false) {
                    let b = tri!(e).block;
                    all.push((Some(s.kind().name()), b.hash, b.level, b.predecessor));
                }
            }
            all.sort_by_key(|b| b.2);
            floating(all.into_iter(), out)?;
        }
    }
    out.finish()?;
    Ok(Ok(()))
}

type Hash = tzstore::block::Hash;

fn chunks(
    chunks: &[tzstore::block::cemented::ChunkRange],
    with_meta: &[tzstore::block::cemented::ChunkRange],
    out: &mut Out,
) -> std::io::Result<()> {
    out.list("chunks")?;
    for c in chunks {
        let meta = with_meta.contains(c);
        out.item(
            json!({"start": c.start, "end": c.end, "blocks": c.len(), "metadata": meta}),
            || {
                format!(
                    "chunk {}..={} {} blocks{}",
                    c.start,
                    c.end,
                    thousands(c.len() as u64),
                    if meta { ", metadata" } else { "" }
                )
            },
        )?;
    }
    out.end_list()
}

/// Floating blocks in level order, after a text line per run of levels.
fn floating(
    blocks: impl Iterator<Item = (Option<&'static str>, Hash, i32, Hash)>,
    out: &mut Out,
) -> std::io::Result<()> {
    let blocks: Vec<_> = blocks.collect();
    if !out.json {
        if let (Some(a), Some(b)) = (blocks.first(), blocks.last()) {
            writeln!(
                out.w,
                "floating {}..={} {} blocks",
                a.2,
                b.2,
                thousands(blocks.len() as u64)
            )?;
        }
    }
    out.list("floating")?;
    for (store, h, l, p) in &blocks {
        let mut v = json!({"level": l, "hash": hex(h), "predecessor": hex(p)});
        if let (Some(s), Some(o)) = (store, v.as_object_mut()) {
            o.insert("store".into(), (*s).into());
        }
        out.item(v, || {
            format!(
                "block {l} {} {}{}",
                hex(h),
                hex(p),
                store.map(|s| format!(" {s}")).unwrap_or_default()
            )
        })?;
    }
    out.end_list()
}

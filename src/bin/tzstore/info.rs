//! `tzstore info PATH [--json]`: what a store of any kind holds, opened
//! read-only (so it runs beside the node writing the store).

use std::path::Path;

use serde_json::json;
use tzstore::Result;
use tzstore::kv::Kind;

use crate::detect::{StoreKind, detect};
use crate::fields::Fields;
use crate::fmt::{disk_usage, hex, thousands};
use crate::{open, walk};

pub fn run(path: &Path, json: bool) -> Result<()> {
    let kind = detect(path)?;
    let mut f = Fields::default();
    f.plain("kind", kind.to_string());
    f.plain("path", path.display().to_string());
    match kind {
        StoreKind::BlockStore => block_store(path, &mut f)?,
        StoreKind::Cemented => {
            let c = open::cemented(path)?;
            chunks(&c.chunks(), c.metadata_chunks().len(), &mut f);
        }
        StoreKind::Floating => {
            for s in open::floating(path)? {
                let n = s.len();
                f.add(&format!("{}_blocks", s.kind().name()), n, thousands(n));
            }
        }
        StoreKind::Index => {
            let idx = open::index(path)?;
            let cfg = tzstore::index::Index::config_of(path, &open::ro())?;
            f.plain("key_size", cfg.key_size);
            f.plain("value_size", cfg.value_size);
            f.plain("removable", cfg.removable);
            f.add("entries", idx.len(), thousands(idx.len()));
        }
        StoreKind::IndexedFile => {
            let s = open::indexed_file(path)?;
            let cfg = tzstore::indexed_file::IndexedFile::config_of(path, &open::ro())?;
            f.plain("key_size", cfg.key_size);
            f.plain("header_size", cfg.header_size);
            f.plain("header_in_value", cfg.header_in_value);
            f.add("keys", s.len(), thousands(s.len()));
        }
        StoreKind::Kv => {
            let kv = open::kv(path)?;
            let tree = walk::kv_tree(&kv)?;
            let values: Vec<&String> = tree
                .iter()
                .filter(|(_, k)| *k == Kind::Value)
                .map(|(key, _)| key)
                .collect();
            let mut bytes = 0u64;
            for key in &values {
                bytes += kv.size(key)?;
            }
            let dicts = tree.len() - values.len();
            f.add("values", values.len(), thousands(values.len() as u64));
            f.add("dictionaries", dicts, thousands(dicts as u64));
            f.add("value_bytes", bytes, thousands(bytes));
            f.plain("root_digest", hex(&kv.digest("")?));
        }
        StoreKind::Singleton => {
            let s = open::singleton(path)?;
            match s.read() {
                Some(v) => {
                    f.plain("value", "set");
                    f.add("value_bytes", v.len(), thousands(v.len() as u64));
                }
                None => f.plain("value", "unset"),
            }
        }
    }
    let usage = disk_usage(path)?;
    f.add(
        "on_disk",
        json!({"bytes": usage.bytes, "allocated": usage.allocated, "files": usage.files}),
        usage.line(),
    );
    f.print(json);
    Ok(())
}

fn block_store(path: &Path, f: &mut Fields) -> Result<()> {
    let store = open::block_store(path)?;
    let st = store.stats()?;
    let (mode, offset) = store.history();
    f.add(
        "history_mode",
        json!({"mode": format!("{mode:?}"), "offset": offset}),
        format!("{mode:?} (offset {offset})"),
    );
    match (st.cemented_lowest, st.cemented_highest) {
        (Some(lo), Some(hi)) => f.add(
            "cemented",
            json!({"lowest": lo, "highest": hi, "blocks": st.cemented_blocks}),
            format!(
                "levels {lo}..={hi}, {} blocks",
                thousands(st.cemented_blocks)
            ),
        ),
        _ => f.add("cemented", json!(null), "none"),
    }
    f.add(
        "floating",
        json!({"blocks": st.floating_blocks}),
        format!("{} blocks", thousands(st.floating_blocks)),
    );
    f.add(
        "merges",
        json!({"done": st.merges_done, "last_ms": st.last_merge_ms}),
        format!("{} (last took {} ms)", st.merges_done, st.last_merge_ms),
    );
    chunks(
        &store.cemented_chunks(),
        store.cemented_metadata_chunks().len(),
        f,
    );
    Ok(())
}

fn chunks(chunks: &[tzstore::block::cemented::ChunkRange], with_meta: usize, f: &mut Fields) {
    let blocks: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    let levels = match (chunks.first(), chunks.last()) {
        (Some(a), Some(b)) => format!(", levels {}..={}", a.start, b.end),
        _ => String::new(),
    };
    let last: Vec<String> = chunks
        .iter()
        .rev()
        .take(5)
        .rev()
        .map(|c| format!("{}..={}", c.start, c.end))
        .collect();
    f.add(
        "chunks",
        json!({
            "count": chunks.len(),
            "blocks": blocks,
            "with_metadata": with_meta,
            "first_level": chunks.first().map(|c| c.start),
            "last_level": chunks.last().map(|c| c.end),
        }),
        format!(
            "{} ({} blocks{levels}; {with_meta} with metadata){}",
            chunks.len(),
            thousands(blocks),
            if last.is_empty() {
                String::new()
            } else {
                format!("; last: {}", last.join(", "))
            }
        ),
    );
}

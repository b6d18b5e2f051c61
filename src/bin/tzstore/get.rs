//! `tzstore get PATH [KEY] [--level N] [--distance D] [--metadata] [--raw]
//! [--json]`: one record of a store, opened read-only. KEY is a block hash
//! or an index/indexed-file key in hex, a kv key path; a singleton takes
//! none. Values print as hex; `--raw` writes the bytes alone to stdout.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use tzstore::block::floating::Floating;
use tzstore::block::{Block, Hash};
use tzstore::{Error, Result};

use crate::detect::{StoreKind, detect};
use crate::fields::Fields;
use crate::fmt::{hex, parse_hash, parse_hex, thousands};
use crate::open;

/// What `get` was asked.
pub struct Query {
    pub key: Option<String>,
    pub level: Option<i32>,
    pub distance: u32,
    pub metadata: bool,
    pub raw: bool,
    pub json: bool,
}

pub fn run(path: &Path, q: &Query) -> Result<()> {
    let kind = detect(path)?;
    let is_block = matches!(
        kind,
        StoreKind::BlockStore | StoreKind::Cemented | StoreKind::Floating
    );
    if !is_block && (q.level.is_some() || q.distance != 0 || q.metadata) {
        return Err(Error::invalid(format!(
            "--level, --distance and --metadata apply to block stores; {} is a {kind}",
            path.display()
        )));
    }
    match kind {
        StoreKind::BlockStore | StoreKind::Cemented | StoreKind::Floating => {
            let blocks = blocks(kind, path, q)?;
            for b in &blocks {
                print_block(b, q)?;
            }
            Ok(())
        }
        StoreKind::Index => {
            let key = parse_hex("key", need_key(q, kind)?)?;
            let idx = open::index(path)?;
            let v = idx.find(&key)?.ok_or_else(|| {
                Error::NotFound(format!("no key {} in {}", hex(&key), path.display()))
            })?;
            let mut f = Fields::default();
            f.plain("key", hex(&key));
            f.plain("value", hex(&v));
            output(&f, &v, q)
        }
        StoreKind::IndexedFile => {
            let key = parse_hex("key", need_key(q, kind)?)?;
            let s = open::indexed_file(path)?;
            let (value, header) = s.read(&key)?.ok_or_else(|| {
                Error::NotFound(format!("no key {} in {}", hex(&key), path.display()))
            })?;
            let mut f = Fields::default();
            f.plain("key", hex(&key));
            f.plain("header", hex(&header));
            f.add("value_bytes", value.len(), thousands(value.len() as u64));
            f.plain("value", hex(&value));
            output(&f, &value, q)
        }
        StoreKind::Kv => {
            let key = need_key(q, kind)?;
            let v = open::kv(path)?.get(key)?;
            let mut f = Fields::default();
            f.plain("key", key.to_string());
            f.add("value_bytes", v.len(), thousands(v.len() as u64));
            f.plain("value", hex(&v));
            output(&f, &v, q)
        }
        StoreKind::Singleton => {
            if q.key.is_some() {
                return Err(Error::invalid("a singleton holds one value: give no key"));
            }
            let v = open::singleton(path)?
                .read()
                .ok_or_else(|| Error::NotFound(format!("singleton {} is unset", path.display())))?;
            let mut f = Fields::default();
            f.add("value_bytes", v.len(), thousands(v.len() as u64));
            f.plain("value", hex(&v));
            output(&f, &v, q)
        }
    }
}

fn need_key(q: &Query, kind: StoreKind) -> Result<&str> {
    q.key
        .as_deref()
        .ok_or_else(|| Error::invalid(format!("get on a {kind} needs a KEY")))
}

fn output(f: &Fields, raw: &[u8], q: &Query) -> Result<()> {
    if q.raw {
        write_raw(raw)
    } else {
        f.print(q.json);
        Ok(())
    }
}

fn write_raw(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("write", Path::new("stdout"), e))
}

/// `--raw` writes the contents, or with `--metadata` the metadata.
fn print_block(b: &Block, q: &Query) -> Result<()> {
    if q.raw {
        return match (&b.metadata, q.metadata) {
            (Some(m), true) => write_raw(m),
            (None, true) => Err(Error::NotFound(format!(
                "block {} has no metadata",
                hex(&b.hash)
            ))),
            (_, false) => write_raw(&b.contents),
        };
    }
    let mut f = Fields::default();
    f.plain("hash", hex(&b.hash));
    f.plain("level", b.level);
    f.plain("predecessor", hex(&b.predecessor));
    f.add(
        "contents",
        hex(&b.contents),
        format!(
            "{} bytes: {}",
            thousands(b.contents.len() as u64),
            hex(&b.contents)
        ),
    );
    if q.metadata {
        match &b.metadata {
            Some(m) => f.add(
                "metadata",
                hex(m),
                format!("{} bytes: {}", thousands(m.len() as u64), hex(m)),
            ),
            None => f.add("metadata", json!(null), "none"),
        }
    }
    f.print(q.json);
    Ok(())
}

/// The blocks asked for: by hash (and distance below it), or by level
/// (several when forks share a level in floating stores).
fn blocks(kind: StoreKind, path: &Path, q: &Query) -> Result<Vec<Block>> {
    let hash = match (&q.key, q.level) {
        (Some(k), None) => Some(parse_hash(k)?),
        (None, Some(_)) => None,
        (Some(_), Some(_)) => {
            return Err(Error::invalid("give a block hash or --level, not both"));
        }
        (None, None) => return Err(Error::invalid("give a block hash or --level")),
    };
    if hash.is_none() && q.distance != 0 {
        return Err(Error::invalid("--distance counts from a block hash"));
    }
    let m = q.metadata;
    let found: Vec<Block> = match kind {
        StoreKind::BlockStore => {
            let s = open::block_store(path)?;
            match (hash, q.level) {
                (Some(h), _) => s.read(&h, q.distance, m)?.into_iter().collect(),
                (None, Some(l)) => match s.read_by_level(l, m)? {
                    Some(b) => vec![b],
                    None => {
                        let mut v: Vec<Block> = Vec::new();
                        for it in s.floating_iters(m) {
                            for e in it {
                                let b = e?.block;
                                if b.level == l && !v.iter().any(|x| x.hash == b.hash) {
                                    v.push(b);
                                }
                            }
                        }
                        v
                    }
                },
                (None, None) => Vec::new(),
            }
        }
        StoreKind::Cemented => {
            let c = open::cemented(path)?;
            let level = match (hash, q.level) {
                (Some(h), _) => c
                    .level_of(&h)?
                    // A distance past level 0 names no block.
                    .and_then(|l| l.checked_sub(i32::try_from(q.distance).ok()?))
                    .filter(|l| *l >= 0),
                (None, l) => l,
            };
            match level {
                Some(l) => c.read_by_level(l, m)?.into_iter().collect(),
                None => Vec::new(),
            }
        }
        StoreKind::Floating => {
            let stores = open::floating(path)?;
            match (hash, q.level) {
                (Some(h), _) => floating_ancestor(&stores, h, q.distance, m)?
                    .into_iter()
                    .collect(),
                (None, Some(l)) => {
                    let mut v = Vec::new();
                    for s in &stores {
                        for e in s.iter(m) {
                            let b = e?.block;
                            if b.level == l {
                                v.push(b);
                            }
                        }
                    }
                    v
                }
                (None, None) => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    if found.is_empty() {
        let what = match (hash, q.level) {
            (Some(h), _) if q.distance > 0 => {
                format!("no block {} below block {}", q.distance, hex(&h))
            }
            (Some(h), _) => format!("no block {}", hex(&h)),
            (None, l) => format!("no block at level {}", l.unwrap_or_default()),
        };
        return Err(Error::NotFound(format!("{what} in {}", path.display())));
    }
    Ok(found)
}

fn read_floating(stores: &[Floating], hash: &Hash, m: bool) -> Result<Option<Block>> {
    for s in stores {
        if let Some(mut b) = s.read_block(hash)? {
            if !m {
                b.metadata = None;
            }
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Follows predecessors `distance` times across the floating stores.
fn floating_ancestor(
    stores: &[Floating],
    hash: Hash,
    distance: u32,
    m: bool,
) -> Result<Option<Block>> {
    let mut h = hash;
    for _ in 0..distance {
        let mut next = None;
        for s in stores {
            if let Some((_, pred)) = s.level_and_predecessor(&h)? {
                next = Some(pred);
                break;
            }
        }
        match next {
            Some(p) => h = p,
            None => return Ok(None),
        }
    }
    read_floating(stores, &h, m)
}

//! `tzstore info`, `get`, `dump` (text and JSON), `check` and `check
//! --repair` on every store kind, each built here with the library.

mod cli_util;

use std::path::Path;

use cli_util::*;
use tzstore::OpenOptions;
use tzstore::block::cemented::Cemented;
use tzstore::block::floating::{Floating, FloatingKind};
use tzstore::block::store::{BlockStore, BlockStoreOptions};
use tzstore::index::{Index, IndexConfig};
use tzstore::indexed_file::{IndexedFile, IndexedFileConfig};
use tzstore::kv::Kv;
use tzstore::singleton::Singleton;

/// 30 blocks, levels 0..=9 cemented (one chunk), 10..=29 floating, and a
/// fork block at level 25.
fn block_store(dir: &Path) -> Vec<tzstore::block::Block> {
    let store = BlockStore::open(dir, BlockStoreOptions::default()).unwrap();
    let blocks = chain(30);
    for b in &blocks {
        store.store(&b.as_ref()).unwrap();
    }
    store.merge(&blocks[29].hash, &[9]).unwrap();
    store.await_merge().unwrap();
    let fork = block(1000, 25, blocks[24].hash);
    store.store(&fork.as_ref()).unwrap();
    let mut all = blocks;
    all.push(fork);
    all
}

#[test]
fn block_store_info_get_dump_check_and_repair() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blocks");
    let blocks = block_store(&dir);
    let d = p(&dir);

    let out = ok(&["info", d]);
    assert!(
        out.stdout.contains("kind          block store"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("levels 0..=9, 10 blocks"),
        "{}",
        out.stdout
    );
    // 20 above the cemented top, the top itself (kept with its metadata), the fork.
    assert!(out.stdout.contains("22 blocks"), "{}", out.stdout);
    let info = json(&ok(&["info", "--json", d]).stdout);
    assert_eq!(info["cemented"]["blocks"], 10);
    assert_eq!(info["floating"]["blocks"], 22);
    assert_eq!(info["chunks"]["count"], 1);

    // get by hash, by distance, by cemented and floating level.
    let head = hex(&blocks[29].hash);
    let got = json(&ok(&["get", d, &head, "--json", "--metadata"]).stdout);
    assert_eq!(got["hash"], head, "full 64-digit hashes");
    assert_eq!(got["level"], 29);
    assert_eq!(got["contents"], hex(&blocks[29].contents));
    assert_eq!(got["metadata"], hex(blocks[29].metadata.as_ref().unwrap()));
    let got = json(&ok(&["get", d, &head, "--distance", "25", "--json"]).stdout);
    assert_eq!(got["hash"], hex(&blocks[4].hash));
    assert!(got.get("metadata").is_none());
    let got = json(&ok(&["get", d, "--level", "3", "--json"]).stdout);
    assert_eq!(got["hash"], hex(&blocks[3].hash));
    let out = ok(&["get", d, "--level", "25"]);
    assert!(
        out.stdout.contains(&hex(&blocks[25].hash)),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&hex(&blocks[30].hash)),
        "both forks: {}",
        out.stdout
    );
    let raw = ok(&["get", d, &head, "--raw"]).raw;
    assert_eq!(raw, blocks[29].contents);
    let raw = ok(&["get", d, "--level", "2", "--raw", "--metadata"]).raw;
    assert_eq!(&raw, blocks[2].metadata.as_ref().unwrap());
    // Missing records are failures (1), bad arguments usage errors (2).
    let out = expect(1, &["get", d, &hex(&hash_of(99_999))]);
    assert!(
        out.stderr.contains(&hex(&hash_of(99_999))),
        "{}",
        out.stderr
    );
    expect(1, &["get", d, &head, "--distance", "100"]);
    expect(2, &["get", d, "abcd"]);
    expect(2, &["get", d]);

    // dump: text lines and a JSON document listing chunks and every
    // floating block.
    let out = ok(&["dump", d]);
    assert!(
        out.stdout.contains("chunk 0..=9 10 blocks, metadata"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("floating 9..=29 22 blocks"),
        "{}",
        out.stdout
    );
    let dump = json(&ok(&["list", "--json", d]).stdout);
    assert_eq!(dump["chunks"][0]["start"], 0);
    assert_eq!(dump["chunks"][0]["end"], 9);
    let floating = dump["floating"].as_array().unwrap();
    assert_eq!(floating.len(), 22);
    let mut want: Vec<(i64, String)> = blocks[9..]
        .iter()
        .map(|b| (b.level as i64, hex(&b.hash)))
        .collect();
    want.sort();
    let mut seen: Vec<(i64, String)> = floating
        .iter()
        .map(|b| {
            (
                b["level"].as_i64().unwrap(),
                b["hash"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, want);

    let out = ok(&["check", d]);
    assert!(
        out.stdout.contains("checked 32 records") && out.stdout.contains("ok: no problem found"),
        "{}",
        out.stdout
    );

    // A damaged copy: the check fails, the repair names what it moved, and
    // the store checks clean afterwards.
    let bad = tmp.path().join("bad");
    copy_dir(&dir, &bad);
    let floating_file = std::fs::read_dir(bad.join("floating"))
        .unwrap()
        .map(|e| e.unwrap().path().join("RW_floating_block_store"))
        .find(|f| std::fs::metadata(f).map(|m| m.len() > 200).unwrap_or(false))
        .expect("a floating store with blocks");
    flip(&floating_file, 100);
    let out = expect(1, &["check", p(&bad)]);
    assert!(out.stdout.contains("problem: "), "{}", out.all());
    assert!(out.stderr.contains("run with --repair"), "{}", out.all());
    let out = ok(&["check", "--repair", p(&bad)]);
    assert!(out.stdout.contains("quarantine folder: "), "{}", out.stdout);
    let id = floating_file
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("quarantined: ") && l.contains(&format!("floating/{id}"))),
        "the report names the moved store: {}",
        out.stdout
    );
    ok(&["check", p(&bad)]);
}

#[test]
fn block_store_check_that_stops_early_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("blocks");
    block_store(&dir);
    // Damage inside the cemented chunk: the consistency check stops there.
    let chunk = dir.join("cemented").join("0_9");
    let len = std::fs::metadata(&chunk).unwrap().len();
    flip(&chunk, len - 5);
    let out = expect(1, &["check", p(&dir)]);
    assert!(
        out.stdout.contains("stopped early at record 22 of 32"),
        "{}",
        out.stdout
    );
}

#[test]
fn cemented_and_floating_stores_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let blocks = chain(12);
    let cdir = tmp.path().join("cemented");
    {
        let c = Cemented::open(&cdir, &OpenOptions::read_write(), 0).unwrap();
        let refs: Vec<_> = blocks[..6].iter().map(|b| b.as_ref()).collect();
        c.cement(&refs, true, true).unwrap();
        let refs: Vec<_> = blocks[6..].iter().map(|b| b.as_ref()).collect();
        c.cement(&refs, false, true).unwrap();
    }
    let c = p(&cdir);
    let info = json(&ok(&["info", "--json", c]).stdout);
    assert_eq!(info["kind"], "cemented block store");
    assert_eq!(info["chunks"]["count"], 2);
    assert_eq!(info["chunks"]["with_metadata"], 1);
    let dump = json(&ok(&["dump", "--json", c]).stdout);
    assert_eq!(dump["chunks"][1]["start"], 6);
    assert_eq!(dump["chunks"][1]["metadata"], false);
    let got = json(&ok(&["get", c, &hex(&blocks[8].hash), "--distance", "3", "--json"]).stdout);
    assert_eq!(got["hash"], hex(&blocks[5].hash));
    expect(1, &["get", c, &hex(&blocks[8].hash), "--distance", "9"]);
    expect(
        1,
        &["get", c, &hex(&blocks[8].hash), "--distance", "4294967295"],
    );
    expect(1, &["get", c, "--level", "12"]);
    let out = ok(&["check", c]);
    // 12 blocks and the 6 metadata entries of the first chunk.
    assert!(out.stdout.contains("checked 18 records"), "{}", out.stdout);

    let fdir = tmp.path().join("floating");
    {
        let f = Floating::open(&fdir, FloatingKind::Rw, &OpenOptions::read_write()).unwrap();
        let mut preds = Vec::new();
        for b in &blocks {
            f.append(&b.as_ref(), &preds, true).unwrap();
            preds = vec![b.hash];
        }
    }
    let f = p(&fdir);
    let info = json(&ok(&["info", "--json", f]).stdout);
    assert_eq!(info["kind"], "floating block store");
    assert_eq!(info["RW_blocks"], 12);
    let dump = json(&ok(&["dump", "--json", f]).stdout);
    assert_eq!(dump["floating"].as_array().unwrap().len(), 12);
    assert_eq!(dump["floating"][0]["store"], "RW");
    let got = json(
        &ok(&[
            "get",
            f,
            &hex(&blocks[11].hash),
            "--distance",
            "2",
            "--json",
            "--metadata",
        ])
        .stdout,
    );
    assert_eq!(got["hash"], hex(&blocks[9].hash));
    assert_eq!(got["metadata"], hex(blocks[9].metadata.as_ref().unwrap()));
    let got = json(&ok(&["get", f, "--level", "4", "--json"]).stdout);
    assert_eq!(got["hash"], hex(&blocks[4].hash));
    ok(&["check", f]);
    flip(&fdir.join("RW_floating_block_store"), 60);
    expect(1, &["check", f]);
    let out = ok(&["check", "--repair", f]);
    assert!(
        out.stdout.contains("quarantined: RW_floating_block_store"),
        "{}",
        out.stdout
    );
    ok(&["check", f]);
}

#[test]
fn index_plain_and_removable() {
    for removable in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("index");
        let idx = Index::open(
            &dir,
            IndexConfig {
                removable,
                ..IndexConfig::new(4, 3)
            },
        )
        .unwrap();
        for i in 0..50u32 {
            idx.add(&i.to_be_bytes(), &[i as u8, 1, 2], false).unwrap();
        }
        if removable {
            idx.remove(&7u32.to_be_bytes(), false).unwrap();
        }
        idx.flush().unwrap();
        drop(idx);
        let d = p(&dir);
        let n = if removable { 49 } else { 50 };
        let info = json(&ok(&["info", "--json", d]).stdout);
        assert_eq!(info["kind"], "index");
        assert_eq!(info["key_size"], 4);
        assert_eq!(info["value_size"], 3);
        assert_eq!(info["removable"], removable);
        assert_eq!(info["entries"], n);
        let got = json(&ok(&["get", d, "0000000c", "--json"]).stdout);
        assert_eq!(got["value"], "0c0102");
        assert_eq!(ok(&["get", d, "0000000c", "--raw"]).raw, vec![12, 1, 2]);
        if removable {
            expect(1, &["get", d, "00000007"]);
        }
        expect(2, &["get", d, "0c"]);
        expect(2, &["get", d, "0000000c", "--level", "3"]);
        let dump = json(&ok(&["dump", "--json", d]).stdout);
        let mut entries: Vec<(String, String)> = dump["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["key"].as_str().unwrap().into(),
                    e["value"].as_str().unwrap().into(),
                )
            })
            .collect();
        entries.sort();
        let mut want: Vec<(String, String)> = (0..50u32)
            .filter(|i| !removable || *i != 7)
            .map(|i| (hex(&i.to_be_bytes()), hex(&[i as u8, 1, 2])))
            .collect();
        want.sort();
        assert_eq!(entries, want);
        assert_eq!(ok(&["dump", d]).stdout.lines().count(), n);
        ok(&["check", d]);

        // A byte of an entry in the log: repair keeps the others and
        // moves the damaged log aside.
        let log = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .find(|n| n.starts_with("log."))
            .unwrap();
        let len = std::fs::metadata(dir.join(&log)).unwrap().len();
        flip(&dir.join(&log), len - 20);
        let out = expect(1, &["check", d]);
        assert!(out.stdout.contains(&log), "{}", out.stdout);
        let report = json(&expect(1, &["check", "--json", d]).stdout);
        assert_eq!(report["ok"], false);
        assert!(
            report["problems"][0].as_str().unwrap().contains(&log),
            "{report}"
        );
        assert_eq!(
            report["quarantined"].as_array().unwrap().len(),
            0,
            "nothing moved"
        );
        let out = ok(&["check", "--repair", d]);
        assert!(
            out.stdout.contains(&format!("quarantined: {log}")),
            "{}",
            out.stdout
        );
        assert!(out.stdout.contains("repaired: "), "{}", out.stdout);
        ok(&["check", d]);
    }
}

#[test]
fn indexed_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("if");
    let f = IndexedFile::open(
        &dir,
        IndexedFileConfig {
            key_size: 2,
            header_size: 1,
            header_in_value: false,
            log_size: 0,
            open: OpenOptions::read_write(),
        },
    )
    .unwrap();
    for i in 0..20u16 {
        f.append(
            &i.to_be_bytes(),
            Some(&[i as u8]),
            format!("value {i}").as_bytes(),
            false,
        )
        .unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let d = p(&dir);
    let info = json(&ok(&["info", "--json", d]).stdout);
    assert_eq!(info["kind"], "indexed file");
    assert_eq!(info["keys"], 20);
    assert_eq!(info["header_size"], 1);
    let got = json(&ok(&["get", d, "0005", "--json"]).stdout);
    assert_eq!(got["header"], "05");
    assert_eq!(got["value"], hex(b"value 5"));
    assert_eq!(ok(&["get", d, "0005", "--raw"]).raw, b"value 5");
    expect(1, &["get", d, "0100"]);
    let dump = json(&ok(&["dump", "--json", d]).stdout);
    let entries = dump["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 20);
    assert!(
        entries
            .iter()
            .any(|e| e["key"] == "0013" && e["value"] == hex(b"value 19"))
    );
    ok(&["check", d]);
    let values = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("gen."))
        .unwrap()
        .join("values");
    flip(&values, 60);
    let out = expect(1, &["check", d]);
    assert!(out.stdout.contains("problem: "), "{}", out.stdout);
    let out = ok(&["check", "--repair", d]);
    assert!(out.stdout.contains("quarantined: gen."), "{}", out.stdout);
    ok(&["check", d]);
}

#[test]
fn kv_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv");
    std::fs::create_dir_all(&dir).unwrap();
    let kv = Kv::open(&dir, &OpenOptions::read_write()).unwrap();
    kv.set("config/network", b"mainnet").unwrap();
    kv.set("config/peers/count", b"42").unwrap();
    kv.set("quote\"and\\slash", b"\x00\xff").unwrap();
    // Names other stores use for their files do not make it another kind.
    kv.set("manifest", b"m").unwrap();
    drop(kv);
    let d = p(&dir);
    let info = json(&ok(&["info", "--json", d]).stdout);
    assert_eq!(info["kind"], "key/value store");
    assert_eq!(info["values"], 4);
    assert_eq!(info["dictionaries"], 2);
    let got = json(&ok(&["get", d, "config/network", "--json"]).stdout);
    assert_eq!(got["value"], hex(b"mainnet"));
    assert_eq!(ok(&["get", d, "config/peers/count", "--raw"]).raw, b"42");
    expect(1, &["get", d, "config/none"]);
    expect(2, &["get", d, "../escape"]);
    let dump = json(&ok(&["dump", "--json", d]).stdout);
    let keys: Vec<&str> = dump["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "config",
            "config/network",
            "config/peers",
            "config/peers/count",
            "manifest",
            "quote\"and\\slash"
        ],
        "a JSON string with quotes and backslashes parses back"
    );
    assert!(
        ok(&["dump", d])
            .stdout
            .contains("value config/peers/count 2 3432")
    );
    ok(&["check", d]);
    std::fs::write(dir.join(".tzs-generation"), b"garbage").unwrap();
    expect(1, &["check", d]);
    let out = ok(&["check", "--repair", d]);
    assert!(
        out.stdout.contains("quarantined: .tzs-generation"),
        "{}",
        out.stdout
    );
    ok(&["check", d]);
}

#[test]
fn singleton() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("head");
    Singleton::open(&path, &OpenOptions::read_write())
        .unwrap()
        .write(b"head at 42")
        .unwrap();
    let s = p(&path);
    let info = json(&ok(&["info", "--json", s]).stdout);
    assert_eq!(info["kind"], "singleton");
    assert_eq!(info["value_bytes"], 10);
    assert_eq!(ok(&["get", s, "--raw"]).raw, b"head at 42");
    assert_eq!(
        json(&ok(&["get", s, "--json"]).stdout)["value"],
        hex(b"head at 42")
    );
    expect(2, &["get", s, "somekey"]);
    assert_eq!(
        json(&ok(&["dump", "--json", s]).stdout)["value"],
        hex(b"head at 42")
    );
    ok(&["check", s]);
    flip(&path, 20);
    let out = expect(1, &["check", s]);
    assert!(out.stdout.contains("problem: "), "{}", out.stdout);
    let report = json(&ok(&["check", "--repair", "--json", s]).stdout);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["repair"], true);
    let moved = report["quarantined"].as_array().unwrap();
    assert!(
        moved.iter().any(|q| q.as_str().unwrap().contains("head")),
        "{report}"
    );
    assert!(report["quarantine_dir"].is_string(), "{report}");
}

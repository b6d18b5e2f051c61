//! The kv store's operations and their edge semantics (SPEC §3.5).

use tzstore::kv::{Kind, Kv};
use tzstore::{Error, OpenOptions};

fn open(dir: &tempfile::TempDir) -> Kv {
    Kv::open(dir.path(), &OpenOptions::default().no_fsync()).unwrap()
}

fn names(kv: &Kv, key: &str) -> Vec<(String, Kind)> {
    kv.list(key).unwrap()
}

#[test]
fn handles_and_batches_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Kv>();
    check::<tzstore::kv::Batch>();
}

#[test]
fn two_handles_in_one_process_write_alternately() {
    let d = tempfile::tempdir().unwrap();
    let a = open(&d);
    let b = open(&d);
    for i in 0..20 {
        a.set(&format!("k{i}"), b"a").unwrap();
        let mut batch = b.batch_begin().unwrap();
        batch.set(&format!("k{i}"), b"b").unwrap();
        batch.commit().unwrap();
    }
    assert_eq!(a.get("k19").unwrap(), b"b");
}

#[test]
fn set_get_exists_size_and_parents() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    assert_eq!(kv.exists("").unwrap(), Some(Kind::Dictionary));
    assert_eq!(kv.exists("/").unwrap(), Some(Kind::Dictionary));
    assert_eq!(kv.exists("a").unwrap(), None);
    kv.set("a/b/c", b"hello").unwrap();
    assert_eq!(kv.get("/a//b/c/").unwrap(), b"hello");
    assert_eq!(kv.exists("a").unwrap(), Some(Kind::Dictionary));
    assert_eq!(kv.exists("a/b/c").unwrap(), Some(Kind::Value));
    assert_eq!(kv.exists("a/b/c/d").unwrap(), None);
    assert_eq!(kv.size("a/b/c").unwrap(), 5);
    kv.set("a/b/c", b"").unwrap();
    assert_eq!(kv.get("a/b/c").unwrap(), b"");
    assert!(matches!(kv.get("a"), Err(Error::ValueExpected(_))));
    assert!(matches!(kv.get(""), Err(Error::ValueExpected(_))));
    assert!(matches!(kv.size("a"), Err(Error::ValueExpected(_))));
    assert!(matches!(kv.get("nope"), Err(Error::NotFound(_))));
    assert!(matches!(kv.size("nope"), Err(Error::NotFound(_))));
    // A parent that is a value: ENOTDIR -> DictionaryExpected.
    assert!(matches!(
        kv.set("a/b/c/d", b"x"),
        Err(Error::DictionaryExpected(_))
    ));
    assert!(matches!(
        kv.get("a/b/c/d"),
        Err(Error::DictionaryExpected(_))
    ));
    assert!(matches!(
        kv.list("a/b/c/d"),
        Err(Error::DictionaryExpected(_))
    ));
    // Setting a dictionary or the root is ValueExpected.
    assert!(matches!(kv.set("a/b", b"x"), Err(Error::ValueExpected(_))));
    assert!(matches!(kv.set("", b"x"), Err(Error::ValueExpected(_))));
    // Big values round-trip.
    let big: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    kv.set("big", &big).unwrap();
    assert_eq!(kv.get("big").unwrap(), big);
}

#[test]
fn partial_reads_and_writes() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    kv.set("k", b"0123456789").unwrap();
    assert_eq!(kv.get_partial("k", 2, 3).unwrap(), b"234");
    assert_eq!(kv.get_partial("k", 8, 100).unwrap(), b"89");
    assert_eq!(kv.get_partial("k", 10, 5).unwrap(), b"");
    assert_eq!(kv.get_partial("k", 50, u64::MAX).unwrap(), b"");
    assert!(matches!(
        kv.get_partial("missing", 0, 1),
        Err(Error::NotFound(_))
    ));
    kv.set_partial("k", 3, b"ab").unwrap();
    assert_eq!(kv.get("k").unwrap(), b"012ab56789");
    kv.set_partial("k", 8, b"XYZ").unwrap();
    assert_eq!(kv.get("k").unwrap(), b"012ab567XYZ");
    // Past the end appends.
    kv.set_partial("k", 1000, b"!").unwrap();
    assert_eq!(kv.get("k").unwrap(), b"012ab567XYZ!");
    // A missing key is created.
    kv.set_partial("new/one", 5, b"v").unwrap();
    assert_eq!(kv.get("new/one").unwrap(), b"v");
    assert!(matches!(
        kv.set_partial("new", 0, b"v"),
        Err(Error::ValueExpected(_))
    ));
}

#[test]
fn list_is_sorted_by_bytes_and_hides_reserved() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    for k in ["b", "a", "B", "é", "d/x", "c"] {
        kv.set(k, b"v").unwrap();
    }
    let got: Vec<String> = names(&kv, "").into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, ["B", "a", "b", "c", "d", "é"]);
    assert_eq!(names(&kv, "d"), vec![("x".to_string(), Kind::Value)]);
    assert!(names(&kv, "").contains(&("d".to_string(), Kind::Dictionary)));
    assert!(std::fs::metadata(d.path().join(".tzs-journal")).is_ok());
    assert!(matches!(kv.list("a"), Err(Error::DictionaryExpected(_))));
    assert!(matches!(kv.list("zz"), Err(Error::NotFound(_))));
}

#[test]
fn remove_semantics() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    kv.set("a/b/c", b"1").unwrap();
    kv.set("a/d", b"2").unwrap();
    kv.set("e", b"3").unwrap();
    kv.remove("missing").unwrap();
    kv.remove("e/under/value").unwrap();
    kv.remove("a/b").unwrap();
    assert_eq!(kv.exists("a/b").unwrap(), None);
    assert_eq!(kv.get("a/d").unwrap(), b"2");
    kv.remove("a").unwrap();
    assert_eq!(kv.exists("a").unwrap(), None);
    kv.set("x/y", b"4").unwrap();
    kv.remove("").unwrap();
    assert_eq!(kv.list("").unwrap(), vec![]);
    assert_eq!(kv.exists("").unwrap(), Some(Kind::Dictionary));
    kv.set("again", b"5").unwrap();
    assert_eq!(kv.get("again").unwrap(), b"5");
    // Nothing is left in the staging area.
    assert_eq!(
        std::fs::read_dir(d.path().join(".tzs-tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn rename_rules() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    kv.set("v1", b"one").unwrap();
    kv.set("v2", b"two").unwrap();
    // Value onto value replaces.
    kv.rename("v1", "v2").unwrap();
    assert_eq!(kv.get("v2").unwrap(), b"one");
    assert_eq!(kv.exists("v1").unwrap(), None);
    // Missing source.
    assert!(matches!(kv.rename("v1", "z"), Err(Error::NotFound(_))));
    // Onto a dictionary: moves inside.
    kv.set("dir/x", b"x").unwrap();
    kv.rename("v2", "dir").unwrap();
    assert_eq!(kv.get("dir/v2").unwrap(), b"one");
    // A dictionary moves whole, creating parents.
    kv.rename("dir", "p/q/moved").unwrap();
    assert_eq!(kv.get("p/q/moved/x").unwrap(), b"x");
    assert_eq!(kv.exists("dir").unwrap(), None);
    // Dictionary onto value.
    kv.set("val", b"v").unwrap();
    assert!(matches!(
        kv.rename("p/q/moved", "val"),
        Err(Error::ValueExpected(_))
    ));
    // Source a segment-wise prefix of the destination.
    assert!(matches!(
        kv.rename("p", "p/q/r"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(kv.rename("", "x"), Err(Error::InvalidArgument(_))));
    kv.set("pp", b"not a child of p").unwrap();
    kv.rename("p/q", "pp2").unwrap();
    assert_eq!(kv.get("pp2/moved/x").unwrap(), b"x");
    // The entry inside the destination dictionary is a dictionary.
    kv.set("t/pp2/y", b"y").unwrap();
    assert!(matches!(kv.rename("pp2", "t"), Err(Error::KeyExists(_))));
    // Destination parent is a value.
    assert!(matches!(
        kv.rename("pp", "val/sub"),
        Err(Error::DictionaryExpected(_))
    ));
}

#[test]
fn allocate_zero_fills_and_refuses_bound_keys() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    kv.allocate("z/a", 4096).unwrap();
    assert_eq!(kv.get("z/a").unwrap(), vec![0u8; 4096]);
    kv.allocate("empty", 0).unwrap();
    assert_eq!(kv.size("empty").unwrap(), 0);
    assert!(matches!(kv.allocate("z/a", 1), Err(Error::KeyExists(_))));
    assert!(matches!(kv.allocate("z", 1), Err(Error::KeyExists(_))));
    assert!(matches!(kv.allocate("", 1), Err(Error::KeyExists(_))));
}

#[test]
fn last_modified_and_digest() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    kv.set("d/a", b"abc").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    kv.set("d/b", b"").unwrap();
    let (da, pa) = kv.last_modified("d/a").unwrap();
    let (db, pb) = kv.last_modified("d/b").unwrap();
    assert!((db, pb) > (da, pa));
    assert!(pa < 86_400 * 1_000_000_000_000);
    assert_eq!(kv.last_modified("d").unwrap(), (db, pb));
    assert!(da > 19_000, "days since 1970: {da}");
    assert!(matches!(kv.last_modified("nope"), Err(Error::NotFound(_))));
    // SHA-256("abc").
    let abc = kv.digest("d/a").unwrap();
    assert_eq!(
        abc[..4],
        [0xba, 0x78, 0x16, 0xbf],
        "sha256(abc) starts ba7816bf"
    );
    let d1 = kv.digest("d").unwrap();
    let root1 = kv.digest("").unwrap();
    kv.set("d/b", b"changed").unwrap();
    assert_ne!(kv.digest("d").unwrap(), d1);
    assert_ne!(kv.digest("").unwrap(), root1);
    kv.set("d/b", b"").unwrap();
    assert_eq!(kv.digest("d").unwrap(), d1);
    assert!(matches!(kv.digest("nope"), Err(Error::NotFound(_))));
    // An empty dictionary and an empty value differ.
    kv.set("e/x", b"").unwrap();
    kv.remove("e/x").unwrap();
    assert_ne!(kv.digest("e").unwrap(), kv.digest("d/b").unwrap());
}

#[test]
fn open_serves_existing_trees_and_rejects_non_directories() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("x/y")).unwrap();
    std::fs::write(d.path().join("x/y/z"), b"pre").unwrap();
    let kv = open(&d);
    assert_eq!(kv.get("x/y/z").unwrap(), b"pre");
    let f = d.path().join("file");
    std::fs::write(&f, b"").unwrap();
    let o = OpenOptions::default();
    assert!(matches!(Kv::open(&f, &o), Err(Error::InvalidArgument(_))));
    assert!(matches!(Kv::open("", &o), Err(Error::InvalidArgument(_))));
    assert!(Kv::open("/dev/null", &o).is_err());
    assert!(matches!(
        Kv::open(d.path().join("missing"), &o),
        Err(Error::NotFound(_))
    ));
    let ro = Kv::open(d.path(), &OpenOptions::read_only()).unwrap();
    assert_eq!(ro.get("x/y/z").unwrap(), b"pre");
    assert!(matches!(ro.set("a", b"b"), Err(Error::ReadOnly(_))));
    assert!(matches!(ro.batch_begin(), Err(Error::ReadOnly(_))));
}

#[test]
fn batches_read_their_writes_and_commit_atomically() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    kv.set("old/a", b"1").unwrap();
    let mut b = kv.batch_begin().unwrap();
    b.set("new/x", b"x").unwrap();
    b.remove("old").unwrap();
    b.set("old/b", b"2").unwrap();
    assert_eq!(b.get("new/x").unwrap(), b"x");
    assert!(matches!(b.get("old/a"), Err(Error::NotFound(_))));
    assert_eq!(b.list("old").unwrap(), vec![("b".to_string(), Kind::Value)]);
    assert_eq!(b.exists("new").unwrap(), Some(Kind::Dictionary));
    assert!(matches!(b.set("new", b"v"), Err(Error::ValueExpected(_))));
    assert!(matches!(
        b.set("new/x/y", b"v"),
        Err(Error::DictionaryExpected(_))
    ));
    // Not visible outside before commit.
    assert_eq!(kv.exists("new").unwrap(), None);
    assert_eq!(kv.get("old/a").unwrap(), b"1");
    b.commit().unwrap();
    assert_eq!(kv.get("new/x").unwrap(), b"x");
    assert_eq!(kv.exists("old/a").unwrap(), None);
    assert_eq!(kv.get("old/b").unwrap(), b"2");
    // Abort writes nothing.
    let mut b = kv.batch_begin().unwrap();
    b.set("gone", b"1").unwrap();
    b.abort();
    assert_eq!(kv.exists("gone").unwrap(), None);
}

#[test]
fn conflicting_batches_and_retries() {
    let d = tempfile::tempdir().unwrap();
    let kv = open(&d);
    let other = open(&d);
    kv.set("n", b"0").unwrap();
    let mut b = kv.batch_begin().unwrap();
    assert_eq!(b.get("n").unwrap(), b"0");
    other.set("n", b"5").unwrap();
    b.set("n", b"1").unwrap();
    assert!(matches!(b.commit(), Err(Error::Conflict(_))));
    assert_eq!(kv.get("n").unwrap(), b"5");
    // A blind write to a key changed by someone else conflicts too.
    let mut b = kv.batch_begin().unwrap();
    b.set("n", b"7").unwrap();
    other.set("n", b"6!").unwrap();
    assert!(matches!(b.commit(), Err(Error::Conflict(_))));
    // Unrelated keys do not conflict.
    let mut b = kv.batch_begin().unwrap();
    b.get("n").unwrap();
    other.set("unrelated", b"u").unwrap();
    b.set("m", b"1").unwrap();
    b.commit().unwrap();
    // A key changed after begin, even before the batch first reads it: the
    // read cannot be the state as of begin, so the commit conflicts.
    let mut b = kv.batch_begin().unwrap();
    other.set("n", b"9").unwrap();
    assert_eq!(b.get("n").unwrap(), b"9");
    b.set("n", b"10").unwrap();
    assert!(matches!(b.commit(), Err(Error::Conflict(_))));
    assert_eq!(kv.get("n").unwrap(), b"9");
    // kv.batch reruns on conflict, then gives up.
    let mut runs = 0;
    let r: Result<(), Error> = kv.batch(2, |b| {
        runs += 1;
        b.get("n")?;
        other.set("n", format!("{runs}").as_bytes())?;
        Ok(())
    });
    assert!(matches!(r, Err(Error::TooManyRetries(_))));
    assert_eq!(runs, 3);
    let v = kv
        .batch(13, |b| {
            let n: u32 = String::from_utf8(b.get("m")?).unwrap().parse().unwrap();
            b.set("m", (n + 1).to_string().as_bytes())?;
            Ok(n + 1)
        })
        .unwrap();
    assert_eq!(v, 2);
}

#[test]
fn batch_sets_recheck_parents_after_ops_on_them() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(&dir);
    let mut b = kv.batch_begin().unwrap();
    b.set("p/q/k", b"1").unwrap();
    // A later op on an ancestor of the last checked parent: the next set
    // below it looks again.
    b.remove("p").unwrap();
    b.set("p", b"value").unwrap();
    assert!(matches!(
        b.set("p/q/k2", b"2"),
        Err(Error::DictionaryExpected(_))
    ));
    b.remove("p").unwrap();
    b.set("p/q/k3", b"3").unwrap();
    assert!(matches!(b.set("p/q", b"v"), Err(Error::ValueExpected(_))));
    b.set("x", b"v").unwrap();
    assert!(matches!(
        b.set("x/y", b"v"),
        Err(Error::DictionaryExpected(_))
    ));
    b.commit().unwrap();
    assert_eq!(names(&kv, "p/q"), vec![("k3".to_string(), Kind::Value)]);
    assert_eq!(kv.get("x").unwrap(), b"v");
}

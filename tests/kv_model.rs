//! Property test: random sequences of kv operations (set, set_partial,
//! remove, rename, get, list, exists, batches, reopen) against an in-memory
//! tree model; every result and the final tree must agree.

use std::collections::BTreeMap;

use proptest::prelude::*;
use tzstore::kv::{Kind, Kv};
use tzstore::{Error, OpenOptions};

type K = Vec<String>;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Value(Vec<u8>),
    Dir,
}

/// The model: every bound key (never the root); ancestors of a bound key
/// are always `Dir`.
#[derive(Debug, Clone, Default)]
struct Model {
    map: BTreeMap<K, Node>,
}

type R<T> = Result<T, &'static str>;

fn kname(e: &Error) -> &'static str {
    e.kind_name()
}

fn is_prefix(a: &K, b: &K) -> bool {
    b.len() >= a.len() && b[..a.len()] == a[..]
}

impl Model {
    fn kind(&self, k: &K) -> Option<Kind> {
        if k.is_empty() {
            return Some(Kind::Dictionary);
        }
        self.map.get(k).map(|n| match n {
            Node::Value(_) => Kind::Value,
            Node::Dir => Kind::Dictionary,
        })
    }

    /// Walks the first `n` segments as dictionaries (as the store does).
    fn walk(&self, k: &K, n: usize) -> R<()> {
        for i in 1..=n {
            match self.map.get(&k[..i]) {
                None => return Err("NOT_FOUND"),
                Some(Node::Value(_)) => return Err("DICTIONARY_EXPECTED"),
                Some(Node::Dir) => {}
            }
        }
        Ok(())
    }

    fn get(&self, k: &K) -> R<Vec<u8>> {
        if k.is_empty() {
            return Err("VALUE_EXPECTED");
        }
        self.walk(k, k.len() - 1)?;
        match self.map.get(k) {
            None => Err("NOT_FOUND"),
            Some(Node::Dir) => Err("VALUE_EXPECTED"),
            Some(Node::Value(v)) => Ok(v.clone()),
        }
    }

    fn list(&self, k: &K) -> R<Vec<(String, Kind)>> {
        self.walk(k, k.len())?;
        Ok(self
            .map
            .iter()
            .filter(|(c, _)| c.len() == k.len() + 1 && is_prefix(k, c))
            .map(|(c, n)| {
                let kind = match n {
                    Node::Value(_) => Kind::Value,
                    Node::Dir => Kind::Dictionary,
                };
                (c[k.len()].clone(), kind)
            })
            .collect())
    }

    /// Parents for a write: missing ones are created, a value is an error.
    fn make_parents(&mut self, k: &K) -> R<()> {
        for i in 1..k.len() {
            match self.map.get(&k[..i]) {
                Some(Node::Value(_)) => return Err("DICTIONARY_EXPECTED"),
                Some(Node::Dir) => {}
                None => break,
            }
        }
        for i in 1..k.len() {
            self.map.insert(k[..i].to_vec(), Node::Dir);
        }
        Ok(())
    }

    fn set(&mut self, k: &K, v: &[u8]) -> R<()> {
        if k.is_empty() {
            return Err("VALUE_EXPECTED");
        }
        // The store checks the parents first, then the key.
        let mut probe = self.clone();
        probe.make_parents(k)?;
        if self.map.get(k) == Some(&Node::Dir) {
            return Err("VALUE_EXPECTED");
        }
        self.make_parents(k)?;
        self.map.insert(k.clone(), Node::Value(v.to_vec()));
        Ok(())
    }

    fn set_partial(&mut self, k: &K, off: usize, data: &[u8]) -> R<()> {
        let mut v = match self.get(k) {
            Ok(v) => v,
            Err("NOT_FOUND") => Vec::new(),
            Err(e) => return Err(e),
        };
        let at = off.min(v.len());
        let end = (at + data.len()).min(v.len());
        v.splice(at..end, data.iter().copied());
        self.set(k, &v)
    }

    fn remove(&mut self, k: &K) {
        self.map.retain(|c, _| !is_prefix(k, c));
    }

    fn rename(&mut self, from: &K, to: &K) -> R<()> {
        if is_prefix(from, to) {
            return Err("INVALID_ARGUMENT");
        }
        self.walk(from, from.len() - 1)?;
        let src = self.kind(from).ok_or("NOT_FOUND")?;
        let dest = if self.kind(to) == Some(Kind::Dictionary) {
            let mut d = to.clone();
            d.push(from.last().unwrap().clone());
            d
        } else {
            to.clone()
        };
        if is_prefix(from, &dest) {
            return Err("INVALID_ARGUMENT");
        }
        match (self.kind(&dest), src) {
            (None, _) | (Some(Kind::Value), Kind::Value) => {}
            (Some(Kind::Value), Kind::Dictionary) => return Err("VALUE_EXPECTED"),
            (Some(Kind::Dictionary), _) => return Err("KEY_EXISTS"),
        }
        self.make_parents(&dest)?;
        let moved: Vec<(K, Node)> = self
            .map
            .iter()
            .filter(|(c, _)| is_prefix(from, c))
            .map(|(c, n)| (c.clone(), n.clone()))
            .collect();
        self.remove(from);
        self.remove(&dest);
        for (c, n) in moved {
            let mut nk = dest.clone();
            nk.extend_from_slice(&c[from.len()..]);
            self.map.insert(nk, n);
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum BOp {
    Set(K, Vec<u8>),
    Remove(K),
    Get(K),
    List(K),
    Exists(K),
}

#[derive(Debug, Clone)]
enum Op {
    Set(K, Vec<u8>),
    SetPartial(K, usize, Vec<u8>),
    Remove(K),
    Rename(K, K),
    Get(K),
    List(K),
    Exists(K),
    Batch(Vec<BOp>),
    Reopen,
}

fn key() -> impl Strategy<Value = K> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..4)
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn nonroot() -> impl Strategy<Value = K> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..4)
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..6)
}

fn bop() -> impl Strategy<Value = BOp> {
    prop_oneof![
        3 => (key(), value()).prop_map(|(k, v)| BOp::Set(k, v)),
        1 => key().prop_map(BOp::Remove),
        1 => key().prop_map(BOp::Get),
        1 => key().prop_map(BOp::List),
        1 => key().prop_map(BOp::Exists),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), value()).prop_map(|(k, v)| Op::Set(k, v)),
        1 => (key(), 0usize..8, value()).prop_map(|(k, o, v)| Op::SetPartial(k, o, v)),
        2 => key().prop_map(Op::Remove),
        2 => (nonroot(), key()).prop_map(|(a, b)| Op::Rename(a, b)),
        2 => key().prop_map(Op::Get),
        1 => key().prop_map(Op::List),
        1 => key().prop_map(Op::Exists),
        2 => prop::collection::vec(bop(), 0..8).prop_map(Op::Batch),
        1 => Just(Op::Reopen),
    ]
}

fn s(k: &K) -> String {
    k.join("/")
}

fn unit<T>(r: Result<T, Error>) -> R<()> {
    r.map(|_| ()).map_err(|e| kname(&e))
}

fn dump(kv: &Kv, k: &K, out: &mut BTreeMap<K, Node>) {
    for (name, kind) in kv.list(&s(k)).unwrap() {
        let mut c = k.clone();
        c.push(name);
        match kind {
            Kind::Value => {
                out.insert(c.clone(), Node::Value(kv.get(&s(&c)).unwrap()));
            }
            Kind::Dictionary => {
                out.insert(c.clone(), Node::Dir);
                dump(kv, &c, out);
            }
        }
    }
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let opts = OpenOptions::default().no_fsync();
    let mut kv = Kv::open(dir.path(), &opts).unwrap();
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Set(k, v) => assert_eq!(unit(kv.set(&s(&k), &v)), m.set(&k, &v), "set {k:?}"),
            Op::SetPartial(k, o, v) => assert_eq!(
                unit(kv.set_partial(&s(&k), o as u64, &v)),
                m.set_partial(&k, o, &v),
                "set_partial {k:?}"
            ),
            Op::Remove(k) => {
                kv.remove(&s(&k)).unwrap();
                m.remove(&k);
            }
            Op::Rename(a, b) => assert_eq!(
                unit(kv.rename(&s(&a), &s(&b))),
                m.rename(&a, &b),
                "rename {a:?} {b:?}"
            ),
            Op::Get(k) => assert_eq!(kv.get(&s(&k)).map_err(|e| kname(&e)), m.get(&k)),
            Op::List(k) => assert_eq!(kv.list(&s(&k)).map_err(|e| kname(&e)), m.list(&k)),
            Op::Exists(k) => assert_eq!(kv.exists(&s(&k)).unwrap(), m.kind(&k)),
            Op::Reopen => {
                drop(kv);
                kv = Kv::open(dir.path(), &opts).unwrap();
            }
            Op::Batch(bops) => {
                let mut b = kv.batch_begin().unwrap();
                let mut bm = m.clone();
                for bop in bops {
                    match bop {
                        BOp::Set(k, v) => {
                            assert_eq!(unit(b.set(&s(&k), &v)), bm.set(&k, &v), "batch set {k:?}")
                        }
                        BOp::Remove(k) => {
                            b.remove(&s(&k)).unwrap();
                            bm.remove(&k);
                        }
                        BOp::Get(k) => assert_eq!(
                            b.get(&s(&k)).map_err(|e| kname(&e)),
                            bm.get(&k),
                            "batch get {k:?}"
                        ),
                        BOp::List(k) => assert_eq!(
                            b.list(&s(&k)).map_err(|e| kname(&e)),
                            bm.list(&k),
                            "batch list {k:?}"
                        ),
                        BOp::Exists(k) => {
                            assert_eq!(b.exists(&s(&k)).unwrap(), bm.kind(&k), "batch exists {k:?}")
                        }
                    }
                }
                b.commit().unwrap();
                m = bm;
            }
        }
    }
    let mut got = BTreeMap::new();
    dump(&kv, &Vec::new(), &mut got);
    assert_eq!(got, m.map);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn kv_matches_the_tree_model(ops in prop::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

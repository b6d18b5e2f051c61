// Exercises the layer-2 GC and index operations and the read-only block
// store sync against an installed tzstore (issue 17, points 5 and 9):
// Index::filter (kept across a reopen, calls refused from inside it, a
// throwing filter), Index::gc in the background then await_gc, a second gc
// ignored while one runs, cancel_gc leaving the index as it was, clear,
// try_merge and is_merging; IndexedFile::gc_filter seeing keys and headers,
// its cancel and a throwing filter; BlockStore::sync following a writer
// through stores and a merge.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tzstore.hpp>
#include <vector>

#include "blocks.hpp"

namespace fs = std::filesystem;

using Bytes = std::vector<std::uint8_t>;

// Index key n: 8 bytes holding NUL bytes; value n: 16 bytes.
static Bytes key_of(int n) {
  return {static_cast<std::uint8_t>(n), static_cast<std::uint8_t>(n >> 8), 0, 0, 0, 0, 0, 0xa5};
}
static int key_number(const Bytes& k) { return k[0] | k[1] << 8; }
static Bytes value_of(int n) {
  Bytes v(16);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(n * 13 + i);
  return v;
}

static void fill(tzstore::Index& x, int n) {
  for (int i = 0; i < n; ++i) x.add(key_of(i), value_of(i), false);
  x.flush();
}

// Exactly the keys 0..n-1 for which kept(i) holds are bound, to their value.
template <typename Kept>
static bool holds(const tzstore::Index& x, int n, Kept kept) {
  std::uint64_t want = 0;
  for (int i = 0; i < n; ++i) {
    auto v = x.find(key_of(i));
    if (kept(i)) {
      ++want;
      if (v != value_of(i)) return false;
    } else if (v) {
      return false;
    }
  }
  return x.size() == want;
}

// A filter that blocks until released, telling when it first ran.
struct Gate {
  std::promise<void> entered;
  std::atomic<bool> signalled{false};
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();

  void wait_in_filter() {
    if (!signalled.exchange(true)) entered.set_value();
    opened.wait();
  }
};

static void test_index_filter(const std::string& dir) {
  const int n = 500;
  {
    tzstore::Index x(dir, 8, 16, 0, 100);
    fill(x, n);
    std::set<int> seen;
    bool values_ok = true, reads_ok = true;
    std::vector<tzs_status> refused;
    x.filter([&](const Bytes& k, const Bytes& v) {
      const int i = key_number(k);
      values_ok = values_ok && v == value_of(i) && seen.insert(i).second;
      reads_ok = reads_ok && x.mem(k);  // the index may be read inside
      if (refused.empty()) {
        for (auto call : std::vector<std::function<void()>>{
                 [&] { x.add(key_of(9999), value_of(0)); }, [&] { x.await_gc(); },
                 [&] { x.clear(); }, [&] { x.cancel_gc(); }}) {
          try {
            call();
            refused.push_back(TZS_OK);
          } catch (const tzstore::Error& e) {
            refused.push_back(e.status());
          }
        }
      }
      return i % 2 == 0;
    });
    CHECK(values_ok && reads_ok && seen.size() == static_cast<std::size_t>(n));
    CHECK(refused == std::vector<tzs_status>(4, TZS_INVALID_ARGUMENT));
    CHECK(holds(x, n, [](int i) { return i % 2 == 0; }));
  }
  tzstore::Index x(dir, 8, 16, 0, 100);
  CHECK(holds(x, n, [](int i) { return i % 2 == 0; }));

  // A throwing filter: the rest is kept and the exception comes back.
  int calls = 0;
  try {
    x.filter([&](const Bytes&, const Bytes&) -> bool {
      if (++calls == 10) throw std::runtime_error("filter boom");
      return false;
    });
    CHECK(false);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "filter boom");
  }
  CHECK(calls == 10 && x.size() == static_cast<std::uint64_t>(n / 2 - 9));
}

static void test_index_gc(const std::string& dir) {
  const int n = 400;
  tzstore::Index x(dir, 8, 16, tzstore::NO_FSYNC, 100);
  fill(x, n);
  Gate gate;
  CHECK(x.gc(
      [&](const Bytes& k, const Bytes&) {
        gate.wait_in_filter();
        return key_number(k) % 3 == 0;
      },
      false));
  gate.entered.get_future().wait();
  CHECK(!x.is_gc_finished() && x.is_merging());
  CHECK(!x.gc([](const Bytes&, const Bytes&) { return false; }));  // ignored: one runs
  CHECK(holds(x, n, [](int) { return true; }));
  gate.open.set_value();
  x.await_gc();
  CHECK(x.is_gc_finished());
  CHECK(holds(x, n, [](int i) { return i % 3 == 0; }));

  // With wait, done on return.
  CHECK(x.gc([](const Bytes& k, const Bytes&) { return key_number(k) % 6 == 0; }, true));
  CHECK(holds(x, n, [](int i) { return i % 6 == 0; }));

  // A background filter that throws: await_gc rethrows it, once.
  CHECK(x.gc([](const Bytes&, const Bytes&) -> bool { throw std::runtime_error("gc boom"); }));
  try {
    x.await_gc();
    CHECK(false);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "gc boom");
  }
  x.await_gc();
  CHECK(holds(x, n, [](int i) { return i % 6 == 0; }));
}

static void test_index_cancel(const std::string& dir) {
  const int n = 300;
  tzstore::Index x(dir, 8, 16, tzstore::NO_FSYNC, 100);
  fill(x, n);
  CHECK(!x.cancel_gc());  // none runs
  Gate gate;
  CHECK(x.gc([&](const Bytes&, const Bytes&) {
    gate.wait_in_filter();
    return false;
  }));
  gate.entered.get_future().wait();
  auto cancelled = std::async(std::launch::async, [&] { return x.cancel_gc(); });
  // cancel_gc waits for the blocked filter.
  CHECK(cancelled.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  gate.open.set_value();
  CHECK(cancelled.get());
  CHECK(x.is_gc_finished());
  CHECK(holds(x, n, [](int) { return true; }));
  // A later GC runs normally.
  CHECK(x.gc([](const Bytes& k, const Bytes&) { return key_number(k) < 10; }, true));
  CHECK(holds(x, n, [](int i) { return i < 10; }));

  // A GC still running at close: close waits for it, and its filter may
  // read the index meanwhile.
  Gate late;
  std::atomic<bool> read_ok{true};
  CHECK(x.gc([&](const Bytes& k, const Bytes&) {
    late.wait_in_filter();
    if (!x.mem(k)) read_ok = false;
    return true;
  }));
  late.entered.get_future().wait();
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    late.open.set_value();
  });
  x.close();
  opener.join();
  CHECK(read_ok && !x.is_open() && x.is_gc_finished());
  expect_error(TZS_CLOSED, [&] { x.await_gc(); });
}

static void test_index_clear_try_merge(const std::string& dir) {
  const int n = 200;
  // A log larger than the bindings, so that only try_merge merges.
  tzstore::Index x(dir, 8, 16, 0, 10000);
  CHECK(!x.try_merge());  // empty log
  fill(x, n);
  CHECK(!x.is_merging());
  CHECK(x.try_merge());
  x.await_merge();
  CHECK(!x.is_merging() && !x.try_merge());
  CHECK(holds(x, n, [](int) { return true; }));
  tzstore::Index ro(dir, 8, 16, tzstore::READONLY);
  CHECK(!ro.is_merging());
  expect_error(TZS_READ_ONLY, [&] { ro.try_merge(); });
  expect_error(TZS_READ_ONLY, [&] { ro.clear(); });
  expect_error(TZS_READ_ONLY, [&] { ro.gc([](const Bytes&, const Bytes&) { return true; }, true); });

  x.clear();
  CHECK(holds(x, n, [](int) { return false; }));
  ro.sync();
  CHECK(ro.size() == 0);
  x.add(key_of(1), value_of(1));
  x.close();
  tzstore::Index again(dir, 8, 16, 0, 10000);
  CHECK(holds(again, n, [](int i) { return i == 1; }));
}

// Indexed file key n (n < 256): 8 bytes holding a NUL byte; header 5 bytes.
static Bytes if_key(int n) {
  std::string s = "key";
  s += '\0';
  s += "000";
  s += static_cast<char>(n);
  return Bytes(s.begin(), s.end());
}
static Bytes if_header(int n) {
  std::string s = "h" + std::to_string(1000 + n);
  return Bytes(s.begin(), s.end());
}
static Bytes if_value(int n) {
  std::string s = "value " + std::to_string(n) + std::string(n % 7, 'x');
  return Bytes(s.begin(), s.end());
}

template <typename Kept>
static bool if_holds(const tzstore::IndexedFile& f, int n, Kept kept) {
  for (int i = 0; i < n; ++i) {
    auto r = f.read_with_header(if_key(i));
    if (kept(i) ? !r || r->first != if_header(i) || r->second != if_value(i) : r.has_value())
      return false;
  }
  return true;
}

static void test_indexed_file(const std::string& dir) {
  const int n = 120;
  {
    tzstore::IndexedFile f(dir, 8, 5);
    for (int i = 0; i < n; ++i) f.append(if_key(i), if_header(i), if_value(i), i == n - 1);
    Gate gate;
    std::set<int> seen;
    bool headers_ok = true;
    CHECK(f.gc_filter([&](const Bytes& k, const Bytes& h) {
      gate.wait_in_filter();
      const int i = k.back();
      headers_ok = headers_ok && k == if_key(i) && h == if_header(i) && seen.insert(i).second &&
                   f.mem(k);
      return i % 4 != 0;
    }));
    CHECK(!f.is_gc_finished());
    CHECK(!f.gc_filter([](const Bytes&, const Bytes&) { return false; }));  // one runs
    f.append(if_key(200), if_header(200), if_value(200));  // kept: appended meanwhile
    gate.open.set_value();
    f.await_gc();
    CHECK(f.is_gc_finished() && headers_ok && seen.size() == static_cast<std::size_t>(n));
    CHECK(if_holds(f, n, [](int i) { return i % 4 != 0; }));
    CHECK(f.read(if_key(200)) == if_value(200));
    CHECK(f.gc_filter([](const Bytes& k, const Bytes&) { return k.back() % 2 == 1; }, true));
    CHECK(if_holds(f, n, [](int i) { return i % 2 == 1; }));
  }
  tzstore::IndexedFile f(dir, 8, 5);
  CHECK(if_holds(f, n, [](int i) { return i % 2 == 1; }));
  {
    tzstore::IndexedFile ro(dir, 8, 5, tzstore::READONLY);
    expect_error(TZS_READ_ONLY,
                 [&] { ro.gc_filter([](const Bytes&, const Bytes&) { return true; }, true); });
  }

  // Cancel: the store is left as it was.
  Gate gate;
  tzs_status refused = TZS_OK;
  CHECK(f.gc_filter([&](const Bytes&, const Bytes&) {
    if (!gate.signalled) {
      try {
        f.cancel_gc();
      } catch (const tzstore::Error& e) {
        refused = e.status();
      }
    }
    gate.wait_in_filter();
    return false;
  }));
  gate.entered.get_future().wait();
  CHECK(refused == TZS_INVALID_ARGUMENT);
  auto cancelled = std::async(std::launch::async, [&] { return f.cancel_gc(); });
  CHECK(cancelled.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout);
  gate.open.set_value();
  CHECK(cancelled.get());
  CHECK(if_holds(f, n, [](int i) { return i % 2 == 1; }));
  f.await_gc();

  // A throwing filter: every key kept, the exception from await_gc.
  int calls = 0;
  CHECK(f.gc_filter([&](const Bytes&, const Bytes&) -> bool {
    if (++calls == 5) throw std::runtime_error("if boom");
    return true;
  }));
  try {
    f.await_gc();
    CHECK(false);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "if boom");
  }
  CHECK(calls == 5);
  CHECK(if_holds(f, n, [](int i) { return i % 2 == 1; }));
}

static void test_block_store_sync(const std::string& dir) {
  tzstore::BlockStoreOptions o;
  o.flags = tzstore::NO_FSYNC;
  o.history_mode = tzstore::HistoryMode::ARCHIVE;
  o.index_log_size = 200;
  tzstore::BlockStore w(dir, o);
  for (int i = 0; i < 100; ++i) w.store(block_of(i));
  tzstore::BlockStoreOptions ro_opts = o;
  ro_opts.flags |= tzstore::READONLY;
  tzstore::BlockStore r(dir, ro_opts);
  CHECK(r.read(hash_of(99)) == std::optional<tzstore::Block>(block_of(99)));
  r.sync();  // the first may report a change: the open records no manifest
  CHECK(!r.sync());
  CHECK(!w.sync());  // a no-op on the writer

  for (int i = 100; i < 150; ++i) w.store(block_of(i), false);
  w.flush();
  CHECK(!r.read(hash_of(120)));  // unseen before the sync
  r.sync();
  bool all = true;
  for (int i = 100; i < 150; ++i) all = all && r.read(hash_of(i)) == std::optional<tzstore::Block>(block_of(i));
  CHECK(all);

  w.merge(hash_of(149), {19, 39, 59, 79, 99, 119, 139});
  w.await_merge();
  // Before its sync the reader keeps its state: nothing it read is lost.
  CHECK(r.read(hash_of(50)) == std::optional<tzstore::Block>(block_of(50)));
  CHECK(!r.read_by_level(50));
  CHECK(r.sync());
  all = true;
  for (int i = 0; i < 150; ++i) all = all && r.read(hash_of(i)) == std::optional<tzstore::Block>(block_of(i));
  CHECK(all);
  CHECK(r.read_by_level(50) == std::optional<tzstore::Block>(block_of(50)));
  CHECK(r.stats().cemented_lowest == 0 && r.stats().cemented_highest == 139);
  CHECK(!r.sync());
  r.close();
  expect_error(TZS_CLOSED, [&] { r.sync(); });
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string work = argv[1];
  test_index_filter(work + "/filter");
  test_index_gc(work + "/gc");
  test_index_cancel(work + "/cancel");
  test_index_clear_try_merge(work + "/clear");
  test_indexed_file(work + "/indexed-file");
  test_block_store_sync(work + "/blocks");
  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

// Exercises tzstore::IndexedFile against an installed tzstore: append,
// header, read (with and without header), not found, errors with their
// status and message, the HEADER_IN_VALUE variant, read-only sync, gc with
// a keep predicate (and a throwing one), close; borrowed reads (read_view
// through a Reader, see test_views).
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tzstore_indexed_file.hpp>
#include <vector>

#include "blocks.hpp"
#include "check.hpp"

namespace fs = std::filesystem;

using Bytes = std::vector<std::uint8_t>;

static Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// Key n: 8 bytes holding a NUL byte.
static Bytes key_of(int n) {
  Bytes k = bytes("key-" + std::to_string(10000 + n));
  k.resize(8);
  k[3] = 0;
  k[7] = static_cast<std::uint8_t>(n);
  return k;
}
static Bytes header_of(int n) { return bytes("h" + std::to_string(1000 + n)); }  // 5 bytes
static Bytes value_of(int n) { return bytes("value " + std::to_string(n) + std::string(n % 7, 'x')); }

// The borrowed reads' store: key n is 'v', NUL, then n on 6 big-endian
// bytes; header n 5 bytes; value n 16..2,063 bytes, each byte a function
// of n and its position (records of many sizes, across map pages).
static Bytes vkey(int n) {
  Bytes k{'v', 0, 0, 0, 0, 0, 0, 0};
  for (int b = 0; b < 4; ++b) k[7 - b] = static_cast<std::uint8_t>(n >> (8 * b));
  return k;
}
static Bytes vheader(int n) {
  Bytes h(5);
  for (int b = 0; b < 5; ++b) h[b] = static_cast<std::uint8_t>(n * 7 + 1 + b);
  return h;
}
static Bytes vvalue(int n) {
  Bytes v(16 + static_cast<std::size_t>(n) * 37 % 2048);
  for (std::size_t p = 0; p < v.size(); ++p) v[p] = static_cast<std::uint8_t>(n * 31 + p);
  return v;
}
// Whether a view shows exactly value n and its header, compared in place,
// then through its owning copies.
static bool view_is(const std::optional<tzstore::ValueView>& v, int n) {
  return v && v->value == vvalue(n) && v->header == vheader(n) &&
         v->to_pair() == std::make_pair(vheader(n), vvalue(n));
}
static bool keep_even(const Bytes& k) { return k[7] % 2 == 0; }

// Borrowed reads (IndexedFile::read_view): views equal the copying reads
// for values present at open (read from the values file's map) and
// appended since (copied into the reader); a miss is std::nullopt; a key of
// the wrong size throws; views held across a GC that drops their key and
// unlinks their values file, across a moved Reader, and across the
// store's destruction; one Reader alternating block and value reads; two
// reader threads, each with its own Reader, while values are appended and
// compacted. Run under valgrind, which reports any read of a view's bytes
// once unmapped or freed.
static void test_views(const std::string& root) {
  fs::create_directories(root);
  const std::string dir = root + "/values";
  const int first = 300, last = 600;
  // `first` values, reopened so that a map covers them; then 20 more.
  {
    tzstore::IndexedFile f(dir, 8, 5, tzstore::NO_FSYNC, 64);
    for (int i = 0; i < first; ++i) f.append(vkey(i), vheader(i), vvalue(i), false);
  }
  auto f = std::make_unique<tzstore::IndexedFile>(dir, 8, 5, tzstore::NO_FSYNC, 64);
  for (int i = first; i < first + 20; ++i) f->append(vkey(i), vheader(i), vvalue(i), false);

  tzstore::Reader r;
  int bad = 0;
  for (int i = 0; i < first + 20; ++i) {
    auto v = f->read_view(r, vkey(i));
    auto copy = f->read_with_header(vkey(i));
    if (!view_is(v, i) || !copy || v->to_pair() != *copy || v->value != copy->second ||
        v->header != copy->first || f->read(vkey(i)) != std::optional<Bytes>(v->value.to_vector()))
      ++bad;
  }
  CHECK(bad == 0);
  // A value appended since the last read, then read again in place.
  f->append(vkey(first + 20), vheader(first + 20), vvalue(first + 20));
  CHECK(view_is(f->read_view(r, vkey(first + 20)), first + 20));
  CHECK(view_is(f->read_view(r, vkey(5)), 5));

  // A miss is no error; a key of the wrong size is.
  CHECK(!f->read_view(r, vkey(100000)));
  CHECK(view_is(f->read_view(r, vkey(6)), 6));  // the reader still reads after a miss
  std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] { f->read_view(r, bytes("short")); });
  CHECK(msg.find("key") != std::string::npos);
  expect_error(TZS_INVALID_ARGUMENT, [&] { f->read_view(r, Bytes(9, 1)); });
  CHECK(view_is(f->read_view(r, vkey(6)), 6));

  // Views of odd keys, one present at open (mapped), one appended since
  // (copied), and of an even key, held across the GC that drops the odd
  // keys and unlinks the values file they were read from.
  tzstore::Reader held_mapped, held_copied, held_kept;
  auto mapped = f->read_view(held_mapped, vkey(11));
  auto copied = f->read_view(held_copied, vkey(first + 1));
  auto kept = f->read_view(held_kept, vkey(12));
  CHECK(view_is(mapped, 11) && view_is(copied, first + 1) && view_is(kept, 12));
  f->gc(keep_even);
  f->await_gc();
  CHECK(!f->read_view(r, vkey(11)) && !f->read_view(r, vkey(first + 1)) && !f->mem(vkey(11)));
  CHECK(view_is(f->read_view(r, vkey(12)), 12));
  CHECK(view_is(mapped, 11));
  CHECK(view_is(copied, first + 1));
  CHECK(view_is(kept, 12));
  // A moved Reader keeps its views.
  tzstore::Reader moved = std::move(held_mapped);
  CHECK(view_is(mapped, 11));
  expect_error(TZS_CLOSED, [&] { f->read_view(held_mapped, vkey(12)); });
  held_mapped.release();  // a no-op once moved from
  moved.release();
  held_copied.release();
  CHECK(view_is(kept, 12));
  held_kept.release();

  // One Reader serves block and value reads alternately, each view checked
  // before the next read through it.
  {
    tzstore::Floating blocks(root + "/floating", tzstore::FloatingKind::RW, tzstore::NO_FSYNC);
    for (int i = 0; i < 10; ++i) blocks.append(block_of(i), {}, false);
    int mixed_bad = 0;
    for (int i = 0; i < 10; ++i) {
      if (!same(blocks.read_view(r, hash_of(i)), block_of(i))) ++mixed_bad;
      if (!view_is(f->read_view(r, vkey(2 * i)), 2 * i)) ++mixed_bad;
      if (!same(blocks.read_view(r, hash_of(9 - i)), block_of(9 - i))) ++mixed_bad;
    }
    CHECK(mixed_bad == 0);
  }

  // Two reader threads, each with its own Reader, read views of even keys
  // (which every GC keeps) below `top`, each checked twice around a yield,
  // while this thread appends, flushes and compacts.
  {
    std::atomic<int> top{first};
    std::atomic<bool> stop{false};
    std::atomic<int> thread_bad{0};
    std::atomic<long> reads{0};  // reads attempted, failed or not
    std::atomic<int> alive{2};
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
      readers.emplace_back([&, t] {
        try {
          tzstore::Reader own;
          unsigned seed = 11u + static_cast<unsigned>(t);
          long mine = 0;
          while (!stop.load()) {
            seed = seed * 1103515245u + 12345u;
            const int i = static_cast<int>((seed >> 8) % static_cast<unsigned>(top.load())) & ~1;
            auto v = f->read_view(own, vkey(i));
            ++reads;
            if (!view_is(v, i)) {
              ++thread_bad;
              continue;
            }
            std::this_thread::yield();
            if (!view_is(v, i)) ++thread_bad;
            ++mine;
          }
          if (mine == 0) ++thread_bad;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "reader thread: %s\n", e.what());
          ++thread_bad;
        }
        --alive;
      });
    }
    // Append only once both readers run, so that they overlap.
    while (reads.load() < 2 && alive.load() == 2) std::this_thread::yield();
    for (int i = first + 21; i < last; ++i) {
      f->append(vkey(i), vheader(i), vvalue(i), false);
      if (i % 100 == 0) {
        f->flush();
        top = i;
        f->gc(keep_even);
        f->await_gc();
      }
    }
    // Let each reader see the last GC's generation.
    const long seen = reads.load();
    while (reads.load() < seen + 2 && alive.load() > 0) std::this_thread::yield();
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(thread_bad.load() == 0);
  }

  // Views outlive the IndexedFile object, until their reader releases.
  auto v = f->read_view(r, vkey(200));
  f.reset();
  CHECK(view_is(v, 200));
  r.release();
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string dir = std::string(argv[1]) + "/values";
  const int n = 60;
  {
    tzstore::IndexedFile f(dir, 8, 5, tzstore::NO_FSYNC, 16);
    CHECK(f.header_size() == 5);
    for (int i = 0; i < n; ++i) f.append(key_of(i), header_of(i), value_of(i), i % 10 == 0);
    f.append(key_of(3), header_of(99), bytes("replaced"));
    for (int i = 0; i < n; ++i) {
      if (i == 3) continue;
      CHECK(f.mem(key_of(i)));
      CHECK(f.header(key_of(i)) == std::optional<Bytes>(header_of(i)));
      CHECK(f.read(key_of(i)) == std::optional<Bytes>(value_of(i)));
    }
    auto both = f.read_with_header(key_of(3));
    CHECK(both && both->first == header_of(99) && both->second == bytes("replaced"));
    f.append(key_of(n), header_of(n), Bytes{});
    CHECK(f.read(key_of(n)) == std::optional<Bytes>(Bytes{}));

    // Not found is no error.
    CHECK(!f.mem(key_of(200)));
    CHECK(!f.header(key_of(200)));
    CHECK(!f.read(key_of(200)));
    CHECK(!f.read_with_header(key_of(200)));

    // Errors carry their status and a message.
    std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] { f.read(bytes("short")); });
    CHECK(msg.find("key") != std::string::npos);
    msg = expect_error(TZS_INVALID_ARGUMENT, [&] { f.append(key_of(1), bytes("hh"), bytes("v")); });
    CHECK(msg.find("header") != std::string::npos);
    expect_error(TZS_INVALID_ARGUMENT, [&] { f.append_value(key_of(1), bytes("value 1")); });
    msg = expect_error(TZS_LOCKED, [&] { tzstore::IndexedFile again(dir, 8, 5); });
    CHECK(!msg.empty());
    expect_error(TZS_NOT_FOUND, [&] { tzstore::IndexedFile ro(dir + "-missing", 8, 5, tzstore::READONLY); });
    f.flush();

    // A read-only instance reads and follows the writer after sync.
    tzstore::IndexedFile ro(dir, 8, 5, tzstore::READONLY);
    CHECK(ro.read(key_of(7)) == std::optional<Bytes>(value_of(7)));
    msg = expect_error(TZS_READ_ONLY, [&] { ro.append(key_of(1), header_of(1), bytes("v")); });
    CHECK(!msg.empty());
    expect_error(TZS_READ_ONLY, [&] { ro.gc([](const Bytes&) { return true; }); });
    f.append(key_of(100), header_of(100), value_of(100));
    ro.sync();
    CHECK(ro.read(key_of(100)) == std::optional<Bytes>(value_of(100)));

    // gc keeps the even keys; values appended afterwards stay.
    int calls = 0;
    f.gc([&](const Bytes& k) {
      ++calls;
      return k[7] % 2 == 0;
    });
    f.append(key_of(101), header_of(101), value_of(101));
    f.await_gc();
    CHECK(calls == n + 2);
    for (int i = 0; i < n; ++i) {
      if (i == 3) continue;
      CHECK(f.read(key_of(i)) == (i % 2 == 0 ? std::optional<Bytes>(value_of(i)) : std::nullopt));
    }
    CHECK(f.read(key_of(n)) == std::optional<Bytes>(Bytes{}));
    CHECK(f.read(key_of(101)) == std::optional<Bytes>(value_of(101)));
    CHECK(f.header(key_of(100)) == std::optional<Bytes>(header_of(100)));

    // A throwing predicate keeps everything; its exception comes out of gc.
    bool thrown = false;
    try {
      f.gc([](const Bytes&) -> bool { throw std::runtime_error("predicate failed"); });
    } catch (const std::runtime_error& e) {
      thrown = std::string(e.what()) == "predicate failed";
    }
    CHECK(thrown);
    CHECK(f.read(key_of(100)) == std::optional<Bytes>(value_of(100)));
    f.gc([](const Bytes&) { return true; });  // no compaction left running

    tzstore::IndexedFile moved = std::move(f);
    CHECK(moved.is_open() && !f.is_open());
    expect_error(TZS_CLOSED, [&] { f.read(key_of(0)); });
    moved.close();
    expect_error(TZS_CLOSED, [&] { moved.flush(); });
  }
  {
    // Reopen: the compacted store is durable.
    tzstore::IndexedFile f(dir, 8, 5);
    CHECK(f.read(key_of(2)) == std::optional<Bytes>(value_of(2)));
    CHECK(!f.read(key_of(1)));
    expect_error(TZS_INVALID_ARGUMENT, [&] { tzstore::IndexedFile wrong(dir + "-2", 0, 5); });
  }
  {
    // HEADER_IN_VALUE: the header is the first bytes of the value.
    const std::string simple = std::string(argv[1]) + "/simple";
    tzstore::IndexedFile f(simple, 8, 4, tzstore::HEADER_IN_VALUE | tzstore::NO_FSYNC);
    f.append_value(key_of(1), bytes("HEADrest"));
    CHECK(f.header(key_of(1)) == std::optional<Bytes>(bytes("HEAD")));
    CHECK(f.read(key_of(1)) == std::optional<Bytes>(bytes("HEADrest")));
    tzstore::Reader r;
    auto v = f.read_view(r, key_of(1));
    CHECK(v && v->value == bytes("HEADrest") && v->header == bytes("HEAD"));
    std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] { f.append_value(key_of(2), bytes("ab")); });
    CHECK(msg.find("header") != std::string::npos);
    expect_error(TZS_INVALID_ARGUMENT, [&] { f.append(key_of(2), bytes("HEAD"), bytes("HEADx")); });
  }
  {
    // A zero-size header is an empty, present header.
    tzstore::IndexedFile f(std::string(argv[1]) + "/noheader", 8, 0, tzstore::NO_FSYNC);
    f.append(key_of(1), Bytes{}, bytes("v"));
    CHECK(f.header(key_of(1)) == std::optional<Bytes>(Bytes{}));
    CHECK(f.read(key_of(1)) == std::optional<Bytes>(bytes("v")));
    tzstore::Reader r;
    auto v = f.read_view(r, key_of(1));
    CHECK(v && v->value == bytes("v") && v->header.empty());
  }
  test_views(std::string(argv[1]) + "/views");
  fs::remove_all(argv[1]);
  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

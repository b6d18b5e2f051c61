// Exercises tzstore::BlockStore against an installed tzstore: open with
// options, store a chain, read by hash, distance and level (with and
// without metadata), not found, errors with their status and message,
// merge + await_merge, stats, check, rolling history, read-only and close;
// threads storing and reading while merges run; and borrowed reads
// (Reader, read_view): views equal to copies, held across merges, rolling
// GC and the store's destruction, read by two threads during merges.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <tzstore_block_store.hpp>
#include <vector>

#include "blocks.hpp"

namespace fs = std::filesystem;

static tzstore::BlockStoreOptions options(tzstore::HistoryMode mode, std::uint32_t offset) {
  tzstore::BlockStoreOptions o;
  o.flags = tzstore::NO_FSYNC;
  o.history_mode = mode;
  o.history_offset = offset;
  o.index_log_size = 200;
  return o;
}

static void test_basics(const std::string& dir) {
  {
    tzstore::BlockStoreOptions d;
    CHECK(d.flags == 0 && d.history_mode == tzstore::HistoryMode::FULL && d.history_offset == 1);
  }
  tzstore::BlockStore s(dir, options(tzstore::HistoryMode::ARCHIVE, 1));
  for (int i = 0; i < 120; ++i) s.store(block_of(i));
  s.store(block_of(5));  // already stored: a no-op

  CHECK(s.mem(hash_of(119)));
  CHECK(!s.mem(hash_of(4000)));
  CHECK(s.read(hash_of(119)) == std::optional<tzstore::Block>(block_of(119)));
  CHECK(s.read(hash_of(4)) == std::optional<tzstore::Block>(block_of(4)));
  CHECK(s.read(hash_of(4))->metadata.has_value() && s.read(hash_of(4))->metadata->empty());
  CHECK(!s.read(hash_of(3))->metadata.has_value());
  CHECK(s.read(hash_of(119), 37) == std::optional<tzstore::Block>(block_of(82)));
  CHECK(s.read(hash_of(119), 37, false) == std::optional<tzstore::Block>(without_metadata(block_of(82))));
  CHECK(s.read(hash_of(119), 119) == std::optional<tzstore::Block>(block_of(0)));
  CHECK(!s.read(hash_of(119), 120));  // past genesis
  CHECK(!s.read(hash_of(4000)));
  CHECK(!s.read_by_level(10));  // nothing cemented yet

  // Errors carry their status and a message.
  tzstore::Block orphan = block_of(500);
  orphan.predecessor = hash_of(400);
  std::string msg = expect_error(TZS_INCONSISTENT, [&] { s.store(orphan); });
  CHECK(msg.find("predecessor") != std::string::npos);
  msg = expect_error(TZS_LOCKED, [&] { tzstore::BlockStore again(dir); });
  CHECK(!msg.empty());
  expect_error(TZS_INVALID_ARGUMENT, [&] { s.merge(hash_of(119), {39, 19}); });
  expect_error(TZS_INVALID_ARGUMENT, [&] { s.merge(hash_of(119), {}); });
  CHECK(!expect_error(TZS_INVALID_ARGUMENT, [&] {
           tzstore::BlockStoreOptions bad = options(tzstore::HistoryMode::ARCHIVE, 1);
           bad.history_mode = static_cast<tzstore::HistoryMode>(7);
           tzstore::BlockStore b(dir + "-bad", bad);
         }).empty());
  expect_error(TZS_NOT_FOUND, [&] { s.merge(hash_of(4000), {19}); });
  expect_error(TZS_NOT_FOUND, [&] {
    tzstore::BlockStoreOptions ro;
    ro.flags = tzstore::READONLY;
    tzstore::BlockStore missing(dir + "-missing", ro);
  });

  // Merge: cement levels 0..79 in chunks of 20.
  s.merge(hash_of(119), {19, 39, 59, 79});
  for (int i = 120; i < 140; ++i) s.store(block_of(i));  // stores work during a merge
  s.await_merge();
  s.await_merge();
  tzstore::BlockStoreStats st = s.stats();
  CHECK(st.cemented_lowest == 0 && st.cemented_highest == 79);
  // 60 above the cemented top and the top itself, kept with its metadata.
  CHECK(st.cemented_blocks == 80 && st.floating_blocks == 61);
  CHECK(st.merges_done == 1 && !st.merging && st.bytes_on_disk > 0);
  CHECK(s.read_by_level(10) == std::optional<tzstore::Block>(block_of(10)));
  CHECK(s.read_by_level(4) == std::optional<tzstore::Block>(block_of(4)));
  CHECK(s.read_by_level(3) == std::optional<tzstore::Block>(block_of(3)));
  CHECK(s.read_by_level(10, false) == std::optional<tzstore::Block>(without_metadata(block_of(10))));
  CHECK(!s.read_by_level(90));
  CHECK(s.read(hash_of(10)) == std::optional<tzstore::Block>(block_of(10)));
  CHECK(s.read(hash_of(139), 130) == std::optional<tzstore::Block>(block_of(9)));  // across the boundary
  s.check();
  s.check(true);

  tzstore::BlockStore moved = std::move(s);
  CHECK(moved.is_open() && !s.is_open());
  expect_error(TZS_CLOSED, [&] { s.stats(); });
  moved.close();
  expect_error(TZS_CLOSED, [&] { moved.read(hash_of(1)); });

  // Read-only: sees everything, refuses writes.
  tzstore::BlockStoreOptions ro;
  ro.flags = tzstore::READONLY;
  tzstore::BlockStore r(dir, ro);
  CHECK(r.read(hash_of(139)) == std::optional<tzstore::Block>(block_of(139)));
  msg = expect_error(TZS_READ_ONLY, [&] { r.store(block_of(140)); });
  CHECK(!msg.empty());
  expect_error(TZS_READ_ONLY, [&] { r.merge(hash_of(139), {99}); });
}

// Rolling history keeps only the last `offset` cemented chunks.
static void test_rolling(const std::string& dir) {
  tzstore::BlockStore s(dir, options(tzstore::HistoryMode::ROLLING, 1));
  for (int i = 0; i < 100; ++i) s.store(block_of(i));
  s.merge(hash_of(99), {19, 39, 59, 79});
  s.await_merge();
  tzstore::BlockStoreStats st = s.stats();
  CHECK(st.cemented_lowest == 60 && st.cemented_highest == 79 && st.cemented_blocks == 20);
  CHECK(!s.read_by_level(10));
  CHECK(!s.read(hash_of(10)));
  CHECK(!s.read(hash_of(99), 95));  // into removed history
  CHECK(s.read(hash_of(99), 30) == std::optional<tzstore::Block>(block_of(69)));
  CHECK(s.read_by_level(65) == std::optional<tzstore::Block>(block_of(65)));
  s.check();
}

// Stores without flush are readable at once and durable after flush(); a
// read-only handle refuses both.
static void test_unflushed_then_flush(const std::string& dir) {
  {
    tzstore::BlockStore s(dir, options(tzstore::HistoryMode::ARCHIVE, 1));
    for (int i = 0; i < 50; ++i) s.store(block_of(i), false);
    CHECK(s.read(hash_of(49)) == std::optional<tzstore::Block>(block_of(49)));
    s.flush();
  }
  tzstore::BlockStoreOptions ro;
  ro.flags = tzstore::READONLY;
  tzstore::BlockStore r(dir, ro);
  for (int i = 0; i < 50; ++i) CHECK(r.read(hash_of(i)) == std::optional<tzstore::Block>(block_of(i)));
  expect_error(TZS_READ_ONLY, [&] { r.flush(); });
  expect_error(TZS_READ_ONLY, [&] { r.store(block_of(50), false); });
}

// merge_async: the future is ready when the merge ends; a merge that
// cannot start throws at once.
static void test_merge_async(const std::string& dir) {
  tzstore::BlockStore s(dir, options(tzstore::HistoryMode::ARCHIVE, 1));
  for (int i = 0; i < 60; ++i) s.store(block_of(i));
  std::future<void> done = s.merge_async(hash_of(59), {19, 39});
  done.get();
  tzstore::BlockStoreStats st = s.stats();
  CHECK(st.cemented_highest == 39 && !st.merging);
  expect_error(TZS_NOT_FOUND, [&] { s.merge_async(hash_of(4000), {49}); });
}

// One thread stores a growing chain, three read, and the main thread runs
// merges meanwhile: every block stored before a read is found, identical.
static void test_threads_during_merges(const std::string& dir) {
  tzstore::BlockStore s(dir, options(tzstore::HistoryMode::ARCHIVE, 1));
  const int total = 600;
  std::atomic<int> stored{0};  // blocks 0..stored-1 are stored
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0}, reads{0};
  std::thread writer([&] {
    for (int i = 0; i < total; ++i) {
      try {
        s.store(block_of(i));
      } catch (const tzstore::Error& e) {
        std::fprintf(stderr, "store %d: %s\n", i, e.what());
        ++bad;
      }
      stored.store(i + 1);
    }
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      unsigned x = 17u + static_cast<unsigned>(r);
      while (!stop.load()) {
        int n = stored.load();
        if (n == 0) continue;
        x = x * 1103515245u + 12345u;
        int i = static_cast<int>((x >> 8) % static_cast<unsigned>(n));
        try {
          auto b = s.read(hash_of(i), 0, r != 0);
          if (!b || *b != (r != 0 ? block_of(i) : without_metadata(block_of(i)))) ++bad;
          auto a = s.read(hash_of(i), static_cast<std::uint32_t>(i / 2), false);
          if (!a || *a != without_metadata(block_of(i - i / 2))) ++bad;
        } catch (const tzstore::Error& e) {
          std::fprintf(stderr, "read %d: %s\n", i, e.what());
          ++bad;
        }
        ++reads;
      }
    });
  }
  int merges = 0;
  for (int end = 99; end < total - 100; end += 100) {
    while (stored.load() < end + 50) std::this_thread::yield();
    s.merge(hash_of(end + 40), {end});
    ++merges;
  }
  s.await_merge();
  writer.join();
  while (reads.load() < 100) std::this_thread::yield();
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(bad.load() == 0);
  tzstore::BlockStoreStats st = s.stats();
  CHECK(st.merges_done == static_cast<std::uint64_t>(merges));
  CHECK(st.cemented_highest == 99 + 100 * (merges - 1));
  // The cemented top is also kept floating: counted twice.
  CHECK(st.cemented_blocks + st.floating_blocks == static_cast<std::uint64_t>(total) + 1);
  s.check();
}

// Borrowed reads on a ROLLING 1 store of 20-block cycles (chunks 0..20,
// 21..40, ...), merged with max_op_ttl 1 by merge_preserving.
static void test_views(const std::string& dir) {
  const int cycle = 20, first = 100, last = 220;
  std::atomic<int> cemented_to{0};  // read by the reader threads below
  // Cements the cycles not yet cemented up to `last_end`, head `head`.
  auto merge_to = [&](tzstore::BlockStore& s, int head, int last_end) {
    std::vector<std::int32_t> ends;
    for (int e = cemented_to.load() + cycle; e <= last_end; e += cycle) ends.push_back(e);
    s.merge_preserving(hash_of(head), ends, 1);
    s.await_merge();
    cemented_to = last_end;
  };
  const tzstore::BlockStoreOptions opts = options(tzstore::HistoryMode::ROLLING, 1);
  {
    tzstore::BlockStore s = tzstore::BlockStore::create(dir, block_of(0), opts);
    for (int n = 1; n <= first; ++n) s.store(block_of(n));
  }
  tzstore::Reader r, held_floating, held_cemented;
  std::optional<tzstore::BlockView> floating_view, cemented_view, last_view;
  {
    // Reopened, so that the floating file is mapped: views point into it.
    tzstore::BlockStore s = tzstore::BlockStore::load(dir, hash_of(0), opts);

    // Views equal the copying reads, with and without metadata, at a distance.
    int bad = 0;
    for (int n = 0; n <= first; ++n) {
      for (bool md : {false, true}) {
        auto v = s.read_view(r, hash_of(n), 0, md);
        if (!same(v, md ? block_of(n) : without_metadata(block_of(n))) ||
            v->to_block() != *s.read(hash_of(n), 0, md))
          ++bad;
      }
    }
    CHECK(bad == 0);
    CHECK(same(s.read_view(r, hash_of(50), 7), block_of(43)));
    CHECK(same(s.read_view(r, hash_of(50), 7, false), without_metadata(block_of(43))));
    CHECK(same(s.read_view(r, hash_of(first), first), block_of(0)));
    CHECK(s.read_view(r, hash_of(4))->metadata->empty());

    // Misses are std::nullopt.
    CHECK(!s.read_view(r, hash_of(first + 1)));
    CHECK(!s.read_view(r, hash_of(first), first + 1));  // past genesis
    CHECK(!s.read_by_level_view(r, 5));                  // nothing cemented yet

    // A view into the floating file, held across the merge that cements its
    // block and retires the file (ROLLING 1 then drops its chunk at once).
    floating_view = s.read_view(held_floating, hash_of(10));
    merge_to(s, first, first - cycle);
    CHECK(same(floating_view, block_of(10)));
    CHECK(!s.read(hash_of(10)) && !s.read_view(r, hash_of(10)));

    // By level, from the cemented chunk 61..80.
    cemented_view = s.read_by_level_view(held_cemented, 70, false);
    CHECK(same(cemented_view, without_metadata(block_of(70))));
    auto v80 = s.read_by_level_view(r, 80);
    CHECK(same(v80, block_of(80)) && v80->to_block() == *s.read_by_level(80));
    CHECK(same(s.read_by_level_view(r, 79, false), without_metadata(block_of(79))));
    CHECK(!s.read_by_level_view(r, 81));

    // Two threads, each with its own Reader, read views of blocks near the
    // top (which a ROLLING 1 store keeps through any merge), each checked
    // twice around a yield, while this thread stores and merges; the GCs
    // of those merges delete the chunks behind the held views.
    std::atomic<int> top{first};
    std::atomic<bool> running{true};
    std::atomic<int> thread_bad{0}, thread_reads{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&, t] {
        tzstore::Reader mine;
        unsigned x = 7u + static_cast<unsigned>(t);
        int reads = 0;
        while (running.load() || reads < 20) {
          x = x * 1103515245u + 12345u;
          int n = top.load() - static_cast<int>((x >> 8) % 30u);
          try {
            bool by_level = (x >> 20) % 4 == 0 && n <= cemented_to.load();
            auto v = by_level ? s.read_by_level_view(mine, n) : s.read_view(mine, hash_of(n));
            if (!same(v, block_of(n))) {
              ++thread_bad;
              continue;
            }
            std::this_thread::yield();
            if (!same(v, block_of(n))) ++thread_bad;
          } catch (const tzstore::Error& e) {
            std::fprintf(stderr, "view %d: %s\n", n, e.what());
            ++thread_bad;
          }
          ++reads;
        }
        thread_reads += reads;
      });
    }
    for (int n = first + 1; n <= last; ++n) {
      s.store(block_of(n));
      top = n;
      if (n % (2 * cycle) == 0) merge_to(s, n, n - cycle);
    }
    running = false;
    for (auto& t : threads) t.join();
    CHECK(thread_bad.load() == 0 && thread_reads.load() >= 40);
    CHECK(s.stats().cemented_lowest > 80);

    // The chunks that held 10 and 70 are gone; their views are not.
    CHECK(!s.read_by_level_view(r, 70));
    CHECK(same(floating_view, block_of(10)));
    CHECK(same(cemented_view, without_metadata(block_of(70))));
    last_view = s.read_view(r, hash_of(last));
  }
  // The store is destroyed (closed); the views live until their reader
  // lets go. A moved Reader keeps its views; a moved-from one throws.
  CHECK(same(last_view, block_of(last)));
  CHECK(same(cemented_view, without_metadata(block_of(70))));
  tzstore::Reader moved = std::move(held_cemented);
  CHECK(same(cemented_view, without_metadata(block_of(70))));
  CHECK(held_cemented.native() == nullptr);
  held_cemented.release();  // a no-op once moved from
  {
    tzstore::BlockStore s = tzstore::BlockStore::load(dir, hash_of(0), opts);
    expect_error(TZS_CLOSED, [&] { s.read_view(held_cemented, hash_of(last)); });
    s.close();
    expect_error(TZS_CLOSED, [&] { s.read_view(r, hash_of(last)); });
  }
  CHECK(same(last_view, block_of(last)));  // a read that never started ends nothing
  moved.release();
  r.release();
  held_cemented = std::move(held_floating);  // ends nothing: held_cemented was empty
  CHECK(same(floating_view, block_of(10)));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string work = argv[1];
  test_basics(work + "/archive");
  test_rolling(work + "/rolling");
  test_unflushed_then_flush(work + "/unflushed");
  test_merge_async(work + "/merge_async");
  test_threads_during_merges(work + "/threads");
  test_views(work + "/views");
  fs::remove_all(argv[1]);
  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

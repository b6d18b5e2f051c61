// Exercises tzstore::Floating against an installed tzstore: append a chain
// with predecessor lists, read back byte-identical (with and without
// metadata), not found, errors with their status and message, iteration,
// read-only sync, close, and readers running while one thread appends.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <tzstore.hpp>
#include <vector>

#include "blocks.hpp"

namespace fs = std::filesystem;

// Entry i is the 2^i-th ancestor, as far as the chain goes (at most 12).
static std::vector<tzstore::Hash> preds_of(int n) {
  std::vector<tzstore::Hash> p;
  for (int i = 0, d = 1; i < 12 && n - d >= 0; ++i, d *= 2) p.push_back(hash_of(n - d));
  return p;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string dir = std::string(argv[1]) + "/floating";
  const int n = 40;

  {
    tzstore::Floating f(dir, tzstore::FloatingKind::RW, tzstore::NO_FSYNC);
    CHECK(f.size() == 0);
    for (int i = 0; i < n; ++i) f.append(block_of(i), preds_of(i), i % 10 == 0);
    f.append(block_of(5), preds_of(5));  // already stored: unchanged
    CHECK(f.size() == static_cast<std::uint64_t>(n));

    for (int i = 0; i < n; ++i) {
      CHECK(f.mem(hash_of(i)));
      auto b = f.read_block(hash_of(i));
      CHECK(b && *b == block_of(i));
      auto p = f.find_predecessors(hash_of(i));
      CHECK(p && *p == preds_of(i));
      auto e = f.read_block_and_predecessors(hash_of(i));
      CHECK(e && e->block == block_of(i) && e->predecessors == preds_of(i));
    }
    CHECK(f.read_block(hash_of(0))->metadata == std::nullopt);
    CHECK(f.read_block(hash_of(4))->metadata.has_value() && f.read_block(hash_of(4))->metadata->empty());

    // Not found is std::nullopt / false, never an exception.
    CHECK(!f.mem(hash_of(9999)));
    CHECK(!f.read_block(hash_of(9999)));
    CHECK(!f.find_predecessors(hash_of(9999)));
    CHECK(!f.read_block_and_predecessors(hash_of(9999)));

    // Borrowed reads equal the copies (metadata always read); a miss is
    // std::nullopt; a view outlives a store closed after it was taken.
    {
      tzstore::Reader r;
      int bad = 0;
      for (int i = 0; i < n; ++i) {
        auto v = f.read_view(r, hash_of(i));  // from the unmapped tail: a copy in r
        if (!same(v, block_of(i)) || v->to_block() != *f.read_block(hash_of(i))) ++bad;
      }
      CHECK(bad == 0);
      auto v4 = f.read_view(r, hash_of(4));
      CHECK(v4 && v4->metadata && v4->metadata->empty());
      CHECK(!f.read_view(r, hash_of(9999)));
      tzstore::Reader held;
      {
        const std::string other_dir = dir + "-view";
        tzstore::Floating(other_dir, tzstore::FloatingKind::RW, tzstore::NO_FSYNC)
            .append(block_of(7), preds_of(7));
        tzstore::Floating other(other_dir, tzstore::FloatingKind::RW, tzstore::NO_FSYNC);
        auto v = other.read_view(held, hash_of(7));  // from the file's map
        other.close();
        CHECK(same(v, block_of(7)));
        expect_error(TZS_CLOSED, [&] { other.read_view(held, hash_of(7)); });
        CHECK(same(v, block_of(7)));  // a read that never started keeps the views
      }
      held.release();
      held.release();
    }

    // Iteration in append order, with predecessor lists.
    int next = 0;
    f.for_each([&](const tzstore::BlockEntry& e) {
      CHECK(e.block == block_of(next) && e.predecessors == preds_of(next));
      ++next;
    });
    CHECK(next == n);

    // Errors carry their status and a message.
    std::vector<tzstore::Hash> thirteen(13, hash_of(1));
    std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] { f.append(block_of(n), thirteen); });
    CHECK(msg.find("12") != std::string::npos);
    msg = expect_error(TZS_LOCKED, [&] { tzstore::Floating again(dir, tzstore::FloatingKind::RW); });
    CHECK(!msg.empty());
    expect_error(TZS_NOT_FOUND, [&] { tzstore::Floating ro(dir + "-missing", tzstore::FloatingKind::RO, tzstore::READONLY); });
    expect_error(TZS_INVALID_ARGUMENT, [&] { tzstore::Floating bad(dir, static_cast<tzstore::FloatingKind>(99)); });

    // Another kind coexists on the same directory.
    tzstore::Floating tmp(dir, tzstore::FloatingKind::RW_TMP, tzstore::NO_FSYNC);
    CHECK(tmp.size() == 0 && !tmp.mem(hash_of(1)));

    // A read-only handle refuses appends and sees new blocks after sync.
    f.flush();
    tzstore::Floating ro(dir, tzstore::FloatingKind::RW, tzstore::READONLY);
    CHECK(ro.size() == static_cast<std::uint64_t>(n));
    msg = expect_error(TZS_READ_ONLY, [&] { ro.append(block_of(n), preds_of(n)); });
    CHECK(!msg.empty());
    f.append(block_of(n), preds_of(n));
    ro.sync();
    CHECK(ro.read_block(hash_of(n)) == std::optional<tzstore::Block>(block_of(n)));

    // An iterator outlives the store it was created from.
    tzstore::FloatingIter it = ro.iter();
    ro.close();
    expect_error(TZS_CLOSED, [&] { (void)ro.mem(hash_of(1)); });
    int count = 0;
    while (it.next()) ++count;
    CHECK(count == n + 1);
    CHECK(!it.next());

    // Readers on other threads while this one appends.
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::atomic<long> reads{0};
    const int total = n + 1 + 300;
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
      readers.emplace_back([&, t] {
        int i = t;
        while (!stop.load()) {
          i = (i * 7 + 3) % (n + 1);  // blocks stored before the threads started
          auto b = f.read_block(hash_of(i));
          if (!b || *b != block_of(i)) ++bad;
          auto p = f.find_predecessors(hash_of(total - 1 - i));
          if (p && *p != preds_of(total - 1 - i)) ++bad;
          ++reads;
        }
      });
    }
    // Append only once the readers run, so that both overlap.
    while (reads.load() < 3) std::this_thread::yield();
    for (int i = n + 1; i < total; ++i) f.append(block_of(i), preds_of(i), false);
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(bad.load() == 0);
    CHECK(f.size() == static_cast<std::uint64_t>(total));

    tzstore::Floating moved = std::move(f);
    CHECK(moved.is_open() && !f.is_open());
    expect_error(TZS_CLOSED, [&] { f.flush(); });
    moved.close();
    expect_error(TZS_CLOSED, [&] { moved.append(block_of(0)); });
  }
  // Close released the lock; the blocks are on disk.
  {
    tzstore::Floating f(dir, tzstore::FloatingKind::RW);
    CHECK(f.size() == static_cast<std::uint64_t>(n + 1 + 300));
    CHECK(f.read_block(hash_of(n + 100)) == std::optional<tzstore::Block>(block_of(n + 100)));
  }

  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

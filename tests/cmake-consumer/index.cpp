// Exercises tzstore::Index against an installed tzstore: add (with
// background merges), find, not found, replace, remove, errors with their
// status and message, snapshot iteration, read-only sync, close, and
// readers running while one thread adds.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <tzstore.hpp>
#include <vector>

#include "check.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

// 8-byte keys (holding NUL bytes) and 16-byte values.
static Bytes key_of(int n) {
  Bytes k(8, 0);
  for (int i = 0; i < 4; ++i) k[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (8 * i));
  k[7] = 0xa5;
  return k;
}

static Bytes value_of(int n, int version = 0) {
  Bytes v(16);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::uint8_t>(n * 13 + version * 101 + static_cast<int>(i));
  return v;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string dir = std::string(argv[1]) + "/index";
  const std::string rdir = std::string(argv[1]) + "/removable";
  const int n = 600;

  {
    // A small log so that adds start background merges.
    tzstore::Index ix(dir, 8, 16, tzstore::NO_FSYNC, 100);
    CHECK(ix.size() == 0 && ix.key_size() == 8 && ix.value_size() == 16);
    for (int i = 0; i < n; ++i) ix.add(key_of(i), value_of(i), i % 100 == 0);
    ix.await_merge();
    CHECK(ix.size() == static_cast<std::uint64_t>(n));
    bool all = true;
    for (int i = 0; i < n; ++i) all = all && ix.mem(key_of(i)) && ix.find(key_of(i)) == value_of(i);
    CHECK(all);
    ix.add(key_of(7), value_of(7, 1));
    CHECK(ix.find(key_of(7)) == value_of(7, 1));
    CHECK(ix.size() == static_cast<std::uint64_t>(n));

    // Not found is std::nullopt / false.
    CHECK(!ix.mem(key_of(n + 1)));
    CHECK(!ix.find(key_of(n + 1)));

    // Iteration: every binding once.
    std::map<Bytes, Bytes> seen;
    ix.for_each([&](const Bytes& k, const Bytes& v) { CHECK(seen.emplace(k, v).second); });
    CHECK(seen.size() == static_cast<std::size_t>(n));
    CHECK(seen[key_of(7)] == value_of(7, 1) && seen[key_of(8)] == value_of(8));

    // A snapshot does not see later writes.
    tzstore::IndexIter snap = ix.iter();
    ix.add(key_of(n), value_of(n));
    int count = 0;
    while (snap.next()) ++count;
    CHECK(count == n);

    // Errors carry their status and a message.
    std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] { ix.add("short", value_of(1)); });
    CHECK(!msg.empty());
    expect_error(TZS_INVALID_ARGUMENT, [&] { (void)ix.find("toolongkey"); });
    msg = expect_error(TZS_INVALID_ARGUMENT, [&] { ix.remove(key_of(1)); });
    CHECK(!msg.empty());
    msg = expect_error(TZS_LOCKED, [&] { tzstore::Index again(dir, 8, 16); });
    CHECK(!msg.empty());
    expect_error(TZS_NOT_FOUND, [&] { tzstore::Index ro(dir + "-missing", 8, 16, tzstore::READONLY); });

    ix.flush();
    tzstore::Index ro(dir, 8, 16, tzstore::READONLY);
    CHECK(ro.find(key_of(n)) == value_of(n));
    msg = expect_error(TZS_READ_ONLY, [&] { ro.add(key_of(1), value_of(1)); });
    CHECK(!msg.empty());
    ix.add(key_of(n + 1), value_of(n + 1));
    ro.sync();
    CHECK(ro.find(key_of(n + 1)) == value_of(n + 1));
    ro.close();
    expect_error(TZS_CLOSED, [&] { (void)ro.mem(key_of(1)); });

    // Readers on other threads while this one adds.
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::atomic<long> reads{0};
    const int total = n + 2 + 400;
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t) {
      readers.emplace_back([&, t] {
        int i = t;
        while (!stop.load()) {
          i = (i * 7 + 3) % n;
          if (i == 7) continue;
          if (ix.find(key_of(i)) != value_of(i)) ++bad;
          auto v = ix.find(key_of(total - 1 - i));
          if (v && *v != value_of(total - 1 - i)) ++bad;
          ++reads;
        }
      });
    }
    while (reads.load() < 3) std::this_thread::yield();
    for (int i = n + 2; i < total; ++i) ix.add(key_of(i), value_of(i), false);
    stop = true;
    for (auto& t : readers) t.join();
    CHECK(bad.load() == 0);
    CHECK(ix.size() == static_cast<std::uint64_t>(total));

    ix.close();
    expect_error(TZS_CLOSED, [&] { ix.add(key_of(0), value_of(0)); });
  }
  {
    // Reopened: durable; other sizes are refused.
    tzstore::Index ix(dir, 8, 16);
    CHECK(ix.find(key_of(n + 100)) == value_of(n + 100));
    ix.close();
    std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] { tzstore::Index other(dir, 8, 32); });
    CHECK(!msg.empty());
  }
  {
    tzstore::Index rx(rdir, 8, 16, tzstore::REMOVABLE | tzstore::NO_FSYNC);
    for (int i = 0; i < 10; ++i) rx.add(key_of(i), value_of(i));
    rx.remove(key_of(3));
    rx.remove(key_of(99));  // unbound: no-op
    CHECK(!rx.find(key_of(3)) && !rx.mem(key_of(3)) && rx.size() == 9);
    tzstore::Index moved = std::move(rx);
    CHECK(moved.is_open() && !rx.is_open());
    moved.close();
    tzstore::Index again(rdir, 8, 16, tzstore::REMOVABLE);
    CHECK(!again.mem(key_of(3)) && again.find(key_of(4)) == value_of(4));
  }

  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

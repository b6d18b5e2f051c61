// Exercises tzstore::Kv against an installed tzstore: values and
// dictionaries, partial reads and writes, metadata (size, time, digest),
// rename, allocate, not found, errors with their status and message,
// batches (commit, conflict and retry, too many retries, abort on an
// exception), and threads incrementing counters through batches.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <tzstore.hpp>
#include <vector>

#include "check.hpp"

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

static Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
static std::string str(const std::optional<Bytes>& v) {
  return v ? std::string(v->begin(), v->end()) : std::string("<none>");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  const std::string root = std::string(argv[1]) + "/kv";
  fs::create_directories(root);
  using tzstore::KvKind;

  tzstore::Kv kv(root, tzstore::NO_FSYNC);
  const std::string bin("v\0\xff", 3);
  kv.set("a/b/c", bin);
  CHECK(kv.get("a/b/c") == bytes(bin));
  CHECK(kv.get("/a/b/c") == bytes(bin));  // a leading '/' is optional
  CHECK(kv.exists("a/b/c") == KvKind::VALUE);
  CHECK(kv.exists("a/b") == KvKind::DICTIONARY);
  CHECK(kv.exists("") == KvKind::DICTIONARY);
  CHECK(kv.size("a/b/c") == 3u);
  kv.set("a/b/a", "first");
  kv.set("a/z", "");
  auto entries = kv.list("a/b");
  CHECK(entries && entries->size() == 2 && (*entries)[0].name == "a" && (*entries)[1].name == "c");
  auto top = kv.list("a");
  CHECK(top && top->size() == 2 && (*top)[0] == (tzstore::KvEntry{"b", KvKind::DICTIONARY}) &&
        (*top)[1] == (tzstore::KvEntry{"z", KvKind::VALUE}));
  CHECK(kv.get("a/z") == Bytes{});

  // Partial reads and writes.
  kv.set("p", "0123456789");
  CHECK(str(kv.get_partial("p", 2, 3)) == "234");
  CHECK(str(kv.get_partial("p", 8, 100)) == "89");
  CHECK(str(kv.get_partial("p", 50, 3)) == "");
  kv.set_partial("p", 8, "XYZ");
  CHECK(str(kv.get("p")) == "01234567XYZ");

  // Metadata.
  auto t = kv.last_modified("p");
  CHECK(t && t->days > 19000 && t->picoseconds < 86400000000000000ull);
  kv.set("q", "01234567XYZ");
  CHECK(kv.digest("p") && kv.digest("p") == kv.digest("q"));
  CHECK(kv.digest("a") && kv.digest("a") != kv.digest("p"));

  // Rename and allocate.
  kv.rename("q", "moved/q");
  CHECK(!kv.exists("q") && str(kv.get("moved/q")) == "01234567XYZ");
  kv.allocate("zeros", 4);
  CHECK(kv.get("zeros") == Bytes(4, 0));
  std::string msg = expect_error(TZS_KEY_EXISTS, [&] { kv.allocate("zeros", 4); });
  CHECK(!msg.empty());

  // Not found: std::nullopt for lookups.
  CHECK(!kv.get("missing") && !kv.exists("missing") && !kv.size("missing") &&
        !kv.list("missing") && !kv.last_modified("missing") && !kv.digest("missing"));
  CHECK(!kv.exists("a/b/c/below"));
  expect_error(TZS_NOT_FOUND, [&] { kv.rename("missing", "x"); });

  // Errors with their messages.
  msg = expect_error(TZS_VALUE_EXPECTED, [&] { (void)kv.get("a/b"); });
  CHECK(!msg.empty());
  msg = expect_error(TZS_VALUE_EXPECTED, [&] { kv.set("a/b", "x"); });
  msg = expect_error(TZS_DICTIONARY_EXPECTED, [&] { kv.set("a/b/c/d", "x"); });
  CHECK(!msg.empty());
  msg = expect_error(TZS_INVALID_ARGUMENT, [&] { kv.set("../escape", "x"); });
  CHECK(!msg.empty());
  expect_error(TZS_INVALID_ARGUMENT, [&] { (void)kv.get(std::string("a\0b", 3)); });
  expect_error(TZS_NOT_FOUND, [&] { tzstore::Kv missing(root + "-missing"); });
  {
    tzstore::Kv ro(root, tzstore::READONLY);
    CHECK(str(ro.get("p")) == "01234567XYZ");
    msg = expect_error(TZS_READ_ONLY, [&] { ro.set("p", "x"); });
    CHECK(!msg.empty());
  }

  // Removal: a value, then a whole dictionary; unbound is no error.
  kv.remove("a/z");
  kv.remove("a");
  kv.remove("never");
  CHECK(!kv.exists("a") && !kv.exists("a/b/c"));

  // Batches commit all their writes at once and return f's result.
  int n = kv.batch([](tzstore::KvBatch& b) {
    b.set("batch/x", "1");
    b.set("batch/y", "2");
    CHECK(str(b.get("batch/x")) == "1");  // the batch sees its own writes
    CHECK(b.exists("batch") == KvKind::DICTIONARY);
    auto l = b.list("batch");
    CHECK(l && l->size() == 2);
    b.remove("p");
    return 42;
  });
  CHECK(n == 42);
  CHECK(str(kv.get("batch/x")) == "1" && str(kv.get("batch/y")) == "2" && !kv.exists("p"));

  // A change made by someone else after the batch read a key makes the
  // commit conflict; the batch runs again and then succeeds.
  tzstore::Kv other(root, tzstore::NO_FSYNC);
  int runs = 0;
  kv.batch([&](tzstore::KvBatch& b) {
    ++runs;
    auto v = b.get("batch/x");
    if (runs == 1) other.set("batch/x", "changed");
    b.set("batch/x", str(v) + "+1");
  });
  CHECK(runs == 2 && str(kv.get("batch/x")) == "changed+1");

  // Always conflicting: retries + 1 runs, then TOO_MANY_RETRIES.
  runs = 0;
  msg = expect_error(TZS_TOO_MANY_RETRIES, [&] {
    kv.batch(
        [&](tzstore::KvBatch& b) {
          ++runs;
          (void)b.get("batch/y");
          other.set("batch/y", std::to_string(runs));
          b.set("batch/z", "never");
        },
        2);
  });
  CHECK(runs == 3 && !msg.empty() && !kv.exists("batch/z"));

  // An exception discards the batch.
  try {
    kv.batch([](tzstore::KvBatch& b) {
      b.set("batch/w", "never");
      throw std::runtime_error("stop");
    });
    CHECK(false);
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "stop");
  }
  CHECK(!kv.exists("batch/w"));

  // Threads increment shared counters through batches: no update is lost.
  kv.set("counter", "0");
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  const int per_thread = 15;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      try {
        tzstore::Kv mine(root, tzstore::NO_FSYNC);
        for (int k = 0; k < per_thread; ++k) {
          tzstore::Kv& h = (k % 2 == 0) ? kv : mine;  // a shared and an own handle
          h.batch([](tzstore::KvBatch& b) {
            int c = std::stoi(str(b.get("counter")));
            b.set("counter", std::to_string(c + 1));
          }, 1000);
        }
      } catch (const std::exception& e) {
        std::fprintf(stderr, "thread: %s\n", e.what());
        ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(errors.load() == 0);
  CHECK(str(kv.get("counter")) == std::to_string(4 * per_thread));

  kv.close();
  expect_error(TZS_CLOSED, [&] { (void)kv.get("batch/x"); });

  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

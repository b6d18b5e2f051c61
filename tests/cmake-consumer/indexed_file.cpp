// Exercises tzstore::IndexedFile against an installed tzstore: append,
// header, read (with and without header), not found, errors with their
// status and message, the HEADER_IN_VALUE variant, read-only sync, gc with
// a keep predicate (and a throwing one), close.
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <tzstore_indexed_file.hpp>
#include <vector>

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
  }
  fs::remove_all(argv[1]);
  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

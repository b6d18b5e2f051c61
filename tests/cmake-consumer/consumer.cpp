// Exercises tzstore.hpp against an installed tzstore: write, read back,
// not found, errors with their status and message, close, moves.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tzstore.hpp>
#include <utility>

#include "check.hpp"

namespace fs = std::filesystem;

static std::string str(const std::optional<std::vector<uint8_t>>& v) {
  return v ? std::string(v->begin(), v->end()) : std::string("<none>");
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string path = std::string(argv[1]) + "/single";

  CHECK(std::string(tzstore::version()).size() > 0);
  {
    tzstore::Singleton s(path, tzstore::NO_FSYNC);
    CHECK(!s.read().has_value());
    s.write("hello");
    CHECK(str(s.read()) == "hello");
    const std::vector<uint8_t> bin{0, 1, 0, 255};
    s.write(bin);
    CHECK(s.read() == std::optional<std::vector<uint8_t>>(bin));
    s.write("");
    CHECK(s.read().has_value() && s.read()->empty());
    s.write("v2");

    // A second read-write instance is refused while this one holds the lock.
    std::string msg = expect_error(TZS_LOCKED, [&] { tzstore::Singleton again(path); });
    CHECK(!msg.empty());

    // A read-only instance sees the value and refuses writes with a message.
    tzstore::Singleton ro(path, tzstore::READONLY);
    CHECK(str(ro.read()) == "v2");
    msg = expect_error(TZS_READ_ONLY, [&] { ro.write("nope"); });
    CHECK(msg.find("single") != std::string::npos);
    expect_error(TZS_READ_ONLY, [&] { ro.remove(); });

    s.write("v3");
    ro.sync();
    CHECK(str(ro.read()) == "v3");

    // Moving transfers the handle; the moved-from object reports CLOSED.
    tzstore::Singleton moved = std::move(s);
    CHECK(moved.is_open() && !s.is_open());
    expect_error(TZS_CLOSED, [&] { (void)s.read(); });
    moved.remove();
    CHECK(!moved.read().has_value());
    moved.remove();  // removing an unset value succeeds
    moved.close();
    expect_error(TZS_CLOSED, [&] { moved.write("x"); });
  }
  // The lock was released by close: a new read-write open works.
  {
    tzstore::Singleton s(path);
    CHECK(!s.read().has_value());
    s.write("durable");
  }
  {
    tzstore::Singleton s(path, tzstore::READONLY);
    CHECK(str(s.read()) == "durable");
  }
  // A missing directory is TZS_NOT_FOUND.
  expect_error(TZS_NOT_FOUND, [&] { tzstore::Singleton s(path + "-missing/x"); });
  // Unknown flags are an invalid argument, with a message.
  std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] { tzstore::Singleton s(path, 1u << 30); });
  CHECK(!msg.empty());

  // A NUL byte inside a path is refused instead of truncating the path.
  expect_error(TZS_INVALID_ARGUMENT, [&] { tzstore::Singleton s(path + std::string(1, '\0') + "x"); });

  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

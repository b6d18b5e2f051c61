// Assertions shared by the C++ consumer tests: CHECK counts passes and
// failures (each test's main prints "N passed, N failed" from them) and
// expect_error runs a call that must throw tzstore::Error with a status.
#pragma once

#include <cstdio>
#include <string>
#include <tzstore.hpp>

static int failures = 0;
static int passed = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (cond) {                                                                     \
      ++passed;                                                                     \
    } else {                                                                        \
      ++failures;                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                               \
  } while (0)

template <typename F>
static std::string expect_error(tzs_status status, F f) {
  try {
    f();
  } catch (const tzstore::Error& e) {
    if (e.status() != status)
      std::fprintf(stderr, "expected %s, got %s\n", tzstore::status_name(status), e.what());
    CHECK(e.status() == status);
    return e.message();
  }
  std::fprintf(stderr, "expected %s, got no error\n", tzstore::status_name(status));
  CHECK(false);
  return {};
}

/* Minimal assertion helpers for the C tests: each CHECK counts a pass or a
 * failure, prints file:line and the library's error message on failure, and
 * check_summary() prints "N passed, N failed" and returns the exit code. */
#ifndef TZS_CHECK_H
#define TZS_CHECK_H

#include <stdio.h>
#include <string.h>
#include "tzstore.h"

static int check_passed = 0;
static int check_failed = 0;

static void check_record(int ok, const char *file, int line, const char *what, const char *detail) {
  if (ok) {
    check_passed++;
  } else {
    check_failed++;
    fprintf(stderr, "FAIL %s:%d: %s%s%s\n", file, line, what, detail ? ": " : "", detail ? detail : "");
  }
}

/* Runs `call` (which must take `&err` as its error argument), checks its
 * status equals `expected`, that an error object exists exactly for failure
 * statuses, then frees the error. */
#define CHECK_STATUS(call, expected)                                                   \
  do {                                                                                 \
    tzs_error *err = NULL;                                                             \
    tzs_status st_ = (call);                                                           \
    char msg_[512];                                                                    \
    int is_failure_ = (expected) != TZS_OK && (expected) != TZS_NOT_FOUND &&           \
                      (expected) != TZS_DONE;                                          \
    snprintf(msg_, sizeof msg_, "got %s, want %s (%s)", tzs_status_name(st_),           \
             tzs_status_name(expected), err ? tzs_error_message(err) : "no error");    \
    check_record(st_ == (tzs_status)(expected), __FILE__, __LINE__, #call, msg_);       \
    if (st_ == (tzs_status)(expected)) {                                               \
      check_record(is_failure_ ? (err != NULL && tzs_error_code(err) == st_ &&         \
                                  strlen(tzs_error_message(err)) > 0)                  \
                               : err == NULL,                                          \
                   __FILE__, __LINE__, "error object matches status", NULL);           \
    }                                                                                  \
    tzs_error_free(err);                                                               \
  } while (0)

/* Like CHECK_STATUS but also requires the error message to contain `needle`. */
#define CHECK_ERROR_MENTIONS(call, expected, needle)                                   \
  do {                                                                                 \
    tzs_error *err = NULL;                                                             \
    tzs_status st_ = (call);                                                           \
    const char *m_ = err ? tzs_error_message(err) : "";                                \
    check_record(st_ == (tzs_status)(expected) && strstr(m_, (needle)) != NULL,        \
                 __FILE__, __LINE__, #call, m_);                                       \
    tzs_error_free(err);                                                               \
  } while (0)

#define CHECK(cond) check_record((cond) ? 1 : 0, __FILE__, __LINE__, #cond, NULL)

#define CHECK_BYTES(b, str)                                                            \
  check_record((b).len == strlen(str) && ((b).len == 0 || memcmp((b).ptr, (str), (b).len) == 0), \
               __FILE__, __LINE__, "bytes equal " #str, NULL)

static int check_summary(const char *suite) {
  printf("%s: %d passed, %d failed\n", suite, check_passed, check_failed);
  return check_failed == 0 ? 0 : 1;
}

#endif

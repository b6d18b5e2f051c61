/* Minimal assertion helpers for test_kv.c (a global error slot `err`). */
#ifndef TZS_CHECK_KV_H
#define TZS_CHECK_KV_H

#include <stdio.h>
#include "tzstore.h"

static int check_passed = 0;
static int check_failed = 0;

/* The error slot the tests pass as the last argument of every call. */
static tzs_error *err = NULL;

/* Checks a status, and that an error object was produced exactly for
 * failure statuses (never for TZS_OK, TZS_NOT_FOUND, TZS_DONE). Frees it. */
static void check_status(tzs_status got, tzs_status want, const char *call,
                         const char *file, int line) {
  int failure = got != TZS_OK && got != TZS_NOT_FOUND && got != TZS_DONE;
  int ok = got == want;
  if (ok && failure && (err == NULL || tzs_error_code(err) != got)) ok = 0;
  if (ok && !failure && err != NULL) ok = 0;
  if (ok) {
    check_passed++;
  } else {
    check_failed++;
    fprintf(stderr, "%s:%d: %s: got %s, want %s (error: %s)\n", file, line,
            call, tzs_status_name(got), tzs_status_name(want),
            err ? tzs_error_message(err) : "none");
  }
  tzs_error_free(err);
  err = NULL;
}

#define CHECK_STATUS(call, want) check_status((call), (want), #call, __FILE__, __LINE__)

#define CHECK(cond)                                                         \
  do {                                                                      \
    if (cond) {                                                             \
      check_passed++;                                                       \
    } else {                                                                \
      check_failed++;                                                       \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                       \
  } while (0)

/* Prints the summary; returns the process exit code. */
static int check_report(void) {
  printf("%d passed, %d failed\n", check_passed, check_failed);
  return check_failed == 0 ? 0 : 1;
}

#endif

/* Exercises the C API of an installed tzstore, built with
 * `pkg-config --cflags --libs tzstore`: write, read back, not found, errors
 * with their status and message, close. Usage: consumer WORKDIR */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <tzstore.h>

static int passed, failed;

#define CHECK(cond)                                                       \
  do {                                                                    \
    if (cond) {                                                           \
      passed++;                                                           \
    } else {                                                              \
      failed++;                                                           \
      fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
    }                                                                     \
  } while (0)

/* Checks a call's status; on a mismatch prints the error's message. */
#define CHECK_STATUS(call, expected)                                          \
  do {                                                                        \
    tzs_status st_ = (call);                                                  \
    if (st_ == (expected)) {                                                  \
      passed++;                                                               \
    } else {                                                                  \
      failed++;                                                               \
      fprintf(stderr, "%s:%d: %s = %s, expected %s (%s)\n", __FILE__, __LINE__, \
              #call, tzs_status_name(st_), tzs_status_name(expected),         \
              err ? tzs_error_message(err) : "no error object");              \
    }                                                                         \
  } while (0)

static int bytes_eq(const tzs_bytes *b, const char *s) {
  return b->len == strlen(s) && (b->len == 0 || memcmp(b->ptr, s, b->len) == 0);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
    perror(argv[1]);
    return 2;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/single", argv[1]);
  unlink(path);

  tzs_singleton *s = NULL, *ro = NULL, *again = NULL;
  tzs_error *err = NULL;
  tzs_bytes v = {NULL, 0};

  CHECK(strlen(tzs_version()) > 0);
  CHECK(strcmp(tzs_status_name(TZS_READ_ONLY), "TZS_READ_ONLY") == 0);

  CHECK_STATUS(tzs_singleton_open(path, TZS_NO_FSYNC, &s, &err), TZS_OK);
  CHECK(s != NULL && err == NULL);

  /* Absence is a status without an error object. */
  CHECK_STATUS(tzs_singleton_read(s, &v, &err), TZS_NOT_FOUND);
  CHECK(err == NULL && v.ptr == NULL);

  CHECK_STATUS(tzs_singleton_write(s, (const uint8_t *)"hello", 5, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(s, &v, &err), TZS_OK);
  CHECK(bytes_eq(&v, "hello"));
  tzs_bytes_free(&v);
  CHECK(v.ptr == NULL && v.len == 0);
  tzs_bytes_free(&v); /* freeing a zeroed buffer is a no-op */

  /* A second read-write open is refused with a message. */
  CHECK_STATUS(tzs_singleton_open(path, 0, &again, &err), TZS_LOCKED);
  CHECK(err != NULL && tzs_error_code(err) == TZS_LOCKED);
  CHECK(err != NULL && strlen(tzs_error_message(err)) > 0);
  tzs_error_free(err);
  err = NULL;

  /* Writes through a read-only handle fail with TZS_READ_ONLY. */
  CHECK_STATUS(tzs_singleton_open(path, TZS_READONLY, &ro, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(ro, &v, &err), TZS_OK);
  CHECK(bytes_eq(&v, "hello"));
  tzs_bytes_free(&v);
  CHECK_STATUS(tzs_singleton_write(ro, (const uint8_t *)"x", 1, &err), TZS_READ_ONLY);
  CHECK(err != NULL && strstr(tzs_error_message(err), "single") != NULL);
  tzs_error_free(err);
  err = NULL;

  /* A NULL err is allowed: only the status is reported. */
  CHECK(tzs_singleton_delete(ro, NULL) == TZS_READ_ONLY);
  CHECK(tzs_singleton_read(NULL, &v, NULL) == TZS_INVALID_ARGUMENT);

  /* The read-only handle sees new values after sync. */
  CHECK_STATUS(tzs_singleton_write(s, (const uint8_t *)"v2", 2, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(ro, &v, &err), TZS_OK);
  CHECK(bytes_eq(&v, "v2"));
  tzs_bytes_free(&v);

  CHECK_STATUS(tzs_singleton_delete(s, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(s, &v, &err), TZS_NOT_FOUND);
  tzs_singleton_close(ro);
  tzs_singleton_close(s);
  tzs_singleton_close(NULL); /* no-op */

  /* The lock is released by close. */
  CHECK_STATUS(tzs_singleton_open(path, 0, &again, &err), TZS_OK);
  tzs_singleton_close(again);

  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

/* C tests of the kv store: every function of SPEC §3.5 and the statuses it
 * returns. (TZS_NO_SPACE and TZS_IO need a full or failing disk; their
 * mapping is tested on the Rust side.) */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char root[64];
static char file_path[128];

static void rm_rf(const char *path) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", path);
}

static int bytes_eq(tzs_bytes b, const char *s) {
  return b.len == strlen(s) && (b.len == 0 || memcmp(b.ptr, s, b.len) == 0);
}

static void test_open(void) {
  tzs_kv *kv = NULL;
  CHECK_STATUS(tzs_kv_open(NULL, 0, &kv, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_open("", 0, &kv, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_open(root, 0, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_open(root, 0x100, &kv, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_open(file_path, 0, &kv, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_open("/nonexistent/tzs/kv", 0, &kv, &err), TZS_NOT_FOUND);
  CHECK(kv == NULL);
  /* A NULL err is allowed. */
  CHECK(tzs_kv_open("", 0, &kv, NULL) == TZS_INVALID_ARGUMENT);
  tzs_kv_close(NULL);
}

static void test_values(tzs_kv *kv) {
  tzs_kv_kind kind = 0;
  tzs_bytes b = {NULL, 0};
  uint64_t size = 0;

  CHECK_STATUS(tzs_kv_set(kv, "a/b/c", (const uint8_t *)"hello", 5, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set(kv, "empty", NULL, 0, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set(kv, "a/b", (const uint8_t *)"x", 1, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_set(kv, "", (const uint8_t *)"x", 1, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_set(kv, "a/b/c/d", (const uint8_t *)"x", 1, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_set(kv, "../x", (const uint8_t *)"x", 1, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_set(kv, "x", NULL, 3, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_set(NULL, "x", NULL, 0, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_set(kv, NULL, NULL, 0, &err), TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_kv_exists(kv, "a/b/c", &kind, &err), TZS_OK);
  CHECK(kind == TZS_KV_VALUE);
  CHECK_STATUS(tzs_kv_exists(kv, "/a", &kind, &err), TZS_OK);
  CHECK(kind == TZS_KV_DICTIONARY);
  CHECK_STATUS(tzs_kv_exists(kv, "", &kind, &err), TZS_OK);
  CHECK(kind == TZS_KV_DICTIONARY);
  CHECK_STATUS(tzs_kv_exists(kv, "nope", &kind, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_exists(kv, "a/../..", &kind, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_exists(kv, "\xff", &kind, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_exists(kv, "a", NULL, &err), TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_kv_get(kv, "a/b/c", &b, &err), TZS_OK);
  CHECK(bytes_eq(b, "hello"));
  tzs_bytes_free(&b);
  CHECK(b.ptr == NULL && b.len == 0);
  CHECK_STATUS(tzs_kv_get(kv, "empty", &b, &err), TZS_OK);
  CHECK(b.len == 0);
  CHECK_STATUS(tzs_kv_get(kv, "nope", &b, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_get(kv, "a", &b, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_get(kv, "a/b/c/d", &b, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_get(kv, ".tzs-journal", &b, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_get(kv, "a", NULL, &err), TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_kv_get_partial(kv, "a/b/c", 1, 3, &b, &err), TZS_OK);
  CHECK(bytes_eq(b, "ell"));
  tzs_bytes_free(&b);
  CHECK_STATUS(tzs_kv_get_partial(kv, "a/b/c", 3, UINT64_MAX, &b, &err), TZS_OK);
  CHECK(bytes_eq(b, "lo"));
  tzs_bytes_free(&b);
  CHECK_STATUS(tzs_kv_get_partial(kv, "a/b/c", 99, 5, &b, &err), TZS_OK);
  CHECK(b.len == 0);
  CHECK_STATUS(tzs_kv_get_partial(kv, "nope", 0, 1, &b, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_get_partial(kv, "a", 0, 1, &b, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_get_partial(kv, "a/b/c/d", 0, 1, &b, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_get_partial(kv, "..", 0, 1, &b, &err), TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_kv_size(kv, "a/b/c", &size, &err), TZS_OK);
  CHECK(size == 5);
  CHECK_STATUS(tzs_kv_size(kv, "nope", &size, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_size(kv, "a", &size, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_size(kv, "a/b/c/d", &size, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_size(kv, "a", NULL, &err), TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_kv_set_partial(kv, "a/b/c", 5, (const uint8_t *)"!", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set_partial(kv, "a/b/c", 0, (const uint8_t *)"J", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set_partial(kv, "a/b/c", 100, (const uint8_t *)"?", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_get(kv, "a/b/c", &b, &err), TZS_OK);
  CHECK(bytes_eq(b, "Jello!?"));
  tzs_bytes_free(&b);
  CHECK_STATUS(tzs_kv_set_partial(kv, "new", 3, (const uint8_t *)"n", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set_partial(kv, "a", 0, (const uint8_t *)"n", 1, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_set_partial(kv, "new/x", 0, (const uint8_t *)"n", 1, &err),
               TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_set_partial(kv, ".", 0, NULL, 0, &err), TZS_INVALID_ARGUMENT);

  uint8_t digest[32], digest2[32];
  CHECK_STATUS(tzs_kv_set(kv, "h/abc", (const uint8_t *)"abc", 3, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_digest(kv, "h/abc", digest, &err), TZS_OK);
  CHECK(digest[0] == 0xba && digest[1] == 0x78 && digest[31] == 0xad); /* SHA-256("abc") */
  CHECK_STATUS(tzs_kv_digest(kv, "h", digest, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_digest(kv, "", digest2, &err), TZS_OK);
  CHECK(memcmp(digest, digest2, 32) != 0);
  CHECK_STATUS(tzs_kv_digest(kv, "nope", digest, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_digest(kv, "h", NULL, &err), TZS_INVALID_ARGUMENT);

  int64_t days = 0;
  uint64_t ps = 0, ps2 = 0;
  CHECK_STATUS(tzs_kv_last_modified(kv, "h/abc", &days, &ps, &err), TZS_OK);
  CHECK(days > 19000 && ps < 86400ULL * 1000000000000ULL);
  CHECK_STATUS(tzs_kv_last_modified(kv, "h", &days, &ps2, &err), TZS_OK);
  CHECK(ps2 == ps);
  CHECK_STATUS(tzs_kv_last_modified(kv, "nope", &days, &ps, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_last_modified(kv, "h/abc/x", &days, &ps, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_last_modified(kv, "h", NULL, &ps, &err), TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_kv_allocate(kv, "z/alloc", 100, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_size(kv, "z/alloc", &size, &err), TZS_OK);
  CHECK(size == 100);
  CHECK_STATUS(tzs_kv_allocate(kv, "z/alloc", 1, &err), TZS_KEY_EXISTS);
  CHECK_STATUS(tzs_kv_allocate(kv, "z", 1, &err), TZS_KEY_EXISTS);
  CHECK_STATUS(tzs_kv_allocate(kv, "z/alloc/x", 1, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_allocate(kv, "..", 1, &err), TZS_INVALID_ARGUMENT);
}

static void test_list_remove_rename(tzs_kv *kv) {
  tzs_kv_entries *e = NULL;
  CHECK_STATUS(tzs_kv_set(kv, "l/b", (const uint8_t *)"1", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set(kv, "l/a/x", (const uint8_t *)"2", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set(kv, "l/C", (const uint8_t *)"3", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_list(kv, "l", &e, &err), TZS_OK);
  CHECK(tzs_kv_entries_len(e) == 3);
  CHECK(strcmp(tzs_kv_entries_name(e, 0), "C") == 0);
  CHECK(strcmp(tzs_kv_entries_name(e, 1), "a") == 0);
  CHECK(strcmp(tzs_kv_entries_name(e, 2), "b") == 0);
  CHECK(tzs_kv_entries_kind(e, 1) == TZS_KV_DICTIONARY);
  CHECK(tzs_kv_entries_kind(e, 2) == TZS_KV_VALUE);
  CHECK(tzs_kv_entries_name(e, 3) == NULL);
  CHECK(tzs_kv_entries_kind(e, 3) == 0);
  tzs_kv_entries_free(e);
  CHECK(tzs_kv_entries_len(NULL) == 0);
  CHECK(tzs_kv_entries_name(NULL, 0) == NULL);
  CHECK(tzs_kv_entries_kind(NULL, 0) == 0);
  tzs_kv_entries_free(NULL);
  CHECK_STATUS(tzs_kv_list(kv, "nope", &e, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_list(kv, "l/b", &e, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_list(kv, "l/..", &e, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_list(kv, "l", NULL, &err), TZS_INVALID_ARGUMENT);

  /* rename */
  CHECK_STATUS(tzs_kv_rename(kv, "l/b", "l/C", &err), TZS_OK); /* value onto value */
  CHECK_STATUS(tzs_kv_rename(kv, "l/b", "l/z", &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_rename(kv, "l/C", "l/a", &err), TZS_OK); /* into a dictionary */
  tzs_bytes b = {NULL, 0};
  CHECK_STATUS(tzs_kv_get(kv, "l/a/C", &b, &err), TZS_OK);
  CHECK(bytes_eq(b, "1"));
  tzs_bytes_free(&b);
  CHECK_STATUS(tzs_kv_rename(kv, "l", "l/a/deeper", &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_set(kv, "v", (const uint8_t *)"v", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_rename(kv, "l/a", "v", &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_set(kv, "t/a/y", (const uint8_t *)"y", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_rename(kv, "l/a", "t", &err), TZS_KEY_EXISTS);
  CHECK_STATUS(tzs_kv_rename(kv, "l/a", "v/sub", &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_rename(kv, "l/a", "m/n", &err), TZS_OK); /* dictionary moves whole */
  CHECK_STATUS(tzs_kv_get(kv, "m/n/x", &b, &err), TZS_OK);
  tzs_bytes_free(&b);
  CHECK_STATUS(tzs_kv_rename(kv, NULL, "x", &err), TZS_INVALID_ARGUMENT);

  /* remove */
  CHECK_STATUS(tzs_kv_remove(kv, "m", &err), TZS_OK);
  CHECK_STATUS(tzs_kv_remove(kv, "m", &err), TZS_OK); /* missing is fine */
  tzs_kv_kind kind;
  CHECK_STATUS(tzs_kv_exists(kv, "m/n/x", &kind, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_remove(kv, "..", &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_remove(NULL, "x", &err), TZS_INVALID_ARGUMENT);
}

static int runs = 0;

/* Reads n, then changes it behind the batch's back: always conflicts. */
static tzs_status always_conflicts(tzs_kv_batch *b, void *ctx) {
  tzs_kv *kv = ctx;
  tzs_bytes v = {NULL, 0};
  char buf[16];
  runs++;
  if (tzs_kv_batch_get(b, "n", &v, NULL) != TZS_OK) return TZS_IO;
  tzs_bytes_free(&v);
  snprintf(buf, sizeof buf, "%d", 1000 + runs);
  if (tzs_kv_set(kv, "n", (const uint8_t *)buf, strlen(buf), NULL) != TZS_OK) return TZS_IO;
  return tzs_kv_batch_set(b, "n", (const uint8_t *)"x", 1, NULL);
}

/* Increments "counter"; tries to commit/abort the lent batch (refused). */
static tzs_status increment(tzs_kv_batch *b, void *ctx) {
  (void)ctx;
  tzs_bytes v = {NULL, 0};
  int n = 0;
  tzs_status st = tzs_kv_batch_get(b, "counter", &v, NULL);
  if (st == TZS_OK) {
    char buf[16] = {0};
    memcpy(buf, v.ptr, v.len < 15 ? v.len : 15);
    n = atoi(buf);
    tzs_bytes_free(&v);
  } else if (st != TZS_NOT_FOUND) {
    return st;
  }
  CHECK_STATUS(tzs_kv_batch_commit(b, &err), TZS_INVALID_ARGUMENT);
  tzs_kv_batch_abort(b); /* a no-op on a lent batch */
  char out[16];
  snprintf(out, sizeof out, "%d", n + 1);
  return tzs_kv_batch_set(b, "counter", (const uint8_t *)out, strlen(out), NULL);
}

static tzs_status fails(tzs_kv_batch *b, void *ctx) {
  (void)ctx;
  tzs_kv_batch_set(b, "never", (const uint8_t *)"x", 1, NULL);
  return TZS_KEY_EXISTS;
}

static void test_batches(tzs_kv *kv) {
  tzs_kv_batch *b = NULL;
  tzs_kv_kind kind = 0;
  tzs_bytes v = {NULL, 0};
  tzs_kv_entries *e = NULL;

  CHECK_STATUS(tzs_kv_batch_begin(NULL, &b, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_batch_begin(kv, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_set(kv, "old/a", (const uint8_t *)"1", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_begin(kv, &b, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_set(b, "bn/x", (const uint8_t *)"x", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_set(b, "bn", (const uint8_t *)"x", 1, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_batch_set(b, "bn/x/y", (const uint8_t *)"x", 1, &err),
               TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_batch_set(b, "..", (const uint8_t *)"x", 1, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_batch_set(NULL, "a", NULL, 0, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_batch_remove(b, "old", &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_remove(b, "..", &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_batch_exists(b, "bn", &kind, &err), TZS_OK);
  CHECK(kind == TZS_KV_DICTIONARY);
  CHECK_STATUS(tzs_kv_batch_exists(b, "old", &kind, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_batch_exists(b, "/..", &kind, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_batch_get(b, "bn/x", &v, &err), TZS_OK);
  CHECK(bytes_eq(v, "x"));
  tzs_bytes_free(&v);
  CHECK_STATUS(tzs_kv_batch_get(b, "old/a", &v, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_batch_get(b, "bn", &v, &err), TZS_VALUE_EXPECTED);
  CHECK_STATUS(tzs_kv_batch_get(b, "bn/x/y", &v, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_batch_get(b, "\xfe", &v, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_batch_list(b, "bn", &e, &err), TZS_OK);
  CHECK(tzs_kv_entries_len(e) == 1 && strcmp(tzs_kv_entries_name(e, 0), "x") == 0);
  tzs_kv_entries_free(e);
  CHECK_STATUS(tzs_kv_batch_list(b, "old", &e, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_batch_list(b, "bn/x", &e, &err), TZS_DICTIONARY_EXPECTED);
  CHECK_STATUS(tzs_kv_batch_list(b, ".tzs-tmp", &e, &err), TZS_INVALID_ARGUMENT);
  /* Nothing visible before the commit. */
  CHECK_STATUS(tzs_kv_exists(kv, "bn", &kind, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_batch_commit(b, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_exists(kv, "bn/x", &kind, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_exists(kv, "old", &kind, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_batch_commit(NULL, &err), TZS_INVALID_ARGUMENT);

  /* Abort discards. */
  CHECK_STATUS(tzs_kv_batch_begin(kv, &b, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_set(b, "aborted", (const uint8_t *)"x", 1, &err), TZS_OK);
  tzs_kv_batch_abort(b);
  tzs_kv_batch_abort(NULL);
  CHECK_STATUS(tzs_kv_exists(kv, "aborted", &kind, &err), TZS_NOT_FOUND);

  /* A conflicting commit. */
  CHECK_STATUS(tzs_kv_set(kv, "n", (const uint8_t *)"0", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_begin(kv, &b, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_get(b, "n", &v, &err), TZS_OK);
  tzs_bytes_free(&v);
  CHECK_STATUS(tzs_kv_set(kv, "n", (const uint8_t *)"5", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_set(b, "n", (const uint8_t *)"1", 1, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_batch_commit(b, &err), TZS_CONFLICT);
  CHECK_STATUS(tzs_kv_get(kv, "n", &v, &err), TZS_OK);
  CHECK(bytes_eq(v, "5"));
  tzs_bytes_free(&v);

  /* batch_run */
  for (int i = 0; i < 3; i++)
    CHECK_STATUS(tzs_kv_batch_run(kv, increment, NULL, 0, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_get(kv, "counter", &v, &err), TZS_OK);
  CHECK(bytes_eq(v, "3"));
  tzs_bytes_free(&v);
  runs = 0;
  CHECK_STATUS(tzs_kv_batch_run(kv, always_conflicts, kv, 2, &err), TZS_TOO_MANY_RETRIES);
  CHECK(runs == 3);
  CHECK_STATUS(tzs_kv_batch_run(kv, fails, NULL, 0, &err), TZS_KEY_EXISTS);
  CHECK_STATUS(tzs_kv_exists(kv, "never", &kind, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_kv_batch_run(kv, NULL, NULL, 0, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_batch_run(NULL, increment, NULL, 0, &err), TZS_INVALID_ARGUMENT);
}

static void test_read_only(void) {
  tzs_kv *ro = NULL;
  tzs_kv_batch *b = NULL;
  tzs_bytes v = {NULL, 0};
  CHECK_STATUS(tzs_kv_open(root, TZS_READONLY, &ro, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_get(ro, "counter", &v, &err), TZS_OK);
  tzs_bytes_free(&v);
  CHECK_STATUS(tzs_kv_set(ro, "x", (const uint8_t *)"x", 1, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_kv_set_partial(ro, "x", 0, (const uint8_t *)"x", 1, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_kv_remove(ro, "counter", &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_kv_rename(ro, "counter", "c2", &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_kv_allocate(ro, "x", 1, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_kv_batch_begin(ro, &b, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_kv_batch_run(ro, increment, NULL, 0, &err), TZS_READ_ONLY);
  tzs_kv_close(ro);
}

/* A damaged journal: the read-write open refuses it naming the file; check
 * reports it, repair moves it aside, then the store opens and checks clean. */
static void test_check(void) {
  char dir[64], path[128];
  strcpy(dir, "/tmp/tzs_kv_c_check_XXXXXX");
  if (mkdtemp(dir) == NULL) {
    CHECK(0);
    return;
  }
  tzs_kv *kv = NULL;
  tzs_kv_batch *b = NULL;
  tzs_bytes v = {NULL, 0};
  tzs_bytes report = {NULL, 0};
  CHECK_STATUS(tzs_kv_check(dir, TZS_NO_FSYNC, false, &report, &err), TZS_OK);
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_kv_open(dir, TZS_NO_FSYNC, &kv, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_set(kv, "plain", (const uint8_t *)"p", 1, &err), TZS_OK);
  for (int i = 0; i < 3; i++) {
    char key[16];
    snprintf(key, sizeof key, "b%d", i);
    CHECK_STATUS(tzs_kv_batch_begin(kv, &b, &err), TZS_OK);
    CHECK_STATUS(tzs_kv_batch_set(b, key, (const uint8_t *)"batched", 7, &err), TZS_OK);
    CHECK_STATUS(tzs_kv_batch_commit(b, &err), TZS_OK);
  }
  tzs_kv_close(kv);
  kv = NULL;

  /* One byte inside the first record's key flipped. */
  snprintf(path, sizeof path, "%s/.tzs-journal", dir);
  FILE *f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (f != NULL) {
    fseek(f, 22, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 22, SEEK_SET);
    fputc(c ^ 0x20, f);
    fclose(f);
  }
  CHECK_ERROR_MENTIONS(tzs_kv_open(dir, TZS_NO_FSYNC, &kv, &err), TZS_CORRUPTED, ".tzs-journal");
  CHECK_ERROR_MENTIONS(tzs_kv_open(dir, TZS_NO_FSYNC, &kv, &err), TZS_CORRUPTED, "offset 0");
  CHECK_STATUS(tzs_kv_check(dir, TZS_NO_FSYNC, false, &report, &err), TZS_CORRUPTED);
  CHECK(report.len > 0 && strstr((const char *)report.ptr, "problem:") != NULL);
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_kv_check(dir, TZS_NO_FSYNC, true, &report, &err), TZS_OK);
  CHECK(report.len > 0 && strstr((const char *)report.ptr, "quarantined: .tzs-journal") != NULL);
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_kv_check(dir, TZS_NO_FSYNC, false, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_open(dir, TZS_NO_FSYNC, &kv, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_get(kv, "b2", &v, &err), TZS_OK);
  CHECK_BYTES(v, "batched");
  tzs_bytes_free(&v);
  CHECK_STATUS(tzs_kv_get(kv, "plain", &v, &err), TZS_OK);
  CHECK_BYTES(v, "p");
  tzs_bytes_free(&v);
  tzs_kv_close(kv);
  kv = NULL;

  /* A FIFO in place of the generation file: refused at once, then moved. */
  snprintf(path, sizeof path, "%s/.tzs-generation", dir);
  unlink(path);
  CHECK(mkfifo(path, 0644) == 0);
  CHECK_ERROR_MENTIONS(tzs_kv_open(dir, TZS_NO_FSYNC, &kv, &err), TZS_CORRUPTED, "not a regular file");
  CHECK_STATUS(tzs_kv_check(dir, TZS_NO_FSYNC, true, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_open(dir, TZS_NO_FSYNC, &kv, &err), TZS_OK);
  CHECK_STATUS(tzs_kv_get(kv, "b0", &v, &err), TZS_OK);
  tzs_bytes_free(&v);
  tzs_kv_close(kv);
  CHECK_STATUS(tzs_kv_check(NULL, 0, false, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_kv_check(dir, TZS_READONLY, false, NULL, &err), TZS_INVALID_ARGUMENT);
  rm_rf(dir);
}

int main(void) {
  strcpy(root, "/tmp/tzs_kv_c_XXXXXX");
  if (mkdtemp(root) == NULL) return 2;
  char base[64];
  strcpy(base, "/tmp/tzs_kv_c_file_XXXXXX");
  int fd = mkstemp(base);
  if (fd < 0) return 2;
  close(fd);
  strcpy(file_path, base);

  test_open();
  tzs_kv *kv = NULL;
  CHECK_STATUS(tzs_kv_open(root, TZS_NO_FSYNC, &kv, &err), TZS_OK);
  test_values(kv);
  test_list_remove_rename(kv);
  test_batches(kv);
  test_read_only();
  test_check();
  /* Removing the root empties it; the store stays usable. */
  tzs_kv_entries *e = NULL;
  CHECK_STATUS(tzs_kv_remove(kv, "/", &err), TZS_OK);
  CHECK_STATUS(tzs_kv_list(kv, "", &e, &err), TZS_OK);
  CHECK(tzs_kv_entries_len(e) == 0);
  tzs_kv_entries_free(e);
  CHECK_STATUS(tzs_kv_set(kv, "again", (const uint8_t *)"1", 1, &err), TZS_OK);
  tzs_kv_close(kv);

  rm_rf(root);
  unlink(file_path);
  return check_summary("kv");
}

/* C API of the indexed file store: every function and every status it returns. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "check.h"

static char dir[512];
static char sdir[600];
static char path[700];

static void key_of(uint8_t k[8], uint32_t i) {
  memset(k, 0, 8);
  memcpy(k + 4, &i, sizeof i);
}

static bool keep_even(const uint8_t *key, size_t key_len, void *ctx) {
  uint32_t i;
  memcpy(&i, key + 4, sizeof i);
  (*(int *)ctx)++;
  return key_len == 8 && i % 2 == 0;
}

/* What a GC filter of these tests is given. */
struct filter_ctx {
  tzs_indexed_file *f;
  uint8_t below; /* keep headers whose first byte is below this */
  unsigned calls;
  unsigned refused;   /* waits for the GC from inside it, refused */
  unsigned appended;  /* appends from inside it, allowed */
};

/* Keeps by header (Octez's GC iterator sees the header), and calls back
 * into the store when `f` is set. */
static bool keep_by_header(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *header,
                           size_t header_len) {
  struct filter_ctx *c = ctx;
  c->calls++;
  if (c->f != NULL) {
    bool started = true;
    if (tzs_indexed_file_await_gc(c->f, NULL) == TZS_INVALID_ARGUMENT) c->refused++;
    if (tzs_indexed_file_cancel_gc(c->f, NULL, NULL) == TZS_INVALID_ARGUMENT) c->refused++;
    if (tzs_indexed_file_gc_filter(c->f, keep_by_header, ctx, true, &started, NULL) ==
        TZS_INVALID_ARGUMENT)
      c->refused++;
    if (tzs_indexed_file_mem(c->f, key, key_len, NULL) == TZS_OK && c->calls == 1) {
      uint8_t k[8], h[4] = {0, 0, 0, 0};
      memset(k, 0xEE, sizeof k);
      if (tzs_indexed_file_append(c->f, k, 8, h, 4, (const uint8_t *)"inside", 6, false, NULL) ==
          TZS_OK)
        c->appended++;
    }
  }
  return key_len == 8 && header_len == 4 && header[0] < c->below;
}

static atomic_int about_to_cancel;

/* Waits at its first call until the test is about to cancel, then gives
 * the cancel time to land. */
static bool keep_none_slowly(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *header,
                             size_t header_len) {
  (void)key;
  (void)key_len;
  (void)header;
  (void)header_len;
  struct filter_ctx *c = ctx;
  if (c->calls++ == 0) {
    while (!atomic_load(&about_to_cancel)) {
      struct timespec t = {0, 1000000};
      nanosleep(&t, NULL);
    }
    struct timespec t = {0, 100000000};
    nanosleep(&t, NULL);
  }
  return false;
}

/* Keys 0..199 and the key appended from inside a filter that are stored. */
static unsigned stored(tzs_indexed_file *f) {
  uint8_t k[8];
  unsigned n = 0;
  for (uint32_t i = 0; i < 200; i++) {
    key_of(k, i);
    n += tzs_indexed_file_mem(f, k, 8, NULL) == TZS_OK;
  }
  memset(k, 0xEE, sizeof k);
  return n + (tzs_indexed_file_mem(f, k, 8, NULL) == TZS_OK);
}

/* Octez's GC on a fresh store in `gdir`: the filter sees the header; in
 * the background, waited for, cancelled; calling back into the store. */
static void test_gc_filter(const char *gdir) {
  tzs_indexed_file *f = NULL;
  uint8_t k[8], h[4];
  bool started = false, cancelled = false;
  struct filter_ctx c = {0};
  CHECK_STATUS(tzs_indexed_file_open(gdir, 8, 4, TZS_NO_FSYNC, 16, &f, &err), TZS_OK);
  for (uint32_t i = 0; i < 200; i++) {
    key_of(k, i);
    memset(h, (int)i, sizeof h);
    CHECK_STATUS(tzs_indexed_file_append(f, k, 8, h, 4, (const uint8_t *)"some value", 10, false, &err),
                 TZS_OK);
  }
  CHECK_STATUS(tzs_indexed_file_flush(f, &err), TZS_OK);
  CHECK(tzs_indexed_file_is_gc_finished(f));
  CHECK(!tzs_indexed_file_is_gc_finished(NULL));
  CHECK_STATUS(tzs_indexed_file_gc_filter(NULL, keep_by_header, &c, true, NULL, &err),
               TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_gc_filter(f, NULL, &c, true, NULL, &err), TZS_INVALID_ARGUMENT);

  /* Waited for: headers 0..149 stay. */
  c.below = 150;
  CHECK_STATUS(tzs_indexed_file_gc_filter(f, keep_by_header, &c, true, &started, &err), TZS_OK);
  CHECK(started && c.calls == 200);
  CHECK(stored(f) == 150);
  key_of(k, 160);
  CHECK_STATUS(tzs_indexed_file_mem(f, k, 8, &err), TZS_NOT_FOUND);

  /* In the background, calling back into the store. */
  memset(&c, 0, sizeof c);
  c.f = f;
  c.below = 100;
  CHECK_STATUS(tzs_indexed_file_gc_filter(f, keep_by_header, &c, false, &started, &err), TZS_OK);
  CHECK(started);
  CHECK_STATUS(tzs_indexed_file_await_gc(f, &err), TZS_OK);
  CHECK(tzs_indexed_file_is_gc_finished(f));
  CHECK(c.calls == 150 && c.refused == 3 * 150 && c.appended == 1);
  CHECK(stored(f) == 101); /* 0..99 and the appended key */

  /* Cancelled: the store is left as it was; a later GC works. */
  memset(&c, 0, sizeof c);
  atomic_store(&about_to_cancel, 0);
  CHECK_STATUS(tzs_indexed_file_gc_filter(f, keep_none_slowly, &c, false, &started, &err), TZS_OK);
  CHECK(started);
  CHECK_STATUS(tzs_indexed_file_gc_filter(f, keep_by_header, &c, false, &started, &err), TZS_OK);
  CHECK(!started);
  atomic_store(&about_to_cancel, 1);
  CHECK_STATUS(tzs_indexed_file_cancel_gc(f, &cancelled, &err), TZS_OK);
  CHECK(cancelled);
  CHECK_STATUS(tzs_indexed_file_await_gc(f, &err), TZS_OK);
  CHECK(stored(f) == 101);
  CHECK_STATUS(tzs_indexed_file_cancel_gc(f, &cancelled, &err), TZS_OK);
  CHECK(!cancelled);
  CHECK_STATUS(tzs_indexed_file_cancel_gc(NULL, &cancelled, &err), TZS_INVALID_ARGUMENT);
  memset(&c, 0, sizeof c);
  c.below = 10;
  CHECK_STATUS(tzs_indexed_file_gc_filter(f, keep_by_header, &c, true, NULL, &err), TZS_OK);
  CHECK(stored(f) == 11); /* 0..9 and the appended key (header 0) */
  tzs_indexed_file_close(f);
  CHECK_STATUS(tzs_indexed_file_open(gdir, 8, 4, TZS_READONLY, 0, &f, &err), TZS_OK);
  CHECK(stored(f) == 11);
  CHECK_STATUS(tzs_indexed_file_gc_filter(f, keep_by_header, &c, true, NULL, &err), TZS_READ_ONLY);
  tzs_indexed_file_close(f);
}

static void flip_byte(const char *p, long at) {
  FILE *f = fopen(p, "r+b");
  if (!f) return;
  fseek(f, at, SEEK_SET);
  int c = fgetc(f);
  fseek(f, at, SEEK_SET);
  fputc(c ^ 0x20, f);
  fclose(f);
}

int main(int argc, char **argv) {
  const char *base = argc > 1 ? argv[1] : "/tmp";
  snprintf(dir, sizeof dir, "%s/tzs-c-ifile-XXXXXX", base);
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  snprintf(sdir, sizeof sdir, "%s/simple", dir);

  uint8_t k[8], h[4], hout[4];
  tzs_indexed_file *f = NULL, *ro = NULL, *other = NULL;
  tzs_bytes v = {NULL, 0};

  /* Open: bad arguments. */
  CHECK_STATUS(tzs_indexed_file_open(NULL, 8, 4, 0, 0, &f, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_open("", 8, 4, 0, 0, &f, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_open(dir, 8, 4, 0, 0, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_open(dir, 8, 4, TZS_REMOVABLE, 0, &f, &err), TZS_INVALID_ARGUMENT);
  snprintf(path, sizeof path, "%s/missing", dir);
  CHECK_STATUS(tzs_indexed_file_open(path, 8, 4, TZS_READONLY, 0, &f, &err), TZS_NOT_FOUND);

  CHECK_STATUS(tzs_indexed_file_open(dir, 8, 4, TZS_NO_FSYNC, 16, &f, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_indexed_file_open(dir, 8, 4, 0, 16, &other, &err), TZS_LOCKED, "lock");

  /* Append, mem, header, read. */
  for (uint32_t i = 0; i < 100; i++) {
    key_of(k, i);
    memset(h, (int)i, sizeof h);
    char val[64];
    int n = snprintf(val, sizeof val, "value-%u", i);
    CHECK_STATUS(tzs_indexed_file_append(f, k, 8, h, 4, (const uint8_t *)val, (size_t)n, i == 99, &err), TZS_OK);
  }
  key_of(k, 7);
  CHECK_STATUS(tzs_indexed_file_mem(f, k, 8, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_header(f, k, 8, hout, 4, &err), TZS_OK);
  CHECK(hout[0] == 7 && hout[3] == 7);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, hout, 4, &err), TZS_OK);
  CHECK_BYTES(v, "value-7");
  tzs_bytes_free(&v);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, NULL, 0, &err), TZS_OK);
  CHECK_BYTES(v, "value-7");
  tzs_bytes_free(&v);
  /* Empty value. */
  key_of(k, 500);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, h, 4, NULL, 0, false, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, NULL, 0, &err), TZS_OK);
  CHECK(v.len == 0);

  /* Absent keys and bad arguments. */
  key_of(k, 1000);
  CHECK_STATUS(tzs_indexed_file_mem(f, k, 8, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_indexed_file_header(f, k, 8, hout, 4, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, hout, 4, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_indexed_file_mem(NULL, k, 8, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_mem(f, k, 7, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_header(f, k, 8, hout, 3, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_header(f, k, 8, NULL, 4, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_header(NULL, k, 8, hout, 4, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, NULL, hout, 4, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, hout, 5, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_read(NULL, k, 8, &v, hout, 4, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, NULL, 0, (const uint8_t *)"x", 1, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, h, 3, (const uint8_t *)"x", 1, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_append(f, NULL, 8, h, 4, (const uint8_t *)"x", 1, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, h, 4, NULL, 1, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_append(NULL, k, 8, h, 4, (const uint8_t *)"x", 1, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_flush(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_sync(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_gc(NULL, keep_even, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_gc(f, NULL, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_await_gc(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_flush(f, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_sync(f, &err), TZS_OK);

  /* Read-only follower. */
  CHECK_STATUS(tzs_indexed_file_open(dir, 8, 4, TZS_READONLY, 0, &ro, &err), TZS_OK);
  key_of(k, 2000);
  CHECK_STATUS(tzs_indexed_file_append(ro, k, 8, h, 4, (const uint8_t *)"x", 1, false, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_indexed_file_gc(ro, keep_even, NULL, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, h, 4, (const uint8_t *)"new", 3, true, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_mem(ro, k, 8, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_indexed_file_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_mem(ro, k, 8, &err), TZS_OK);

  /* Compaction: odd keys go. */
  int calls = 0;
  CHECK_STATUS(tzs_indexed_file_gc(f, keep_even, &calls, &err), TZS_OK);
  CHECK(calls == 102);
  CHECK_STATUS(tzs_indexed_file_await_gc(f, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_await_gc(f, &err), TZS_OK);
  key_of(k, 8);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, hout, 4, &err), TZS_OK);
  CHECK_BYTES(v, "value-8");
  tzs_bytes_free(&v);
  key_of(k, 9);
  CHECK_STATUS(tzs_indexed_file_mem(f, k, 8, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_indexed_file_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_mem(ro, k, 8, &err), TZS_NOT_FOUND);
  tzs_indexed_file_close(ro);
  ro = NULL;
  tzs_indexed_file_close(f);
  tzs_indexed_file_close(NULL);
  f = NULL;

  /* Reopen with another key size is refused. */
  CHECK_STATUS(tzs_indexed_file_open(dir, 9, 4, 0, 0, &f, &err), TZS_INVALID_ARGUMENT);

  /* A damaged value is reported as corrupted: a byte of the first value
   * of gen.1 (24-byte file header, then magic, length, key, header). */
  snprintf(path, sizeof path, "%s/gen.1/values", dir);
  flip_byte(path, 24 + 4 + 4 + 8 + 4 + 2);
  CHECK_STATUS(tzs_indexed_file_open(dir, 8, 4, TZS_READONLY, 0, &ro, &err), TZS_OK);
  /* The compaction copies in index order, so the damaged first record may
   * be any kept key: the even ones below 100, 500 and 2000. */
  int corrupted = 0;
  for (uint32_t i = 0; i <= 2000; i += 2) {
    if (i >= 100 && i != 500 && i != 2000) continue;
    key_of(k, i);
    tzs_error *e = NULL;
    tzs_status st = tzs_indexed_file_read(ro, k, 8, &v, NULL, 0, &e);
    if (st == TZS_CORRUPTED) {
      corrupted++;
      CHECK(e != NULL && tzs_error_code(e) == TZS_CORRUPTED);
    } else {
      CHECK(st == TZS_OK);
    }
    tzs_error_free(e);
    tzs_bytes_free(&v);
  }
  CHECK(corrupted == 1);
  tzs_indexed_file_close(ro);
  ro = NULL;

  /* The read-write open refuses the damage and changes nothing. */
  struct stat before, after;
  CHECK(stat(path, &before) == 0);
  CHECK_ERROR_MENTIONS(tzs_indexed_file_open(dir, 8, 4, TZS_NO_FSYNC, 0, &f, &err), TZS_CORRUPTED, "offset");
  CHECK(stat(path, &after) == 0 && after.st_size == before.st_size);

  /* Check: bad arguments, then a report without repair. */
  tzs_bytes report = {NULL, 0};
  CHECK_STATUS(tzs_indexed_file_check(NULL, 0, false, &report, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_check(dir, TZS_READONLY, false, &report, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_check(path, 0, false, &report, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_indexed_file_check(dir, TZS_NO_FSYNC, false, NULL, &err), TZS_CORRUPTED);
  CHECK_ERROR_MENTIONS(tzs_indexed_file_check(dir, TZS_NO_FSYNC, false, &report, &err), TZS_CORRUPTED, "offset");
  CHECK(report.ptr != NULL && memmem(report.ptr, report.len, "problem:", 8) != NULL);
  tzs_bytes_free(&report);
  CHECK(stat(path, &after) == 0 && after.st_size == before.st_size);

  /* Repair salvages every intact value (and is refused under a
   * read-write handle, below). */
  CHECK_STATUS(tzs_indexed_file_check(dir, TZS_NO_FSYNC, true, &report, &err), TZS_OK);
  CHECK(report.ptr != NULL && memmem(report.ptr, report.len, "quarantined: gen.1", 18) != NULL);
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_indexed_file_check(dir, TZS_NO_FSYNC, false, &report, &err), TZS_OK);
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_indexed_file_open(dir, 8, 4, TZS_NO_FSYNC, 0, &f, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_indexed_file_check(dir, TZS_NO_FSYNC, true, NULL, &err), TZS_LOCKED, "lock");
  int missing = 0;
  for (uint32_t i = 0; i <= 2000; i += 2) {
    if (i >= 100 && i != 500 && i != 2000) continue;
    key_of(k, i);
    tzs_error *e = NULL;
    tzs_status st = tzs_indexed_file_read(f, k, 8, &v, NULL, 0, &e);
    CHECK(st == TZS_OK || st == TZS_NOT_FOUND);
    tzs_error_free(e);
    if (st == TZS_NOT_FOUND) missing++;
    tzs_bytes_free(&v);
  }
  CHECK(missing == 1);
  tzs_indexed_file_close(f);
  f = NULL;

  /* Octez's GC: filter on the header, async, cancel. */
  snprintf(path, sizeof path, "%s/gc", dir);
  test_gc_filter(path);

  /* Header kept in the value. */
  CHECK_STATUS(tzs_indexed_file_open(sdir, 8, 4, TZS_HEADER_IN_VALUE | TZS_NO_FSYNC, 0, &f, &err), TZS_OK);
  key_of(k, 1);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, NULL, 0, (const uint8_t *)"HEADbody", 8, true, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, h, 4, (const uint8_t *)"HEADbody", 8, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, NULL, 0, (const uint8_t *)"HEA", 3, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_header(f, k, 8, hout, 4, &err), TZS_OK);
  CHECK(memcmp(hout, "HEAD", 4) == 0);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, hout, 4, &err), TZS_OK);
  CHECK_BYTES(v, "HEADbody");
  tzs_bytes_free(&v);
  tzs_indexed_file_close(f);

  /* A zero-size header may be passed as NULL, 0. */
  char zdir[700];
  snprintf(zdir, sizeof zdir, "%s/zero-header", dir);
  CHECK_STATUS(tzs_indexed_file_open(zdir, 8, 0, TZS_NO_FSYNC, 0, &f, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_append(f, k, 8, NULL, 0, (const uint8_t *)"v", 1, true, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_read(f, k, 8, &v, NULL, 0, &err), TZS_OK);
  CHECK_BYTES(v, "v");
  tzs_bytes_free(&v);
  tzs_indexed_file_close(f);

  return check_summary("test_indexed_file");
}

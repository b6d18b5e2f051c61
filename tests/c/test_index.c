/* C API of the index: every function and every status it can return. */
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "check.h"

static char dir[512];
static char rdir[600];
static char path[700];

static void key_of(uint8_t k[32], uint32_t i) {
  memset(k, 0, 32);
  memcpy(k, &i, sizeof i);
  k[31] = 0x5a;
}

/* Whether the (not NUL-terminated) bytes `b` contain `needle`. */
static int bytes_contain(tzs_bytes b, const char *needle) {
  char buf[4096];
  size_t n = b.len < sizeof buf - 1 ? b.len : sizeof buf - 1;
  if (n > 0) memcpy(buf, b.ptr, n);
  buf[n] = 0;
  return strstr(buf, needle) != NULL;
}

/* What a GC filter of these tests is given: counts, and the index it may
 * call back into. */
struct filter_ctx {
  tzs_index *ix;
  uint32_t below; /* keep keys below this */
  unsigned calls;
  unsigned refused; /* calls back into the index refused as they must be */
  unsigned read_ok; /* reads from inside the filter that worked */
};

static uint32_t id_of(const uint8_t *key) {
  uint32_t i;
  memcpy(&i, key, sizeof i);
  return i;
}

static bool keep_below(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *value,
                       size_t value_len) {
  struct filter_ctx *c = ctx;
  c->calls++;
  return key_len == 32 && value_len == 8 && value != NULL && id_of(key) < c->below;
}

/* Reads its own index (allowed) and tries to write to it and to wait for
 * its GC (refused with TZS_INVALID_ARGUMENT, never a deadlock). */
static bool keep_even_calling_back(void *ctx, const uint8_t *key, size_t key_len,
                                   const uint8_t *value, size_t value_len) {
  struct filter_ctx *c = ctx;
  uint8_t out[8];
  bool started = true;
  c->calls++;
  if (tzs_index_find(c->ix, key, key_len, out, sizeof out, NULL) == TZS_OK &&
      memcmp(out, value, value_len) == 0 && tzs_index_is_merging(c->ix))
    c->read_ok++;
  if (tzs_index_add(c->ix, key, key_len, value, value_len, false, NULL) == TZS_INVALID_ARGUMENT)
    c->refused++;
  if (tzs_index_await_gc(c->ix, NULL) == TZS_INVALID_ARGUMENT) c->refused++;
  if (tzs_index_gc(c->ix, keep_below, ctx, true, &started, NULL) == TZS_INVALID_ARGUMENT)
    c->refused++;
  if (tzs_index_clear(c->ix, NULL) == TZS_INVALID_ARGUMENT) c->refused++;
  return id_of(key) % 2 == 0;
}

/* Set by the test just before it cancels; the filter waits for it, then
 * gives the cancel time to land before it goes on. */
static atomic_int about_to_cancel;

static bool keep_none_slowly(void *ctx, const uint8_t *key, size_t key_len, const uint8_t *value,
                             size_t value_len) {
  (void)key;
  (void)key_len;
  (void)value;
  (void)value_len;
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

static void fill(tzs_index *ix, uint32_t n) {
  uint8_t k[32], v[8];
  for (uint32_t i = 0; i < n; i++) {
    key_of(k, i);
    memcpy(v, &i, sizeof i);
    memset(v + 4, 2, 4);
    CHECK_STATUS(tzs_index_add(ix, k, 32, v, 8, false, &err), TZS_OK);
  }
  CHECK_STATUS(tzs_index_flush(ix, &err), TZS_OK);
}

/* Filter, GC (waited for, in the background, cancelled), clear,
 * try_merge, is_merging, on a fresh index in `gdir`. */
static void test_gc(const char *gdir) {
  tzs_index *ix = NULL, *ro = NULL;
  uint8_t k[32], out[8];
  bool started = false, cancelled = false;
  struct filter_ctx c = {0};
  CHECK_STATUS(tzs_index_open(gdir, 32, 8, TZS_NO_FSYNC, 64, &ix, &err), TZS_OK);
  fill(ix, 1000);

  /* Filter: durable on return, called once per binding. */
  CHECK_STATUS(tzs_index_filter(NULL, keep_below, &c, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_filter(ix, NULL, &c, &err), TZS_INVALID_ARGUMENT);
  c.below = 600;
  CHECK_STATUS(tzs_index_filter(ix, keep_below, &c, &err), TZS_OK);
  CHECK(c.calls == 1000);
  CHECK(tzs_index_len(ix) == 600);
  key_of(k, 700);
  CHECK_STATUS(tzs_index_find(ix, k, 32, out, 8, &err), TZS_NOT_FOUND);
  key_of(k, 599);
  CHECK_STATUS(tzs_index_find(ix, k, 32, out, 8, &err), TZS_OK);

  /* A filter calling back into its index: reads work, the rest is refused. */
  memset(&c, 0, sizeof c);
  c.ix = ix;
  CHECK_STATUS(tzs_index_filter(ix, keep_even_calling_back, &c, &err), TZS_OK);
  CHECK(c.calls == 600);
  CHECK(c.read_ok == 600);
  CHECK(c.refused == 4 * 600);
  CHECK(tzs_index_len(ix) == 300);

  /* GC in the background, then waited for; a second request is ignored. */
  memset(&c, 0, sizeof c);
  c.below = 100;
  CHECK_STATUS(tzs_index_gc(ix, keep_below, &c, false, &started, &err), TZS_OK);
  CHECK(started);
  CHECK_STATUS(tzs_index_await_gc(ix, &err), TZS_OK);
  CHECK(tzs_index_is_gc_finished(ix));
  CHECK(tzs_index_len(ix) == 50);
  c.below = 10;
  CHECK_STATUS(tzs_index_gc(ix, keep_below, &c, true, NULL, &err), TZS_OK);
  CHECK(tzs_index_len(ix) == 5);
  CHECK_STATUS(tzs_index_gc(NULL, keep_below, &c, true, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_gc(ix, NULL, &c, true, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_await_gc(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK(!tzs_index_is_gc_finished(NULL));

  /* Cancel: the index is left as it was, and a later GC works. */
  fill(ix, 5000);
  memset(&c, 0, sizeof c);
  atomic_store(&about_to_cancel, 0);
  CHECK_STATUS(tzs_index_gc(ix, keep_none_slowly, &c, false, &started, &err), TZS_OK);
  CHECK(started);
  started = true;
  CHECK_STATUS(tzs_index_gc(ix, keep_below, &c, false, &started, &err), TZS_OK);
  CHECK(!started);
  atomic_store(&about_to_cancel, 1);
  CHECK_STATUS(tzs_index_cancel_gc(ix, &cancelled, &err), TZS_OK);
  CHECK(cancelled);
  CHECK(tzs_index_is_gc_finished(ix));
  CHECK_STATUS(tzs_index_await_gc(ix, &err), TZS_OK);
  CHECK(tzs_index_len(ix) == 5000);
  CHECK_STATUS(tzs_index_cancel_gc(ix, &cancelled, &err), TZS_OK);
  CHECK(!cancelled);
  CHECK_STATUS(tzs_index_cancel_gc(NULL, &cancelled, &err), TZS_INVALID_ARGUMENT);
  memset(&c, 0, sizeof c);
  c.below = 2000;
  CHECK_STATUS(tzs_index_gc(ix, keep_below, &c, true, &started, &err), TZS_OK);
  CHECK(started && tzs_index_len(ix) == 2000);

  /* try_merge: merges whatever the log holds, at once. */
  CHECK_STATUS(tzs_index_await_merge(ix, &err), TZS_OK);
  CHECK_STATUS(tzs_index_try_merge(ix, &started, &err), TZS_OK);
  CHECK(!started); /* empty log */
  key_of(k, 9000);
  memset(out, 3, sizeof out);
  CHECK_STATUS(tzs_index_add(ix, k, 32, out, 8, true, &err), TZS_OK);
  CHECK_STATUS(tzs_index_try_merge(ix, &started, &err), TZS_OK);
  CHECK(started);
  CHECK_STATUS(tzs_index_await_merge(ix, &err), TZS_OK);
  CHECK(!tzs_index_is_merging(ix));
  CHECK(!tzs_index_is_merging(NULL));
  CHECK_STATUS(tzs_index_try_merge(NULL, &started, &err), TZS_INVALID_ARGUMENT);

  /* Read-only handles refuse them; clear empties durably. */
  CHECK_STATUS(tzs_index_open(gdir, 32, 8, TZS_READONLY, 0, &ro, &err), TZS_OK);
  CHECK(tzs_index_len(ro) == 2001);
  CHECK_STATUS(tzs_index_filter(ro, keep_below, &c, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_index_gc(ro, keep_below, &c, true, NULL, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_index_clear(ro, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_index_try_merge(ro, NULL, &err), TZS_READ_ONLY);
  CHECK(!tzs_index_is_merging(ro));
  CHECK_STATUS(tzs_index_clear(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_clear(ix, &err), TZS_OK);
  CHECK(tzs_index_len(ix) == 0);
  CHECK_STATUS(tzs_index_sync(ro, &err), TZS_OK);
  CHECK(tzs_index_len(ro) == 0);
  tzs_index_close(ro);
  CHECK_STATUS(tzs_index_add(ix, k, 32, out, 8, true, &err), TZS_OK);
  tzs_index_close(ix);
  CHECK_STATUS(tzs_index_open(gdir, 32, 8, TZS_NO_FSYNC, 64, &ix, &err), TZS_OK);
  CHECK(tzs_index_len(ix) == 1);
  tzs_index_close(ix);
}

static void flip_byte(const char *p, long from_end) {
  FILE *f = fopen(p, "r+b");
  if (!f) return;
  fseek(f, -from_end, SEEK_END);
  int c = fgetc(f);
  fseek(f, -from_end, SEEK_END);
  fputc(c ^ 0x40, f);
  fclose(f);
}

int main(int argc, char **argv) {
  const char *base = argc > 1 ? argv[1] : "/tmp";
  snprintf(dir, sizeof dir, "%s/tzs-c-index-XXXXXX", base);
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  snprintf(rdir, sizeof rdir, "%s/removable", dir);

  uint8_t k[32], v[8], out[8], kout[32];
  tzs_index *ix = NULL, *ro = NULL, *other = NULL;

  /* Open: bad arguments. */
  CHECK_STATUS(tzs_index_open(NULL, 32, 8, 0, 0, &ix, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_open("", 32, 8, 0, 0, &ix, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_open(dir, 32, 8, 0, 0, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_open(dir, 32, 8, 0x100, 0, &ix, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_open(dir, 0, 8, 0, 0, &ix, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_open("\xff\xfe", 32, 8, 0, 0, &ix, &err), TZS_INVALID_ARGUMENT);
  snprintf(path, sizeof path, "%s/missing", dir);
  CHECK_STATUS(tzs_index_open(path, 32, 8, TZS_READONLY, 0, &ix, &err), TZS_NOT_FOUND);
  CHECK(tzs_index_open(NULL, 32, 8, 0, 0, &ix, NULL) == TZS_INVALID_ARGUMENT);

  /* Open read-write; a second read-write open is refused. */
  CHECK_STATUS(tzs_index_open(dir, 32, 8, TZS_NO_FSYNC, 64, &ix, &err), TZS_OK);
  CHECK(ix != NULL);
  CHECK_ERROR_MENTIONS(tzs_index_open(dir, 32, 8, 0, 64, &other, &err), TZS_LOCKED, "lock");
  CHECK(tzs_index_len(ix) == 0);
  CHECK(tzs_index_len(NULL) == 0);

  /* Add, find, mem; wrong sizes and NULLs. */
  key_of(k, 1);
  memset(v, 7, sizeof v);
  CHECK_STATUS(tzs_index_find(ix, k, 32, out, 8, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_index_mem(ix, k, 32, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_index_add(ix, k, 32, v, 8, true, &err), TZS_OK);
  CHECK_STATUS(tzs_index_mem(ix, k, 32, &err), TZS_OK);
  memset(out, 0, sizeof out);
  CHECK_STATUS(tzs_index_find(ix, k, 32, out, 8, &err), TZS_OK);
  CHECK(memcmp(out, v, 8) == 0);
  CHECK_STATUS(tzs_index_add(NULL, k, 32, v, 8, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_add(ix, NULL, 32, v, 8, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_add(ix, k, 31, v, 8, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_add(ix, k, 32, v, 9, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_add(ix, k, 32, NULL, 8, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_find(ix, k, 32, out, 7, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_find(ix, k, 32, NULL, 8, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_find(ix, k, 33, out, 8, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_find(NULL, k, 32, out, 8, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_mem(ix, NULL, 32, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_mem(NULL, k, 32, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_remove(ix, k, 32, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_remove(NULL, k, 32, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_flush(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_sync(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_await_merge(NULL, &err), TZS_INVALID_ARGUMENT);

  /* Many adds (several merges with log_size 64), replacements. */
  for (uint32_t i = 0; i < 1000; i++) {
    key_of(k, i);
    memcpy(v, &i, sizeof i);
    memset(v + 4, 1, 4);
    CHECK_STATUS(tzs_index_add(ix, k, 32, v, 8, false, &err), TZS_OK);
  }
  CHECK_STATUS(tzs_index_flush(ix, &err), TZS_OK);
  CHECK_STATUS(tzs_index_sync(ix, &err), TZS_OK);
  CHECK_STATUS(tzs_index_await_merge(ix, &err), TZS_OK);
  CHECK(tzs_index_len(ix) == 1000);
  int all_found = 1;
  for (uint32_t i = 0; i < 1000; i++) {
    key_of(k, i);
    tzs_error *e = NULL;
    if (tzs_index_find(ix, k, 32, out, 8, &e) != TZS_OK || memcmp(out, &i, 4) != 0) all_found = 0;
    tzs_error_free(e);
  }
  CHECK(all_found);

  /* Read-only instance: writes refused, sees new data after sync. */
  CHECK_STATUS(tzs_index_open(dir, 32, 8, TZS_READONLY, 0, &ro, &err), TZS_OK);
  CHECK(tzs_index_len(ro) == 1000);
  CHECK_STATUS(tzs_index_add(ro, k, 32, v, 8, false, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_index_flush(ro, &err), TZS_OK);
  key_of(k, 5000);
  CHECK_STATUS(tzs_index_add(ix, k, 32, v, 8, true, &err), TZS_OK);
  CHECK_STATUS(tzs_index_mem(ro, k, 32, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_index_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_index_mem(ro, k, 32, &err), TZS_OK);
  tzs_index_close(ro);
  ro = NULL;

  /* Iteration. */
  tzs_index_iter *it = NULL;
  CHECK_STATUS(tzs_index_iter_new(NULL, &it, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_iter_new(ix, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_iter_new(ix, &it, &err), TZS_OK);
  CHECK_STATUS(tzs_index_iter_next(it, kout, 31, out, 8, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_iter_next(it, kout, 32, NULL, 8, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_iter_next(NULL, kout, 32, out, 8, &err), TZS_INVALID_ARGUMENT);
  unsigned n = 0;
  for (;;) {
    tzs_error *e = NULL;
    tzs_status st = tzs_index_iter_next(it, kout, 32, out, 8, &e);
    tzs_error_free(e);
    if (st != TZS_OK) {
      CHECK(st == TZS_DONE);
      break;
    }
    n++;
  }
  CHECK(n == 1001);
  CHECK_STATUS(tzs_index_iter_next(it, kout, 32, out, 8, &err), TZS_DONE);
  tzs_index_iter_free(it);
  tzs_index_iter_free(NULL);

  /* Reopen with other sizes is refused. */
  tzs_index_close(ix);
  tzs_index_close(NULL);
  ix = NULL;
  CHECK_STATUS(tzs_index_open(dir, 32, 9, 0, 0, &ix, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_open(dir, 32, 8, TZS_REMOVABLE, 0, &ix, &err), TZS_INVALID_ARGUMENT);

  /* A damaged data file is reported as corrupted. */
  snprintf(path, sizeof path, "%s/data", dir);
  flip_byte(path, 5);
  CHECK_STATUS(tzs_index_open(dir, 32, 8, 0, 0, &ix, &err), TZS_CORRUPTED);
  CHECK_STATUS(tzs_index_open(dir, 32, 8, TZS_READONLY, 0, &ix, &err), TZS_CORRUPTED);
  flip_byte(path, 5);
  CHECK_STATUS(tzs_index_open(dir, 32, 8, 0, 0, &ix, &err), TZS_OK);
  CHECK(tzs_index_len(ix) == 1001);
  /* Repair needs the lock: refused while a read-write handle is open. */
  CHECK_STATUS(tzs_index_check(dir, 0, true, NULL, &err), TZS_LOCKED);
  tzs_index_close(ix);

  /* Ten bindings rewritten with the values they have, flushed into the
   * log and left there (fewer than a log's worth: no merge takes them), so
   * that a log surely holds entries whatever background merges did. */
  CHECK_STATUS(tzs_index_open(dir, 32, 8, 0, 0, &ix, &err), TZS_OK);
  for (uint32_t i = 0; i < 10; i++) {
    key_of(k, i);
    memcpy(v, &i, sizeof i);
    memset(v + 4, 1, 4);
    CHECK_STATUS(tzs_index_add(ix, k, 32, v, 8, false, &err), TZS_OK);
  }
  CHECK_STATUS(tzs_index_flush(ix, &err), TZS_OK);
  tzs_index_close(ix);

  /* Check: clean, then a damaged log entry is found (naming the log) and
   * repair keeps every other entry. */
  tzs_bytes report = {0};
  CHECK_STATUS(tzs_index_check(dir, 0, false, &report, &err), TZS_OK);
  CHECK(report.len > 8 && memcmp(report.ptr, "checked ", 8) == 0);
  CHECK(report.len > 0 && !bytes_contain(report, "problem"));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_index_check(NULL, 0, false, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_check(dir, TZS_READONLY, false, NULL, &err), TZS_INVALID_ARGUMENT);
  snprintf(path, sizeof path, "%s/no-such-index", dir);
  CHECK_STATUS(tzs_index_check(path, 0, false, NULL, &err), TZS_NOT_FOUND);
  /* The longest log (a merge may have left others empty). */
  char log_path[800];
  long log_len = 0;
  for (int g = 0; g < 64; g++) {
    struct stat st;
    char p[800];
    snprintf(p, sizeof p, "%s/log.%d", dir, g);
    if (stat(p, &st) == 0 && (long)st.st_size > log_len) {
      log_len = (long)st.st_size;
      memcpy(log_path, p, sizeof p);
    }
  }
  CHECK(log_len > 64 + 44);
  /* An entry in the middle of the log (44-byte entries after a 64-byte
   * header and synced-end slots): not a torn tail. */
  flip_byte(log_path, log_len - (64 + ((log_len - 64) / 44 / 2) * 44 + 3));
  CHECK_ERROR_MENTIONS(tzs_index_open(dir, 32, 8, 0, 0, &ix, &err), TZS_CORRUPTED, "offset");
  CHECK_ERROR_MENTIONS(tzs_index_open(dir, 32, 8, TZS_READONLY, 0, &ix, &err), TZS_CORRUPTED,
                       "log.");
  CHECK_ERROR_MENTIONS(tzs_index_check(dir, 0, false, &report, &err), TZS_CORRUPTED,
                       "fails its checksum");
  CHECK(bytes_contain(report, "problem: "));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_index_check(dir, TZS_NO_FSYNC, true, &report, &err), TZS_OK);
  CHECK(bytes_contain(report, "quarantined: log."));
  CHECK(bytes_contain(report, "entries kept"));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_index_check(dir, 0, false, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_index_open(dir, 32, 8, 0, 0, &ix, &err), TZS_OK);
  /* The dropped entry's key is gone, or back to the value merged before. */
  CHECK(tzs_index_len(ix) == 1000 || tzs_index_len(ix) == 1001);
  tzs_index_close(ix);

  /* Filter, GC, clear, try_merge. */
  snprintf(path, sizeof path, "%s/gc", dir);
  test_gc(path);

  /* Removable index. */
  CHECK_STATUS(tzs_index_open(rdir, 32, 8, TZS_REMOVABLE | TZS_NO_FSYNC, 16, &ix, &err), TZS_OK);
  for (uint32_t i = 0; i < 100; i++) {
    key_of(k, i);
    CHECK_STATUS(tzs_index_add(ix, k, 32, v, 8, false, &err), TZS_OK);
  }
  key_of(k, 3);
  CHECK_STATUS(tzs_index_remove(ix, k, 32, true, &err), TZS_OK);
  CHECK_STATUS(tzs_index_remove(ix, k, 32, false, &err), TZS_OK);
  CHECK_STATUS(tzs_index_remove(ix, k, 31, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_remove(ix, NULL, 32, false, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_index_mem(ix, k, 32, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_index_find(ix, k, 32, out, 8, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_index_await_merge(ix, &err), TZS_OK);
  CHECK(tzs_index_len(ix) == 99);
  CHECK_STATUS(tzs_index_open(rdir, 32, 8, TZS_REMOVABLE | TZS_READONLY, 0, &ro, &err), TZS_OK);
  CHECK_STATUS(tzs_index_remove(ro, k, 32, false, &err), TZS_READ_ONLY);
  tzs_index_close(ro);
  tzs_index_close(ix);

  return check_summary("test_index");
}

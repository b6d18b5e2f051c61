/* C API of borrowed indexed-file reads (tzs_indexed_file_read_view): views
 * equal the copying reads, mapped (present at open) or not (appended
 * since); misses and bad arguments; a view held across a GC that unlinks
 * its values file and across the close; two reader threads reading views
 * while the main thread appends and compacts. Run under valgrind by the
 * test command, which reports any read of unmapped or freed memory. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include "check.h"

enum { KEY = 8, HEADER = 4, FIRST = 300, LAST = 600 };

static void make_key(uint8_t k[KEY], uint64_t i) {
  for (int b = 0; b < KEY; b++) k[b] = (uint8_t)(i >> (8 * (KEY - 1 - b)));
}

static void make_header(uint8_t h[HEADER], uint64_t i) {
  uint32_t v = (uint32_t)(i * 7 + 1);
  for (int b = 0; b < HEADER; b++) h[b] = (uint8_t)(v >> (8 * (HEADER - 1 - b)));
}

/* Value i: 16..2,063 bytes, each byte a function of i and its position. */
static size_t make_value(uint8_t *v, uint64_t i) {
  size_t len = 16 + (size_t)(i * 37 % 2048);
  for (size_t p = 0; p < len; p++) v[p] = (uint8_t)(i * 31 + p);
  return len;
}

static void append(tzs_indexed_file *f, uint64_t i) {
  uint8_t k[KEY], h[HEADER], v[4096];
  make_key(k, i);
  make_header(h, i);
  size_t len = make_value(v, i);
  CHECK_STATUS(tzs_indexed_file_append(f, k, KEY, h, HEADER, v, len, false, &err), TZS_OK);
}

/* Whether the views are value i and its header. */
static int views_are(tzs_view value, tzs_view header, uint64_t i) {
  uint8_t h[HEADER], v[4096];
  make_header(h, i);
  size_t len = make_value(v, i);
  return value.ptr && value.len == len && memcmp(value.ptr, v, len) == 0 && header.ptr &&
         header.len == HEADER && memcmp(header.ptr, h, HEADER) == 0;
}

static bool keep_even(const uint8_t *key, size_t key_len, void *ctx) {
  (void)ctx;
  return key_len == KEY && key[KEY - 1] % 2 == 0;
}

static atomic_int top;
static atomic_int running;

/* Reads views of even keys (which every GC keeps), each checked twice
 * around a yield. */
static void *reader_thread(void *arg) {
  tzs_indexed_file *f = arg;
  tzs_reader *r = NULL;
  if (tzs_reader_new(&r, NULL) != TZS_OK) return (void *)1;
  long bad = 0, reads = 0;
  unsigned seed = 11;
  while (atomic_load(&running)) {
    uint64_t i = (uint64_t)(rand_r(&seed) % (unsigned)atomic_load(&top)) & ~(uint64_t)1;
    uint8_t k[KEY];
    make_key(k, i);
    tzs_view v, h;
    if (tzs_indexed_file_read_view(f, r, k, KEY, &v, &h, NULL) != TZS_OK || !views_are(v, h, i)) {
      bad++;
      continue;
    }
    sched_yield();
    bad += !views_are(v, h, i);
    reads++;
  }
  tzs_reader_free(r);
  return (void *)(bad != 0 || reads == 0 ? (intptr_t)1 : (intptr_t)0);
}

int main(int argc, char **argv) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tzs-c-value-reader-XXXXXX", argc > 1 ? argv[1] : "/tmp");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }

  /* FIRST values, reopened so a map covers them; then 20 more unmapped. */
  tzs_indexed_file *f = NULL;
  CHECK_STATUS(tzs_indexed_file_open(dir, KEY, HEADER, TZS_NO_FSYNC, 64, &f, &err), TZS_OK);
  if (!f) return check_summary("value_reader");
  for (uint64_t i = 0; i < FIRST; i++) append(f, i);
  tzs_indexed_file_close(f);
  f = NULL;
  CHECK_STATUS(tzs_indexed_file_open(dir, KEY, HEADER, TZS_NO_FSYNC, 64, &f, &err), TZS_OK);
  if (!f) return check_summary("value_reader");
  for (uint64_t i = FIRST; i < FIRST + 20; i++) append(f, i);

  tzs_reader *r = NULL, *held = NULL;
  CHECK_STATUS(tzs_reader_new(&r, &err), TZS_OK);
  CHECK_STATUS(tzs_reader_new(&held, &err), TZS_OK);

  /* Views equal the copying reads. */
  uint8_t k[KEY];
  tzs_view v, h;
  int bad = 0;
  for (uint64_t i = 0; i < FIRST + 20; i++) {
    make_key(k, i);
    bad += tzs_indexed_file_read_view(f, r, k, KEY, &v, &h, NULL) != TZS_OK || !views_are(v, h, i);
    tzs_bytes copy = {NULL, 0};
    uint8_t hc[HEADER];
    bad += tzs_indexed_file_read(f, k, KEY, &copy, hc, HEADER, NULL) != TZS_OK || copy.len != v.len ||
           memcmp(copy.ptr, v.ptr, v.len) != 0 || memcmp(hc, h.ptr, HEADER) != 0;
    tzs_bytes_free(&copy);
  }
  CHECK(bad == 0);
  /* The header is optional; misses and bad arguments. */
  make_key(k, 7);
  CHECK_STATUS(tzs_indexed_file_read_view(f, r, k, KEY, &v, NULL, &err), TZS_OK);
  uint8_t scratch[4096];
  CHECK(v.len == make_value(scratch, 7));
  make_key(k, 100000);
  CHECK_STATUS(tzs_indexed_file_read_view(f, r, k, KEY, &v, &h, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_indexed_file_read_view(f, r, k, KEY - 1, &v, &h, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_read_view(f, NULL, k, KEY, &v, &h, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_read_view(NULL, r, k, KEY, &v, &h, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_indexed_file_read_view(f, r, k, KEY, NULL, &h, &err), TZS_INVALID_ARGUMENT);

  /* A view of an odd key, held across the GC that drops it and unlinks
   * the values file its map is of. */
  tzs_view held_v, held_h;
  make_key(k, 11);
  CHECK_STATUS(tzs_indexed_file_read_view(f, held, k, KEY, &held_v, &held_h, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_gc(f, keep_even, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_await_gc(f, &err), TZS_OK);
  CHECK_STATUS(tzs_indexed_file_read_view(f, r, k, KEY, &v, &h, &err), TZS_NOT_FOUND);
  CHECK(views_are(held_v, held_h, 11));

  /* Two reader threads while values are appended and compacted. */
  atomic_store(&top, FIRST);
  atomic_store(&running, 1);
  pthread_t threads[2];
  for (int t = 0; t < 2; t++) pthread_create(&threads[t], NULL, reader_thread, f);
  for (uint64_t i = FIRST + 20; i < LAST; i++) {
    append(f, i);
    if (i % 100 == 0) {
      CHECK_STATUS(tzs_indexed_file_flush(f, &err), TZS_OK);
      atomic_store(&top, (int)i);
      CHECK_STATUS(tzs_indexed_file_gc(f, keep_even, NULL, &err), TZS_OK);
      CHECK_STATUS(tzs_indexed_file_await_gc(f, &err), TZS_OK);
    }
  }
  atomic_store(&running, 0);
  for (int t = 0; t < 2; t++) {
    void *failed = NULL;
    pthread_join(threads[t], &failed);
    CHECK(failed == NULL);
  }

  /* Views outlive the store. */
  make_key(k, 200);
  CHECK_STATUS(tzs_indexed_file_read_view(f, r, k, KEY, &v, &h, &err), TZS_OK);
  tzs_indexed_file_close(f);
  CHECK(views_are(v, h, 200));
  CHECK(views_are(held_v, held_h, 11));
  tzs_reader_free(held);
  tzs_reader_free(r);
  return check_summary("value_reader");
}

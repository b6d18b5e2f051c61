/* C API of borrowed block reads (tzs_reader, tzs_*_read_view): views equal
 * what the copying reads return; a view stays valid and unchanged while a
 * merge retires its floating file, a rolling GC deletes its chunk, and the
 * store is closed; two reader threads read views while the main thread
 * stores blocks and merges. Run under valgrind by the test command, which
 * reports any read of unmapped or freed memory. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"

enum { CYCLE = 20, FIRST = 100, LAST = 260 };

static void make_hash(uint8_t h[32], int n) {
  memset(h, 0x5C, 32);
  h[0] = (uint8_t)(n >> 8);
  h[1] = (uint8_t)n;
}

/* Writes block n's contents or metadata text into buf. */
static size_t text(char *buf, size_t cap, const char *what, int n) {
  return (size_t)snprintf(buf, cap, "%s of block %d, padded to be a longer record %040d", what, n, n);
}

static void store_block(tzs_block_store *s, int n) {
  char contents[128], meta[128];
  tzs_block b;
  memset(&b, 0, sizeof b);
  make_hash(b.hash, n);
  make_hash(b.predecessor, n > 0 ? n - 1 : 0);
  b.level = n;
  b.contents.ptr = (uint8_t *)contents;
  b.contents.len = text(contents, sizeof contents, "contents", n);
  b.has_metadata = true;
  b.metadata.ptr = (uint8_t *)meta;
  b.metadata.len = text(meta, sizeof meta, "metadata", n);
  if (n == 0) {
    /* The genesis is given at creation. */
    return;
  }
  CHECK_STATUS(tzs_block_store_store_with(s, &b, false, &err), TZS_OK);
}

static int view_is(tzs_view v, const char *what, int n) {
  char want[128];
  size_t len = text(want, sizeof want, what, n);
  return v.ptr != NULL && v.len == len && memcmp(v.ptr, want, len) == 0;
}

/* Whether `v` is block n, with its metadata when `with_metadata`. */
static int block_is(const tzs_block_view *v, int n, int with_metadata) {
  uint8_t h[32], p[32];
  make_hash(h, n);
  make_hash(p, n > 0 ? n - 1 : 0);
  return v->level == n && memcmp(v->hash, h, 32) == 0 && memcmp(v->predecessor, p, 32) == 0 &&
         view_is(v->contents, "contents", n) &&
         (with_metadata ? v->has_metadata && view_is(v->metadata, "metadata", n)
                        : !v->has_metadata && v->metadata.ptr == NULL && v->metadata.len == 0);
}

/* Whether the view equals the copying read of the same block. */
static int same_as_copy(tzs_block_store *s, const tzs_block_view *v, int read_metadata) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  if (tzs_block_store_read(s, v->hash, 0, read_metadata, &b, NULL) != TZS_OK) return 0;
  int same = b.level == v->level && b.contents.len == v->contents.len &&
             memcmp(b.contents.ptr, v->contents.ptr, b.contents.len) == 0 &&
             b.has_metadata == v->has_metadata && b.metadata.len == v->metadata.len &&
             (b.metadata.len == 0 || memcmp(b.metadata.ptr, v->metadata.ptr, b.metadata.len) == 0);
  tzs_block_free(&b);
  return same;
}

/* Merges with `head` the chain's cycles not yet cemented up to
 * `last_end`, LPBL at it and max_op_ttl 1, and waits. */
static int cemented_to = 0;
static void merge_to(tzs_block_store *s, int head, int last_end) {
  int32_t ends[32];
  size_t n = 0;
  for (int e = cemented_to + CYCLE; e <= last_end && n < 32; e += CYCLE) ends[n++] = e;
  cemented_to = last_end;
  uint8_t h[32];
  make_hash(h, head);
  CHECK_STATUS(tzs_block_store_merge_preserving(s, h, ends, n, 1, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_await_merge(s, &err), TZS_OK);
}

static tzs_block_store_options opts(void) {
  tzs_block_store_options o = tzs_block_store_options_default();
  o.flags = TZS_NO_FSYNC;
  o.history_mode = TZS_HISTORY_ROLLING;
  o.history_offset = 1;
  o.index_log_size = 64;
  return o;
}

/* Reader threads: views of blocks near the moving top, which a ROLLING 1
 * store keeps whatever merge runs, each checked twice around a yield. */
static atomic_int top;
static atomic_int running;

static void *reader_thread(void *arg) {
  tzs_block_store *s = arg;
  tzs_reader *r = NULL;
  if (tzs_reader_new(&r, NULL) != TZS_OK) return (void *)1;
  long bad = 0, reads = 0;
  unsigned seed = 7;
  while (atomic_load(&running)) {
    int t = atomic_load(&top);
    int n = t - (int)(rand_r(&seed) % 30);
    uint8_t h[32];
    make_hash(h, n);
    tzs_block_view v;
    tzs_status st = tzs_block_store_read_view(s, r, h, 0, true, &v, NULL);
    if (st != TZS_OK || !block_is(&v, n, 1)) {
      bad++;
      continue;
    }
    sched_yield();
    bad += !block_is(&v, n, 1);
    reads++;
  }
  tzs_reader_free(r);
  return (void *)(bad != 0 || reads == 0 ? (intptr_t)1 : (intptr_t)0);
}

int main(int argc, char **argv) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tzs-c-block-reader-XXXXXX", argc > 1 ? argv[1] : "/tmp");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  tzs_block_store_options o = opts();

  /* Genesis and FIRST blocks, reopened so the floating file is mapped. */
  char gc[128], gm[128];
  tzs_block g;
  memset(&g, 0, sizeof g);
  make_hash(g.hash, 0);
  make_hash(g.predecessor, 0);
  g.contents.ptr = (uint8_t *)gc;
  g.contents.len = text(gc, sizeof gc, "contents", 0);
  g.has_metadata = true;
  g.metadata.ptr = (uint8_t *)gm;
  g.metadata.len = text(gm, sizeof gm, "metadata", 0);
  tzs_block_store *s = NULL;
  CHECK_STATUS(tzs_block_store_create(dir, &o, &g, &s, &err), TZS_OK);
  for (int n = 1; n <= FIRST; n++) store_block(s, n);
  tzs_block_store_close(s);
  s = NULL;
  CHECK_STATUS(tzs_block_store_load(dir, &o, g.hash, &s, &err), TZS_OK);
  if (!s) return check_summary("block_reader");

  tzs_reader *r = NULL, *held_floating = NULL, *held_cemented = NULL;
  CHECK_STATUS(tzs_reader_new(&r, &err), TZS_OK);
  CHECK_STATUS(tzs_reader_new(&held_floating, &err), TZS_OK);
  CHECK_STATUS(tzs_reader_new(&held_cemented, &err), TZS_OK);
  CHECK_STATUS(tzs_reader_new(NULL, &err), TZS_INVALID_ARGUMENT);

  /* Views equal the copying reads, with and without metadata, at a
   * distance; misses and bad arguments. */
  uint8_t h[32];
  tzs_block_view v;
  int bad = 0;
  for (int n = 0; n <= FIRST; n++) {
    make_hash(h, n);
    for (int md = 0; md <= 1; md++) {
      tzs_status st = tzs_block_store_read_view(s, r, h, 0, md, &v, NULL);
      bad += st != TZS_OK || !block_is(&v, n, md) || !same_as_copy(s, &v, md);
    }
  }
  CHECK(bad == 0);
  make_hash(h, 50);
  CHECK_STATUS(tzs_block_store_read_view(s, r, h, 7, true, &v, &err), TZS_OK);
  CHECK(block_is(&v, 43, 1));
  make_hash(h, FIRST + 1);
  CHECK_STATUS(tzs_block_store_read_view(s, r, h, 0, true, &v, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_read_by_level_view(s, r, 5, true, &v, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_read_view(s, NULL, h, 0, true, &v, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_read_view(NULL, r, h, 0, true, &v, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_read_view(s, r, NULL, 0, true, &v, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_read_view(s, r, h, 0, true, NULL, &err), TZS_INVALID_ARGUMENT);

  /* A view into the mapped floating file, held across the merge that
   * cements its block and retires the file. */
  tzs_block_view floating_view, cemented_view;
  make_hash(h, 10);
  CHECK_STATUS(tzs_block_store_read_view(s, held_floating, h, 0, true, &floating_view, &err), TZS_OK);
  merge_to(s, FIRST, FIRST - CYCLE);
  CHECK(block_is(&floating_view, 10, 1));
  /* By level from the cemented chunk of 61..80: contents from its map. */
  CHECK_STATUS(tzs_block_store_read_by_level_view(s, held_cemented, 70, false, &cemented_view, &err),
               TZS_OK);
  CHECK(block_is(&cemented_view, 70, 0));
  CHECK_STATUS(tzs_block_store_read_by_level_view(s, r, 80, true, &v, &err), TZS_OK);
  CHECK(block_is(&v, 80, 1));

  /* Two reader threads while blocks are stored and merged; ROLLING 1 GC
   * deletes the chunks behind the held views meanwhile. */
  atomic_store(&top, FIRST);
  atomic_store(&running, 1);
  pthread_t threads[2];
  for (int i = 0; i < 2; i++) pthread_create(&threads[i], NULL, reader_thread, s);
  for (int n = FIRST + 1; n <= LAST; n++) {
    store_block(s, n);
    atomic_store(&top, n);
    if (n % (2 * CYCLE) == 0) merge_to(s, n, n - CYCLE);
  }
  atomic_store(&running, 0);
  for (int i = 0; i < 2; i++) {
    void *failed = NULL;
    pthread_join(threads[i], &failed);
    CHECK(failed == NULL);
  }
  /* The chunks that held 10 and 70 are gone; their views are not. */
  CHECK_STATUS(tzs_block_store_read_by_level_view(s, r, 70, false, &v, &err), TZS_NOT_FOUND);
  CHECK(block_is(&floating_view, 10, 1));
  CHECK(block_is(&cemented_view, 70, 0));

  /* A view outlives the store; release ends it (nothing to check but
   * that valgrind sees no leak and no bad read). */
  make_hash(h, LAST);
  CHECK_STATUS(tzs_block_store_read_view(s, r, h, 0, true, &v, &err), TZS_OK);
  tzs_block_store_close(s);
  CHECK(block_is(&v, LAST, 1));
  CHECK(block_is(&cemented_view, 70, 0));
  tzs_reader_release(held_cemented);
  tzs_reader_release(NULL);
  tzs_reader_free(held_cemented);
  tzs_reader_free(held_floating);
  tzs_reader_free(r);
  tzs_reader_free(NULL);
  return check_summary("block_reader");
}

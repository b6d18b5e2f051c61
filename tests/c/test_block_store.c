/* C API of the block store: every function and every status. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "check.h"

/* Flips one bit of the byte at `offset` of `path`; 0 on success. */
static int flip_byte(const char *path, off_t offset) {
  int fd = open(path, O_RDWR);
  if (fd < 0) return -1;
  unsigned char c;
  int ok = pread(fd, &c, 1, offset) == 1;
  c ^= 0x10;
  ok = ok && pwrite(fd, &c, 1, offset) == 1;
  close(fd);
  return ok ? 0 : -1;
}

static int contains(const tzs_bytes *b, const char *needle) {
  char text[8192];
  size_t n = b->len < sizeof text - 1 ? b->len : sizeof text - 1;
  memcpy(text, b->ptr, n);
  text[n] = 0;
  return strstr(text, needle) != NULL;
}

static void make_hash(uint8_t h[32], int n) {
  memset(h, 0x3C, 32);
  h[0] = (uint8_t)(n >> 8);
  h[1] = (uint8_t)n;
}

static char contents[64];
static char meta[64];

/* What the merge hook saw: set on the merge's worker thread. */
static _Atomic int hook_calls = 0;
static _Atomic unsigned hook_status = 999;
static char hook_message[256];

static void merge_hook(void *ctx, tzs_status status, const char *message) {
  snprintf(hook_message, sizeof hook_message, "%s%s", (const char *)ctx, message);
  hook_status = status;
  hook_calls++;
}

/* Waits (at most two minutes) for the hook's `n`-th call. */
static int wait_hook(int n) {
  struct timespec ms = {0, 1000000};
  for (int i = 0; i < 120000 && hook_calls < n; i++) nanosleep(&ms, NULL);
  return hook_calls >= n;
}

static tzs_block chain_block(int n) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  make_hash(b.hash, n);
  make_hash(b.predecessor, n > 0 ? n - 1 : 0);
  b.level = n;
  snprintf(contents, sizeof contents, "contents %d", n);
  b.contents.ptr = (uint8_t *)contents;
  b.contents.len = strlen(contents);
  snprintf(meta, sizeof meta, "metadata %d", n);
  b.has_metadata = true;
  b.metadata.ptr = (uint8_t *)meta;
  b.metadata.len = strlen(meta);
  return b;
}

int main(int argc, char **argv) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tzs-c-block-store-XXXXXX", argc > 1 ? argv[1] : "/tmp");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  char missing[600];
  snprintf(missing, sizeof missing, "%s/missing", dir);

  tzs_block_store_options o = tzs_block_store_options_default();
  CHECK(o.flags == 0 && o.history_offset == 1 && o.zstd_level > 0);
  o.flags = TZS_NO_FSYNC;
  o.history_mode = TZS_HISTORY_ARCHIVE;
  o.index_log_size = 100;

  tzs_block_store *s = NULL, *s2 = NULL;
  CHECK_STATUS(tzs_block_store_open(NULL, &o, &s, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_open(dir, &o, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_block_store_options bad = o;
  bad.history_mode = 7;
  CHECK_STATUS(tzs_block_store_open(dir, &bad, &s, &err), TZS_INVALID_ARGUMENT);
  bad = o;
  bad.flags = 0x80;
  CHECK_STATUS(tzs_block_store_open(dir, &bad, &s, &err), TZS_INVALID_ARGUMENT);
  bad = o;
  bad.flags = TZS_READONLY;
  CHECK_STATUS(tzs_block_store_open(missing, &bad, &s, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_open(dir, &o, &s, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_block_store_open(dir, &o, &s2, &err), TZS_LOCKED, "lock");

  /* Store a chain of 100 blocks. */
  for (int i = 0; i < 100; i++) {
    tzs_block b = chain_block(i);
    CHECK_STATUS(tzs_block_store_store(s, &b, &err), TZS_OK);
  }
  tzs_block b5 = chain_block(5);
  CHECK_STATUS(tzs_block_store_store(s, &b5, &err), TZS_OK); /* already stored */
  tzs_block orphan = chain_block(500);
  make_hash(orphan.predecessor, 400);
  CHECK_ERROR_MENTIONS(tzs_block_store_store(s, &orphan, &err), TZS_INCONSISTENT, "predecessor");
  CHECK_STATUS(tzs_block_store_store(s, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_store(NULL, &b5, &err), TZS_INVALID_ARGUMENT);

  uint8_t h[32], absent[32];
  make_hash(h, 99);
  make_hash(absent, 4000);
  CHECK_STATUS(tzs_block_store_mem(s, h, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_mem(s, absent, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_mem(s, NULL, &err), TZS_INVALID_ARGUMENT);

  /* Read by hash and distance. */
  tzs_block out;
  memset(&out, 0, sizeof out);
  CHECK_STATUS(tzs_block_store_read(s, h, 0, true, &out, &err), TZS_OK);
  CHECK(out.level == 99);
  CHECK_BYTES(out.contents, "contents 99");
  CHECK(out.has_metadata);
  CHECK_BYTES(out.metadata, "metadata 99");
  tzs_block_free(&out);
  CHECK_STATUS(tzs_block_store_read(s, h, 37, false, &out, &err), TZS_OK);
  CHECK(out.level == 62 && !out.has_metadata);
  CHECK_BYTES(out.contents, "contents 62");
  tzs_block_free(&out);
  CHECK_STATUS(tzs_block_store_read(s, h, 100, false, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_read(s, absent, 0, false, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_read(s, h, 0, false, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_read_by_level(s, 10, false, &out, &err), TZS_NOT_FOUND);

  /* Merge: cement levels 0..79 in chunks of 20. */
  int32_t ends[4] = {19, 39, 59, 79};
  int32_t bad_ends[2] = {39, 19};
  CHECK_STATUS(tzs_block_store_merge(s, h, bad_ends, 2, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_merge(s, h, NULL, 3, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_merge(s, absent, ends, 4, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_merge(s, h, ends, 4, &err), TZS_OK);
  /* Stores keep working during the merge. */
  for (int i = 100; i < 120; i++) {
    tzs_block b = chain_block(i);
    CHECK_STATUS(tzs_block_store_store(s, &b, &err), TZS_OK);
  }
  CHECK_STATUS(tzs_block_store_await_merge(s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_await_merge(s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_await_merge(NULL, &err), TZS_INVALID_ARGUMENT);

  tzs_block_store_stats st;
  CHECK_STATUS(tzs_block_store_read_stats(s, &st, &err), TZS_OK);
  CHECK(st.cemented_lowest == 0 && st.cemented_highest == 79);
  /* 40 above the cemented top and the top itself, kept with its metadata. */
  CHECK(st.cemented_blocks == 80 && st.floating_blocks == 41);
  CHECK(st.merges_done == 1 && !st.merging && st.bytes_on_disk > 0);
  CHECK_STATUS(tzs_block_store_read_stats(s, NULL, &err), TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_block_store_read_by_level(s, 10, true, &out, &err), TZS_OK);
  CHECK(out.level == 10 && out.has_metadata);
  CHECK_BYTES(out.metadata, "metadata 10");
  tzs_block_free(&out);
  CHECK_STATUS(tzs_block_store_read_by_level(s, 90, false, &out, &err), TZS_NOT_FOUND);
  /* Ancestors across the floating/cemented boundary. */
  make_hash(h, 119);
  CHECK_STATUS(tzs_block_store_read(s, h, 110, false, &out, &err), TZS_OK);
  CHECK(out.level == 9);
  tzs_block_free(&out);

  CHECK_STATUS(tzs_block_store_check(s, false, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_check(s, true, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_check(NULL, false, &err), TZS_INVALID_ARGUMENT);
  tzs_block_store_close(s);
  tzs_block_store_close(NULL);

  /* Read-only open sees everything and refuses writes. */
  tzs_block_store_options ro = o;
  ro.flags = TZS_READONLY;
  CHECK_STATUS(tzs_block_store_open(dir, &ro, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_read(s, h, 0, false, &out, &err), TZS_OK);
  tzs_block_free(&out);
  tzs_block b200 = chain_block(120);
  CHECK_STATUS(tzs_block_store_store(s, &b200, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_block_store_merge(s, h, ends, 4, &err), TZS_READ_ONLY);
  tzs_block_store_close(s);

  /* Default options (NULL) reopen the same store read-write. */
  CHECK_STATUS(tzs_block_store_open(dir, NULL, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_mem(s, h, &err), TZS_OK);
  tzs_block_store_close(s);

  /* Worker counts are bounded. */
  bad = o;
  bad.workers = UINT32_MAX;
  CHECK_ERROR_MENTIONS(tzs_block_store_open(dir, &bad, &s, &err), TZS_INVALID_ARGUMENT, "workers");
  bad.workers = TZS_BLOCK_STORE_MAX_WORKERS + 1;
  CHECK_STATUS(tzs_block_store_open(dir, &bad, &s, &err), TZS_INVALID_ARGUMENT);

  /* Check without a handle: a sound store, then no store at all. */
  tzs_bytes report = {0};
  CHECK_STATUS(tzs_block_store_check_path(dir, &o, false, &report, &err), TZS_OK);
  CHECK(contains(&report, "checked 121 records"));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_block_store_check_path(missing, &o, false, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_check_path(NULL, &o, false, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_check_path(dir, &ro, true, NULL, &err), TZS_INVALID_ARGUMENT);

  /* The manifest deleted: the open refuses, repair rebuilds it. */
  char path[800];
  snprintf(path, sizeof path, "%s/manifest", dir);
  CHECK(unlink(path) == 0);
  CHECK_ERROR_MENTIONS(tzs_block_store_open(dir, &o, &s, &err), TZS_CORRUPTED, "manifest");
  CHECK_STATUS(tzs_block_store_check_path(dir, &o, false, &report, &err), TZS_CORRUPTED);
  CHECK(contains(&report, "problem:"));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_block_store_check_path(dir, &o, true, &report, &err), TZS_OK);
  CHECK(contains(&report, "repaired:"));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_block_store_open(dir, &o, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_read(s, h, 0, true, &out, &err), TZS_OK);
  tzs_block_free(&out);
  tzs_block_store_close(s);

  /* A byte of block 100 (first in floating store 1, the RW store of the
   * merge) damaged: its read is CORRUPTED, repair keeps the others. */
  snprintf(path, sizeof path, "%s/floating/1/RW_floating_block_store", dir);
  CHECK(flip_byte(path, 40) == 0);
  uint8_t h100[32];
  make_hash(h100, 100);
  CHECK_STATUS(tzs_block_store_open(dir, &o, &s, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_block_store_read(s, h100, 0, false, &out, &err), TZS_CORRUPTED,
                       "RW_floating_block_store");
  CHECK_STATUS(tzs_block_store_check(s, false, &err), TZS_CORRUPTED);
  tzs_block_store_close(s);
  CHECK_STATUS(tzs_block_store_check_path(dir, &o, false, &report, &err), TZS_CORRUPTED);
  CHECK(contains(&report, "offset 0"));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_block_store_check_path(dir, &o, true, &report, &err), TZS_OK);
  CHECK(contains(&report, "quarantined: floating/1"));
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_block_store_check_path(dir, &o, false, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_open(dir, &o, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_read(s, h100, 0, false, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_read(s, h, 0, false, &out, &err), TZS_OK);
  CHECK(out.level == 119);
  tzs_block_free(&out);
  CHECK_STATUS(tzs_block_store_check(s, false, &err), TZS_OK);
  tzs_block_store_close(s);

  /* Stores without flush: readable at once, durable after the flush. */
  char unflushed[600];
  snprintf(unflushed, sizeof unflushed, "%s/unflushed", dir);
  CHECK_STATUS(tzs_block_store_open(unflushed, &o, &s, &err), TZS_OK);
  for (int i = 0; i < 30; i++) {
    tzs_block b = chain_block(i);
    CHECK_STATUS(tzs_block_store_store_with(s, &b, false, &err), TZS_OK);
  }
  uint8_t h29[32];
  make_hash(h29, 29);
  CHECK_STATUS(tzs_block_store_read(s, h29, 0, true, &out, &err), TZS_OK);
  CHECK_BYTES(out.metadata, "metadata 29");
  tzs_block_free(&out);
  CHECK_STATUS(tzs_block_store_flush(s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_flush(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_store_with(s, NULL, true, &err), TZS_INVALID_ARGUMENT);
  tzs_block_store_close(s);
  CHECK_STATUS(tzs_block_store_open(unflushed, &ro, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_read(s, h29, 29, false, &out, &err), TZS_OK);
  CHECK(out.level == 0);
  tzs_block_free(&out);
  tzs_block b30 = chain_block(30);
  CHECK_STATUS(tzs_block_store_store_with(s, &b30, false, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_block_store_flush(s, &err), TZS_READ_ONLY);
  tzs_block_store_close(s);

  /* The merge hook hears of the end of a merge, and of one with nothing
   * left to cement, on any thread; NULL removes it. */
  CHECK_STATUS(tzs_block_store_open(unflushed, &o, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_set_merge_hook(NULL, merge_hook, "ctx:", &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_set_merge_hook(s, merge_hook, "ctx:", &err), TZS_OK);
  int32_t hook_ends[2] = {9, 19};
  CHECK_STATUS(tzs_block_store_merge(s, h29, hook_ends, 2, &err), TZS_OK);
  CHECK(wait_hook(1));
  CHECK(hook_status == TZS_OK && strcmp(hook_message, "ctx:") == 0);
  CHECK_STATUS(tzs_block_store_await_merge(s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_merge(s, h29, hook_ends, 2, &err), TZS_OK);
  CHECK(wait_hook(2) && hook_status == TZS_OK);
  CHECK_STATUS(tzs_block_store_set_merge_hook(s, NULL, NULL, &err), TZS_OK);
  int32_t more_ends[1] = {24};
  CHECK_STATUS(tzs_block_store_merge(s, h29, more_ends, 1, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_await_merge(s, &err), TZS_OK);
  CHECK(hook_calls == 2);
  tzs_block_store_close(s);

  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 2;
  return check_summary("c block_store");
}

/* C API of the block store's chain bookkeeping, after Octez's
 * test_block_store.ml: ten 20-block cycles merged with LPBL 180 and
 * max_op_ttl 1 in FULL 0 and ROLLING 0; create/load with a genesis;
 * savepoint and caboose reads and writes; merge status of a failed merge. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

static void make_hash(uint8_t h[32], int n) {
  memset(h, 0x6B, 32);
  h[0] = (uint8_t)(n >> 8);
  h[1] = (uint8_t)n;
}

static char contents[64];
static char meta[64];

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

/* 0 absent, 1 without metadata, 2 with its metadata, -1 wrong. */
static int found(tzs_block_store *s, int level) {
  uint8_t h[32];
  make_hash(h, level);
  tzs_block b;
  tzs_status st = tzs_block_store_read(s, h, 0, true, &b, NULL);
  if (st == TZS_NOT_FOUND) return 0;
  if (st != TZS_OK) return -1;
  char want[64];
  snprintf(want, sizeof want, "metadata %d", level);
  int r = !b.has_metadata ? 1
          : (b.metadata.len == strlen(want) && memcmp(b.metadata.ptr, want, b.metadata.len) == 0) ? 2
                                                                                                  : -1;
  tzs_block_free(&b);
  return r;
}

/* Creates a store of levels 0..=200 in `dir` and merges ten cycles. */
static tzs_block_store *merged(const char *dir, tzs_history_mode mode) {
  tzs_block_store_options o = tzs_block_store_options_default();
  o.flags = TZS_NO_FSYNC;
  o.history_mode = mode;
  o.history_offset = 0;
  tzs_block_store *s = NULL;
  tzs_block g = chain_block(0);
  CHECK_STATUS(tzs_block_store_create(dir, &o, &g, &s, &err), TZS_OK);
  if (!s) return NULL;
  for (int n = 1; n <= 200; n++) {
    tzs_block b = chain_block(n);
    CHECK_STATUS(tzs_block_store_store_with(s, &b, false, &err), TZS_OK);
  }
  int32_t ends[9];
  for (int i = 0; i < 9; i++) ends[i] = (i + 1) * 20;
  uint8_t head[32];
  make_hash(head, 200);
  CHECK_STATUS(tzs_block_store_merge_preserving(s, head, ends, 9, 1, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_await_merge(s, &err), TZS_OK);
  return s;
}

int main(int argc, char **argv) {
  char root[512];
  snprintf(root, sizeof root, "%s/tzs-c-block-chain-XXXXXX", argc > 1 ? argv[1] : "/tmp");
  if (!mkdtemp(root)) { perror("mkdtemp"); return 2; }
  char full[600], rolling[600], other[600];
  snprintf(full, sizeof full, "%s/full", root);
  snprintf(rolling, sizeof rolling, "%s/rolling", root);
  snprintf(other, sizeof other, "%s/other", root);
  tzs_block_descr d;

  /* FULL 0: every block kept, metadata from the lowest preserved block
   * (LPBL 180 - max_op_ttl 1 = 179) up; savepoint 179, caboose genesis. */
  tzs_block_store *s = merged(full, TZS_HISTORY_FULL);
  CHECK(s != NULL);
  int bad = 0;
  for (int l = 0; l <= 200; l++) bad += found(s, l) != (l < 179 ? 1 : 2);
  CHECK(bad == 0);
  CHECK_STATUS(tzs_block_store_savepoint(s, &d, &err), TZS_OK);
  CHECK(d.level == 179);
  CHECK_STATUS(tzs_block_store_caboose(s, &d, &err), TZS_OK);
  CHECK(d.level == 0);
  CHECK_STATUS(tzs_block_store_genesis(s, &d, &err), TZS_OK);
  uint8_t g0[32];
  make_hash(g0, 0);
  CHECK(d.level == 0 && memcmp(d.hash, g0, 32) == 0);
  /* The cemented top, cemented without metadata, reads by level with it. */
  tzs_block b;
  CHECK_STATUS(tzs_block_store_read_by_level(s, 180, true, &b, &err), TZS_OK);
  CHECK(b.has_metadata && b.metadata.len == strlen("metadata 180"));
  tzs_block_free(&b);

  /* Resulting context hashes: stored with a block, read back after the
   * merge from the cemented record (level 100) and from the floating
   * index (a new block); zeros for blocks stored without one. */
  uint8_t got_ctx[32], want_ctx[32], h100[32];
  make_hash(h100, 100);
  CHECK_STATUS(tzs_block_store_resulting_context_hash(s, h100, got_ctx, &err), TZS_OK);
  memset(want_ctx, 0, 32);
  CHECK(memcmp(got_ctx, want_ctx, 32) == 0);
  tzs_block b201 = chain_block(201);
  memset(want_ctx, 0xC2, 32);
  CHECK_STATUS(tzs_block_store_store_with_context(s, &b201, want_ctx, true, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_resulting_context_hash(s, b201.hash, got_ctx, &err), TZS_OK);
  CHECK(memcmp(got_ctx, want_ctx, 32) == 0);
  CHECK_STATUS(tzs_block_store_store_with_context(s, &b201, NULL, true, &err), TZS_INVALID_ARGUMENT);
  uint8_t nowhere[32];
  make_hash(nowhere, 999);
  CHECK_STATUS(tzs_block_store_resulting_context_hash(s, nowhere, got_ctx, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_resulting_context_hash(s, h100, NULL, &err), TZS_INVALID_ARGUMENT);

  /* Savepoint and caboose writes: checked, durable. */
  tzs_block_descr at;
  make_hash(at.hash, 190);
  at.level = 190;
  CHECK_STATUS(tzs_block_store_write_caboose(s, &at, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_write_savepoint(s, &at, &err), TZS_OK);
  at.level = 191;
  CHECK_STATUS(tzs_block_store_write_savepoint(s, &at, &err), TZS_INCONSISTENT);
  make_hash(at.hash, 999);
  at.level = 999;
  CHECK_STATUS(tzs_block_store_write_savepoint(s, &at, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_block_store_write_savepoint(s, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_savepoint(s, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_savepoint(NULL, &d, &err), TZS_INVALID_ARGUMENT);
  tzs_merge_state state = 99;
  tzs_error *failure = (tzs_error *)1;
  CHECK_STATUS(tzs_block_store_merge_status(s, &state, &failure, &err), TZS_OK);
  CHECK(state == TZS_MERGE_NOT_RUNNING && failure == NULL);
  tzs_block_store_close(s);

  /* create refuses a populated directory; load checks the genesis. */
  tzs_block g = chain_block(0);
  CHECK_STATUS(tzs_block_store_create(full, NULL, &g, &s, &err), TZS_INVALID_ARGUMENT);
  uint8_t wrong[32];
  make_hash(wrong, 7);
  CHECK_STATUS(tzs_block_store_load(full, NULL, wrong, &s, &err), TZS_INCONSISTENT);
  CHECK_STATUS(tzs_block_store_load(other, NULL, g0, &s, &err), TZS_NOT_FOUND);
  s = NULL;
  CHECK_STATUS(tzs_block_store_load(full, NULL, g0, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_savepoint(s, &d, &err), TZS_OK);
  CHECK(d.level == 190);
  tzs_block_store_close(s);

  /* History switches: FULL 0 -> ROLLING 0 keeps the preserved blocks and
   * above; ROLLING -> FULL and anything -> ARCHIVE are refused. */
  s = NULL;
  CHECK_STATUS(tzs_block_store_load(full, NULL, g0, &s, &err), TZS_OK);
  uint8_t h200[32];
  make_hash(h200, 200);
  tzs_history_mode hm = 99;
  uint32_t hoff = 99;
  CHECK_STATUS(tzs_block_store_history(s, &hm, &hoff, &err), TZS_OK);
  CHECK(hm == TZS_HISTORY_FULL && hoff == 0);
  CHECK_STATUS(tzs_block_store_switch_history_mode(s, h200, TZS_HISTORY_ARCHIVE, 0, 1, &err),
               TZS_INVALID_ARGUMENT);
  CHECK_ERROR_MENTIONS(tzs_block_store_switch_history_mode(s, h200, TZS_HISTORY_ARCHIVE, 0, 1, &err),
                       TZS_INVALID_ARGUMENT, "full 0");
  CHECK_STATUS(tzs_block_store_switch_history_mode(s, h200, 7, 0, 1, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_switch_history_mode(s, NULL, TZS_HISTORY_ROLLING, 0, 1, &err),
               TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_block_store_switch_history_mode(s, h200, TZS_HISTORY_ROLLING, 0, 1, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_history(s, &hm, &hoff, &err), TZS_OK);
  CHECK(hm == TZS_HISTORY_ROLLING && hoff == 0);
  CHECK_STATUS(tzs_block_store_caboose(s, &d, &err), TZS_OK);
  CHECK(d.level == 179);
  bad = 0;
  for (int l = 0; l <= 200; l++) bad += found(s, l) != (l < 179 ? 0 : 2);
  CHECK(bad == 0);
  CHECK_STATUS(tzs_block_store_switch_history_mode(s, h200, TZS_HISTORY_FULL, 1, 1, &err),
               TZS_INVALID_ARGUMENT);
  tzs_block_store_close(s);

  /* ROLLING 0: below 179 nothing; savepoint = caboose = 179; nothing
   * cemented (as in Octez). */
  s = merged(rolling, TZS_HISTORY_ROLLING);
  CHECK(s != NULL);
  bad = 0;
  for (int l = 0; l <= 200; l++) bad += found(s, l) != (l < 179 ? 0 : 2);
  CHECK(bad == 0);
  CHECK_STATUS(tzs_block_store_savepoint(s, &d, &err), TZS_OK);
  CHECK(d.level == 179);
  CHECK_STATUS(tzs_block_store_caboose(s, &d, &err), TZS_OK);
  CHECK(d.level == 179);
  tzs_block_store_stats st;
  CHECK_STATUS(tzs_block_store_read_stats(s, &st, &err), TZS_OK);
  CHECK(st.cemented_blocks == 0);

  /* A merge over a damaged floating entry fails; the status says so with
   * the merge's error, without waiting. */
  for (int n = 201; n <= 240; n++) {
    tzs_block nb = chain_block(n);
    CHECK_STATUS(tzs_block_store_store(s, &nb, &err), TZS_OK);
  }
  /* A read-only handle sees the new blocks after a sync. */
  tzs_block_store_options ro = tzs_block_store_options_default();
  ro.flags = TZS_READONLY;
  tzs_block_store *r = NULL;
  CHECK_STATUS(tzs_block_store_open(rolling, &ro, &r, &err), TZS_OK);
  bool changed = true;
  CHECK_STATUS(tzs_block_store_sync(r, &changed, &err), TZS_OK);
  CHECK(found(r, 240) == 2 && found(r, 179) == 2 && found(r, 178) == 0);
  tzs_block nb = chain_block(241);
  CHECK_STATUS(tzs_block_store_store(s, &nb, &err), TZS_OK);
  CHECK(found(r, 241) == 0);
  CHECK_STATUS(tzs_block_store_sync(r, &changed, &err), TZS_OK);
  CHECK(!changed && found(r, 241) == 2);
  CHECK_STATUS(tzs_block_store_sync(r, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_sync(NULL, NULL, &err), TZS_INVALID_ARGUMENT);
  changed = true;
  CHECK_STATUS(tzs_block_store_sync(s, &changed, &err), TZS_OK);
  CHECK(!changed);
  tzs_block_store_close(r);

  char cmd[1400];
  snprintf(cmd, sizeof cmd,
           "f=$(ls -d %s/floating/*/RW_floating_block_store | sort -V | tail -n 1); "
           "n=$(stat -c %%s \"$f\"); printf '\\377\\377\\377\\377' | "
           "dd of=\"$f\" bs=1 seek=$((n - 200)) conv=notrunc status=none",
           rolling);
  CHECK(system(cmd) == 0);
  uint8_t head[32];
  make_hash(head, 240);
  int32_t end[1] = {220};
  CHECK_STATUS(tzs_block_store_merge_preserving(s, head, end, 1, 1, &err), TZS_OK);
  CHECK_STATUS(tzs_block_store_await_merge(s, &err), TZS_CORRUPTED);
  state = 99;
  CHECK_STATUS(tzs_block_store_merge_status(s, &state, &failure, &err), TZS_OK);
  CHECK(state == TZS_MERGE_FAILED && failure != NULL &&
        tzs_error_code(failure) == TZS_CORRUPTED && strlen(tzs_error_message(failure)) > 0);
  tzs_error_free(failure);
  CHECK_STATUS(tzs_block_store_merge_status(s, &state, NULL, &err), TZS_OK);
  CHECK(state == TZS_MERGE_FAILED);
  tzs_block_store_close(s);

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) return 2;
  return check_summary("c block_chain");
}

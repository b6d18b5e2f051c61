/* C API of streamed cementing: a chunk written block by block, committed
 * or aborted; a writer outliving tzs_cemented_close; and the metadata of a
 * chunk cemented without it (tzs_cemented_cement_metadata). */
#include <stdlib.h>
#include <unistd.h>
#include "check.h"

static void set_hash(uint8_t h[32], int32_t level) {
  memset(h, 0x5E, 32);
  h[0] = (uint8_t)(level >> 8);
  h[1] = (uint8_t)level;
}

static char contents[64];
static char meta[64];

static tzs_block block_at(int32_t level) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  set_hash(b.hash, level);
  set_hash(b.predecessor, level > 0 ? level - 1 : 0);
  b.level = level;
  snprintf(contents, sizeof contents, "contents %d", level);
  b.contents.ptr = (uint8_t *)contents;
  b.contents.len = strlen(contents);
  snprintf(meta, sizeof meta, "metadata %d", level);
  b.has_metadata = true;
  b.metadata.ptr = (uint8_t *)meta;
  b.metadata.len = strlen(meta);
  return b;
}

/* 1 if level `l` has metadata "metadata <l>", 0 if none, -1 otherwise. */
static int meta_of(tzs_cemented *c, int32_t l) {
  tzs_bytes m;
  tzs_status st = tzs_cemented_read_metadata(c, l, &m, NULL);
  if (st == TZS_NOT_FOUND) return 0;
  if (st != TZS_OK) return -1;
  char want[64];
  snprintf(want, sizeof want, "metadata %d", l);
  int r = m.len == strlen(want) && memcmp(m.ptr, want, m.len) == 0 ? 1 : -1;
  tzs_bytes_free(&m);
  return r;
}

int main(int argc, char **argv) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tzs-c-chunk-writer-XXXXXX", argc > 1 ? argv[1] : "/tmp");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  tzs_cemented *c = NULL;
  CHECK_STATUS(tzs_cemented_open(dir, TZS_NO_FSYNC, 0, &c, &err), TZS_OK);

  /* Levels 0..=99 block by block, one in memory at a time. */
  tzs_chunk_writer *w = NULL;
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 0, 99, true, true, &w, &err), TZS_OK);
  for (int32_t l = 0; l <= 99; l++) {
    tzs_block b = block_at(l);
    CHECK_STATUS(tzs_chunk_writer_push(w, &b, &err), TZS_OK);
  }
  tzs_chunk r = {0, -1};
  CHECK_STATUS(tzs_chunk_writer_commit(w, &r, &err), TZS_OK);
  CHECK(r.start_level == 0 && r.end_level == 99);
  int32_t hi = -1;
  CHECK_STATUS(tzs_cemented_highest_level(c, &hi, &err), TZS_OK);
  CHECK(hi == 99 && meta_of(c, 42) == 1);

  /* Context hashes: pushed with the block, read back from the record. */
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 100, 100, false, true, &w, &err), TZS_OK);
  tzs_block b100 = block_at(100);
  uint8_t ctx[32], got[32];
  memset(ctx, 0xCE, 32);
  CHECK_STATUS(tzs_chunk_writer_push_with_context(w, &b100, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_chunk_writer_abort(w);
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 100, 100, false, true, &w, &err), TZS_OK);
  CHECK_STATUS(tzs_chunk_writer_push_with_context(w, &b100, ctx, &err), TZS_OK);
  CHECK_STATUS(tzs_chunk_writer_commit(w, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_resulting_context_hash(c, b100.hash, got, &err), TZS_OK);
  CHECK(memcmp(got, ctx, 32) == 0);
  tzs_block b7 = block_at(7);
  CHECK_STATUS(tzs_cemented_resulting_context_hash(c, b7.hash, got, &err), TZS_OK);
  CHECK(got[0] == 0 && got[31] == 0);
  b7.hash[9] ^= 1;
  CHECK_STATUS(tzs_cemented_resulting_context_hash(c, b7.hash, got, &err), TZS_NOT_FOUND);

  /* Aborted: nothing stays, and the store takes the same chunk again. */
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 101, 110, true, true, &w, &err), TZS_OK);
  for (int32_t l = 101; l <= 105; l++) {
    tzs_block b = block_at(l);
    CHECK_STATUS(tzs_chunk_writer_push(w, &b, &err), TZS_OK);
  }
  tzs_chunk_writer_abort(w);
  tzs_chunk_writer_abort(NULL);
  CHECK_STATUS(tzs_cemented_highest_level(c, &hi, &err), TZS_OK);
  CHECK(hi == 100);

  /* A wrong block: the push fails, the commit fails, nothing is visible. */
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 101, 110, true, true, &w, &err), TZS_OK);
  tzs_block skip = block_at(102);
  CHECK_STATUS(tzs_chunk_writer_push(w, &skip, &err), TZS_INCONSISTENT);
  CHECK_STATUS(tzs_chunk_writer_commit(w, NULL, &err), TZS_INVALID_ARGUMENT);
  /* Too few blocks: the commit fails. */
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 101, 110, true, true, &w, &err), TZS_OK);
  tzs_block first = block_at(101);
  CHECK_STATUS(tzs_chunk_writer_push(w, &first, &err), TZS_OK);
  CHECK_STATUS(tzs_chunk_writer_commit(w, NULL, &err), TZS_INCONSISTENT);
  CHECK_STATUS(tzs_cemented_highest_level(c, &hi, &err), TZS_OK);
  CHECK(hi == 100);
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 50, 60, true, false, &w, &err), TZS_INCONSISTENT);
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 111, 121, true, true, &w, &err), TZS_INCONSISTENT);
  CHECK_STATUS(tzs_cemented_begin_chunk(NULL, 101, 110, true, true, &w, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 101, 110, true, true, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_chunk_writer_push(NULL, &first, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_chunk_writer_commit(NULL, NULL, &err), TZS_INVALID_ARGUMENT);

  /* The writer keeps the store alive past its close. */
  CHECK_STATUS(tzs_cemented_begin_chunk(c, 101, 110, false, true, &w, &err), TZS_OK);
  tzs_cemented_close(c);
  c = NULL;
  for (int32_t l = 101; l <= 110; l++) {
    tzs_block b = block_at(l);
    CHECK_STATUS(tzs_chunk_writer_push(w, &b, &err), TZS_OK);
  }
  CHECK_STATUS(tzs_chunk_writer_commit(w, &r, &err), TZS_OK);
  CHECK(r.start_level == 101 && r.end_level == 110);

  /* Reopened: both chunks; the second has no metadata, then gets it. */
  CHECK_STATUS(tzs_cemented_open(dir, TZS_NO_FSYNC, 0, &c, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_highest_level(c, &hi, &err), TZS_OK);
  CHECK(hi == 110 && meta_of(c, 105) == 0);
  tzs_block metas[10];
  char cbuf[10][64], mbuf[10][64];
  for (int i = 0; i < 10; i++) {
    metas[i] = block_at(101 + i);
    memcpy(cbuf[i], contents, sizeof contents);
    memcpy(mbuf[i], meta, sizeof meta);
    metas[i].contents.ptr = (uint8_t *)cbuf[i];
    metas[i].metadata.ptr = (uint8_t *)mbuf[i];
  }
  CHECK_STATUS(tzs_cemented_cement_metadata(c, metas, 10, &r, &err), TZS_OK);
  CHECK(r.start_level == 101 && r.end_level == 110);
  int bad = 0;
  for (int32_t l = 101; l <= 110; l++) bad += meta_of(c, l) != 1;
  CHECK(bad == 0);
  CHECK_STATUS(tzs_cemented_cement_metadata(c, metas, 10, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_cement_metadata(c, metas, 0, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_cement_metadata(c, NULL, 3, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_block stranger = block_at(5);
  stranger.hash[5] ^= 1;
  CHECK_STATUS(tzs_cemented_cement_metadata(c, &stranger, 1, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_cemented_close(c);

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 2;
  return check_summary("c chunk_writer");
}

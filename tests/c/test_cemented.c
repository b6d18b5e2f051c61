/* C API of the cemented block store: every function and every status it
 * returns. */
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include "check.h"

static char dir[512];
static char store[600];

static void set_hash(uint8_t h[32], uint8_t chain, int32_t level) {
  memset(h, 0, 32);
  h[0] = chain;
  h[1] = (uint8_t)(level >> 24);
  h[2] = (uint8_t)(level >> 16);
  h[3] = (uint8_t)(level >> 8);
  h[4] = (uint8_t)level;
  h[31] = 0xAB;
}

/* Buffers of the blocks made by make_blocks, one set per block array. */
struct buffers {
  uint8_t contents[10][64];
  uint8_t meta[10][4000];
};
static struct buffers buf_blocks, buf_later;

/* Blocks `start..start+n-1` of chain `chain`, levels >= 0; the block at
 * an odd level has no metadata. */
static void make_blocks(tzs_block *b, struct buffers *bufs, uint8_t chain, int32_t start, int n) {
  uint8_t (*contents)[64] = bufs->contents;
  uint8_t (*meta)[4000] = bufs->meta;
  for (int i = 0; i < n; i++) {
    int32_t level = start + i;
    memset(&b[i], 0, sizeof b[i]);
    set_hash(b[i].hash, chain, level);
    set_hash(b[i].predecessor, chain, level - 1);
    b[i].level = level;
    for (int j = 0; j < 64; j++) contents[i][j] = (uint8_t)(level + j);
    b[i].contents.ptr = contents[i];
    b[i].contents.len = (size_t)(level % 64);
    b[i].has_metadata = level % 2 == 0;
    uint32_t x = (uint32_t)level * 2654435761u + 1;
    for (int j = 0; j < 4000; j++) {
      x = x * 1103515245u + 12345u;
      meta[i][j] = (uint8_t)(x >> 16);
    }
    b[i].metadata.ptr = meta[i];
    b[i].metadata.len = b[i].has_metadata ? 4000 : 0;
  }
}

static int same_block(const tzs_block *a, const tzs_block *b, int with_meta) {
  if (memcmp(a->hash, b->hash, 32) || a->level != b->level || memcmp(a->predecessor, b->predecessor, 32)) return 0;
  if (a->contents.len != b->contents.len) return 0;
  if (a->contents.len && memcmp(a->contents.ptr, b->contents.ptr, a->contents.len)) return 0;
  int want_meta = with_meta && b->has_metadata;
  if (a->has_metadata != want_meta) return 0;
  if (want_meta && (a->metadata.len != b->metadata.len || memcmp(a->metadata.ptr, b->metadata.ptr, a->metadata.len))) return 0;
  return 1;
}

static void flip_byte(const char *p, long at) {
  FILE *f = fopen(p, "r+b");
  if (!f) return;
  fseek(f, at, SEEK_SET);
  int c = fgetc(f);
  fseek(f, at, SEEK_SET);
  fputc(c ^ 0x5a, f);
  fclose(f);
}

int main(int argc, char **argv) {
  const char *base = argc > 1 ? argv[1] : "/tmp";
  snprintf(dir, sizeof dir, "%s/tzs-c-cemented-XXXXXX", base);
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  snprintf(store, sizeof store, "%s/cemented", dir);

  /* Open: bad arguments, missing read-only store, a file in the way. */
  tzs_cemented *c = NULL;
  CHECK_STATUS(tzs_cemented_open(NULL, 0, 0, &c, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_open("", 0, 0, &c, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_open(store, 0, 0, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_open(store, 0x100, 0, &c, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_open("\xff\xfe", 0, 0, &c, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_open(store, TZS_READONLY, 0, &c, &err), TZS_NOT_FOUND);
  char file[700];
  snprintf(file, sizeof file, "%s/plain-file", dir);
  FILE *pf = fopen(file, "w");
  if (pf) { fputs("x", pf); fclose(pf); }
  CHECK_STATUS(tzs_cemented_open(file, 0, 0, &c, &err), TZS_IO);
  CHECK(tzs_cemented_open(NULL, 0, 0, &c, NULL) == TZS_INVALID_ARGUMENT);

  CHECK_STATUS(tzs_cemented_open(store, TZS_NO_FSYNC, 64, &c, &err), TZS_OK);
  CHECK(c != NULL);
  tzs_cemented *c2 = NULL;
  CHECK_ERROR_MENTIONS(tzs_cemented_open(store, 0, 0, &c2, &err), TZS_LOCKED, "lock");

  /* Empty store. */
  int32_t level = 0;
  CHECK_STATUS(tzs_cemented_lowest_level(c, &level, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_highest_level(c, &level, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_lowest_level(NULL, &level, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_highest_level(c, NULL, &err), TZS_INVALID_ARGUMENT);

  /* Cement: bad arguments and inconsistent chunks. */
  tzs_block blocks[10];
  make_blocks(blocks, &buf_blocks, 1, 0, 10);
  CHECK_STATUS(tzs_cemented_cement(NULL, blocks, 10, true, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_cement(c, blocks, 0, true, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_cement(c, NULL, 3, true, true, &err), TZS_INVALID_ARGUMENT);
  blocks[2].contents.ptr = NULL;
  CHECK_STATUS(tzs_cemented_cement(c, blocks, 10, true, true, &err), TZS_INVALID_ARGUMENT);
  make_blocks(blocks, &buf_blocks, 1, 0, 10);
  blocks[5].level = 7;
  CHECK_ERROR_MENTIONS(tzs_cemented_cement(c, blocks, 10, true, true, &err), TZS_INCONSISTENT, "level");
  make_blocks(blocks, &buf_blocks, 1, 0, 10);
  blocks[5].predecessor[0] = 9;
  CHECK_ERROR_MENTIONS(tzs_cemented_cement(c, blocks, 10, true, true, &err), TZS_INCONSISTENT, "predecessor");

  /* Cement two chunks: 0..9 with metadata, 10..19 without. */
  make_blocks(blocks, &buf_blocks, 1, 0, 10);
  CHECK_STATUS(tzs_cemented_cement(c, blocks, 10, true, true, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_cement(c, blocks, 10, true, true, &err), TZS_INCONSISTENT);
  tzs_block later[10];
  make_blocks(later, &buf_later, 1, 11, 5);
  CHECK_ERROR_MENTIONS(tzs_cemented_cement(c, later, 5, true, true, &err), TZS_INCONSISTENT, "follow");
  make_blocks(later, &buf_later, 1, 10, 10);
  CHECK_STATUS(tzs_cemented_cement(c, later, 10, false, true, &err), TZS_OK);

  CHECK_STATUS(tzs_cemented_lowest_level(c, &level, &err), TZS_OK);
  CHECK(level == 0);
  CHECK_STATUS(tzs_cemented_highest_level(c, &level, &err), TZS_OK);
  CHECK(level == 19);

  /* Lookups. */
  make_blocks(blocks, &buf_blocks, 1, 0, 10);
  CHECK_STATUS(tzs_cemented_level_of(c, blocks[4].hash, &level, &err), TZS_OK);
  CHECK(level == 4);
  uint8_t unknown[32];
  set_hash(unknown, 2, 4);
  CHECK_STATUS(tzs_cemented_level_of(c, unknown, &level, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_level_of(c, NULL, &level, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_level_of(c, unknown, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_level_of(NULL, unknown, &level, &err), TZS_INVALID_ARGUMENT);
  uint8_t h[32] = {0};
  CHECK_STATUS(tzs_cemented_hash_of(c, 4, h, &err), TZS_OK);
  CHECK(memcmp(h, blocks[4].hash, 32) == 0);
  CHECK_STATUS(tzs_cemented_hash_of(c, 20, h, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_hash_of(c, 4, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_hash_of(NULL, 4, h, &err), TZS_INVALID_ARGUMENT);

  /* Reads, with and without metadata. */
  tzs_block out;
  memset(&out, 0, sizeof out);
  for (int i = 0; i < 10; i++) {
    CHECK_STATUS(tzs_cemented_read_by_level(c, i, true, &out, &err), TZS_OK);
    CHECK(same_block(&out, &blocks[i], 1));
    tzs_block_free(&out);
    CHECK_STATUS(tzs_cemented_read_by_hash(c, blocks[i].hash, false, &out, &err), TZS_OK);
    CHECK(same_block(&out, &blocks[i], 0));
    tzs_block_free(&out);
  }
  tzs_block_free(&out); /* freeing a freed block is a no-op */
  tzs_block_free(NULL);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 12, true, &out, &err), TZS_OK);
  CHECK(same_block(&out, &later[2], 0)); /* cemented without metadata */
  tzs_block_free(&out);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 20, true, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_read_by_level(c, -1, false, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_read_by_level(NULL, 1, false, &out, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 1, false, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_read_by_hash(c, unknown, true, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_read_by_hash(c, NULL, true, &out, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_read_by_hash(c, unknown, true, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_read_by_hash(NULL, unknown, true, &out, &err), TZS_INVALID_ARGUMENT);

  tzs_bytes m = {NULL, 0};
  CHECK_STATUS(tzs_cemented_read_metadata(c, 2, &m, &err), TZS_OK);
  CHECK(m.len == 4000 && memcmp(m.ptr, blocks[2].metadata.ptr, 4000) == 0);
  tzs_bytes_free(&m);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 3, &m, &err), TZS_NOT_FOUND);  /* none given */
  CHECK_STATUS(tzs_cemented_read_metadata(c, 12, &m, &err), TZS_NOT_FOUND); /* not written */
  CHECK_STATUS(tzs_cemented_read_metadata(c, 99, &m, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 2, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_read_metadata(NULL, 2, &m, &err), TZS_INVALID_ARGUMENT);

  /* Chunk lists and find_chunk. */
  tzs_chunk_list *list = NULL;
  CHECK_STATUS(tzs_cemented_chunks(c, &list, &err), TZS_OK);
  CHECK(tzs_chunk_list_len(list) == 2);
  CHECK(tzs_chunk_list_get(list, 0).start_level == 0 && tzs_chunk_list_get(list, 0).end_level == 9);
  CHECK(tzs_chunk_list_get(list, 1).start_level == 10 && tzs_chunk_list_get(list, 1).end_level == 19);
  CHECK(tzs_chunk_list_get(list, 2).end_level == -1);
  tzs_chunk_list_free(list);
  CHECK(tzs_chunk_list_len(NULL) == 0);
  CHECK(tzs_chunk_list_get(NULL, 0).end_level == -1);
  tzs_chunk_list_free(NULL);
  CHECK_STATUS(tzs_cemented_metadata_chunks(c, &list, &err), TZS_OK);
  CHECK(tzs_chunk_list_len(list) == 1);
  CHECK(tzs_chunk_list_get(list, 0).start_level == 0 && tzs_chunk_list_get(list, 0).end_level == 9);
  tzs_chunk_list_free(list);
  CHECK_STATUS(tzs_cemented_chunks(NULL, &list, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_chunks(c, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_metadata_chunks(NULL, &list, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_metadata_chunks(c, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_chunk ch = {0, 0};
  CHECK_STATUS(tzs_cemented_find_chunk(c, 10, &ch, &err), TZS_OK);
  CHECK(ch.start_level == 10 && ch.end_level == 19);
  CHECK_STATUS(tzs_cemented_find_chunk(c, 9, &ch, &err), TZS_OK);
  CHECK(ch.start_level == 0 && ch.end_level == 9);
  CHECK_STATUS(tzs_cemented_find_chunk(c, 20, &ch, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_find_chunk(c, 1, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_find_chunk(NULL, 1, &ch, &err), TZS_INVALID_ARGUMENT);

  /* Iteration. */
  tzs_cemented_iter *it = NULL;
  tzs_chunk first = {0, 9};
  CHECK_STATUS(tzs_cemented_iter_new(c, first, true, &it, &err), TZS_OK);
  int n = 0;
  for (;;) {
    tzs_status st = tzs_cemented_iter_next(it, &out, NULL);
    if (st != TZS_OK) {
      CHECK(st == TZS_DONE);
      break;
    }
    CHECK(n < 10 && same_block(&out, &blocks[n], 1));
    tzs_block_free(&out);
    n++;
  }
  CHECK(n == 10);
  CHECK_STATUS(tzs_cemented_iter_next(it, &out, &err), TZS_DONE);
  CHECK_STATUS(tzs_cemented_iter_next(it, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_iter_next(NULL, &out, &err), TZS_INVALID_ARGUMENT);
  tzs_cemented_iter_free(it);
  tzs_cemented_iter_free(NULL);
  tzs_chunk partial = {0, 8}, reversed = {9, 0};
  CHECK_STATUS(tzs_cemented_iter_new(c, partial, true, &it, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_iter_new(c, reversed, true, &it, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_iter_new(c, first, true, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_iter_new(NULL, first, true, &it, &err), TZS_INVALID_ARGUMENT);

  /* Consistency. */
  CHECK_STATUS(tzs_cemented_check_consistency(c, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_check_consistency(c, blocks[0].hash, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_check_consistency(NULL, NULL, &err), TZS_INVALID_ARGUMENT);

  /* zstd level. */
  CHECK_STATUS(tzs_cemented_set_zstd_level(c, -1, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_set_zstd_level(c, 0, &err), TZS_OK); /* stored uncompressed */
  CHECK_STATUS(tzs_cemented_set_zstd_level(c, 19, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_set_zstd_level(c, 23, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_set_zstd_level(NULL, 3, &err), TZS_INVALID_ARGUMENT);

  /* A read-only instance refuses writes. */
  tzs_cemented *ro = NULL;
  CHECK_STATUS(tzs_cemented_open(store, TZS_READONLY, 0, &ro, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_highest_level(ro, &level, &err), TZS_OK);
  CHECK(level == 19);
  make_blocks(later, &buf_later, 1, 20, 3);
  CHECK_STATUS(tzs_cemented_cement(ro, later, 3, true, true, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_cemented_gc(ro, TZS_HISTORY_ROLLING, 1, &err), TZS_READ_ONLY);
  /* It sees new chunks after a sync. */
  CHECK_STATUS(tzs_cemented_cement(c, later, 3, true, true, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_highest_level(ro, &level, &err), TZS_OK);
  CHECK(level == 19);
  CHECK_STATUS(tzs_cemented_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_highest_level(ro, &level, &err), TZS_OK);
  CHECK(level == 22);
  CHECK_STATUS(tzs_cemented_level_of(ro, later[1].hash, &level, &err), TZS_OK);
  CHECK(level == 21);
  CHECK_STATUS(tzs_cemented_sync(c, &err), TZS_OK); /* no-op on read-write */
  CHECK_STATUS(tzs_cemented_sync(NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_cemented_close(ro);

  /* GC: bad mode, archive, full, rolling. */
  CHECK_STATUS(tzs_cemented_gc(c, 7, 1, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_gc(NULL, TZS_HISTORY_ARCHIVE, 1, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_gc(c, TZS_HISTORY_ARCHIVE, 0, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 2, &m, &err), TZS_OK);
  tzs_bytes_free(&m);
  CHECK_STATUS(tzs_cemented_gc(c, TZS_HISTORY_FULL, 1, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 2, &m, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 2, false, &out, &err), TZS_OK);
  tzs_block_free(&out);
  CHECK_STATUS(tzs_cemented_gc(c, TZS_HISTORY_ROLLING, 2, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 2, false, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_level_of(c, blocks[2].hash, &level, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_lowest_level(c, &level, &err), TZS_OK);
  CHECK(level == 10);
  CHECK_STATUS(tzs_cemented_check_consistency(c, NULL, &err), TZS_OK);

  /* Without consistency checks a gap is accepted; the store check finds it. */
  make_blocks(later, &buf_later, 1, 30, 10);
  CHECK_STATUS(tzs_cemented_cement(c, later, 10, true, false, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_cemented_check_consistency(c, NULL, &err), TZS_INCONSISTENT, "30_39");
  tzs_cemented_close(c);
  tzs_cemented_close(NULL);

  /* Damage: a metadata entry (that level's metadata is CORRUPTED, its block
   * still readable) and a chunk record (CORRUPTED). */
  char path[800];
  snprintf(path, sizeof path, "%s/metadata/30_39.zip", store);
  flip_byte(path, 1000);
  snprintf(path, sizeof path, "%s/10_19", store);
  flip_byte(path, 10 * 8 + 40);
  CHECK_STATUS(tzs_cemented_open(store, TZS_NO_FSYNC, 64, &c, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 30, &m, &err), TZS_CORRUPTED);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 30, true, &out, &err), TZS_CORRUPTED);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 30, false, &out, &err), TZS_OK);
  tzs_block_free(&out);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 32, &m, &err), TZS_OK);
  tzs_bytes_free(&m);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 10, false, &out, &err), TZS_CORRUPTED);
  CHECK_STATUS(tzs_cemented_hash_of(c, 10, h, &err), TZS_CORRUPTED);
  CHECK_STATUS(tzs_cemented_check_consistency(c, NULL, &err), TZS_CORRUPTED);
  tzs_chunk second = {10, 19};
  CHECK_STATUS(tzs_cemented_iter_new(c, second, false, &it, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_iter_next(it, &out, &err), TZS_CORRUPTED);
  CHECK_STATUS(tzs_cemented_iter_next(it, &out, &err), TZS_DONE);
  tzs_cemented_iter_free(it);
  tzs_cemented_close(c);

  /* Check without a handle: it finds both damages and changes nothing. */
  tzs_bytes rep = {NULL, 0};
  char text[4096];
  CHECK_STATUS(tzs_cemented_check(NULL, 0, false, &rep, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_cemented_check(store, TZS_READONLY, false, &rep, &err), TZS_INVALID_ARGUMENT);
  snprintf(path, sizeof path, "%s/missing", dir);
  CHECK_STATUS(tzs_cemented_check(path, 0, false, &rep, &err), TZS_NOT_FOUND);
  CHECK_ERROR_MENTIONS(tzs_cemented_check(store, 0, false, &rep, &err), TZS_CORRUPTED, "10_19");
  snprintf(text, sizeof text, "%.*s", (int)rep.len, rep.ptr ? (const char *)rep.ptr : "");
  CHECK(strstr(text, "problem:") != NULL && strstr(text, "30_39.zip") != NULL);
  tzs_bytes_free(&rep);
  CHECK_STATUS(tzs_cemented_check(store, 0, false, NULL, &err), TZS_CORRUPTED);
  snprintf(path, sizeof path, "%s/10_19", store);
  CHECK(access(path, F_OK) == 0);
  /* Repair takes the lock: not while a read-write handle is open. */
  CHECK_STATUS(tzs_cemented_open(store, TZS_NO_FSYNC, 64, &c, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_check(store, 0, true, NULL, &err), TZS_LOCKED);
  tzs_cemented_close(c);
  /* Repair: the damaged chunk goes to the quarantine (its intact records
   * stay, as a chunk of their own), the zip keeps its intact entries, the
   * indexes are rebuilt from the intact chunks. */
  CHECK_STATUS(tzs_cemented_check(store, TZS_NO_FSYNC, true, &rep, &err), TZS_OK);
  snprintf(text, sizeof text, "%.*s", (int)rep.len, rep.ptr ? (const char *)rep.ptr : "");
  CHECK(strstr(text, "quarantined: 10_19") != NULL);
  CHECK(strstr(text, "repaired:") != NULL && strstr(text, "problem:") == NULL);
  tzs_bytes_free(&rep);
  CHECK(access(path, F_OK) != 0);
  CHECK_STATUS(tzs_cemented_check(store, 0, false, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_open(store, TZS_NO_FSYNC, 64, &c, &err), TZS_OK);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 10, false, &out, &err), TZS_NOT_FOUND);
  /* The intact records of the damaged chunk were kept, as chunk 11_19. */
  CHECK_STATUS(tzs_cemented_read_by_level(c, 15, false, &out, &err), TZS_OK);
  CHECK(out.level == 15);
  tzs_block_free(&out);
  CHECK_STATUS(tzs_cemented_find_chunk(c, 15, &ch, &err), TZS_OK);
  CHECK(ch.start_level == 11 && ch.end_level == 19);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 30, &m, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_cemented_read_metadata(c, 32, &m, &err), TZS_OK);
  tzs_bytes_free(&m);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 21, false, &out, &err), TZS_OK);
  tzs_block_free(&out);
  CHECK_STATUS(tzs_cemented_read_by_level(c, 31, false, &out, &err), TZS_OK);
  CHECK(same_block(&out, &later[1], 0));
  tzs_block_free(&out);
  CHECK_STATUS(tzs_cemented_level_of(c, later[1].hash, &level, &err), TZS_OK);
  CHECK(level == 31);
  tzs_cemented_close(c);

  char cmd[1200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return check_summary("test_cemented");
}

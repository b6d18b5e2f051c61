/* C API of the floating block store: every function and every status. */
#include <stdlib.h>
#include <unistd.h>
#include "check.h"

static void make_hash(uint8_t h[32], int n) {
  memset(h, 0xAB, 32);
  h[0] = (uint8_t)n;
}

static tzs_block make_block(int n, const char *contents, const char *meta) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  make_hash(b.hash, n);
  make_hash(b.predecessor, n > 0 ? n - 1 : 0);
  b.level = n;
  b.contents.ptr = (uint8_t *)contents;
  b.contents.len = strlen(contents);
  if (meta) {
    b.has_metadata = true;
    b.metadata.ptr = (uint8_t *)meta;
    b.metadata.len = strlen(meta);
  }
  return b;
}

int main(int argc, char **argv) {
  char dir[512];
  snprintf(dir, sizeof dir, "%s/tzs-c-floating-XXXXXX", argc > 1 ? argv[1] : "/tmp");
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  char missing[600];
  snprintf(missing, sizeof missing, "%s/missing", dir);

  tzs_floating *f = NULL, *ro = NULL, *f2 = NULL;
  CHECK_STATUS(tzs_floating_open(NULL, TZS_FLOATING_RW, 0, &f, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_open(dir, 99, 0, &f, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_open(dir, TZS_FLOATING_RW, 0x40, &f, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_open(dir, TZS_FLOATING_RW, 0, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_open(missing, TZS_FLOATING_RO, TZS_READONLY, &ro, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_open(dir, TZS_FLOATING_RW, TZS_NO_FSYNC, &f, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_floating_open(dir, TZS_FLOATING_RW, 0, &f2, &err), TZS_LOCKED, "lock");
  CHECK(tzs_floating_len(f) == 0);
  CHECK(tzs_floating_len(NULL) == 0);

  /* Append genesis (no predecessors) and two children. */
  tzs_block g = make_block(0, "genesis", NULL);
  tzs_block b1 = make_block(1, "block one", "metadata one");
  tzs_block b2 = make_block(2, "", "m2");
  CHECK_STATUS(tzs_floating_append(f, &g, NULL, 0, true, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_append(f, &b1, g.hash, 1, false, &err), TZS_OK);
  uint8_t preds2[64];
  memcpy(preds2, b1.hash, 32);
  memcpy(preds2 + 32, g.hash, 32);
  CHECK_STATUS(tzs_floating_append(f, &b2, preds2, 2, true, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_append(f, &b2, preds2, 2, true, &err), TZS_OK); /* idempotent */
  CHECK(tzs_floating_len(f) == 3);
  CHECK_STATUS(tzs_floating_flush(f, &err), TZS_OK);
  /* Bad appends. */
  uint8_t many[13 * 32];
  memset(many, 1, sizeof many);
  tzs_block b3 = make_block(3, "three", NULL);
  CHECK_STATUS(tzs_floating_append(f, &b3, many, 13, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_append(f, &b3, NULL, 2, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_append(f, NULL, NULL, 0, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_append(NULL, &b3, NULL, 0, true, &err), TZS_INVALID_ARGUMENT);
  tzs_block bad = b3;
  bad.contents.ptr = NULL;
  CHECK_STATUS(tzs_floating_append(f, &bad, NULL, 0, true, &err), TZS_INVALID_ARGUMENT);
  CHECK(tzs_floating_len(f) == 3);

  /* mem / find_predecessors. */
  uint8_t absent[32];
  make_hash(absent, 77);
  CHECK_STATUS(tzs_floating_mem(f, b1.hash, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_mem(f, absent, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_mem(f, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_bytes preds = {NULL, 0};
  CHECK_STATUS(tzs_floating_find_predecessors(f, b2.hash, &preds, &err), TZS_OK);
  CHECK(preds.len == 64 && memcmp(preds.ptr, preds2, 64) == 0);
  tzs_bytes_free(&preds);
  CHECK_STATUS(tzs_floating_find_predecessors(f, g.hash, &preds, &err), TZS_OK);
  CHECK(preds.len == 0);
  CHECK_STATUS(tzs_floating_find_predecessors(f, absent, &preds, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_find_predecessors(f, b1.hash, NULL, &err), TZS_INVALID_ARGUMENT);

  /* read_block and read_block_and_predecessors. */
  tzs_block out;
  memset(&out, 0, sizeof out);
  CHECK_STATUS(tzs_floating_read_block(f, b1.hash, &out, &err), TZS_OK);
  CHECK(out.level == 1 && memcmp(out.hash, b1.hash, 32) == 0 && memcmp(out.predecessor, g.hash, 32) == 0);
  CHECK_BYTES(out.contents, "block one");
  CHECK(out.has_metadata);
  CHECK_BYTES(out.metadata, "metadata one");
  tzs_block_free(&out);
  CHECK(out.contents.ptr == NULL && out.metadata.ptr == NULL);
  tzs_block_free(&out);
  tzs_block_free(NULL);
  CHECK_STATUS(tzs_floating_read_block(f, g.hash, &out, &err), TZS_OK);
  CHECK(!out.has_metadata && out.metadata.len == 0);
  CHECK_BYTES(out.contents, "genesis");
  tzs_block_free(&out);
  CHECK_STATUS(tzs_floating_read_block(f, absent, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_read_block(f, b1.hash, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_read_block_and_predecessors(f, b2.hash, &out, &preds, &err), TZS_OK);
  CHECK(out.level == 2 && out.contents.len == 0 && preds.len == 64);
  CHECK_BYTES(out.metadata, "m2");
  tzs_block_free(&out);
  tzs_bytes_free(&preds);
  CHECK_STATUS(tzs_floating_read_block_and_predecessors(f, absent, &out, &preds, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_read_block_and_predecessors(f, b2.hash, &out, NULL, &err), TZS_INVALID_ARGUMENT);

  /* Iteration in file order, with and without predecessors. */
  tzs_floating_iter *it = NULL;
  CHECK_STATUS(tzs_floating_iter_new(f, &it, &err), TZS_OK);
  int n = 0;
  tzs_status st;
  while ((st = tzs_floating_iter_next(it, &out, n == 1 ? &preds : NULL, NULL)) == TZS_OK) {
    CHECK(out.level == n);
    if (n == 1) {
      CHECK(preds.len == 32 && memcmp(preds.ptr, g.hash, 32) == 0);
      tzs_bytes_free(&preds);
    }
    tzs_block_free(&out);
    n++;
  }
  CHECK(st == TZS_DONE && n == 3);
  CHECK_STATUS(tzs_floating_iter_next(it, &out, NULL, &err), TZS_DONE);
  CHECK_STATUS(tzs_floating_iter_next(it, NULL, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_iter_next(NULL, &out, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_floating_iter_free(it);
  tzs_floating_iter_free(NULL);
  CHECK_STATUS(tzs_floating_iter_new(NULL, &it, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_iter_new(f, NULL, &err), TZS_INVALID_ARGUMENT);

  /* Read-only instance: reads, refuses writes, sees appends after sync. */
  CHECK_STATUS(tzs_floating_open(dir, TZS_FLOATING_RW, TZS_READONLY, &ro, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_append(ro, &b3, NULL, 0, true, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_floating_flush(ro, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_floating_append(f, &b3, b2.hash, 1, true, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_mem(ro, b3.hash, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_mem(ro, b3.hash, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_sync(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_flush(NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_floating_close(ro);

  /* Other kinds coexist in the same directory. */
  tzs_floating *tmp = NULL;
  CHECK_STATUS(tzs_floating_open(dir, TZS_FLOATING_RO_TMP, TZS_NO_FSYNC, &tmp, &err), TZS_OK);
  CHECK(tzs_floating_len(tmp) == 0);
  tzs_floating_close(tmp);
  tzs_floating_close(f);
  tzs_floating_close(NULL);

  /* A damaged record is CORRUPTED; the others stay readable. */
  char path[700];
  snprintf(path, sizeof path, "%s/RW_floating_block_store", dir);
  FILE *file = fopen(path, "r+b");
  CHECK(file != NULL);
  if (file) {
    fseek(file, 80, SEEK_SET); /* inside genesis's contents */
    fputc('X', file);
    fclose(file);
  }
  CHECK_STATUS(tzs_floating_open(dir, TZS_FLOATING_RW, 0, &f, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_floating_read_block(f, g.hash, &out, &err), TZS_CORRUPTED, "offset 0");
  CHECK_STATUS(tzs_floating_read_block(f, b2.hash, &out, &err), TZS_OK);
  tzs_block_free(&out);
  /* Iteration meets the damage first: CORRUPTED, not the end. */
  CHECK_STATUS(tzs_floating_iter_new(f, &it, &err), TZS_OK);
  CHECK_ERROR_MENTIONS(tzs_floating_iter_next(it, &out, NULL, &err), TZS_CORRUPTED, "RW_floating_block_store");
  tzs_floating_iter_free(it);
  /* Repair needs the store closed. */
  CHECK_STATUS(tzs_floating_check(dir, 0, true, NULL, &err), TZS_LOCKED);
  tzs_floating_close(f);

  /* check finds the damage and changes nothing; repair keeps every intact
   * block and moves the original file into the quarantine. */
  tzs_bytes report = {NULL, 0};
  CHECK_STATUS(tzs_floating_check(NULL, 0, false, &report, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_check(dir, TZS_READONLY, false, &report, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_check(dir, 0, false, &report, &err), TZS_CORRUPTED);
  CHECK(report.len > 0 && strstr((const char *)report.ptr, "problem:") != NULL);
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_floating_check(dir, 0, false, NULL, &err), TZS_CORRUPTED);
  CHECK_STATUS(tzs_floating_check(dir, 0, true, &report, &err), TZS_OK);
  CHECK(report.len > 0 && strstr((const char *)report.ptr, "quarantined: RW_floating_block_store") != NULL);
  tzs_bytes_free(&report);
  CHECK_STATUS(tzs_floating_check(dir, 0, false, NULL, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_open(dir, TZS_FLOATING_RW, 0, &f, &err), TZS_OK);
  CHECK(tzs_floating_len(f) == 3);
  CHECK_STATUS(tzs_floating_read_block(f, g.hash, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_read_block(f, b3.hash, &out, &err), TZS_OK);
  tzs_block_free(&out);
  CHECK_STATUS(tzs_floating_iter_new(f, &it, &err), TZS_OK);
  n = 0;
  while ((st = tzs_floating_iter_next(it, &out, NULL, NULL)) == TZS_OK) {
    tzs_block_free(&out);
    n++;
  }
  CHECK(st == TZS_DONE && n == 3);
  tzs_floating_iter_free(it);
  tzs_floating_close(f);

  /* Resulting context hashes: given with the append, zeros without. */
  char ctx_dir[700];
  snprintf(ctx_dir, sizeof ctx_dir, "%s/with-context", dir);
  CHECK_STATUS(tzs_floating_open(ctx_dir, TZS_FLOATING_RW, TZS_NO_FSYNC, &f, &err), TZS_OK);
  tzs_block c0 = make_block(0, "genesis", NULL);
  tzs_block c1 = make_block(1, "one", "m1");
  uint8_t ctx1[32], got_ctx[32], zeros[32];
  memset(ctx1, 0xC1, 32);
  memset(zeros, 0, 32);
  CHECK_STATUS(tzs_floating_append(f, &c0, NULL, 0, false, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_append_with_context(f, &c1, ctx1, c0.hash, 1, true, &err), TZS_OK);
  CHECK_STATUS(tzs_floating_resulting_context_hash(f, c1.hash, got_ctx, &err), TZS_OK);
  CHECK(memcmp(got_ctx, ctx1, 32) == 0);
  CHECK_STATUS(tzs_floating_resulting_context_hash(f, c0.hash, got_ctx, &err), TZS_OK);
  CHECK(memcmp(got_ctx, zeros, 32) == 0);
  CHECK_STATUS(tzs_floating_resulting_context_hash(f, absent, got_ctx, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_floating_append_with_context(f, &c1, NULL, NULL, 0, true, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_floating_resulting_context_hash(f, c1.hash, NULL, &err), TZS_INVALID_ARGUMENT);
  tzs_floating_close(f);

  char cmd[800];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) return 2;
  return check_summary("c floating");
}

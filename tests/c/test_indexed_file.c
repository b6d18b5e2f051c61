/* C API of the indexed file store: every function and every status it returns. */
#define _GNU_SOURCE
#include <string.h>
#include <stdlib.h>
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

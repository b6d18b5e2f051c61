/* C API of the singleton store: every function and every status it returns. */
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>
#include "check.h"

static char dir[512];
static char path[600];

static void corrupt_file(const char *p) {
  FILE *f = fopen(p, "r+b");
  if (!f) return;
  fseek(f, 18, SEEK_SET);
  int c = fgetc(f);
  fseek(f, 18, SEEK_SET);
  fputc(c ^ 0x01, f);
  fclose(f);
}

int main(int argc, char **argv) {
  const char *base = argc > 1 ? argv[1] : "/tmp";
  snprintf(dir, sizeof dir, "%s/tzs-c-singleton-XXXXXX", base);
  if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
  snprintf(path, sizeof path, "%s/head", dir);

  /* Common functions. */
  CHECK(strcmp(tzs_status_name(TZS_OK), "TZS_OK") == 0);
  CHECK(strcmp(tzs_status_name(TZS_PANIC), "TZS_PANIC") == 0);
  CHECK(strcmp(tzs_status_name(999), "TZS_UNKNOWN") == 0);
  CHECK(strlen(tzs_version()) > 0);
  CHECK(tzs_error_code(NULL) == TZS_INVALID_ARGUMENT);
  CHECK(strcmp(tzs_error_message(NULL), "") == 0);
  tzs_error_free(NULL);
  tzs_bytes_free(NULL);
  tzs_bytes zero = {NULL, 0};
  tzs_bytes_free(&zero);

  /* Open: bad arguments. */
  tzs_singleton *s = NULL;
  CHECK_STATUS(tzs_singleton_open(NULL, 0, &s, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_open("", 0, &s, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_open(path, 0, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_open(path, 0x100, &s, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_open("\xff\xfe", 0, &s, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_open(dir, 0, &s, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_open("/nonexistent-dir-tzs/x", 0, &s, &err), TZS_NOT_FOUND);
  /* err may be NULL. */
  CHECK(tzs_singleton_open(NULL, 0, &s, NULL) == TZS_INVALID_ARGUMENT);

  /* Open, unset read, write, read. */
  CHECK_STATUS(tzs_singleton_open(path, 0, &s, &err), TZS_OK);
  CHECK(s != NULL);
  tzs_bytes out = {NULL, 0};
  CHECK_STATUS(tzs_singleton_read(s, &out, &err), TZS_NOT_FOUND);
  CHECK(out.ptr == NULL && out.len == 0);
  CHECK_STATUS(tzs_singleton_write(s, (const uint8_t *)"hello", 5, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(s, &out, &err), TZS_OK);
  CHECK_BYTES(out, "hello");
  tzs_bytes_free(&out);
  CHECK(out.ptr == NULL && out.len == 0);
  tzs_bytes_free(&out); /* double free of a reset buffer is a no-op */
  /* Binary value with NULs; empty value via NULL pointer. */
  const uint8_t bin[4] = {0, 1, 0, 255};
  CHECK_STATUS(tzs_singleton_write(s, bin, 4, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(s, &out, &err), TZS_OK);
  CHECK(out.len == 4 && memcmp(out.ptr, bin, 4) == 0);
  tzs_bytes_free(&out);
  CHECK_STATUS(tzs_singleton_write(s, NULL, 0, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(s, &out, &err), TZS_OK);
  CHECK(out.len == 0);
  tzs_bytes_free(&out);
  /* Bad arguments on an open handle. */
  CHECK_STATUS(tzs_singleton_write(s, NULL, 3, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_write(NULL, bin, 4, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_read(s, NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_read(NULL, &out, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_delete(NULL, &err), TZS_INVALID_ARGUMENT);
  CHECK_STATUS(tzs_singleton_sync(NULL, &err), TZS_INVALID_ARGUMENT);

  /* A second read-write open is locked, and the message names the lock file. */
  tzs_singleton *s2 = NULL;
  CHECK_ERROR_MENTIONS(tzs_singleton_open(path, 0, &s2, &err), TZS_LOCKED, "head.lock");
  CHECK(s2 == NULL);

  /* Read-only handle: reads, refuses writes, syncs. */
  CHECK_STATUS(tzs_singleton_write(s, (const uint8_t *)"v1", 2, &err), TZS_OK);
  tzs_singleton *ro = NULL;
  CHECK_STATUS(tzs_singleton_open(path, TZS_READONLY, &ro, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(ro, &out, &err), TZS_OK);
  CHECK_BYTES(out, "v1");
  tzs_bytes_free(&out);
  CHECK_STATUS(tzs_singleton_write(ro, (const uint8_t *)"x", 1, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_singleton_delete(ro, &err), TZS_READ_ONLY);
  CHECK_STATUS(tzs_singleton_write(s, (const uint8_t *)"v2", 2, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(ro, &out, &err), TZS_OK);
  CHECK_BYTES(out, "v2");
  tzs_bytes_free(&out);

  /* Delete, then reopen: still unset. */
  CHECK_STATUS(tzs_singleton_delete(s, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(s, &out, &err), TZS_NOT_FOUND);
  CHECK_STATUS(tzs_singleton_delete(s, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_sync(ro, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(ro, &out, &err), TZS_NOT_FOUND);
  tzs_singleton_close(ro);
  tzs_singleton_close(s);
  tzs_singleton_close(NULL);

  /* Reopen after close: value survives; NO_FSYNC flag accepted. */
  CHECK_STATUS(tzs_singleton_open(path, TZS_NO_FSYNC, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_write(s, (const uint8_t *)"persist", 7, &err), TZS_OK);
  tzs_singleton_close(s);
  CHECK_STATUS(tzs_singleton_open(path, 0, &s, &err), TZS_OK);
  CHECK_STATUS(tzs_singleton_read(s, &out, &err), TZS_OK);
  CHECK_BYTES(out, "persist");
  tzs_bytes_free(&out);
  tzs_singleton_close(s);

  /* A damaged file is CORRUPTED, never a wrong value. */
  corrupt_file(path);
  s = NULL;
  CHECK_ERROR_MENTIONS(tzs_singleton_open(path, 0, &s, &err), TZS_CORRUPTED, "checksum");
  CHECK(s == NULL);
  CHECK_STATUS(tzs_singleton_open(path, TZS_READONLY, &s, &err), TZS_CORRUPTED);

#ifdef TZS_TESTING
  /* The panic boundary. */
  CHECK_ERROR_MENTIONS(tzs_test_panic(&err), TZS_PANIC, "panic: tzs_test_panic called");
#endif

  unlink(path);
  char lock[700];
  snprintf(lock, sizeof lock, "%s.lock", path);
  unlink(lock);
  rmdir(dir);
  return check_summary("c singleton");
}

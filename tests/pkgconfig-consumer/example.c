#include <stdio.h>
#include <tzstore.h>

int main(int argc, char **argv) {
  char path[4096];
  snprintf(path, sizeof path, "%s/head", argc > 1 ? argv[1] : ".");
  tzs_singleton *s = NULL, *ro = NULL;
  tzs_error *err = NULL;
  tzs_bytes v = {NULL, 0};
  if (tzs_singleton_open(path, TZS_NO_FSYNC, &s, &err) != TZS_OK) goto fail;
  if (tzs_singleton_write(s, (const uint8_t *)"block 42", 8, &err) != TZS_OK) goto fail;
  if (tzs_singleton_read(s, &v, &err) != TZS_OK) goto fail;
  printf("read: %.*s\n", (int)v.len, (const char *)v.ptr);
  tzs_bytes_free(&v);
  if (tzs_singleton_delete(s, &err) != TZS_OK) goto fail;
  if (tzs_singleton_read(s, &v, &err) == TZS_NOT_FOUND) printf("not found\n");
  if (tzs_singleton_open(path, TZS_READONLY, &ro, &err) != TZS_OK) goto fail;
  tzs_status st = tzs_singleton_write(ro, (const uint8_t *)"x", 1, &err);
  printf("error: %s: %s\n", tzs_status_name(st), tzs_error_message(err));
  tzs_error_free(err);
  tzs_singleton_close(ro);
  tzs_singleton_close(s);
  return 0;
fail:
  fprintf(stderr, "tzstore: %s\n", tzs_error_message(err));
  tzs_error_free(err);
  tzs_singleton_close(s);
  return 1;
}

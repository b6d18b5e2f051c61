#include <stdbool.h>
#include <stdio.h>
#include <tzstore.h>

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : ".";
  char path[4096];
  tzs_index *ix = NULL;
  tzs_floating *f = NULL;
  tzs_error *err = NULL;
  uint8_t value[8];
  snprintf(path, sizeof path, "%s/index", dir); /* 4-byte keys, 8-byte values */
  if (tzs_index_open(path, 4, 8, TZS_NO_FSYNC, 0, &ix, &err) != TZS_OK) goto fail;
  if (tzs_index_add(ix, (const uint8_t *)"key1", 4, (const uint8_t *)"value--1", 8, true, &err) != TZS_OK)
    goto fail;
  if (tzs_index_find(ix, (const uint8_t *)"key1", 4, value, 8, &err) != TZS_OK) goto fail;
  printf("index: %.8s\n", (const char *)value);
  if (tzs_index_find(ix, (const uint8_t *)"nope", 4, value, 8, &err) == TZS_NOT_FOUND) printf("not found\n");
  tzs_status st = tzs_index_add(ix, (const uint8_t *)"too long key", 12, value, 8, true, &err);
  printf("error: %s: %s\n", tzs_status_name(st), tzs_error_message(err));
  tzs_error_free(err);
  err = NULL;

  snprintf(path, sizeof path, "%s/blocks", dir);
  if (tzs_floating_open(path, TZS_FLOATING_RW, TZS_NO_FSYNC, &f, &err) != TZS_OK) goto fail;
  tzs_block genesis = {{1}, 0, {1}, {(uint8_t *)"g", 1}, false, {NULL, 0}};
  tzs_block b1 = {{2}, 1, {1}, {(uint8_t *)"b1", 2}, true, {(uint8_t *)"meta", 4}};
  if (tzs_floating_append(f, &genesis, NULL, 0, true, &err) != TZS_OK) goto fail;
  /* Predecessors: the 2^i-th ancestors (here only the parent). */
  if (tzs_floating_append(f, &b1, genesis.hash, 1, true, &err) != TZS_OK) goto fail;
  tzs_block out = {0};
  if (tzs_floating_read_block(f, b1.hash, &out, &err) != TZS_OK) goto fail;
  printf("block level %d: %.*s\n", out.level, (int)out.contents.len, (const char *)out.contents.ptr);
  tzs_block_free(&out);
  uint8_t missing[32] = {9};
  if (tzs_floating_read_block(f, missing, &out, &err) == TZS_NOT_FOUND) printf("block not found\n");
  tzs_floating_close(f);
  tzs_index_close(ix);
  return 0;
fail:
  fprintf(stderr, "tzstore: %s\n", tzs_error_message(err));
  tzs_error_free(err);
  tzs_floating_close(f);
  tzs_index_close(ix);
  return 1;
}

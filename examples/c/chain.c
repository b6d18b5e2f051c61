/* Stores a small chain in a block store and reads it back.
 * Build: cc chain.c $(pkg-config --cflags --libs tzstore) -o chain
 * Run:   ./chain DIR   (DIR/blocks is created; running again is harmless) */
#include <stdio.h>
#include <string.h>
#include <tzstore.h>

/* Block n of the chain: level n, hash 32 bytes of value n + 1, predecessor
 * block n - 1; genesis (n = 0) is its own predecessor. */
static tzs_block make_block(int n, char *contents, size_t size) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  memset(b.hash, n + 1, sizeof b.hash);
  memset(b.predecessor, n > 0 ? n : 1, sizeof b.predecessor);
  b.level = n;
  b.contents.ptr = (uint8_t *)contents;
  b.contents.len = (size_t)snprintf(contents, size, "block %d", n);
  return b;
}

static int fail(const char *what, tzs_status st, tzs_error *err) {
  fprintf(stderr, "%s: %s: %s\n", what, tzs_status_name(st), err ? tzs_error_message(err) : "");
  tzs_error_free(err);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  printf("tzstore %s (header %s)\n", tzs_version(), TZS_VERSION_STRING);
  char path[4096];
  snprintf(path, sizeof path, "%s/blocks", argv[1]);
  tzs_block_store *bs = NULL;
  tzs_error *err = NULL;
  tzs_block_store_options opts = tzs_block_store_options_default(); /* durable, full history */
  tzs_status st = tzs_block_store_open(path, &opts, &bs, &err);
  if (st != TZS_OK) return fail("open", st, err);

  for (int n = 0; n <= 3; n++) { /* genesis and three blocks */
    char contents[32];
    tzs_block b = make_block(n, contents, sizeof contents);
    st = tzs_block_store_store(bs, &b, &err); /* durable on return */
    if (st != TZS_OK) return fail("store", st, err);
  }
  printf("stored levels 0..3\n");

  uint8_t head[32];
  memset(head, 4, sizeof head); /* block 3's hash */
  tzs_block out = {0};
  for (uint32_t distance = 0; distance <= 3; distance += 2) {
    st = tzs_block_store_read(bs, head, distance, false, &out, &err);
    if (st != TZS_OK) return fail("read", st, err);
    printf("%u below the head: level %d, \"%.*s\"\n", distance, out.level, (int)out.contents.len,
           (const char *)out.contents.ptr);
    tzs_block_free(&out);
  }
  uint8_t unknown[32];
  memset(unknown, 0x99, sizeof unknown);
  if (tzs_block_store_read(bs, unknown, 0, false, &out, &err) == TZS_NOT_FOUND)
    printf("unknown hash: not found\n");
  tzs_block_store_close(bs);
  return 0;
}

// tzs_go_block builds a tzs_block on the C stack from plain arguments: Go
// passes a block's buffers one by one, since cgo forbids passing Go memory
// that holds Go pointers (a Go-built tzs_block would). Used by the preambles
// of floating.go and block_store.go.
#ifndef TZS_GO_BLOCK_ARG_H
#define TZS_GO_BLOCK_ARG_H

#include <string.h>
#include "tzstore.h"

static inline tzs_block tzs_go_block(const uint8_t *hash, int32_t level, const uint8_t *pred,
    uint8_t *contents, size_t contents_len, bool has_metadata, uint8_t *metadata,
    size_t metadata_len) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  memcpy(b.hash, hash, 32);
  b.level = level;
  memcpy(b.predecessor, pred, 32);
  b.contents.ptr = contents;
  b.contents.len = contents_len;
  b.has_metadata = has_metadata;
  b.metadata.ptr = metadata;
  b.metadata.len = metadata_len;
  return b;
}

#endif

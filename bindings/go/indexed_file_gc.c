// The C side of IndexedFile.GC: tzs_indexed_file_gc takes a C function
// pointer, which calls back the exported Go function with the cgo.Handle
// of the Go predicate as its context. (A file using //export may only
// declare C functions in its preamble, so this definition lives here.)
#include <stdint.h>
#include "tzstore.h"
#include "_cgo_export.h"

static bool tzs_go_keep_trampoline(const uint8_t *key, size_t key_len, void *ctx) {
  return goIndexedFileKeep((uint8_t *)key, key_len, (uintptr_t)ctx);
}

tzs_status tzs_go_indexed_file_gc(tzs_indexed_file *f, uintptr_t ctx, tzs_error **err) {
  return tzs_indexed_file_gc(f, tzs_go_keep_trampoline, (void *)ctx, err);
}

// The C side of the GC filters (Index.Filter, Index.GC,
// IndexedFile.GCFilter): the library takes a tzs_filter_fn, which calls
// back the exported Go function with the cgo.Handle of the Go filter as
// its context. The handle travels as a uintptr_t and becomes the void *
// context here, so that Go never converts an integer into a pointer. (A
// file using //export may only declare C functions in its preamble, so
// these definitions live here.)
#include <stdint.h>
#include "tzstore.h"
#include "_cgo_export.h"

static bool tzs_go_filter_trampoline(void *ctx, const uint8_t *key, size_t key_len,
                                     const uint8_t *value, size_t value_len) {
  return goFilterBinding((uintptr_t)ctx, (uint8_t *)key, key_len, (uint8_t *)value, value_len);
}

tzs_status tzs_go_index_filter(tzs_index *ix, uintptr_t ctx, tzs_error **err) {
  return tzs_index_filter(ix, tzs_go_filter_trampoline, (void *)ctx, err);
}

tzs_status tzs_go_index_gc(tzs_index *ix, uintptr_t ctx, bool wait, bool *started,
                           tzs_error **err) {
  return tzs_index_gc(ix, tzs_go_filter_trampoline, (void *)ctx, wait, started, err);
}

tzs_status tzs_go_indexed_file_gc_filter(tzs_indexed_file *f, uintptr_t ctx, bool wait,
                                         bool *started, tzs_error **err) {
  return tzs_indexed_file_gc_filter(f, tzs_go_filter_trampoline, (void *)ctx, wait, started, err);
}

// tzstore.hpp: the header-only C++17 binding of the C API in tzstore.h,
// every store at once. Each store also has a header of its own, which can
// be included alone:
//   tzstore_singleton.hpp     Singleton
//   tzstore_index.hpp         Index, IndexIter
//   tzstore_indexed_file.hpp  IndexedFile
//   tzstore_kv.hpp            Kv, KvBatch
//   tzstore_floating.hpp      Floating, FloatingIter
//   tzstore_cemented.hpp      Cemented, Chunk, ChunkWriter
//   tzstore_block_store.hpp   BlockStore
// and tzstore_common.hpp holds what they share (Error, Block, ByteView,
// flags, Reader and BlockView for borrowed block reads, and the helpers of
// tzstore::detail), tzstore_gc_filter.hpp the
// GC filters of Index and IndexedFile (FilterFn).
//
// Error model: every failure throws tzstore::Error (a std::runtime_error
// carrying the tzs_status and the library's message). Absence is not an
// error: lookups return std::optional and std::nullopt for TZS_NOT_FOUND.
//
// Handles are move-only RAII objects closed by their destructor (or by
// close()). A handle may be used from several threads at once, as the C API
// allows, but close(), move-assignment and destruction must not race with
// other calls on the same object.
#ifndef TZSTORE_HPP
#define TZSTORE_HPP

#include "tzstore_common.hpp"

#include "tzstore_block_store.hpp"
#include "tzstore_cemented.hpp"
#include "tzstore_floating.hpp"
#include "tzstore_gc_filter.hpp"
#include "tzstore_index.hpp"
#include "tzstore_indexed_file.hpp"
#include "tzstore_kv.hpp"
#include "tzstore_singleton.hpp"

#endif  // TZSTORE_HPP

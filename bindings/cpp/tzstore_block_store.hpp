// tzstore_block_store.hpp: tzstore::BlockStore, the C++17 wrapper of
// tzs_block_store (a node's block store: floating and cemented stores under
// one directory, merged in the background). Same error model and handle
// rules as the whole binding (see tzstore_common.hpp); tzstore.hpp
// includes it.
#ifndef TZSTORE_BLOCK_STORE_HPP
#define TZSTORE_BLOCK_STORE_HPP

#include <cstdint>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "tzstore_common.hpp"

namespace tzstore {

/// Options of BlockStore (tzs_block_store_options); the defaults are the
/// library's (tzs_block_store_options_default()).
struct BlockStoreOptions {
  Flags flags = 0;
  /// History mode of a new store; an existing store keeps its own.
  HistoryMode history_mode;
  std::uint32_t history_offset;
  /// Threads for background merges (0 = 1).
  std::uint32_t workers;
  /// Log size of every index (0 = default).
  std::uint64_t index_log_size;
  /// zstd level (1..=22) of cemented metadata.
  std::int32_t zstd_level;

  BlockStoreOptions() {
    tzs_block_store_options d = tzs_block_store_options_default();
    flags = d.flags;
    history_mode = static_cast<HistoryMode>(d.history_mode);
    history_offset = d.history_offset;
    workers = d.workers;
    index_log_size = d.index_log_size;
    zstd_level = d.zstd_level;
  }

  tzs_block_store_options to_c() const noexcept {
    tzs_block_store_options o{};
    o.flags = flags;
    o.history_mode = static_cast<std::uint32_t>(history_mode);
    o.history_offset = history_offset;
    o.workers = workers;
    o.index_log_size = index_log_size;
    o.zstd_level = zstd_level;
    return o;
  }
};

/// Counters of BlockStore::stats (tzs_block_store_stats).
struct BlockStoreStats {
  /// Lowest and highest cemented levels, -1 when nothing is cemented.
  std::int32_t cemented_lowest;
  std::int32_t cemented_highest;
  std::uint64_t cemented_blocks;
  std::uint64_t floating_blocks;
  std::uint64_t bytes_on_disk;
  /// Merges completed since the store was created.
  std::uint64_t merges_done;
  /// Duration of the last merge in milliseconds.
  std::uint64_t last_merge_ms;
  /// True while a merge runs.
  bool merging;
};

/// A node's block store (tzs_block_store). Stores, reads and a running
/// merge may overlap from any threads; close(), move-assignment and
/// destruction must not race with other calls.
class BlockStore {
 public:
  /// Opens (read-write: creates, and repairs what a crash left) the store in
  /// `dir`. Throws Error (TZS_LOCKED if another read-write instance is open,
  /// TZS_NOT_FOUND for a read-only open of a missing store,
  /// TZS_INVALID_ARGUMENT for unknown flags, history mode or zstd level,
  /// TZS_CORRUPTED, TZS_IO, ...).
  explicit BlockStore(const std::string& dir, const BlockStoreOptions& opts = BlockStoreOptions()) {
    tzs_block_store_options o = opts.to_c();
    tzs_block_store* p = nullptr;
    detail::call(tzs_block_store_open, detail::c_path(dir), &o, &p);
    h_.reset(p);
  }

  /// Stores `block`, durable on return unless opened with NO_FSYNC or
  /// `flush` is false (Octez's `store_block ?flush`): without flush the block
  /// is readable at once and survives a crash of the process, and a power
  /// cut keeps it only once a later flushed store or flush() has returned.
  /// The library computes its predecessor list. Storing a stored block is a
  /// no-op. Throws Error (TZS_INCONSISTENT if the predecessor is unknown,
  /// except for the first block of an empty store, or the level is not the
  /// predecessor's plus one; TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO).
  void store(const Block& block, bool flush = true) {
    tzs_block c = detail::block_view(block);
    detail::call(tzs_block_store_store_with, h_.get("block store"), &c, flush);
  }

  /// Makes every block stored so far durable (one fsync). Throws Error
  /// (TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO).
  void flush() { detail::call(tzs_block_store_flush, h_.get("block store")); }

  /// Whether the block is stored (floating or cemented).
  bool mem(const Hash& hash) const {
    return detail::call_found(tzs_block_store_mem, h_.get("block store"), hash.data());
  }

  /// The block `distance` blocks below `hash` (0 = the block itself), with
  /// its metadata if `read_metadata`; std::nullopt when `hash` is unknown or
  /// the distance runs past genesis or into history removed by rolling GC.
  /// Throws Error (TZS_CORRUPTED, TZS_IO).
  std::optional<Block> read(const Hash& hash, std::uint32_t distance = 0,
                            bool read_metadata = true) const {
    tzs_block out{};
    if (!detail::call_found(tzs_block_store_read, h_.get("block store"), hash.data(), distance,
                            read_metadata, &out))
      return std::nullopt;
    return detail::take_block(out);
  }

  /// The cemented block at `level`, or std::nullopt if that level is not
  /// cemented (yet, or any more).
  std::optional<Block> read_by_level(std::int32_t level, bool read_metadata = true) const {
    tzs_block out{};
    if (!detail::call_found(tzs_block_store_read_by_level, h_.get("block store"), level,
                            read_metadata, &out))
      return std::nullopt;
    return detail::take_block(out);
  }

  /// Starts a background merge cementing the ancestors of `head` up to the
  /// last of `chunk_ends` (strictly increasing levels, one chunk per
  /// interval); returns once started. A merge already running is waited for
  /// first (its error, if any, is thrown and no merge starts). Throws Error
  /// (TZS_INVALID_ARGUMENT for bad ends, TZS_NOT_FOUND if `head` is not
  /// stored, TZS_INCONSISTENT, TZS_READ_ONLY, TZS_IO).
  void merge(const Hash& head, const std::vector<std::int32_t>& chunk_ends) {
    detail::call(tzs_block_store_merge, h_.get("block store"), head.data(), chunk_ends.data(),
                 chunk_ends.size());
  }

  /// Waits for the running merge, if any; throws its error.
  void await_merge() { detail::call(tzs_block_store_await_merge, h_.get("block store")); }

  /// Starts a merge as merge() does and returns a future that becomes
  /// ready when it ends: get() returns, or throws the error the merge
  /// failed with (the store then holds what it held before). An error
  /// starting the merge is thrown here. The wait runs on another thread
  /// (std::async); the store must outlive the future.
  std::future<void> merge_async(const Hash& head, const std::vector<std::int32_t>& chunk_ends) {
    merge(head, chunk_ends);
    return std::async(std::launch::async, [this] { await_merge(); });
  }

  /// Levels, counts, bytes on disk and merge counters.
  BlockStoreStats stats() const {
    tzs_block_store_stats c{};
    detail::call(tzs_block_store_read_stats, h_.get("block store"), &c);
    return BlockStoreStats{c.cemented_lowest, c.cemented_highest, c.cemented_blocks,
                           c.floating_blocks, c.bytes_on_disk,    c.merges_done,
                           c.last_merge_ms,   c.merging};
  }

  /// Checks every invariant; with `repair` (read-write handles) removes
  /// orphan stores. Throws Error(TZS_CORRUPTED) listing the problems left.
  void check(bool repair = false) {
    detail::call(tzs_block_store_check, h_.get("block store"), repair);
  }

  /// Closes now, after a running merge (also done by the destructor); later
  /// calls throw TZS_CLOSED.
  void close() noexcept { h_.reset(); }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_block_store* native() const noexcept { return h_.raw(); }

 private:
  detail::Handle<tzs_block_store, tzs_block_store_close> h_;
};

}  // namespace tzstore

#endif  // TZSTORE_BLOCK_STORE_HPP

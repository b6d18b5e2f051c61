// tzstore_block_store.hpp: tzstore::BlockStore, the C++17 wrapper of
// tzs_block_store (a node's block store: floating and cemented stores under
// one directory, merged in the background, with Octez's chain bookkeeping:
// genesis, savepoint, caboose, merge status, history-mode switches). Same
// error model and handle rules as the whole binding (see
// tzstore_common.hpp); tzstore.hpp includes it.
#ifndef TZSTORE_BLOCK_STORE_HPP
#define TZSTORE_BLOCK_STORE_HPP

#include <cstdint>
#include <cstring>
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

/// A block named by hash and level (tzs_block_descr, Octez's block
/// descriptor): the genesis, savepoint and caboose of a BlockStore.
struct BlockDescr {
  Hash hash{};
  std::int32_t level = 0;

  friend bool operator==(const BlockDescr& a, const BlockDescr& b) {
    return a.hash == b.hash && a.level == b.level;
  }
  friend bool operator!=(const BlockDescr& a, const BlockDescr& b) { return !(a == b); }
};

/// Where a BlockStore's background merge stands (tzs_merge_state).
enum class MergeState : tzs_merge_state {
  /// No merge runs; the last one of this handle, if any, succeeded.
  NOT_RUNNING = TZS_MERGE_NOT_RUNNING,
  /// A merge runs.
  RUNNING = TZS_MERGE_RUNNING,
  /// The last merge of this handle failed; the store holds what it held
  /// before it.
  FAILED = TZS_MERGE_FAILED,
};

/// What BlockStore::merge_status returns (Octez's get_merge_status).
struct MergeStatus {
  MergeState state = MergeState::NOT_RUNNING;
  /// The failed merge's error when `state` is FAILED, std::nullopt otherwise.
  std::optional<Error> failure;
};

/// A BlockStore's history mode and offset (BlockStore::history).
struct History {
  HistoryMode mode;
  std::uint32_t offset;
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

  /// Creates a block store in `dir` holding `genesis` (its first block,
  /// stored durably), as Octez's Block_store.create ~genesis_block: the
  /// genesis, savepoint and caboose are then `genesis`. `opts` must not ask
  /// for READONLY. Throws Error (TZS_INVALID_ARGUMENT if `dir` already holds
  /// a block store or for read-only or invalid options; TZS_LOCKED,
  /// TZS_CORRUPTED, TZS_NO_SPACE, TZS_IO).
  static BlockStore create(const std::string& dir, const Block& genesis,
                           const BlockStoreOptions& opts = BlockStoreOptions()) {
    tzs_block_store_options o = opts.to_c();
    tzs_block g = detail::block_view(genesis);
    tzs_block_store* p = nullptr;
    detail::call(tzs_block_store_create, detail::c_path(dir), &o, &g, &p);
    return BlockStore(p);
  }

  /// Opens the existing block store in `dir` as the constructor does and
  /// checks that its genesis is `genesis_hash` (Octez's Block_store.load).
  /// Throws Error (the constructor's; TZS_NOT_FOUND if `dir` holds no block
  /// store, TZS_INCONSISTENT if its genesis is another block).
  static BlockStore load(const std::string& dir, const Hash& genesis_hash,
                         const BlockStoreOptions& opts = BlockStoreOptions()) {
    tzs_block_store_options o = opts.to_c();
    tzs_block_store* p = nullptr;
    detail::call(tzs_block_store_load, detail::c_path(dir), &o, genesis_hash.data(), &p);
    return BlockStore(p);
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

  /// store() recording the block's resulting context hash (Octez's
  /// store_block block resulting_context_hash), which
  /// resulting_context_hash() reads back; store() records zeros. Merges
  /// keep it. Throws as store().
  void store_with_context(const Block& block, const Hash& context, bool flush = true) {
    tzs_block c = detail::block_view(block);
    detail::call(tzs_block_store_store_with_context, h_.get("block store"), &c, context.data(),
                 flush);
  }

  /// The resulting context hash the block `hash` was stored with (zeros if
  /// none was given), without reading the block: from the floating index
  /// or the cemented record. std::nullopt if the block is not stored.
  /// Throws Error (TZS_CORRUPTED, TZS_IO).
  std::optional<Hash> resulting_context_hash(const Hash& hash) const {
    Hash out{};
    if (!detail::call_found(tzs_block_store_resulting_context_hash, h_.get("block store"),
                            hash.data(), out.data()))
      return std::nullopt;
    return out;
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

  /// read() without a copy: the block's contents and metadata are lent by
  /// `reader`, valid until its next read, release() or destruction, even
  /// across merges, GC and this store's close (see BlockView). The reader's
  /// previous views end when this call starts, whatever its outcome;
  /// std::nullopt as for read() (the reader then holds nothing). Each
  /// record's checksum is checked before a view of it is given. Throws
  /// Error (TZS_CORRUPTED, TZS_IO; TZS_CLOSED for a moved-from reader).
  std::optional<BlockView> read_view(Reader& reader, const Hash& hash, std::uint32_t distance = 0,
                                     bool read_metadata = true) const {
    tzs_block_view out{};
    if (!detail::call_found(tzs_block_store_read_view, h_.get("block store"), reader.get(),
                            hash.data(), distance, read_metadata, &out))
      return std::nullopt;
    return detail::view_of(out);
  }

  /// read_by_level() without a copy, as read_view(): the cemented block at
  /// `level`, or std::nullopt if that level is not cemented.
  std::optional<BlockView> read_by_level_view(Reader& reader, std::int32_t level,
                                              bool read_metadata = true) const {
    tzs_block_view out{};
    if (!detail::call_found(tzs_block_store_read_by_level_view, h_.get("block store"),
                            reader.get(), level, read_metadata, &out))
      return std::nullopt;
    return detail::view_of(out);
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

  /// Read-only handles: catches up with the read-write handle, usually in
  /// another process (Octez's Block_store.sync). Every block the writer
  /// stored durably (with flush, or followed by flush()) before the call is
  /// readable after it, and every merge it completed is seen with its
  /// savepoint, caboose and history mode; reads meanwhile see the state
  /// before or after, never a block lost in between. Cheap when nothing
  /// changed. Returns whether the writer's manifest changed (a merge, a
  /// savepoint, caboose or mode written). A no-op returning false on a
  /// read-write handle. Throws Error (TZS_CORRUPTED, TZS_IO; the handle
  /// then keeps the state it had).
  bool sync() {
    bool changed = false;
    detail::call(tzs_block_store_sync, h_.get("block store"), &changed);
    return changed;
  }

  /// Starts a merge as merge() does and returns a future that becomes
  /// ready when it ends: get() returns, or throws the error the merge
  /// failed with (the store then holds what it held before). An error
  /// starting the merge is thrown here. The wait runs on another thread
  /// (std::async); the store must outlive the future.
  std::future<void> merge_async(const Hash& head, const std::vector<std::int32_t>& chunk_ends) {
    merge(head, chunk_ends);
    return std::async(std::launch::async, [this] { await_merge(); });
  }

  /// Starts a merge as merge() does, keeping in the floating store, with
  /// their metadata, the new cemented top (the last of `chunk_ends`: the
  /// head's last preserved block) and up to `max_op_ttl` of its ancestors,
  /// as Octez's merge_stores does; reads take those floating copies. The
  /// merge moves the savepoint and caboose by the history mode (FULL or
  /// ROLLING with offset 0: to the lowest preserved block), and ROLLING 0
  /// cements nothing. Throws as merge().
  void merge_preserving(const Hash& head, const std::vector<std::int32_t>& chunk_ends,
                        std::uint32_t max_op_ttl) {
    detail::call(tzs_block_store_merge_preserving, h_.get("block store"), head.data(),
                 chunk_ends.data(), chunk_ends.size(), max_op_ttl);
  }

  /// Whether a merge runs, or the last one of this handle failed (until the
  /// next merge starts) with its error; does not wait.
  MergeStatus merge_status() const {
    tzs_merge_state state = TZS_MERGE_NOT_RUNNING;
    tzs_error* failure = nullptr;
    detail::call(tzs_block_store_merge_status, h_.get("block store"), &state, &failure);
    struct Free {
      tzs_error* e;
      ~Free() { tzs_error_free(e); }
    } guard{failure};
    MergeStatus out;
    out.state = static_cast<MergeState>(state);
    if (failure != nullptr) out.failure.emplace(tzs_error_code(failure), tzs_error_message(failure));
    return out;
  }

  /// The genesis block (recorded when the first block was stored), or
  /// std::nullopt while the store holds no block (or after a repair rebuilt
  /// its manifest).
  std::optional<BlockDescr> genesis() const { return descr(tzs_block_store_genesis); }

  /// The savepoint: the lowest block stored with its metadata, or
  /// std::nullopt while the store holds no block. Merges move it by the
  /// history mode (Octez's rules); write_savepoint sets it.
  std::optional<BlockDescr> savepoint() const { return descr(tzs_block_store_savepoint); }

  /// The caboose: the lowest block stored, or std::nullopt while the store
  /// holds no block. Only ROLLING merges move it; write_caboose sets it.
  std::optional<BlockDescr> caboose() const { return descr(tzs_block_store_caboose); }

  /// Sets the savepoint, durably on return (a crash leaves the old or the
  /// new value). Throws Error (TZS_INVALID_ARGUMENT below the caboose or the
  /// genesis, TZS_NOT_FOUND if the block is not stored, TZS_INCONSISTENT if
  /// it is stored at another level, TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO).
  void write_savepoint(const BlockDescr& savepoint) {
    tzs_block_descr c = descr_view(savepoint);
    detail::call(tzs_block_store_write_savepoint, h_.get("block store"), &c);
  }

  /// Sets the caboose, durably on return. Throws Error
  /// (TZS_INVALID_ARGUMENT above the savepoint or below the genesis,
  /// TZS_NOT_FOUND, TZS_INCONSISTENT, TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO).
  void write_caboose(const BlockDescr& caboose) {
    tzs_block_descr c = descr_view(caboose);
    detail::call(tzs_block_store_write_caboose, h_.get("block store"), &c);
  }

  /// The history mode and offset (persisted; changed only by
  /// switch_history_mode).
  History history() const {
    tzs_history_mode mode = 0;
    std::uint32_t offset = 0;
    detail::call(tzs_block_store_history, h_.get("block store"), &mode, &offset);
    return History{static_cast<HistoryMode>(mode), offset};
  }

  /// Switches to history `mode` with `offset` by Octez's rules: ARCHIVE may
  /// become FULL or ROLLING, FULL may become FULL or ROLLING, ROLLING may
  /// change its offset; to ARCHIVE from another mode, or ROLLING to FULL,
  /// throws TZS_INVALID_ARGUMENT (the message names both modes). `head` is
  /// the node's head: the blocks kept are its last preserved block (the last
  /// merge's top) and `max_op_ttl` ancestors. The savepoint and caboose move
  /// as Octez moves them; mode, offset and marks are written in one durable
  /// step, then the GC for the new mode runs before this returns. Waits for
  /// a running merge first. Throws Error (TZS_INVALID_ARGUMENT, also for an
  /// unknown mode or an offset above 1000; TZS_NOT_FOUND if `head` is not
  /// stored; TZS_READ_ONLY; TZS_CORRUPTED if the GC met damage, the switch
  /// itself being done; TZS_NO_SPACE, TZS_IO).
  void switch_history_mode(const Hash& head, HistoryMode mode, std::uint32_t offset,
                           std::uint32_t max_op_ttl) {
    detail::call(tzs_block_store_switch_history_mode, h_.get("block store"), head.data(),
                 static_cast<tzs_history_mode>(mode), offset, max_op_ttl);
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
  explicit BlockStore(tzs_block_store* p) noexcept : h_(p) {}

  /// Reads one of the recorded blocks (genesis, savepoint, caboose).
  template <typename Fn>
  std::optional<BlockDescr> descr(Fn fn) const {
    tzs_block_descr c{};
    if (!detail::call_found(fn, h_.get("block store"), &c)) return std::nullopt;
    BlockDescr d;
    std::memcpy(d.hash.data(), c.hash, d.hash.size());
    d.level = c.level;
    return d;
  }

  static tzs_block_descr descr_view(const BlockDescr& d) noexcept {
    tzs_block_descr c{};
    std::memcpy(c.hash, d.hash.data(), d.hash.size());
    c.level = d.level;
    return c;
  }

  detail::Handle<tzs_block_store, tzs_block_store_close> h_;
};

}  // namespace tzstore

#endif  // TZSTORE_BLOCK_STORE_HPP

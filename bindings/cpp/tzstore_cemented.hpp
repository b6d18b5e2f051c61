// tzstore_cemented.hpp: tzstore::Cemented, the C++17 wrapper of
// tzs_cemented (finalized blocks in chunk files by level, two indexes,
// metadata in zstd zips). Same error model and handle rules as the whole
// binding (see tzstore_common.hpp); tzstore.hpp includes it.
#ifndef TZSTORE_CEMENTED_HPP
#define TZSTORE_CEMENTED_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tzstore_common.hpp"

namespace tzstore {

/// The levels of a cemented chunk, inclusive on both ends (tzs_chunk).
struct Chunk {
  std::int32_t start_level = 0;
  std::int32_t end_level = -1;

  friend bool operator==(const Chunk& a, const Chunk& b) {
    return a.start_level == b.start_level && a.end_level == b.end_level;
  }
  friend bool operator!=(const Chunk& a, const Chunk& b) { return !(a == b); }
};

/// A chunk being cemented block by block (tzs_chunk_writer), from
/// Cemented::begin_chunk, so that a whole cycle need not be in memory at
/// once. Move-only; the destructor aborts a chunk not committed. It holds
/// the store's write lock until commit() or abort() (other writes to the
/// store wait meanwhile) and keeps the store alive: it may commit after the
/// Cemented is closed. One call at a time: calls on one writer must not
/// overlap.
class ChunkWriter {
 public:
  ChunkWriter(ChunkWriter&&) noexcept = default;
  /// Aborts the chunk this writer held, if any.
  ChunkWriter& operator=(ChunkWriter&&) noexcept = default;

  /// Adds the next block (its level the previous one's + 1, starting at the
  /// chunk's start), copying it; its resulting context hash is recorded as
  /// zeros. Throws Error (TZS_INCONSISTENT for a wrong level, a duplicated
  /// or already cemented hash, a broken predecessor link with
  /// check_consistency; TZS_NO_SPACE, TZS_IO; TZS_CLOSED once committed or
  /// aborted). After an error only abort() is useful: commit() throws.
  void push(const Block& block) {
    tzs_block c = detail::block_view(block);
    detail::call(tzs_chunk_writer_push, h_.get("chunk writer"), &c);
  }

  /// push() recording the block's resulting context hash, which
  /// Cemented::resulting_context_hash reads back.
  void push_with_context(const Block& block, const Hash& context) {
    tzs_block c = detail::block_view(block);
    detail::call(tzs_chunk_writer_push_with_context, h_.get("chunk writer"), &c, context.data());
  }

  /// Makes the chunk durable, then visible to readers at once, and returns
  /// its range. Ends the writer whatever the outcome. Throws Error
  /// (TZS_INCONSISTENT for fewer blocks pushed than the range holds,
  /// TZS_INVALID_ARGUMENT after a failed push, TZS_NO_SPACE, TZS_IO,
  /// TZS_CLOSED once committed or aborted); nothing of the chunk is then
  /// visible.
  Chunk commit() {
    // The C commit frees the writer even when it fails.
    tzs_chunk_writer* p = h_.get("chunk writer");
    h_.release();
    tzs_chunk out{};
    detail::call(tzs_chunk_writer_commit, p, &out);
    return Chunk{out.start_level, out.end_level};
  }

  /// Abandons the chunk (nothing of it stays) and releases the store's
  /// write lock; a no-op once committed or aborted.
  void abort() noexcept { h_.reset(); }
  /// Whether the writer is neither committed nor aborted.
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, still owned here.
  tzs_chunk_writer* native() const noexcept { return h_.raw(); }

 private:
  friend class Cemented;
  explicit ChunkWriter(tzs_chunk_writer* p) noexcept : h_(p) {}

  detail::Handle<tzs_chunk_writer, tzs_chunk_writer_abort> h_;
};

/// A cemented block store (tzs_cemented). Any thread may call any method
/// concurrently (reads in parallel, writes serialised); close(),
/// move-assignment and destruction must not race with other calls.
class Cemented {
 public:
  /// Opens (read-write: creates, and completes or removes a chunk a crash
  /// left unindexed) the store in `dir`. Flags: READONLY, NO_FSYNC.
  /// `log_size`: both indexes' log size (0 = default). Throws Error
  /// (TZS_LOCKED, TZS_NOT_FOUND for a read-only open of a missing store,
  /// TZS_CORRUPTED, TZS_IO, ...).
  explicit Cemented(const std::string& dir, Flags flags = 0, std::uint64_t log_size = 0) {
    tzs_cemented* p = nullptr;
    detail::call(tzs_cemented_open, detail::c_path(dir), flags, log_size, &p);
    h_.reset(p);
  }

  /// The lowest cemented level, or std::nullopt when the store is empty.
  std::optional<std::int32_t> lowest_level() const {
    std::int32_t out = 0;
    if (!detail::call_found(tzs_cemented_lowest_level, h_.get("cemented store"), &out))
      return std::nullopt;
    return out;
  }

  /// The highest cemented level, or std::nullopt when the store is empty.
  std::optional<std::int32_t> highest_level() const {
    std::int32_t out = 0;
    if (!detail::call_found(tzs_cemented_highest_level, h_.get("cemented store"), &out))
      return std::nullopt;
    return out;
  }

  /// The level of a cemented block, or std::nullopt.
  std::optional<std::int32_t> level_of(const Hash& hash) const {
    std::int32_t out = 0;
    if (!detail::call_found(tzs_cemented_level_of, h_.get("cemented store"), hash.data(), &out))
      return std::nullopt;
    return out;
  }

  /// The hash of the cemented block at `level`, or std::nullopt.
  std::optional<Hash> hash_of(std::int32_t level) const {
    Hash out{};
    if (!detail::call_found(tzs_cemented_hash_of, h_.get("cemented store"), level, out.data()))
      return std::nullopt;
    return out;
  }

  /// The block at `level` (with its stored metadata if `read_metadata`),
  /// or std::nullopt. Throws Error(TZS_CORRUPTED) for a damaged record or
  /// metadata entry.
  std::optional<Block> read_by_level(std::int32_t level, bool read_metadata = true) const {
    tzs_block out{};
    if (!detail::call_found(tzs_cemented_read_by_level, h_.get("cemented store"), level,
                            read_metadata, &out))
      return std::nullopt;
    return detail::take_block(out);
  }

  /// read_by_level() without a copy: contents lent from the chunk's map,
  /// metadata (decompressed) from the reader's own buffer, valid until
  /// `reader`'s next read, release() or destruction, even after GC deletes
  /// the chunk or this store is closed (see BlockView). The reader's
  /// previous views end when this call starts, whatever its outcome;
  /// std::nullopt if no chunk holds `level`. Throws Error (TZS_CORRUPTED,
  /// TZS_IO; TZS_CLOSED for a moved-from reader).
  std::optional<BlockView> read_view_by_level(Reader& reader, std::int32_t level,
                                              bool read_metadata = true) const {
    tzs_block_view out{};
    if (!detail::call_found(tzs_cemented_read_view_by_level, h_.get("cemented store"),
                            reader.get(), level, read_metadata, &out))
      return std::nullopt;
    return detail::view_of(out);
  }

  /// The cemented block `hash`, or std::nullopt.
  std::optional<Block> read_by_hash(const Hash& hash, bool read_metadata = true) const {
    tzs_block out{};
    if (!detail::call_found(tzs_cemented_read_by_hash, h_.get("cemented store"), hash.data(),
                            read_metadata, &out))
      return std::nullopt;
    return detail::take_block(out);
  }

  /// The metadata of the block at `level`, or std::nullopt if it has none
  /// stored (none given, not cemented, or dropped by GC).
  std::optional<std::vector<std::uint8_t>> read_metadata(std::int32_t level) const {
    tzs_bytes out{nullptr, 0};
    if (!detail::call_found(tzs_cemented_read_metadata, h_.get("cemented store"), level, &out))
      return std::nullopt;
    return detail::take_bytes(out);
  }

  /// Cements `blocks` (consecutive levels, in order) as one chunk, durable
  /// on return unless opened with NO_FSYNC. Throws Error
  /// (TZS_INVALID_ARGUMENT for no block, TZS_INCONSISTENT with a message
  /// saying where when `check_consistency` finds a gap, an overlap, a
  /// duplicated hash or a broken predecessor link; TZS_READ_ONLY,
  /// TZS_NO_SPACE, TZS_IO). After an error nothing of the chunk is visible.
  void cement(const std::vector<Block>& blocks, bool write_metadata = true,
              bool check_consistency = true) {
    std::vector<tzs_block> views;
    views.reserve(blocks.size());
    for (const Block& b : blocks) views.push_back(detail::block_view(b));
    detail::call(tzs_cemented_cement, h_.get("cemented store"), views.data(), views.size(),
                 write_metadata, check_consistency);
  }

  /// Begins the chunk of levels `start..=end` (inclusive), to be filled
  /// with ChunkWriter::push in level order and made durable and visible by
  /// ChunkWriter::commit; abort(), the writer's destructor, a failed push
  /// or commit, or a crash before the commit returns leave nothing of it.
  /// `write_metadata` and `check_consistency` as in cement(). Throws Error
  /// (TZS_INCONSISTENT for end < start, an overlap with a cemented chunk,
  /// or with `check_consistency` a start not right after the highest
  /// cemented level; TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO). Waits for other
  /// writes to the store, including another open ChunkWriter.
  ChunkWriter begin_chunk(std::int32_t start, std::int32_t end, bool write_metadata = true,
                          bool check_consistency = true) {
    tzs_chunk_writer* p = nullptr;
    detail::call(tzs_cemented_begin_chunk, h_.get("cemented store"), start, end, write_metadata,
                 check_consistency, &p);
    return ChunkWriter(p);
  }

  /// Writes the metadata of `blocks`, blocks of one chunk cemented without
  /// metadata (or whose metadata GC dropped), in level order, each the
  /// cemented block at its level (Octez's cement_blocks_metadata); blocks
  /// without metadata are skipped. Durable on return; a crash leaves the
  /// chunk with no metadata or all of it. Returns the chunk's range.
  /// Throws Error (TZS_INVALID_ARGUMENT for no block, levels not
  /// increasing or a chunk that has metadata; TZS_NOT_FOUND for a level
  /// not cemented; TZS_INCONSISTENT for blocks spanning two chunks or a
  /// hash not the cemented one; TZS_READ_ONLY, TZS_CORRUPTED, TZS_NO_SPACE,
  /// TZS_IO).
  Chunk cement_metadata(const std::vector<Block>& blocks) {
    std::vector<tzs_block> views;
    views.reserve(blocks.size());
    for (const Block& b : blocks) views.push_back(detail::block_view(b));
    tzs_chunk out{};
    detail::call(tzs_cemented_cement_metadata, h_.get("cemented store"), views.data(),
                 views.size(), &out);
    return Chunk{out.start_level, out.end_level};
  }

  /// The resulting context hash the cemented block `hash` was stored with
  /// (zeros if none was given), read from its record without reading the
  /// block, or std::nullopt if it is not cemented. Throws Error
  /// (TZS_CORRUPTED, TZS_IO).
  std::optional<Hash> resulting_context_hash(const Hash& hash) const {
    Hash out{};
    if (!detail::call_found(tzs_cemented_resulting_context_hash, h_.get("cemented store"),
                            hash.data(), out.data()))
      return std::nullopt;
    return out;
  }

  /// The store's chunks, ascending.
  std::vector<Chunk> chunks() const { return list(tzs_cemented_chunks); }
  /// The chunks that have a metadata zip, ascending.
  std::vector<Chunk> metadata_chunks() const { return list(tzs_cemented_metadata_chunks); }

  /// The chunk holding `level`, or std::nullopt.
  std::optional<Chunk> find_chunk(std::int32_t level) const {
    tzs_chunk out{};
    if (!detail::call_found(tzs_cemented_find_chunk, h_.get("cemented store"), level, &out))
      return std::nullopt;
    return Chunk{out.start_level, out.end_level};
  }

  /// GC by history mode: ARCHIVE does nothing, FULL drops the metadata of
  /// all but the last `offset` chunks, ROLLING all but the last `offset`
  /// chunks. Readers in other threads keep working meanwhile.
  void gc(HistoryMode mode, std::uint32_t offset) {
    detail::call(tzs_cemented_gc, h_.get("cemented store"), static_cast<tzs_history_mode>(mode),
                 offset);
  }

  /// Checks every chunk, block and index entry; throws the first problem
  /// (TZS_INCONSISTENT or TZS_CORRUPTED with a message saying where). The
  /// block `genesis` (if given) and the lowest stored block need no
  /// predecessor below them.
  void check_consistency(const std::optional<Hash>& genesis = std::nullopt) const {
    detail::call(tzs_cemented_check_consistency, h_.get("cemented store"),
                 genesis ? genesis->data() : nullptr);
  }

  /// Calls `f(const Block&)` for every block of `chunk` (exactly one of the
  /// store's chunks) in level order; false if the store has no such chunk.
  /// `f` must not close or move this store.
  template <typename F>
  bool for_each(const Chunk& chunk, F&& f, bool read_metadata = true) const {
    tzs_cemented_iter* p = nullptr;
    if (!detail::call_found(tzs_cemented_iter_new, h_.get("cemented store"),
                            tzs_chunk{chunk.start_level, chunk.end_level}, read_metadata, &p))
      return false;
    detail::Handle<tzs_cemented_iter, tzs_cemented_iter_free> it(p);
    for (;;) {
      tzs_block out{};
      if (detail::call_status({TZS_DONE}, tzs_cemented_iter_next, it.raw(), &out) == TZS_DONE)
        return true;
      Block b = detail::take_block(out);
      f(static_cast<const Block&>(b));
    }
  }

  /// Sets the zstd level (1..=22) of metadata written from now on.
  void set_zstd_level(std::int32_t level) {
    detail::call(tzs_cemented_set_zstd_level, h_.get("cemented store"), level);
  }

  /// Read-only handles: loads what the writer cemented or dropped since.
  void sync() { detail::call(tzs_cemented_sync, h_.get("cemented store")); }

  /// Closes now (also done by the destructor); later calls throw TZS_CLOSED.
  void close() noexcept { h_.reset(); }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_cemented* native() const noexcept { return h_.raw(); }

 private:
  std::vector<Chunk> list(tzs_status (*fn)(tzs_cemented*, tzs_chunk_list**, tzs_error**)) const {
    tzs_chunk_list* p = nullptr;
    detail::call(fn, h_.get("cemented store"), &p);
    detail::Handle<tzs_chunk_list, tzs_chunk_list_free> owner(p);
    std::vector<Chunk> out(tzs_chunk_list_len(p));
    for (std::size_t i = 0; i < out.size(); ++i) {
      tzs_chunk c = tzs_chunk_list_get(p, i);
      out[i] = Chunk{c.start_level, c.end_level};
    }
    return out;
  }

  detail::Handle<tzs_cemented, tzs_cemented_close> h_;
};

}  // namespace tzstore

#endif  // TZSTORE_CEMENTED_HPP

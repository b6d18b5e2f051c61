// tzstore_floating.hpp: tzstore::Floating and FloatingIter, the C++17
// wrapper of tzs_floating (blocks in arrival order with their predecessor
// lists). Same error model and handle rules
// as the whole binding (see tzstore_common.hpp); tzstore.hpp includes it.
#ifndef TZSTORE_FLOATING_HPP
#define TZSTORE_FLOATING_HPP

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tzstore_common.hpp"

namespace tzstore {

/// Which of the five floating stores of a directory (tzs_floating_kind).
enum class FloatingKind : tzs_floating_kind {
  RO = TZS_FLOATING_RO,
  RW = TZS_FLOATING_RW,
  RO_TMP = TZS_FLOATING_RO_TMP,
  RW_TMP = TZS_FLOATING_RW_TMP,
  RESTORE = TZS_FLOATING_RESTORE,
};

/// An iterator over a floating store's blocks in file (arrival) order
/// (tzs_floating_iter). It sees the blocks stored when it was created and
/// stays valid after the store is closed. Use it from one thread at a time.
class FloatingIter {
 public:
  /// The next block and its predecessor list, or std::nullopt at the end.
  /// Throws Error (TZS_CORRUPTED ends the iteration, TZS_IO).
  std::optional<BlockEntry> next() {
    tzs_block out{};
    tzs_bytes preds{nullptr, 0};
    if (detail::call_status({TZS_DONE}, tzs_floating_iter_next, h_.get("floating iterator"), &out,
                            &preds) == TZS_DONE)
      return std::nullopt;
    BlockEntry e{detail::take_block(out), {}};
    e.predecessors = detail::take_hashes(preds);
    return e;
  }

 private:
  friend class Floating;
  explicit FloatingIter(tzs_floating_iter* p) noexcept : h_(p) {}
  detail::Handle<tzs_floating_iter, tzs_floating_iter_free> h_;
};

/// A floating block store (tzs_floating): blocks appended in arrival order
/// with their predecessor lists, looked up by hash. Many threads may read
/// while one appends.
class Floating {
 public:
  /// Opens the store of `kind` in directory `dir` (created by a read-write
  /// open). Flags: READONLY, NO_FSYNC. Throws Error (TZS_LOCKED if another
  /// read-write instance of this kind is open, TZS_NOT_FOUND for a
  /// read-only open of a missing store, TZS_CORRUPTED, TZS_IO, ...).
  Floating(const std::string& dir, FloatingKind kind, Flags flags = 0) {
    tzs_floating* p = nullptr;
    detail::call(tzs_floating_open, detail::c_path(dir), static_cast<tzs_floating_kind>(kind),
                 flags, &p);
    h_.reset(p);
  }

  /// Appends `block` with its predecessor list (at most 12 hashes, entry i
  /// the 2^i-th ancestor). A block already stored is left unchanged. With
  /// `flush`, durable on return. Throws Error (TZS_READ_ONLY,
  /// TZS_INVALID_ARGUMENT for more than 12 predecessors, TZS_NO_SPACE, TZS_IO).
  void append(const Block& block, const std::vector<Hash>& predecessors = {}, bool flush = true) {
    tzs_block c = detail::block_view(block);
    std::vector<std::uint8_t> preds = detail::join_hashes(predecessors);
    detail::call(tzs_floating_append, h_.get("floating"), &c, preds.data(), predecessors.size(),
                 flush);
  }

  /// append() recording the block's resulting context hash (Octez's
  /// append_block), which resulting_context_hash() reads back; append()
  /// records zeros. Throws as append().
  void append_with_context(const Block& block, const Hash& context,
                           const std::vector<Hash>& predecessors = {}, bool flush = true) {
    tzs_block c = detail::block_view(block);
    std::vector<std::uint8_t> preds = detail::join_hashes(predecessors);
    detail::call(tzs_floating_append_with_context, h_.get("floating"), &c, context.data(),
                 preds.data(), predecessors.size(), flush);
  }

  /// The resulting context hash the block `hash` was appended with (zeros
  /// if none was given), from the index alone (Octez's find_info), or
  /// std::nullopt if it is not stored. Throws Error (TZS_CORRUPTED, TZS_IO).
  std::optional<Hash> resulting_context_hash(const Hash& hash) const {
    Hash out{};
    if (!detail::call_found(tzs_floating_resulting_context_hash, h_.get("floating"), hash.data(),
                            out.data()))
      return std::nullopt;
    return out;
  }

  /// Makes every appended block durable.
  void flush() { detail::call(tzs_floating_flush, h_.get("floating")); }

  /// Read-only handles: loads the blocks appended since open or the last sync.
  void sync() { detail::call(tzs_floating_sync, h_.get("floating")); }

  /// Whether the block with `hash` is stored.
  bool mem(const Hash& hash) const {
    return detail::call_found(tzs_floating_mem, h_.get("floating"), hash.data());
  }

  /// The block's predecessor list, or std::nullopt if it is not stored.
  std::optional<std::vector<Hash>> find_predecessors(const Hash& hash) const {
    tzs_bytes out{nullptr, 0};
    if (!detail::call_found(tzs_floating_find_predecessors, h_.get("floating"), hash.data(), &out))
      return std::nullopt;
    return detail::take_hashes(out);
  }

  /// The block, or std::nullopt if it is not stored. Throws
  /// Error(TZS_CORRUPTED) if its record is damaged.
  std::optional<Block> read_block(const Hash& hash) const {
    tzs_block out{};
    if (!detail::call_found(tzs_floating_read_block, h_.get("floating"), hash.data(), &out))
      return std::nullopt;
    return detail::take_block(out);
  }

  /// read_block() without a copy (metadata always read): contents and
  /// metadata lent by `reader`, valid until its next read, release() or
  /// destruction, even after this store is closed (see BlockView). The
  /// reader's previous views end when this call starts, whatever its
  /// outcome; std::nullopt if the block is not stored. Throws Error
  /// (TZS_CORRUPTED, TZS_IO; TZS_CLOSED for a moved-from reader).
  std::optional<BlockView> read_view(Reader& reader, const Hash& hash) const {
    tzs_block_view out{};
    if (!detail::call_found(tzs_floating_read_view, h_.get("floating"), reader.get(), hash.data(),
                            &out))
      return std::nullopt;
    return detail::view_of(out);
  }

  /// The block and its predecessor list, or std::nullopt.
  std::optional<BlockEntry> read_block_and_predecessors(const Hash& hash) const {
    tzs_block out{};
    tzs_bytes preds{nullptr, 0};
    if (!detail::call_found(tzs_floating_read_block_and_predecessors, h_.get("floating"),
                            hash.data(), &out, &preds))
      return std::nullopt;
    BlockEntry e{detail::take_block(out), {}};
    e.predecessors = detail::take_hashes(preds);
    return e;
  }

  /// Number of blocks stored.
  std::uint64_t size() const { return tzs_floating_len(h_.get("floating")); }

  /// An iterator over the blocks stored now, in file order.
  FloatingIter iter() const {
    tzs_floating_iter* p = nullptr;
    detail::call(tzs_floating_iter_new, h_.get("floating"), &p);
    return FloatingIter(p);
  }

  /// Calls `f(const BlockEntry&)` for every block stored now, in file order
  /// (Octez's fold_left_with_pred_s).
  template <typename F>
  void for_each(F&& f) const {
    FloatingIter it = iter();
    while (auto e = it.next()) f(static_cast<const BlockEntry&>(*e));
  }

  /// Closes now (also done by the destructor); later calls throw TZS_CLOSED.
  void close() noexcept { h_.reset(); }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_floating* native() const noexcept { return h_.raw(); }

 private:
  detail::Handle<tzs_floating, tzs_floating_close> h_;
};

}  // namespace tzstore

#endif  // TZSTORE_FLOATING_HPP

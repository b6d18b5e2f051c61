// tzstore_index.hpp: tzstore::Index and IndexIter, the C++17 wrapper of
// tzs_index (a persistent hash table of fixed-size keys and values). Same
// error model and handle rules as the whole binding (see
// tzstore_common.hpp); tzstore.hpp includes it.
#ifndef TZSTORE_INDEX_HPP
#define TZSTORE_INDEX_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tzstore_common.hpp"

namespace tzstore {

/// A snapshot iterator over an index (tzs_index_iter), in unspecified
/// order, each key once. It does not see later writes and stays valid after
/// the index is closed.
class IndexIter {
 public:
  /// The next binding (key, value), or std::nullopt at the end.
  std::optional<std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>>> next() {
    std::vector<std::uint8_t> key(key_size_), value(value_size_);
    if (detail::call_status({TZS_DONE}, tzs_index_iter_next, h_.get("index iterator"), key.data(),
                            key.size(), value.data(), value.size()) == TZS_DONE)
      return std::nullopt;
    return std::make_pair(std::move(key), std::move(value));
  }

 private:
  friend class Index;
  IndexIter(tzs_index_iter* p, std::size_t key_size, std::size_t value_size) noexcept
      : h_(p), key_size_(key_size), value_size_(value_size) {}
  detail::Handle<tzs_index_iter, tzs_index_iter_free> h_;
  std::size_t key_size_;
  std::size_t value_size_;
};

/// A persistent hash table of fixed-size keys and values (tzs_index, as
/// mirage's index). Any thread may call any method concurrently.
class Index {
 public:
  /// Opens (a read-write open creates) the index in directory `dir`. Flags:
  /// READONLY, REMOVABLE, NO_FSYNC. `log_size`: entries buffered before a
  /// background merge (0 = default). Throws Error (TZS_LOCKED,
  /// TZS_NOT_FOUND for a read-only open of a missing index,
  /// TZS_INVALID_ARGUMENT for sizes different from the index's, ...).
  Index(const std::string& dir, std::uint32_t key_size, std::uint32_t value_size, Flags flags = 0,
        std::uint64_t log_size = 0)
      : key_size_(key_size), value_size_(value_size) {
    tzs_index* p = nullptr;
    detail::call(tzs_index_open, detail::c_path(dir), key_size, value_size, flags, log_size, &p);
    h_.reset(p);
  }

  /// Whether `key` is bound. Throws Error(TZS_INVALID_ARGUMENT) for a key
  /// of the wrong size.
  bool mem(ByteView key) const {
    return detail::call_found(tzs_index_mem, h_.get("index"), key.data, key.size);
  }

  /// The value bound to `key`, or std::nullopt.
  std::optional<std::vector<std::uint8_t>> find(ByteView key) const {
    std::vector<std::uint8_t> value(value_size_);
    if (!detail::call_found(tzs_index_find, h_.get("index"), key.data, key.size, value.data(),
                            value.size()))
      return std::nullopt;
    return value;
  }

  /// Binds `key` to `value`, replacing any earlier value. With `flush`
  /// (the default), durable on return with every earlier binding. Throws
  /// Error (TZS_READ_ONLY, TZS_INVALID_ARGUMENT for wrong sizes, TZS_IO, ...).
  void add(ByteView key, ByteView value, bool flush = true) {
    detail::call(tzs_index_add, h_.get("index"), key.data, key.size, value.data, value.size, flush);
  }

  /// Unbinds `key` (a no-op when unbound). Only for REMOVABLE indexes, else
  /// Error(TZS_INVALID_ARGUMENT).
  void remove(ByteView key, bool flush = true) {
    detail::call(tzs_index_remove, h_.get("index"), key.data, key.size, flush);
  }

  /// Makes every binding added so far durable.
  void flush() { detail::call(tzs_index_flush, h_.get("index")); }

  /// Read-only handles: loads what the writer has flushed since.
  void sync() { detail::call(tzs_index_sync, h_.get("index")); }

  /// Waits for a running background merge; throws its error, if any.
  void await_merge() { detail::call(tzs_index_await_merge, h_.get("index")); }

  /// Number of keys bound.
  std::uint64_t size() const { return tzs_index_len(h_.get("index")); }
  std::uint32_t key_size() const noexcept { return key_size_; }
  std::uint32_t value_size() const noexcept { return value_size_; }

  /// A snapshot iterator over every binding.
  IndexIter iter() const {
    tzs_index_iter* p = nullptr;
    detail::call(tzs_index_iter_new, h_.get("index"), &p);
    return IndexIter(p, key_size_, value_size_);
  }

  /// Calls `f(key, value)` (two `const std::vector<uint8_t>&`) for every
  /// binding of a snapshot taken now.
  template <typename F>
  void for_each(F&& f) const {
    IndexIter it = iter();
    while (auto kv = it.next()) f(static_cast<const std::vector<std::uint8_t>&>(kv->first),
                                  static_cast<const std::vector<std::uint8_t>&>(kv->second));
  }

  /// Closes now (waits for a running merge; also done by the destructor).
  /// Later calls throw TZS_CLOSED.
  void close() noexcept { h_.reset(); }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_index* native() const noexcept { return h_.raw(); }

 private:
  detail::Handle<tzs_index, tzs_index_close> h_;
  std::uint32_t key_size_;
  std::uint32_t value_size_;
};

}  // namespace tzstore

#endif  // TZSTORE_INDEX_HPP

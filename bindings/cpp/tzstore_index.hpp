// tzstore_index.hpp: tzstore::Index and IndexIter, the C++17 wrapper of
// tzs_index (a persistent hash table of fixed-size keys and values). Same
// error model and handle rules as the whole binding (see
// tzstore_common.hpp); tzstore.hpp includes it.
#ifndef TZSTORE_INDEX_HPP
#define TZSTORE_INDEX_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tzstore_common.hpp"
#include "tzstore_gc_filter.hpp"

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

  Index(Index&&) noexcept = default;
  /// Closes this index first, as close() does.
  Index& operator=(Index&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::move(o.h_);
      gc_ = std::move(o.gc_);
      key_size_ = o.key_size_;
      value_size_ = o.value_size_;
    }
    return *this;
  }
  ~Index() { close(); }

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

  // Layer-2 operations (Octez's indexed_store.mli, mirage index). A
  // filter (of filter() or gc()) may read this index (find, mem, size,
  // iter, is_merging, is_gc_finished); calls that write or wait (add,
  // remove, flush, filter, gc, await_gc, cancel_gc, clear, try_merge,
  // await_merge) throw Error(TZS_INVALID_ARGUMENT) instead of waiting for
  // themselves, and close() must not be called. What a filter throws is
  // handled as tzstore_gc_filter.hpp says: the binding and every later one
  // are kept, and the exception is rethrown by filter(), gc() with `wait`,
  // or the next await_gc().

  /// Keeps only the bindings for which `keep(key, value)` returns true
  /// (mirage index's filter) and returns once the result is durable.
  /// Readers see every binding until the filtered data is published, then
  /// only the kept ones; bindings added meanwhile are kept. Waits for a
  /// running GC first. Throws Error (TZS_INVALID_ARGUMENT from inside a
  /// filter of this index, TZS_READ_ONLY, TZS_CORRUPTED, TZS_NO_SPACE,
  /// TZS_IO; the index is then unchanged).
  void filter(FilterFn keep) {
    tzs_index* p = h_.get("index");
    detail::run_filter(std::move(keep), [p](detail::FilterCtx* ctx) {
      detail::call(tzs_index_filter, p, &detail::FilterCtx::call, static_cast<void*>(ctx));
    });
  }

  /// Octez's gc ?async: keeps only the bindings for which `keep(key,
  /// value)` returns true, as filter() does, but as a background GC. With
  /// `wait` false returns at once (see await_gc, is_gc_finished,
  /// cancel_gc); with `wait` true once the GC is durable (or was cancelled
  /// meanwhile). Returns false, starting nothing, when a GC was already
  /// running, as in Octez. `keep` is kept (and called) until the GC's end
  /// is observed: await_gc() or cancel_gc() returns, is_gc_finished()
  /// returns true, or the index is closed. Throws Error
  /// (TZS_INVALID_ARGUMENT from inside a filter, TZS_READ_ONLY, an earlier
  /// GC's error nobody awaited, and with `wait` this GC's).
  bool gc(FilterFn keep, bool wait = false) {
    tzs_index* p = h_.get("index");
    return gc_->start(std::move(keep), wait, [p, wait](detail::FilterCtx* ctx, bool* started) {
      detail::call(tzs_index_gc, p, &detail::FilterCtx::call, static_cast<void*>(ctx), wait,
                   started);
    });
  }

  /// Waits for the running GC, if any (Octez's wait_gc_completion), and
  /// reports its outcome once: returns (also for a cancelled GC), throws
  /// its Error (TZS_CORRUPTED, TZS_NO_SPACE, TZS_IO, TZS_PANIC; the index
  /// is then as before it), or rethrows what its filter threw.
  void await_gc() {
    tzs_index* p = h_.get("index");
    gc_->observe([p] { detail::call(tzs_index_await_gc, p); });
    gc_->rethrow_error();
  }

  /// Whether no GC runs (Octez's is_gc_finished); true once closed. Never
  /// blocks.
  bool is_gc_finished() const {
    tzs_index* p = h_.raw();
    if (p == nullptr) return true;
    const std::uint64_t m = gc_->mark();
    const bool finished = tzs_index_is_gc_finished(p);
    if (finished) gc_->ended(m);
    return finished;
  }

  /// Stops the GC started by gc() and waits until it stopped: the index is
  /// left exactly as before it. True if a GC was stopped before it
  /// published its result; false if none ran, it had already finished, or
  /// it is a filter(). Throws Error(TZS_INVALID_ARGUMENT) from inside a
  /// filter of this index.
  bool cancel_gc() {
    tzs_index* p = h_.get("index");
    return gc_->observe([p] {
      bool cancelled = false;
      detail::call(tzs_index_cancel_gc, p, &cancelled);
      return cancelled;
    });
  }

  /// Removes every binding (mirage index's clear), durably on return: a
  /// crash leaves every binding or none. A running GC is cancelled and a
  /// running merge waited for. Throws Error (TZS_INVALID_ARGUMENT from
  /// inside a filter, TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO).
  void clear() {
    tzs_index* p = h_.get("index");
    const std::uint64_t m = gc_->mark();
    detail::call(tzs_index_clear, p);
    gc_->ended(m);
  }

  /// Starts a background merge of the log when it holds any binding and
  /// no merge or GC runs, and returns at once: whether it started one
  /// (wait with await_merge). Throws Error (TZS_INVALID_ARGUMENT from
  /// inside a filter, TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO, or a failed
  /// background merge's error, reported once).
  bool try_merge() {
    bool started = false;
    detail::call(tzs_index_try_merge, h_.get("index"), &started);
    return started;
  }

  /// Whether a merge or a GC runs in the background (mirage index's
  /// is_merging); false on a read-only or closed index. Never blocks.
  bool is_merging() const { return h_.raw() != nullptr && tzs_index_is_merging(h_.raw()); }

  /// Closes now (also done by the destructor): waits for a running GC
  /// (call cancel_gc() first to close at once; call await_gc() first to
  /// see its outcome, dropped here) and a running merge. Later calls throw
  /// TZS_CLOSED. Never from inside a filter of this index.
  void close() noexcept {
    if (h_.raw() == nullptr) return;
    // Awaited while the handle is still open, so that a filter may read
    // the index until its GC ends.
    tzs_index_await_gc(h_.raw(), nullptr);
    h_.reset();
    // The C close waited for any GC started before it.
    gc_->ended();
  }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_index* native() const noexcept { return h_.raw(); }

 private:
  detail::Handle<tzs_index, tzs_index_close> h_;
  // On the heap so that the index stays movable; freed after h_ is closed.
  std::unique_ptr<detail::GcFilters> gc_ = std::make_unique<detail::GcFilters>();
  std::uint32_t key_size_;
  std::uint32_t value_size_;
};

}  // namespace tzstore

#endif  // TZSTORE_INDEX_HPP

// tzstore_kv.hpp: tzstore::Kv and KvBatch, the C++17 wrapper of tzs_kv (a
// key/value store over a directory, as mirage-kv-unix). Same error model and handle rules
// as the whole binding (see tzstore_common.hpp); tzstore.hpp includes it.
#ifndef TZSTORE_KV_HPP
#define TZSTORE_KV_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "tzstore_common.hpp"

namespace tzstore {

/// What a kv key is bound to (tzs_kv_kind).
enum class KvKind : tzs_kv_kind { VALUE = TZS_KV_VALUE, DICTIONARY = TZS_KV_DICTIONARY };

/// An entry of a kv dictionary.
struct KvEntry {
  std::string name;
  KvKind kind;
  friend bool operator==(const KvEntry& a, const KvEntry& b) {
    return a.name == b.name && a.kind == b.kind;
  }
};

/// A modification time: days and picoseconds since 1970-01-01 UTC (Ptime's
/// span; 0 <= picoseconds < 86400e12).
struct KvTime {
  std::int64_t days;
  std::uint64_t picoseconds;
};

/// A kv digest (SHA-256).
using Digest = std::array<std::uint8_t, TZS_KV_DIGEST_SIZE>;

namespace detail {

/// A kv key as a C string; throws TZS_INVALID_ARGUMENT if it holds a NUL byte.
inline const char* c_key(const std::string& key) {
  if (key.find('\0') != std::string::npos)
    throw Error(TZS_INVALID_ARGUMENT, "key contains a NUL byte");
  return key.c_str();
}

/// Copies and frees a tzs_kv_entries.
inline std::vector<KvEntry> take_entries(tzs_kv_entries* e) {
  Handle<tzs_kv_entries, tzs_kv_entries_free> owner(e);
  std::vector<KvEntry> out;
  std::size_t n = tzs_kv_entries_len(e);
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({tzs_kv_entries_name(e, i), static_cast<KvKind>(tzs_kv_entries_kind(e, i))});
  return out;
}

}  // namespace detail

/// A kv batch, as given to the function passed to Kv::batch: reads see the
/// batch's own writes over the store, and each read is recorded so that the
/// commit conflicts if someone else changed the key meanwhile. Valid only
/// during that function.
class KvBatch {
 public:
  std::optional<KvKind> exists(const std::string& key) const {
    tzs_kv_kind kind = 0;
    if (!detail::call_found(tzs_kv_batch_exists, p_, detail::c_key(key), &kind))
      return std::nullopt;
    return static_cast<KvKind>(kind);
  }

  std::optional<std::vector<std::uint8_t>> get(const std::string& key) const {
    tzs_bytes out{nullptr, 0};
    if (!detail::call_found(tzs_kv_batch_get, p_, detail::c_key(key), &out)) return std::nullopt;
    return detail::take_bytes(out);
  }

  std::optional<std::vector<KvEntry>> list(const std::string& key) const {
    tzs_kv_entries* e = nullptr;
    if (!detail::call_found(tzs_kv_batch_list, p_, detail::c_key(key), &e)) return std::nullopt;
    return detail::take_entries(e);
  }

  /// Buffers `key := value` (written at commit).
  void set(const std::string& key, ByteView value) {
    detail::call(tzs_kv_batch_set, p_, detail::c_key(key), value.data, value.size);
  }

  /// Buffers the removal of `key`.
  void remove(const std::string& key) { detail::call(tzs_kv_batch_remove, p_, detail::c_key(key)); }

 private:
  friend class Kv;
  explicit KvBatch(tzs_kv_batch* p) noexcept : p_(p) {}
  tzs_kv_batch* p_;
};

/// A key/value store over a directory (tzs_kv, as mirage-kv-unix): values
/// are files, dictionaries directories, keys "a/b/c". Any thread may call
/// any method concurrently; several handles (and processes) may share a root.
class Kv {
 public:
  /// Opens the store rooted at the existing directory `root`. Flags:
  /// READONLY, NO_FSYNC. Throws Error (TZS_NOT_FOUND if there is no such
  /// directory, TZS_INVALID_ARGUMENT if it is not a directory, ...).
  explicit Kv(const std::string& root, Flags flags = 0) {
    tzs_kv* p = nullptr;
    detail::call(tzs_kv_open, detail::c_path(root), flags, &p);
    h_.reset(p);
  }

  /// What `key` is bound to, or std::nullopt. Invalid keys (".." segments,
  /// reserved ".tzs" names, ...) throw Error(TZS_INVALID_ARGUMENT).
  std::optional<KvKind> exists(const std::string& key) const {
    tzs_kv_kind kind = 0;
    if (!detail::call_found(tzs_kv_exists, h_.get("kv"), detail::c_key(key), &kind))
      return std::nullopt;
    return static_cast<KvKind>(kind);
  }

  /// The value at `key`, or std::nullopt. Throws Error(TZS_VALUE_EXPECTED)
  /// for a dictionary.
  std::optional<std::vector<std::uint8_t>> get(const std::string& key) const {
    tzs_bytes out{nullptr, 0};
    if (!detail::call_found(tzs_kv_get, h_.get("kv"), detail::c_key(key), &out))
      return std::nullopt;
    return detail::take_bytes(out);
  }

  /// Up to `length` bytes from `offset` (fewer past the end), or std::nullopt.
  std::optional<std::vector<std::uint8_t>> get_partial(const std::string& key, std::uint64_t offset,
                                                       std::uint64_t length) const {
    tzs_bytes out{nullptr, 0};
    if (!detail::call_found(tzs_kv_get_partial, h_.get("kv"), detail::c_key(key), offset, length,
                            &out))
      return std::nullopt;
    return detail::take_bytes(out);
  }

  /// The size of the value at `key`, or std::nullopt.
  std::optional<std::uint64_t> size(const std::string& key) const {
    std::uint64_t out = 0;
    if (!detail::call_found(tzs_kv_size, h_.get("kv"), detail::c_key(key), &out))
      return std::nullopt;
    return out;
  }

  /// The entries of the dictionary at `key` ("" is the root), sorted by
  /// name, or std::nullopt. Throws Error(TZS_DICTIONARY_EXPECTED) for a value.
  std::optional<std::vector<KvEntry>> list(const std::string& key) const {
    tzs_kv_entries* e = nullptr;
    if (!detail::call_found(tzs_kv_list, h_.get("kv"), detail::c_key(key), &e)) return std::nullopt;
    return detail::take_entries(e);
  }

  /// When `key` (for a dictionary: its latest direct entry) was last
  /// modified, or std::nullopt.
  std::optional<KvTime> last_modified(const std::string& key) const {
    KvTime t{0, 0};
    if (!detail::call_found(tzs_kv_last_modified, h_.get("kv"), detail::c_key(key), &t.days,
                            &t.picoseconds))
      return std::nullopt;
    return t;
  }

  /// The SHA-256 digest of a value, or of a dictionary's entries.
  std::optional<Digest> digest(const std::string& key) const {
    Digest d{};
    if (!detail::call_found(tzs_kv_digest, h_.get("kv"), detail::c_key(key), d.data()))
      return std::nullopt;
    return d;
  }

  /// Binds `key` to `value`, creating missing parents; durable on return.
  /// Throws Error (TZS_READ_ONLY, TZS_VALUE_EXPECTED if `key` is a
  /// dictionary, TZS_DICTIONARY_EXPECTED if a parent is a value, ...).
  void set(const std::string& key, ByteView value) {
    detail::call(tzs_kv_set, h_.get("kv"), detail::c_key(key), value.data, value.size);
  }

  /// Writes `value` at `offset` of the value at `key` (past the end appends).
  void set_partial(const std::string& key, std::uint64_t offset, ByteView value) {
    detail::call(tzs_kv_set_partial, h_.get("kv"), detail::c_key(key), offset, value.data,
                 value.size);
  }

  /// Removes a value or a whole dictionary; an unbound key is no error.
  void remove(const std::string& key) {
    detail::call(tzs_kv_remove, h_.get("kv"), detail::c_key(key));
  }

  /// Renames `from` to `to` (onto a dictionary: moves inside it). Throws
  /// Error(TZS_NOT_FOUND) when `from` is unbound.
  void rename(const std::string& from, const std::string& to) {
    detail::call(tzs_kv_rename, h_.get("kv"), detail::c_key(from), detail::c_key(to));
  }

  /// Binds the unbound `key` to `size` zero bytes. Throws
  /// Error(TZS_KEY_EXISTS) when bound.
  void allocate(const std::string& key, std::uint64_t size) {
    detail::call(tzs_kv_allocate, h_.get("kv"), detail::c_key(key), size);
  }

  /// Runs `f(KvBatch&)` in a fresh batch and commits its writes atomically;
  /// returns what `f` returns. When the commit conflicts (a key the batch
  /// read or wrote changed meanwhile) or `f` throws Error(TZS_CONFLICT), `f`
  /// runs again in a new batch, up to `retries` more times, then
  /// Error(TZS_TOO_MANY_RETRIES) is thrown (mirage-kv's batch). Any other
  /// exception from `f` discards the batch and propagates.
  template <typename F>
  std::invoke_result_t<F&, KvBatch&> batch(F&& f, unsigned retries = 13) {
    using R = std::invoke_result_t<F&, KvBatch&>;
    for (unsigned attempt = 0;; ++attempt) {
      detail::Handle<tzs_kv_batch, tzs_kv_batch_abort> owner(begin_batch());
      KvBatch b(owner.raw());
      try {
        if constexpr (std::is_void_v<R>) {
          f(b);
          if (commit(owner)) return;
        } else {
          R r = f(b);
          if (commit(owner)) return r;
        }
      } catch (const Error& e) { if (e.status() != TZS_CONFLICT) throw; }
      if (attempt >= retries)
        throw Error(TZS_TOO_MANY_RETRIES,
                    "kv batch conflicted " + std::to_string(attempt + 1) + " times");
      conflict_backoff(attempt + 1);
    }
  }

  /// Before retrying a conflicted batch: a yield for the first retries, then
  /// a sleep growing with each (up to ~3 ms) with a per-thread jitter, so
  /// batches contending for the same keys stop colliding in lockstep.
  static void conflict_backoff(unsigned attempt) {
    if (attempt < 3) {
      std::this_thread::yield();
      return;
    }
    const std::uint64_t cap_us = std::uint64_t{50} << (attempt < 6 ? attempt : 6);
    const std::uint64_t seed =
        static_cast<std::uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())) *
            0x9E3779B97F4A7C15ull ^
        attempt;
    std::this_thread::sleep_for(std::chrono::microseconds(1 + (seed >> 32) % cap_us));
  }

  /// Closes now (open batches keep working); later calls throw TZS_CLOSED.
  void close() noexcept { h_.reset(); }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_kv* native() const noexcept { return h_.raw(); }

 private:
  tzs_kv_batch* begin_batch() {
    tzs_kv_batch* p = nullptr;
    detail::call(tzs_kv_batch_begin, h_.get("kv"), &p);
    return p;
  }

  /// Commits (consuming the batch): false on TZS_CONFLICT, throws on errors.
  static bool commit(detail::Handle<tzs_kv_batch, tzs_kv_batch_abort>& owner) {
    return detail::call_status({TZS_CONFLICT}, tzs_kv_batch_commit, owner.release()) == TZS_OK;
  }

  detail::Handle<tzs_kv, tzs_kv_close> h_;
};

}  // namespace tzstore

#endif  // TZSTORE_KV_HPP

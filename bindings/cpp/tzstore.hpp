// tzstore.hpp: header-only C++17 wrappers over the C API in tzstore.h.
//
// Error model: every failure throws tzstore::Error (a std::runtime_error
// carrying the tzs_status and the library's message). Absence is not an
// error: lookups return std::optional and std::nullopt for TZS_NOT_FOUND.
//
// Handles are move-only RAII objects closed by their destructor (or by
// close()). A handle may be used from several threads at once, as the C API
// allows, but close(), move-assignment and destruction must not race with
// other calls on the same object.
//
// Adding a store: hold a detail::Handle<tzs_x, tzs_x_close>, call the C
// function with an ErrorSlot and pass its status to ErrorSlot::check (or
// check_found for lookups), pass paths through detail::c_path, and turn
// tzs_bytes outputs into vectors with detail::take_bytes. See Singleton below.
#ifndef TZSTORE_HPP
#define TZSTORE_HPP

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "tzstore.h"

namespace tzstore {

/// Open flags, combined with `|` (TZS_READONLY, TZS_NO_FSYNC, ...).
using Flags = std::uint32_t;
constexpr Flags READONLY = TZS_READONLY;
/// Skip every fsync: for tests and benchmarks only.
constexpr Flags NO_FSYNC = TZS_NO_FSYNC;
/// Index: allow Index::remove (must match the index's creation).
constexpr Flags REMOVABLE = TZS_REMOVABLE;

/// Borrowed bytes for an input argument: a vector, a string, a std::array
/// or a pointer and a length.
struct ByteView {
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;

  ByteView(const std::uint8_t* d, std::size_t n) noexcept : data(d), size(n) {}
  ByteView(const std::vector<std::uint8_t>& v) noexcept : data(v.data()), size(v.size()) {}
  ByteView(std::string_view s) noexcept
      : data(reinterpret_cast<const std::uint8_t*>(s.data())), size(s.size()) {}
  ByteView(const std::string& s) noexcept : ByteView(std::string_view(s)) {}
  ByteView(const char* s) noexcept : ByteView(std::string_view(s)) {}
  template <std::size_t N>
  ByteView(const std::array<std::uint8_t, N>& a) noexcept : data(a.data()), size(N) {}
};

/// A block hash (TZS_HASH_SIZE = 32 bytes).
using Hash = std::array<std::uint8_t, 32>;

/// A block (tzs_block) as an owning value. `metadata` is std::nullopt for a
/// block stored without metadata (distinct from empty metadata).
struct Block {
  Hash hash{};
  std::int32_t level = 0;
  Hash predecessor{};
  std::vector<std::uint8_t> contents;
  std::optional<std::vector<std::uint8_t>> metadata;

  friend bool operator==(const Block& a, const Block& b) {
    return a.hash == b.hash && a.level == b.level && a.predecessor == b.predecessor &&
           a.contents == b.contents && a.metadata == b.metadata;
  }
  friend bool operator!=(const Block& a, const Block& b) { return !(a == b); }
};

/// A block with its predecessor list (entry i is the 2^i-th ancestor).
struct BlockEntry {
  Block block;
  std::vector<Hash> predecessors;
};

/// The name of a status, e.g. "TZS_READ_ONLY".
inline const char* status_name(tzs_status s) noexcept { return tzs_status_name(s); }

/// The library version, e.g. "0.1.0".
inline const char* version() noexcept { return tzs_version(); }

/// A failed call: the status and the library's message (which names the
/// path or key concerned). what() is "TZS_<STATUS>: <message>".
class Error : public std::runtime_error {
 public:
  Error(tzs_status status, std::string message)
      : std::runtime_error(message.empty() ? std::string(tzs_status_name(status))
                                           : std::string(tzs_status_name(status)) + ": " + message),
        status_(status),
        message_(std::move(message)) {}

  tzs_status status() const noexcept { return status_; }
  /// The library's message alone, without the status name; empty for
  /// TZS_NOT_FOUND, which never carries an error object.
  const std::string& message() const noexcept { return message_; }

 private:
  tzs_status status_;
  std::string message_;
};

namespace detail {

/// Receives the `tzs_error **err` out-parameter of one C call and frees it.
/// Usage (the status MUST be stored before check() reads the error, since
/// the order in which function arguments are evaluated is unspecified):
///   ErrorSlot err;
///   tzs_status st = tzs_x_do(h, ..., err.out());
///   err.check(st);
class ErrorSlot {
 public:
  ErrorSlot() = default;
  ErrorSlot(const ErrorSlot&) = delete;
  ErrorSlot& operator=(const ErrorSlot&) = delete;
  ~ErrorSlot() { tzs_error_free(e_); }

  tzs_error** out() noexcept { return &e_; }

  /// Throws Error unless `st` is TZS_OK.
  void check(tzs_status st) const {
    if (st != TZS_OK) throw_error(st);
  }

  /// For lookups: true on TZS_OK, false on TZS_NOT_FOUND, throws otherwise.
  bool check_found(tzs_status st) const {
    if (st == TZS_NOT_FOUND) return false;
    check(st);
    return true;
  }

  [[noreturn]] void throw_error(tzs_status st) const {
    // NOT_FOUND and DONE carry no error object.
    std::string msg = e_ != nullptr ? tzs_error_message(e_) : "";
    throw Error(st, std::move(msg));
  }

 private:
  tzs_error* e_ = nullptr;
};

/// Copies a library-allocated buffer into a vector and frees it.
inline std::vector<std::uint8_t> take_bytes(tzs_bytes& b) {
  struct Free {
    tzs_bytes& b;
    ~Free() { tzs_bytes_free(&b); }
  } guard{b};
  return std::vector<std::uint8_t>(b.ptr, b.ptr + b.len);
}

/// A move-only owner of a C handle, closed by `Close`.
template <typename T, void (*Close)(T*)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(T* p) noexcept : p_(p) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) reset(std::exchange(o.p_, nullptr));
    return *this;
  }
  ~Handle() { reset(); }

  /// The live pointer; throws Error(TZS_CLOSED) after close or move.
  T* get(const char* what) const {
    if (p_ == nullptr) throw Error(TZS_CLOSED, std::string(what) + " is closed");
    return p_;
  }
  T* raw() const noexcept { return p_; }
  void reset(T* p = nullptr) noexcept { Close(std::exchange(p_, p)); }
  /// Gives up ownership without closing.
  T* release() noexcept { return std::exchange(p_, nullptr); }

 private:
  T* p_ = nullptr;
};

/// A path as a C string; throws TZS_INVALID_ARGUMENT if it holds a NUL
/// byte (C would silently truncate it there).
inline const char* c_path(const std::string& path) {
  if (path.find('\0') != std::string::npos)
    throw Error(TZS_INVALID_ARGUMENT, "path contains a NUL byte");
  return path.c_str();
}

/// A kv key as a C string; throws TZS_INVALID_ARGUMENT if it holds a NUL byte.
inline const char* c_key(const std::string& key) {
  if (key.find('\0') != std::string::npos)
    throw Error(TZS_INVALID_ARGUMENT, "key contains a NUL byte");
  return key.c_str();
}

inline const std::uint8_t* data_of(std::string_view s) noexcept {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}

/// A borrowed C view of `b` for one call (the library copies the buffers).
inline tzs_block block_view(const Block& b) noexcept {
  tzs_block c{};
  std::memcpy(c.hash, b.hash.data(), b.hash.size());
  c.level = b.level;
  std::memcpy(c.predecessor, b.predecessor.data(), b.predecessor.size());
  // The C struct is shared by inputs and outputs, hence non-const pointers;
  // the library only reads input buffers.
  c.contents = {const_cast<std::uint8_t*>(b.contents.data()), b.contents.size()};
  c.has_metadata = b.metadata.has_value();
  if (b.metadata) c.metadata = {const_cast<std::uint8_t*>(b.metadata->data()), b.metadata->size()};
  return c;
}

/// Copies a library-filled block into a Block and frees its buffers.
inline Block take_block(tzs_block& c) {
  struct Free {
    tzs_block& c;
    ~Free() { tzs_block_free(&c); }
  } guard{c};
  Block b;
  std::memcpy(b.hash.data(), c.hash, b.hash.size());
  b.level = c.level;
  std::memcpy(b.predecessor.data(), c.predecessor, b.predecessor.size());
  b.contents.assign(c.contents.ptr, c.contents.ptr + c.contents.len);
  if (c.has_metadata) b.metadata.emplace(c.metadata.ptr, c.metadata.ptr + c.metadata.len);
  return b;
}

/// Splits a library-allocated list of 32-byte hashes and frees it.
inline std::vector<Hash> take_hashes(tzs_bytes& bytes) {
  std::vector<std::uint8_t> raw = take_bytes(bytes);
  std::vector<Hash> out(raw.size() / 32);
  for (std::size_t i = 0; i < out.size(); ++i) std::memcpy(out[i].data(), raw.data() + 32 * i, 32);
  return out;
}

/// Concatenates hashes for a `const uint8_t *preds, size_t n` argument.
inline std::vector<std::uint8_t> join_hashes(const std::vector<Hash>& hs) {
  std::vector<std::uint8_t> raw(hs.size() * 32);
  for (std::size_t i = 0; i < hs.size(); ++i) std::memcpy(raw.data() + 32 * i, hs[i].data(), 32);
  return raw;
}

}  // namespace detail

/// One value in one file (tzs_singleton).
class Singleton {
 public:
  /// Opens (the file is created by the first write; its directory must
  /// exist). Throws Error (TZS_LOCKED if another read-write instance is
  /// open, TZS_NOT_FOUND if the directory is missing, ...).
  explicit Singleton(const std::string& path, Flags flags = 0) {
    tzs_singleton* p = nullptr;
    detail::ErrorSlot err;
    tzs_status st = tzs_singleton_open(detail::c_path(path), flags, &p, err.out());
    err.check(st);
    h_.reset(p);
  }

  /// The value, or std::nullopt when none is set.
  std::optional<std::vector<std::uint8_t>> read() const {
    tzs_bytes out{nullptr, 0};
    detail::ErrorSlot err;
    tzs_status st = tzs_singleton_read(h_.get("singleton"), &out, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_bytes(out);
  }

  /// Replaces the value (durable on return unless opened with NO_FSYNC).
  /// Throws Error(TZS_READ_ONLY) on a read-only handle.
  void write(const std::uint8_t* data, std::size_t len) {
    detail::ErrorSlot err;
    tzs_status st = tzs_singleton_write(h_.get("singleton"), data, len, err.out());
    err.check(st);
  }
  void write(const std::vector<std::uint8_t>& v) { write(v.data(), v.size()); }
  void write(std::string_view v) { write(detail::data_of(v), v.size()); }

  /// Removes the value; removing an unset value succeeds.
  void remove() {
    detail::ErrorSlot err;
    tzs_status st = tzs_singleton_delete(h_.get("singleton"), err.out());
    err.check(st);
  }

  /// Reloads the value from the file (for read-only handles).
  void sync() {
    detail::ErrorSlot err;
    tzs_status st = tzs_singleton_sync(h_.get("singleton"), err.out());
    err.check(st);
  }

  /// Closes now (also done by the destructor); later calls throw TZS_CLOSED.
  void close() noexcept { h_.reset(); }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_singleton* native() const noexcept { return h_.raw(); }

 private:
  detail::Handle<tzs_singleton, tzs_singleton_close> h_;
};

/// A snapshot iterator over an index (tzs_index_iter), in unspecified
/// order, each key once. It does not see later writes and stays valid after
/// the index is closed.
class IndexIter {
 public:
  /// The next binding (key, value), or std::nullopt at the end.
  std::optional<std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>>> next() {
    std::vector<std::uint8_t> key(key_size_), value(value_size_);
    detail::ErrorSlot err;
    tzs_status st = tzs_index_iter_next(h_.get("index iterator"), key.data(), key.size(),
                                        value.data(), value.size(), err.out());
    if (st == TZS_DONE) return std::nullopt;
    err.check(st);
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
    detail::ErrorSlot err;
    tzs_status st =
        tzs_index_open(detail::c_path(dir), key_size, value_size, flags, log_size, &p, err.out());
    err.check(st);
    h_.reset(p);
  }

  /// Whether `key` is bound. Throws Error(TZS_INVALID_ARGUMENT) for a key
  /// of the wrong size.
  bool mem(ByteView key) const {
    detail::ErrorSlot err;
    tzs_status st = tzs_index_mem(h_.get("index"), key.data, key.size, err.out());
    return err.check_found(st);
  }

  /// The value bound to `key`, or std::nullopt.
  std::optional<std::vector<std::uint8_t>> find(ByteView key) const {
    std::vector<std::uint8_t> value(value_size_);
    detail::ErrorSlot err;
    tzs_status st =
        tzs_index_find(h_.get("index"), key.data, key.size, value.data(), value.size(), err.out());
    if (!err.check_found(st)) return std::nullopt;
    return value;
  }

  /// Binds `key` to `value`, replacing any earlier value. With `flush`
  /// (the default), durable on return with every earlier binding. Throws
  /// Error (TZS_READ_ONLY, TZS_INVALID_ARGUMENT for wrong sizes, TZS_IO, ...).
  void add(ByteView key, ByteView value, bool flush = true) {
    detail::ErrorSlot err;
    tzs_status st =
        tzs_index_add(h_.get("index"), key.data, key.size, value.data, value.size, flush, err.out());
    err.check(st);
  }

  /// Unbinds `key` (a no-op when unbound). Only for REMOVABLE indexes, else
  /// Error(TZS_INVALID_ARGUMENT).
  void remove(ByteView key, bool flush = true) {
    detail::ErrorSlot err;
    tzs_status st = tzs_index_remove(h_.get("index"), key.data, key.size, flush, err.out());
    err.check(st);
  }

  /// Makes every binding added so far durable.
  void flush() {
    detail::ErrorSlot err;
    tzs_status st = tzs_index_flush(h_.get("index"), err.out());
    err.check(st);
  }

  /// Read-only handles: loads what the writer has flushed since.
  void sync() {
    detail::ErrorSlot err;
    tzs_status st = tzs_index_sync(h_.get("index"), err.out());
    err.check(st);
  }

  /// Waits for a running background merge; throws its error, if any.
  void await_merge() {
    detail::ErrorSlot err;
    tzs_status st = tzs_index_await_merge(h_.get("index"), err.out());
    err.check(st);
  }

  /// Number of keys bound.
  std::uint64_t size() const { return tzs_index_len(h_.get("index")); }
  std::uint32_t key_size() const noexcept { return key_size_; }
  std::uint32_t value_size() const noexcept { return value_size_; }

  /// A snapshot iterator over every binding.
  IndexIter iter() const {
    tzs_index_iter* p = nullptr;
    detail::ErrorSlot err;
    tzs_status st = tzs_index_iter_new(h_.get("index"), &p, err.out());
    err.check(st);
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
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_batch_exists(p_, detail::c_key(key), &kind, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return static_cast<KvKind>(kind);
  }

  std::optional<std::vector<std::uint8_t>> get(const std::string& key) const {
    tzs_bytes out{nullptr, 0};
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_batch_get(p_, detail::c_key(key), &out, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_bytes(out);
  }

  std::optional<std::vector<KvEntry>> list(const std::string& key) const {
    tzs_kv_entries* e = nullptr;
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_batch_list(p_, detail::c_key(key), &e, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_entries(e);
  }

  /// Buffers `key := value` (written at commit).
  void set(const std::string& key, ByteView value) {
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_batch_set(p_, detail::c_key(key), value.data, value.size, err.out());
    err.check(st);
  }

  /// Buffers the removal of `key`.
  void remove(const std::string& key) {
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_batch_remove(p_, detail::c_key(key), err.out());
    err.check(st);
  }

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
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_open(detail::c_path(root), flags, &p, err.out());
    err.check(st);
    h_.reset(p);
  }

  /// What `key` is bound to, or std::nullopt. Invalid keys (".." segments,
  /// reserved ".tzs" names, ...) throw Error(TZS_INVALID_ARGUMENT).
  std::optional<KvKind> exists(const std::string& key) const {
    tzs_kv_kind kind = 0;
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_exists(h_.get("kv"), detail::c_key(key), &kind, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return static_cast<KvKind>(kind);
  }

  /// The value at `key`, or std::nullopt. Throws Error(TZS_VALUE_EXPECTED)
  /// for a dictionary.
  std::optional<std::vector<std::uint8_t>> get(const std::string& key) const {
    tzs_bytes out{nullptr, 0};
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_get(h_.get("kv"), detail::c_key(key), &out, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_bytes(out);
  }

  /// Up to `length` bytes from `offset` (fewer past the end), or std::nullopt.
  std::optional<std::vector<std::uint8_t>> get_partial(const std::string& key, std::uint64_t offset,
                                                       std::uint64_t length) const {
    tzs_bytes out{nullptr, 0};
    detail::ErrorSlot err;
    tzs_status st =
        tzs_kv_get_partial(h_.get("kv"), detail::c_key(key), offset, length, &out, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_bytes(out);
  }

  /// The size of the value at `key`, or std::nullopt.
  std::optional<std::uint64_t> size(const std::string& key) const {
    std::uint64_t out = 0;
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_size(h_.get("kv"), detail::c_key(key), &out, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return out;
  }

  /// The entries of the dictionary at `key` ("" is the root), sorted by
  /// name, or std::nullopt. Throws Error(TZS_DICTIONARY_EXPECTED) for a value.
  std::optional<std::vector<KvEntry>> list(const std::string& key) const {
    tzs_kv_entries* e = nullptr;
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_list(h_.get("kv"), detail::c_key(key), &e, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_entries(e);
  }

  /// When `key` (for a dictionary: its latest direct entry) was last
  /// modified, or std::nullopt.
  std::optional<KvTime> last_modified(const std::string& key) const {
    KvTime t{0, 0};
    detail::ErrorSlot err;
    tzs_status st =
        tzs_kv_last_modified(h_.get("kv"), detail::c_key(key), &t.days, &t.picoseconds, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return t;
  }

  /// The SHA-256 digest of a value, or of a dictionary's entries.
  std::optional<Digest> digest(const std::string& key) const {
    Digest d{};
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_digest(h_.get("kv"), detail::c_key(key), d.data(), err.out());
    if (!err.check_found(st)) return std::nullopt;
    return d;
  }

  /// Binds `key` to `value`, creating missing parents; durable on return.
  /// Throws Error (TZS_READ_ONLY, TZS_VALUE_EXPECTED if `key` is a
  /// dictionary, TZS_DICTIONARY_EXPECTED if a parent is a value, ...).
  void set(const std::string& key, ByteView value) {
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_set(h_.get("kv"), detail::c_key(key), value.data, value.size, err.out());
    err.check(st);
  }

  /// Writes `value` at `offset` of the value at `key` (past the end appends).
  void set_partial(const std::string& key, std::uint64_t offset, ByteView value) {
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_set_partial(h_.get("kv"), detail::c_key(key), offset, value.data,
                                       value.size, err.out());
    err.check(st);
  }

  /// Removes a value or a whole dictionary; an unbound key is no error.
  void remove(const std::string& key) {
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_remove(h_.get("kv"), detail::c_key(key), err.out());
    err.check(st);
  }

  /// Renames `from` to `to` (onto a dictionary: moves inside it). Throws
  /// Error(TZS_NOT_FOUND) when `from` is unbound.
  void rename(const std::string& from, const std::string& to) {
    detail::ErrorSlot err;
    tzs_status st =
        tzs_kv_rename(h_.get("kv"), detail::c_key(from), detail::c_key(to), err.out());
    err.check(st);
  }

  /// Binds the unbound `key` to `size` zero bytes. Throws
  /// Error(TZS_KEY_EXISTS) when bound.
  void allocate(const std::string& key, std::uint64_t size) {
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_allocate(h_.get("kv"), detail::c_key(key), size, err.out());
    err.check(st);
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
      } catch (const Error& e) {
        if (e.status() != TZS_CONFLICT) throw;
      }
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
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_batch_begin(h_.get("kv"), &p, err.out());
    err.check(st);
    return p;
  }

  /// Commits (consuming the batch): false on TZS_CONFLICT, throws on errors.
  static bool commit(detail::Handle<tzs_kv_batch, tzs_kv_batch_abort>& owner) {
    detail::ErrorSlot err;
    tzs_status st = tzs_kv_batch_commit(owner.release(), err.out());
    if (st == TZS_CONFLICT) return false;
    err.check(st);
    return true;
  }

  detail::Handle<tzs_kv, tzs_kv_close> h_;
};

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
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_iter_next(h_.get("floating iterator"), &out, &preds, err.out());
    if (st == TZS_DONE) return std::nullopt;
    err.check(st);
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
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_open(detail::c_path(dir), static_cast<tzs_floating_kind>(kind),
                                      flags, &p, err.out());
    err.check(st);
    h_.reset(p);
  }

  /// Appends `block` with its predecessor list (at most 12 hashes, entry i
  /// the 2^i-th ancestor). A block already stored is left unchanged. With
  /// `flush`, durable on return. Throws Error (TZS_READ_ONLY,
  /// TZS_INVALID_ARGUMENT for more than 12 predecessors, TZS_NO_SPACE, TZS_IO).
  void append(const Block& block, const std::vector<Hash>& predecessors = {}, bool flush = true) {
    tzs_block c = detail::block_view(block);
    std::vector<std::uint8_t> preds = detail::join_hashes(predecessors);
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_append(h_.get("floating"), &c, preds.data(), predecessors.size(),
                                        flush, err.out());
    err.check(st);
  }

  /// Makes every appended block durable.
  void flush() {
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_flush(h_.get("floating"), err.out());
    err.check(st);
  }

  /// Read-only handles: loads the blocks appended since open or the last sync.
  void sync() {
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_sync(h_.get("floating"), err.out());
    err.check(st);
  }

  /// Whether the block with `hash` is stored.
  bool mem(const Hash& hash) const {
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_mem(h_.get("floating"), hash.data(), err.out());
    return err.check_found(st);
  }

  /// The block's predecessor list, or std::nullopt if it is not stored.
  std::optional<std::vector<Hash>> find_predecessors(const Hash& hash) const {
    tzs_bytes out{nullptr, 0};
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_find_predecessors(h_.get("floating"), hash.data(), &out, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_hashes(out);
  }

  /// The block, or std::nullopt if it is not stored. Throws
  /// Error(TZS_CORRUPTED) if its record is damaged.
  std::optional<Block> read_block(const Hash& hash) const {
    tzs_block out{};
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_read_block(h_.get("floating"), hash.data(), &out, err.out());
    if (!err.check_found(st)) return std::nullopt;
    return detail::take_block(out);
  }

  /// The block and its predecessor list, or std::nullopt.
  std::optional<BlockEntry> read_block_and_predecessors(const Hash& hash) const {
    tzs_block out{};
    tzs_bytes preds{nullptr, 0};
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_read_block_and_predecessors(h_.get("floating"), hash.data(), &out,
                                                             &preds, err.out());
    if (!err.check_found(st)) return std::nullopt;
    BlockEntry e{detail::take_block(out), {}};
    e.predecessors = detail::take_hashes(preds);
    return e;
  }

  /// Number of blocks stored.
  std::uint64_t size() const { return tzs_floating_len(h_.get("floating")); }

  /// An iterator over the blocks stored now, in file order.
  FloatingIter iter() const {
    tzs_floating_iter* p = nullptr;
    detail::ErrorSlot err;
    tzs_status st = tzs_floating_iter_new(h_.get("floating"), &p, err.out());
    err.check(st);
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

#endif  // TZSTORE_HPP

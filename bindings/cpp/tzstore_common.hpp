// tzstore_common.hpp: what every header of the C++17 binding shares: open
// flags, byte views, blocks, tzstore::Error, the Reader of borrowed reads
// (blocks and indexed-file values) and the BlockView of borrowed block
// reads, and in tzstore::detail the one way to call C (call, call_found,
// call_status), the handle owner and the conversions of library-allocated
// outputs. Include tzstore.hpp (every
// store) or a store's own header rather than this one.
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
// Adding a store: a header tzstore_x.hpp including this one, with a class
// holding a detail::Handle<tzs_x, tzs_x_close>; each method calls its C
// function through detail::call (detail::call_found for lookups), passes
// paths through detail::c_path, and turns tzs_bytes outputs into vectors
// with detail::take_bytes (take_block, take_hashes for blocks). Add the
// header to tzstore.hpp. See tzstore_singleton.hpp.
#ifndef TZSTORE_COMMON_HPP
#define TZSTORE_COMMON_HPP

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
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

/// Borrowed bytes: an input argument (a vector, a string, a std::array or a
/// pointer and a length), or bytes a Reader lends (BlockView, ValueView). A
/// view, like std::string_view: it owns nothing, and compares (==) by
/// content.
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

  const std::uint8_t* begin() const noexcept { return data; }
  const std::uint8_t* end() const noexcept { return data + size; }
  bool empty() const noexcept { return size == 0; }
  std::uint8_t operator[](std::size_t i) const noexcept { return data[i]; }
  /// A copy of the bytes.
  std::vector<std::uint8_t> to_vector() const { return std::vector<std::uint8_t>(begin(), end()); }
  /// The bytes as characters (no copy, same lifetime).
  std::string_view to_string_view() const noexcept {
    return std::string_view(reinterpret_cast<const char*>(data), size);
  }

  friend bool operator==(ByteView a, ByteView b) noexcept {
    return a.size == b.size && (a.size == 0 || std::memcmp(a.data, b.data, a.size) == 0);
  }
  friend bool operator!=(ByteView a, ByteView b) noexcept { return !(a == b); }
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

/// A block read without a copy (tzs_block_view), by BlockStore::read_view,
/// read_by_level_view, Floating::read_view or Cemented::read_view_by_level:
/// hashes and level are copied in, `contents` and `metadata` are bytes lent
/// by the Reader the read went through. Those bytes stay valid, and
/// unchanged, until that Reader's next read (whatever its outcome), its
/// release(), its destruction or a move-assignment to it, whichever comes
/// first, even if meanwhile a merge retires the floating file, a rolling GC
/// deletes the cemented chunk or the store is closed or destroyed. Using
/// them later is a use after free. to_block() copies the block out.
struct BlockView {
  Hash hash{};
  std::int32_t level = 0;
  Hash predecessor{};
  /// Header and operations.
  ByteView contents{nullptr, 0};
  /// std::nullopt for a block stored without metadata, or read without it.
  std::optional<ByteView> metadata;

  /// An owning copy of the block.
  Block to_block() const {
    Block b;
    b.hash = hash;
    b.level = level;
    b.predecessor = predecessor;
    b.contents = contents.to_vector();
    if (metadata) b.metadata = metadata->to_vector();
    return b;
  }
};

/// A block with its predecessor list (entry i is the 2^i-th ancestor).
struct BlockEntry {
  Block block;
  std::vector<Hash> predecessors;
};

/// What GC keeps (tzs_history_mode): BlockStore after each merge, Cemented::gc.
enum class HistoryMode : tzs_history_mode {
  /// Everything.
  ARCHIVE = TZS_HISTORY_ARCHIVE,
  /// Every block, metadata of the last `history_offset` cemented chunks.
  FULL = TZS_HISTORY_FULL,
  /// Only the last `history_offset` cemented chunks, blocks and metadata.
  ROLLING = TZS_HISTORY_ROLLING,
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

/// Owns the `tzs_error **err` out-parameter of one C call and frees it;
/// call_status is its one user.
class ErrorSlot {
 public:
  ErrorSlot() = default;
  ErrorSlot(const ErrorSlot&) = delete;
  ErrorSlot& operator=(const ErrorSlot&) = delete;
  ~ErrorSlot() { tzs_error_free(e_); }

  tzs_error** out() noexcept { return &e_; }

  [[noreturn]] void throw_error(tzs_status st) const {
    // NOT_FOUND and DONE carry no error object.
    std::string msg = e_ != nullptr ? tzs_error_message(e_) : "";
    throw Error(st, std::move(msg));
  }

 private:
  tzs_error* e_ = nullptr;
};

/// The one way this binding calls a C function that reports errors: calls
/// `fn(args..., err)` and returns its status when it is TZS_OK or one of
/// `handled` (the statuses the caller turns into a result, such as
/// TZS_NOT_FOUND or TZS_DONE); any other status throws Error with the
/// library's message.
template <typename Fn, typename... Args>
tzs_status call_status(std::initializer_list<tzs_status> handled, Fn fn, Args&&... args) {
  ErrorSlot err;
  const tzs_status st = fn(std::forward<Args>(args)..., err.out());
  if (st == TZS_OK || std::find(handled.begin(), handled.end(), st) != handled.end()) return st;
  err.throw_error(st);
}

/// Calls `fn(args..., err)`; throws Error unless it returns TZS_OK.
template <typename Fn, typename... Args>
void call(Fn fn, Args&&... args) {
  call_status({}, fn, std::forward<Args>(args)...);
}

/// For lookups: calls `fn(args..., err)`; true on TZS_OK, false on
/// TZS_NOT_FOUND, throws Error otherwise.
template <typename Fn, typename... Args>
bool call_found(Fn fn, Args&&... args) {
  return call_status({TZS_NOT_FOUND}, fn, std::forward<Args>(args)...) == TZS_OK;
}

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

/// A BlockView of a library-filled view (nothing to free: the reader
/// that filled it owns the bytes).
inline BlockView view_of(const tzs_block_view& c) noexcept {
  BlockView v;
  std::memcpy(v.hash.data(), c.hash, v.hash.size());
  v.level = c.level;
  std::memcpy(v.predecessor.data(), c.predecessor, v.predecessor.size());
  v.contents = ByteView(c.contents.ptr, c.contents.len);
  if (c.has_metadata) v.metadata.emplace(c.metadata.ptr, c.metadata.len);
  return v;
}

}  // namespace detail

/// What borrowed reads lend from (tzs_reader): the map (or, for a record no
/// map covers yet, the copy) the last read through it points into. One
/// Reader serves both kinds of borrowed reads, of blocks (BlockView, from
/// BlockStore, Floating, Cemented) and of indexed-file values (ValueView,
/// from IndexedFile::read_view), and of any number of stores, but holds one
/// block or one value at a time: a read of either kind ends the views of
/// the previous read, whatever its kind (a value read ends a BlockView's
/// bytes, a block read a ValueView's). Its own reference to the mapping
/// keeps a view valid across merges, GCs (also an indexed file's
/// compaction, which unlinks the old values file) and the store's close,
/// until the next read through it, release(), its destruction or a
/// move-assignment to it (see BlockView, ValueView). Holding a view of a
/// retired file keeps that file's disk space until then.
///
/// Move-only. The read methods take it as `Reader&`, so the borrow is
/// explicit (a temporary Reader, whose views would die at once, does not
/// compile). One thread at a time per Reader (it may move between threads);
/// any number of Readers may read one store at once, alongside its writes
/// and merges: one Reader per reading thread. Moving a Reader keeps its
/// views valid (they move with it).
class Reader {
 public:
  /// A reader holding nothing. Throws Error on failure.
  Reader() {
    tzs_reader* p = nullptr;
    detail::call(tzs_reader_new, &p);
    h_.reset(p);
  }

  /// Ends the views of the last read and lets go of what they pointed into
  /// (a retired file's space can then be reclaimed). The reader stays
  /// usable; a no-op on a moved-from reader.
  void release() noexcept { tzs_reader_release(h_.raw()); }

  /// The C reader, still owned here (NULL once moved from).
  tzs_reader* native() const noexcept { return h_.raw(); }

 private:
  friend class BlockStore;
  friend class Floating;
  friend class Cemented;
  friend class IndexedFile;
  /// The live reader; throws Error(TZS_CLOSED) once moved from.
  tzs_reader* get() const { return h_.get("reader"); }

  detail::Handle<tzs_reader, tzs_reader_free> h_;
};

}  // namespace tzstore

#endif  // TZSTORE_COMMON_HPP

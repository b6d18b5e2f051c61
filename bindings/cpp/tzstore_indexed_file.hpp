// tzstore_indexed_file.hpp: tzstore::IndexedFile, the C++17 wrapper of
// tzs_indexed_file (values appended to one file, found through an index of
// key -> offset and a fixed-size header). Same error model and handle rules
// as the whole binding (see tzstore_common.hpp); tzstore.hpp includes it.
// Values may also be read without a copy (read_view, ValueView) through a
// tzstore::Reader, the one borrowed block reads use.
#ifndef TZSTORE_INDEXED_FILE_HPP
#define TZSTORE_INDEXED_FILE_HPP

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tzstore_common.hpp"
#include "tzstore_gc_filter.hpp"

namespace tzstore {

/// IndexedFile open flag: the header is the first `header_size` bytes of
/// each value (the SIMPLE_INDEXED_FILE variant).
constexpr Flags HEADER_IN_VALUE = TZS_HEADER_IN_VALUE;

/// A value read without a copy (IndexedFile::read_view): `value` and its
/// `header` (`header_size` bytes; on a HEADER_IN_VALUE store the first
/// bytes of `value`) are bytes lent by the Reader the read went through.
/// They stay valid, and unchanged, until that Reader's next read (of a
/// value or of a block, whatever its outcome), its release(), its
/// destruction or a move-assignment to it, whichever comes first, even if
/// meanwhile a GC drops the key or unlinks the values file they were read
/// from, or the store is closed or destroyed. Using them later is a use
/// after free: copy what you keep (to_vector(), to_pair()).
struct ValueView {
  ByteView value{nullptr, 0};
  ByteView header{nullptr, 0};

  /// Owning copies, as IndexedFile::read_with_header returns them:
  /// (header, value).
  std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>> to_pair() const {
    return std::make_pair(header.to_vector(), value.to_vector());
  }
};

/// An indexed file (tzs_indexed_file). Any thread may call any method
/// concurrently; close(), move-assignment and destruction must not race
/// with other calls.
class IndexedFile {
 public:
  /// Opens (read-write: creates) the store in directory `dir`. `key_size`
  /// and `header_size` are fixed for the store's life. Flags: READONLY,
  /// HEADER_IN_VALUE, NO_FSYNC. `log_size`: the index's log size (0 =
  /// default). Throws Error (TZS_LOCKED, TZS_NOT_FOUND for a read-only open
  /// of a missing store, TZS_INVALID_ARGUMENT for sizes out of range or
  /// different from the store's, TZS_CORRUPTED, TZS_IO, ...).
  IndexedFile(const std::string& dir, std::uint32_t key_size, std::uint32_t header_size,
              Flags flags = 0, std::uint64_t log_size = 0)
      : header_size_(header_size) {
    tzs_indexed_file* p = nullptr;
    detail::call(tzs_indexed_file_open, detail::c_path(dir), key_size, header_size, flags,
                 log_size, &p);
    h_.reset(p);
  }

  IndexedFile(IndexedFile&&) noexcept = default;
  /// Closes this store first, as close() does.
  IndexedFile& operator=(IndexedFile&& o) noexcept {
    if (this != &o) {
      close();
      h_ = std::move(o.h_);
      gc_ = std::move(o.gc_);
      header_size_ = o.header_size_;
    }
    return *this;
  }
  ~IndexedFile() { close(); }

  /// Whether `key` is stored. Throws Error(TZS_INVALID_ARGUMENT) for a key
  /// of the wrong size.
  bool mem(ByteView key) const {
    return detail::call_found(tzs_indexed_file_mem, h_.get("indexed file"), key.data, key.size);
  }

  /// The header of `key` (from the index alone), or std::nullopt.
  std::optional<std::vector<std::uint8_t>> header(ByteView key) const {
    std::vector<std::uint8_t> out(header_size_);
    if (!detail::call_found(tzs_indexed_file_header, h_.get("indexed file"), key.data, key.size,
                            out.data(), out.size()))
      return std::nullopt;
    return out;
  }

  /// The value of `key`, or std::nullopt. Throws Error(TZS_CORRUPTED) if
  /// the stored value fails its checksum.
  std::optional<std::vector<std::uint8_t>> read(ByteView key) const {
    tzs_bytes v{nullptr, 0};
    if (!detail::call_found(tzs_indexed_file_read, h_.get("indexed file"), key.data, key.size, &v,
                            nullptr, 0))
      return std::nullopt;
    return detail::take_bytes(v);
  }

  /// The header and the value of `key`, or std::nullopt.
  std::optional<std::pair<std::vector<std::uint8_t>, std::vector<std::uint8_t>>> read_with_header(
      ByteView key) const {
    std::vector<std::uint8_t> header(header_size_);
    tzs_bytes v{nullptr, 0};
    if (!detail::call_found(tzs_indexed_file_read, h_.get("indexed file"), key.data, key.size, &v,
                            header.data(), header.size()))
      return std::nullopt;
    return std::make_pair(std::move(header), detail::take_bytes(v));
  }

  /// read_with_header without a copy: the value and header of `key` lent
  /// by `reader` (see ValueView for how long they stay valid), or
  /// std::nullopt (the reader then holds nothing). The previous views of
  /// `reader` (of a value or a block) end when the call starts, whatever
  /// its outcome (except Error(TZS_CLOSED) on a closed store or a
  /// moved-from reader: nothing was read). The record's checksum is checked
  /// before any view of it is given (once per mapping of the values file);
  /// a value appended since the file was last mapped is copied into the
  /// reader. Any number of threads may read one store at once, each with
  /// its own Reader (a Reader is used by one thread at a time). Throws
  /// Error (TZS_INVALID_ARGUMENT for a key of the wrong size,
  /// TZS_CORRUPTED, TZS_IO, TZS_CLOSED).
  std::optional<ValueView> read_view(Reader& reader, ByteView key) const {
    tzs_view value{nullptr, 0};
    tzs_view header{nullptr, 0};
    if (!detail::call_found(tzs_indexed_file_read_view, h_.get("indexed file"), reader.get(),
                            key.data, key.size, &value, &header))
      return std::nullopt;
    return ValueView{ByteView(value.ptr, value.len), ByteView(header.ptr, header.len)};
  }

  /// Appends `value` for `key` with `header` (`header_size` bytes),
  /// replacing an earlier value. With `flush` (the default) durable on
  /// return. Throws Error (TZS_INVALID_ARGUMENT for wrong sizes or on a
  /// HEADER_IN_VALUE store, TZS_READ_ONLY, TZS_NO_SPACE, TZS_IO).
  void append(ByteView key, ByteView header, ByteView value, bool flush = true) {
    append_raw(key, header.data == nullptr && header.size == 0 ? empty() : header.data,
               header.size, value, flush);
  }

  /// For a HEADER_IN_VALUE store: appends `value` (at least `header_size`
  /// bytes, which are its header) for `key`.
  void append_value(ByteView key, ByteView value, bool flush = true) {
    append_raw(key, nullptr, 0, value, flush);
  }

  /// Makes every append so far durable.
  void flush() { detail::call(tzs_indexed_file_flush, h_.get("indexed file")); }

  /// Read-only handles: loads what the writer flushed since.
  void sync() { detail::call(tzs_indexed_file_sync, h_.get("indexed file")); }

  /// Starts a compaction keeping the keys for which `keep(key)` (a
  /// `const std::vector<uint8_t>&`) returns true. `keep` runs on this
  /// thread, once per stored key, before gc returns; the kept values are
  /// then copied in the background while appends continue (values appended
  /// meanwhile are kept). Wait with await_gc(). If `keep` throws, the
  /// remaining keys are kept, the compaction is awaited and the exception
  /// rethrown. Throws Error (TZS_INVALID_ARGUMENT if a compaction is
  /// running, TZS_READ_ONLY, TZS_IO, or the previous compaction's error).
  template <typename F>
  void gc(F&& keep) {
    using Fn = std::remove_reference_t<F>;
    struct Ctx {
      Fn* keep;
      std::exception_ptr error;
    } ctx{&keep, nullptr};
    tzs_indexed_file_keep_fn trampoline = [](const std::uint8_t* key, std::size_t len,
                                             void* p) noexcept -> bool {
      Ctx* c = static_cast<Ctx*>(p);
      if (c->error) return true;
      try {
        return static_cast<bool>((*c->keep)(std::vector<std::uint8_t>(key, key + len)));
      } catch (...) {
        c->error = std::current_exception();
        return true;
      }
    };
    try {
      detail::call(tzs_indexed_file_gc, h_.get("indexed file"), trampoline, &ctx);
    } catch (const Error&) {
      // A failed compaction reports keep's exception, which came first.
      if (ctx.error) std::rethrow_exception(ctx.error);
      throw;
    }
    if (ctx.error) {
      try {
        await_gc();
      } catch (const Error&) {
        // keep's exception is the one to report.
      }
      std::rethrow_exception(ctx.error);
    }
  }

  /// Octez's gc ?async for an indexed file: compacts the store, keeping
  /// the values of the keys for which `keep(key, header)` returns true
  /// (copies of the key and of the header stored in the index; the value
  /// is not read). `keep` is asked about the keys stored when the GC
  /// starts, on a library thread (or the thread waiting for the GC), one
  /// call at a time; values appended meanwhile are kept. The kept values
  /// are copied into a new generation that replaces the old one
  /// atomically. With `wait` false returns at once (see await_gc,
  /// is_gc_finished, cancel_gc); with `wait` true once the GC ended,
  /// throwing its error. Returns false, starting nothing, when a GC was
  /// already running, as in Octez. `keep` is kept (and called) until the
  /// GC's end is observed: await_gc() or cancel_gc() returns,
  /// is_gc_finished() returns true, or the store is closed.
  ///
  /// Inside `keep`, the store may be read (mem, header, read,
  /// is_gc_finished) and appended to; await_gc, cancel_gc and gc_filter
  /// with `wait` throw Error(TZS_INVALID_ARGUMENT), and close() must not be
  /// called. If `keep` throws, the key and every later one are kept (keep
  /// is not called again for that GC) and the exception is rethrown here
  /// with `wait`, or by the next await_gc(). Throws Error
  /// (TZS_INVALID_ARGUMENT, TZS_READ_ONLY, TZS_IO, an earlier GC's error
  /// nobody awaited, and with `wait` this GC's).
  bool gc_filter(FilterFn keep, bool wait = false) {
    tzs_indexed_file* p = h_.get("indexed file");
    return gc_->start(std::move(keep), wait, [p, wait](detail::FilterCtx* ctx, bool* started) {
      detail::call(tzs_indexed_file_gc_filter, p, &detail::FilterCtx::call,
                   static_cast<void*>(ctx), wait, started);
    });
  }

  /// Waits for the running compaction (from gc or gc_filter; Octez's
  /// wait_gc_completion), if any, and reports its outcome once: returns
  /// (also for a cancelled one), throws its Error (TZS_IO, TZS_NO_SPACE,
  /// TZS_CORRUPTED, TZS_PANIC; the old generation then stays current), or
  /// rethrows what a gc_filter's filter threw. Error(TZS_INVALID_ARGUMENT)
  /// from inside a gc_filter's filter.
  void await_gc() {
    tzs_indexed_file* p = h_.get("indexed file");
    gc_->observe([p] { detail::call(tzs_indexed_file_await_gc, p); });
    gc_->rethrow_error();
  }

  /// Whether no compaction runs (Octez's is_gc_finished); true once
  /// closed. Never blocks.
  bool is_gc_finished() const {
    tzs_indexed_file* p = h_.raw();
    if (p == nullptr) return true;
    const std::uint64_t m = gc_->mark();
    const bool finished = tzs_indexed_file_is_gc_finished(p);
    if (finished) gc_->ended(m);
    return finished;
  }

  /// Stops the running compaction (from gc_filter or gc) and waits until
  /// it stopped: the store is left exactly as before it. True if one was
  /// stopped before it switched generations; false if none ran or it had
  /// already switched. Throws Error(TZS_INVALID_ARGUMENT) from inside a
  /// gc_filter's filter.
  bool cancel_gc() {
    tzs_indexed_file* p = h_.get("indexed file");
    return gc_->observe([p] {
      bool cancelled = false;
      detail::call(tzs_indexed_file_cancel_gc, p, &cancelled);
      return cancelled;
    });
  }

  std::uint32_t header_size() const noexcept { return header_size_; }

  /// Closes now (also done by the destructor): waits for a running
  /// compaction (call cancel_gc() first to close at once; call await_gc()
  /// first to see its outcome, dropped here). Later calls throw
  /// TZS_CLOSED. Never from inside a gc_filter's filter.
  void close() noexcept {
    if (h_.raw() == nullptr) return;
    // Awaited while the handle is still open, so that a filter may read
    // the store until its GC ends.
    tzs_indexed_file_await_gc(h_.raw(), nullptr);
    h_.reset();
    // The C close waited for any GC started before it.
    gc_->ended();
  }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_indexed_file* native() const noexcept { return h_.raw(); }

 private:
  // A non-NULL pointer for an empty header (NULL means "no header").
  static const std::uint8_t* empty() noexcept {
    static const std::uint8_t none = 0;
    return &none;
  }

  void append_raw(ByteView key, const std::uint8_t* header, std::size_t header_len, ByteView value,
                  bool flush) {
    detail::call(tzs_indexed_file_append, h_.get("indexed file"), key.data, key.size, header,
                 header_len, value.data, value.size, flush);
  }

  detail::Handle<tzs_indexed_file, tzs_indexed_file_close> h_;
  // On the heap so that the store stays movable; freed after h_ is closed.
  std::unique_ptr<detail::GcFilters> gc_ = std::make_unique<detail::GcFilters>();
  std::uint32_t header_size_;
};

}  // namespace tzstore

#endif  // TZSTORE_INDEXED_FILE_HPP

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

#include <cstddef>
#include <cstdint>
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

}  // namespace tzstore

#endif  // TZSTORE_HPP

// tzstore_singleton.hpp: tzstore::Singleton, the C++17 wrapper of
// tzs_singleton (one value in one file). Same error model and handle rules
// as the whole binding (see tzstore_common.hpp); tzstore.hpp includes it.
#ifndef TZSTORE_SINGLETON_HPP
#define TZSTORE_SINGLETON_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tzstore_common.hpp"

namespace tzstore {

/// One value in one file (tzs_singleton).
class Singleton {
 public:
  /// Opens (the file is created by the first write; its directory must
  /// exist). Throws Error (TZS_LOCKED if another read-write instance is
  /// open, TZS_NOT_FOUND if the directory is missing, ...).
  explicit Singleton(const std::string& path, Flags flags = 0) {
    tzs_singleton* p = nullptr;
    detail::call(tzs_singleton_open, detail::c_path(path), flags, &p);
    h_.reset(p);
  }

  /// The value, or std::nullopt when none is set.
  std::optional<std::vector<std::uint8_t>> read() const {
    tzs_bytes out{nullptr, 0};
    if (!detail::call_found(tzs_singleton_read, h_.get("singleton"), &out)) return std::nullopt;
    return detail::take_bytes(out);
  }

  /// Replaces the value (durable on return unless opened with NO_FSYNC).
  /// Throws Error(TZS_READ_ONLY) on a read-only handle.
  void write(const std::uint8_t* data, std::size_t len) {
    detail::call(tzs_singleton_write, h_.get("singleton"), data, len);
  }
  void write(const std::vector<std::uint8_t>& v) { write(v.data(), v.size()); }
  void write(std::string_view v) { write(detail::data_of(v), v.size()); }

  /// Removes the value; removing an unset value succeeds.
  void remove() { detail::call(tzs_singleton_delete, h_.get("singleton")); }

  /// Reloads the value from the file (for read-only handles).
  void sync() { detail::call(tzs_singleton_sync, h_.get("singleton")); }

  /// Closes now (also done by the destructor); later calls throw TZS_CLOSED.
  void close() noexcept { h_.reset(); }
  bool is_open() const noexcept { return h_.raw() != nullptr; }
  /// The C handle, for calls this wrapper does not cover; still owned here.
  tzs_singleton* native() const noexcept { return h_.raw(); }

 private:
  detail::Handle<tzs_singleton, tzs_singleton_close> h_;
};

}  // namespace tzstore

#endif  // TZSTORE_SINGLETON_HPP

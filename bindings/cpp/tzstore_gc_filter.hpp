// tzstore_gc_filter.hpp: the GC filters of the layer-2 stores
// (Index::filter, Index::gc, IndexedFile::gc_filter): tzstore::FilterFn and,
// in tzstore::detail, the C callback that runs one and the registry that
// keeps the filters of background GCs alive until the library is done with
// them. Included by tzstore_index.hpp and tzstore_indexed_file.hpp.
//
// Exceptions never cross into C: the callback catches what a filter throws,
// keeps that binding and every later one (the filter is not called again
// for that run), and the exception is rethrown on the caller's thread once
// C has returned: by Index::filter or a gc with `wait`, or, for a
// background GC, by the next await_gc().
#ifndef TZSTORE_GC_FILTER_HPP
#define TZSTORE_GC_FILTER_HPP

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "tzstore_common.hpp"

namespace tzstore {

/// Decides whether a binding survives a filter or a GC: return true to
/// keep it. Called with copies of the key and of the value (an index) or
/// of the header (an indexed file), one call at a time, on a library
/// thread or on the thread waiting for the GC.
using FilterFn =
    std::function<bool(const std::vector<std::uint8_t>& key, const std::vector<std::uint8_t>& value)>;

namespace detail {

/// One run of a filter: the C callback's context.
struct FilterCtx {
  FilterFn keep;
  std::exception_ptr error;  // what keep threw; it is not called again

  explicit FilterCtx(FilterFn f) : keep(std::move(f)) {}

  /// The tzs_filter_fn of every filter.
  static bool call(void* p, const std::uint8_t* key, std::size_t key_len, const std::uint8_t* value,
                   std::size_t value_len) noexcept {
    FilterCtx* c = static_cast<FilterCtx*>(p);
    if (c->error) return true;
    try {
      return static_cast<bool>(c->keep(std::vector<std::uint8_t>(key, key + key_len),
                                       std::vector<std::uint8_t>(value, value + value_len)));
    } catch (...) {
      c->error = std::current_exception();
      return true;
    }
  }
};

/// Runs `start(ctx)`, a C call with a filter that has ended when it
/// returns (a filter, a GC with wait), then rethrows what the filter
/// threw, which comes before any error of the call.
template <typename Start>
void run_filter(FilterFn keep, Start start) {
  FilterCtx ctx(std::move(keep));
  try {
    start(&ctx);
  } catch (const Error&) {
    if (ctx.error) std::rethrow_exception(ctx.error);
    throw;
  }
  if (ctx.error) std::rethrow_exception(ctx.error);
}

/// The filters of a store's background GCs, kept until an end of their GC
/// is observed: is_gc_finished() true, await_gc() or cancel_gc() returned,
/// or the store closed. They are numbered as registered; an observation
/// ends every filter registered before it began (one is registered once its
/// GC started, and one GC runs at a time, so that GC started before the
/// observation and has ended when it says so).
class GcFilters {
 public:
  /// Runs `start(ctx, &started)`, a C call starting a GC with `keep`. The
  /// filter stays registered if (and only if) a background GC started
  /// (`wait` false, no error); otherwise its GC has ended or never started
  /// and it is freed now, after rethrowing what it threw. Returns started.
  template <typename Start>
  bool start(FilterFn keep, bool wait, Start start) {
    auto ctx = std::make_unique<FilterCtx>(std::move(keep));
    bool started = false;
    try {
      start(ctx.get(), &started);
    } catch (const Error&) {
      if (ctx->error) std::rethrow_exception(ctx->error);
      throw;
    }
    if (started && !wait) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.emplace(++seq_, std::move(ctx));
      return true;
    }
    if (ctx->error) std::rethrow_exception(ctx->error);
    return started;
  }

  /// Taken before an observation: the filters registered so far.
  std::uint64_t mark() {
    std::lock_guard<std::mutex> lock(mu_);
    return seq_;
  }

  /// Frees the filters registered up to `mark`, keeping what they threw.
  void ended(std::uint64_t mark = std::numeric_limits<std::uint64_t>::max()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end() && it->first <= mark;) {
      if (it->second->error) errors_.push_back(it->second->error);
      it = pending_.erase(it);
    }
  }

  /// Runs `f`, an await or a cancel (a C call through detail::call), and
  /// frees the filters of the GCs it waited for: on success, or an error
  /// other than a refused call (TZS_INVALID_ARGUMENT from inside a filter,
  /// TZS_CLOSED).
  template <typename F>
  auto observe(F f) -> decltype(f()) {
    const std::uint64_t m = mark();
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        ended(m);
      } else {
        auto r = f();
        ended(m);
        return r;
      }
    } catch (const Error& e) {
      if (e.status() != TZS_INVALID_ARGUMENT && e.status() != TZS_CLOSED) ended(m);
      throw;
    }
  }

  /// Rethrows, once, what the filter of an ended background GC threw.
  void rethrow_error() {
    std::exception_ptr e;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (errors_.empty()) return;
      e = errors_.front();
      errors_.erase(errors_.begin());
    }
    std::rethrow_exception(e);
  }

  /// How many filters are kept (for tests).
  std::size_t pending() {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.size();
  }

 private:
  std::mutex mu_;
  std::uint64_t seq_ = 0;
  std::map<std::uint64_t, std::unique_ptr<FilterCtx>> pending_;
  std::vector<std::exception_ptr> errors_;
};

}  // namespace detail

}  // namespace tzstore

#endif  // TZSTORE_GC_FILTER_HPP

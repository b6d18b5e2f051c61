// Exercises, against an installed tzstore, streamed cementing
// (Cemented::begin_chunk, tzstore::ChunkWriter push / push_with_context /
// commit / abort, Cemented::cement_metadata) and resulting context hashes
// (store_with_context / append_with_context / push_with_context and
// resulting_context_hash on BlockStore, Floating and Cemented): a streamed
// 100-block chunk read back, abort and the destructor leaving nothing, a
// wrong block failing push then commit, a commit after the store was
// closed, metadata added to chunks cemented without it, and contexts kept
// through a block-store merge.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <tzstore.hpp>
#include <utility>
#include <vector>

#include "blocks.hpp"

namespace fs = std::filesystem;

static std::vector<tzstore::Block> chain(int from, int to) {
  std::vector<tzstore::Block> out;
  for (int i = from; i <= to; ++i) out.push_back(block_of(i));
  return out;
}

// The resulting context hash the tests store with block n.
static tzstore::Hash ctx_of(int n) {
  tzstore::Hash h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(0xc7 ^ (n * 13 + i * 5));
  h[0] = static_cast<std::uint8_t>(n);
  h[1] = static_cast<std::uint8_t>(n >> 8);
  return h;
}

// Every file under dir, relative to it, sorted.
static std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

static void check_streamed(const tzstore::Cemented& c) {
  CHECK(c.chunks() == (std::vector<tzstore::Chunk>{{0, 99}}));
  CHECK(c.metadata_chunks() == (std::vector<tzstore::Chunk>{{0, 99}}));
  for (int i = 0; i < 100; ++i) {
    CHECK(c.read_by_level(i) == std::optional<tzstore::Block>(block_of(i)));
    const tzstore::Hash want = i % 2 == 0 ? ctx_of(i) : tzstore::Hash{};
    CHECK(c.resulting_context_hash(hash_of(i)) == std::optional<tzstore::Hash>(want));
  }
  CHECK(!c.resulting_context_hash(hash_of(100)));
  c.check_consistency();
}

// 100 blocks pushed one by one (even ones with a context), committed,
// read back before and after a reopen.
static void test_stream(const std::string& dir) {
  {
    tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
    tzstore::ChunkWriter w = c.begin_chunk(0, 99);
    CHECK(w.is_open());
    for (int i = 0; i < 100; ++i) {
      if (i % 2 == 0)
        w.push_with_context(block_of(i), ctx_of(i));
      else
        w.push(block_of(i));
    }
    CHECK(!c.read_by_level(0, false));  // nothing visible before the commit
    CHECK(w.commit() == (tzstore::Chunk{0, 99}));
    CHECK(!w.is_open());
    expect_error(TZS_CLOSED, [&] { w.commit(); });
    expect_error(TZS_CLOSED, [&] { w.push(block_of(100)); });
    w.abort();  // a no-op once committed
    check_streamed(c);
    expect_error(TZS_INCONSISTENT, [&] { c.begin_chunk(101, 110); });  // a gap
    expect_error(TZS_INCONSISTENT, [&] { c.begin_chunk(99, 110); });   // an overlap
  }
  tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
  check_streamed(c);
}

// abort(), the destructor and a move-assignment over an open writer leave
// no chunk and no file, and release the write lock.
static void test_abort(const std::string& dir) {
  tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
  const std::vector<std::string> before = files_under(dir);
  {
    tzstore::ChunkWriter w = c.begin_chunk(0, 49);
    for (int i = 0; i < 30; ++i) w.push(block_of(i));
    w.abort();
    w.abort();
    CHECK(!w.is_open());
    expect_error(TZS_CLOSED, [&] { w.commit(); });
  }
  {
    tzstore::ChunkWriter w = c.begin_chunk(0, 49);
    for (int i = 0; i < 10; ++i) w.push(block_of(i));
    tzstore::ChunkWriter moved = std::move(w);
    CHECK(moved.is_open() && !w.is_open());
    expect_error(TZS_CLOSED, [&] { w.push(block_of(10)); });
  }  // the destructor aborts
  {
    tzstore::ChunkWriter w = c.begin_chunk(0, 49);
    w.push(block_of(0));
    tzstore::ChunkWriter other = std::move(w);
    other = std::move(w);  // assigning an ended writer aborts the open one
    CHECK(!other.is_open());
    tzstore::ChunkWriter next = c.begin_chunk(0, 49);  // the lock is free again
    next.abort();
  }
  CHECK(files_under(dir) == before);
  CHECK(c.chunks().empty() && !c.highest_level() && !c.read_by_hash(hash_of(3), false));
  c.cement(chain(0, 49));
  CHECK(c.chunks() == (std::vector<tzstore::Chunk>{{0, 49}}));
}

// A block out of order fails its push, then the commit; too few blocks
// fail the commit; nothing is visible, and the chunk can be written again.
static void test_wrong_block(const std::string& dir) {
  tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
  {
    tzstore::ChunkWriter w = c.begin_chunk(0, 9);
    for (int i = 0; i < 5; ++i) w.push(block_of(i));
    std::string msg = expect_error(TZS_INCONSISTENT, [&] { w.push(block_of(6)); });
    CHECK(!msg.empty());
    try {
      w.commit();
      CHECK(false);
    } catch (const tzstore::Error& e) {
      // The header documents TZS_INCONSISTENT; the library says
      // TZS_INVALID_ARGUMENT ("abandoned after an error").
      CHECK(e.status() == TZS_INCONSISTENT || e.status() == TZS_INVALID_ARGUMENT);
    }
    CHECK(!w.is_open());
  }
  CHECK(c.chunks().empty());
  {
    tzstore::ChunkWriter w = c.begin_chunk(0, 9);
    for (int i = 0; i < 9; ++i) w.push(block_of(i));
    expect_error(TZS_INCONSISTENT, [&] { w.commit(); });
  }
  CHECK(c.chunks().empty());
  tzstore::ChunkWriter w = c.begin_chunk(0, 9);
  for (int i = 0; i < 10; ++i) w.push(block_of(i));
  CHECK(w.commit() == (tzstore::Chunk{0, 9}));
}

// The writer keeps the store alive: it commits after the Cemented closed.
static void test_commit_after_close(const std::string& dir) {
  tzstore::ChunkWriter w = [&] {
    tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
    tzstore::ChunkWriter w = c.begin_chunk(0, 19);
    for (int i = 0; i < 10; ++i) w.push(block_of(i));
    return w;
  }();
  for (int i = 10; i < 20; ++i) w.push(block_of(i));
  CHECK(w.commit() == (tzstore::Chunk{0, 19}));
  tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
  for (int i = 0; i < 20; ++i) CHECK(c.read_by_level(i) == std::optional<tzstore::Block>(block_of(i)));
}

// cement_metadata gives chunks cemented (or streamed) without metadata
// their metadata, durably; twice, no block, or blocks not cemented fail.
static void test_cement_metadata(const std::string& dir) {
  auto check = [](const tzstore::Cemented& c) {
    CHECK(c.metadata_chunks() == (std::vector<tzstore::Chunk>{{0, 19}, {20, 39}}));
    for (int i = 0; i < 40; ++i) CHECK(c.read_by_level(i) == std::optional<tzstore::Block>(block_of(i)));
    CHECK(c.read_metadata(10) == block_of(10).metadata);
  };
  {
    tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
    c.cement(chain(0, 19), false);
    tzstore::ChunkWriter w = c.begin_chunk(20, 39, false);
    for (int i = 20; i < 40; ++i) w.push(block_of(i));
    w.commit();
    CHECK(c.metadata_chunks().empty() && !c.read_metadata(10));
    CHECK(c.cement_metadata(chain(0, 19)) == (tzstore::Chunk{0, 19}));
    CHECK(c.cement_metadata(chain(20, 39)) == (tzstore::Chunk{20, 39}));
    check(c);
    expect_error(TZS_INVALID_ARGUMENT, [&] { c.cement_metadata(chain(0, 19)); });
    expect_error(TZS_INVALID_ARGUMENT, [&] { c.cement_metadata({}); });
    expect_error(TZS_NOT_FOUND, [&] { c.cement_metadata(chain(40, 45)); });
  }
  tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
  check(c);
}

// Floating: even blocks appended with a context, odd ones without (zeros),
// read back from the index, also after a reopen.
static void test_floating_context(const std::string& dir) {
  auto check = [](const tzstore::Floating& f) {
    for (int i = 0; i < 30; ++i) {
      const tzstore::Hash want = i % 2 == 0 ? ctx_of(i) : tzstore::Hash{};
      CHECK(f.resulting_context_hash(hash_of(i)) == std::optional<tzstore::Hash>(want));
    }
    CHECK(!f.resulting_context_hash(hash_of(30)));
  };
  {
    tzstore::Floating f(dir, tzstore::FloatingKind::RW, tzstore::NO_FSYNC);
    for (int i = 0; i < 30; ++i) {
      if (i % 2 == 0)
        f.append_with_context(block_of(i), ctx_of(i), {}, false);
      else
        f.append(block_of(i), {}, false);
    }
    check(f);
    CHECK(f.read_block(hash_of(12)) == std::optional<tzstore::Block>(block_of(12)));
  }
  tzstore::Floating f(dir, tzstore::FloatingKind::RW, tzstore::NO_FSYNC);
  check(f);
}

// Block store: levels 0..60 stored with contexts (every fifth without:
// zeros), merged with chunk ends 20 and 40 (archive): every context reads
// back, from the cemented records and the floating index alike.
static void test_block_store_context(const std::string& dir) {
  tzstore::BlockStoreOptions o;
  o.flags = tzstore::NO_FSYNC;
  o.history_mode = tzstore::HistoryMode::ARCHIVE;
  o.index_log_size = 200;
  tzstore::BlockStore s(dir, o);
  auto want = [](int i) { return i % 5 == 4 ? tzstore::Hash{} : ctx_of(i); };
  for (int i = 0; i <= 60; ++i) {
    if (i % 5 == 4)
      s.store(block_of(i), false);
    else
      s.store_with_context(block_of(i), ctx_of(i), i == 60);
  }
  auto check = [&] {
    for (int i = 0; i <= 60; ++i)
      CHECK(s.resulting_context_hash(hash_of(i)) == std::optional<tzstore::Hash>(want(i)));
    CHECK(!s.resulting_context_hash(hash_of(61)));
  };
  check();
  s.merge(hash_of(60), {20, 40});
  s.await_merge();
  const tzstore::BlockStoreStats st = s.stats();
  CHECK(st.cemented_lowest == 0 && st.cemented_highest == 40);
  check();
  CHECK(s.read_by_level(30) == std::optional<tzstore::Block>(block_of(30)));
  s.store_with_context(block_of(61), ctx_of(61));
  CHECK(s.resulting_context_hash(hash_of(61)) == std::optional<tzstore::Hash>(ctx_of(61)));
  s.close();
  expect_error(TZS_CLOSED, [&] { s.resulting_context_hash(hash_of(0)); });
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  const std::string root = argv[1];
  fs::remove_all(root);
  fs::create_directories(root);
  try {
    test_stream(root + "/stream");
    test_abort(root + "/abort");
    test_wrong_block(root + "/wrong");
    test_commit_after_close(root + "/after-close");
    test_cement_metadata(root + "/metadata");
    test_floating_context(root + "/floating");
    test_block_store_context(root + "/blocks");
  } catch (const tzstore::Error& e) {
    std::fprintf(stderr, "unexpected error: %s\n", e.what());
    ++failures;
  }
  fs::remove_all(root);
  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

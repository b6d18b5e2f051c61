// Exercises tzstore::Cemented against an installed tzstore: cement
// chunks, read by level and hash (with and without metadata), levels,
// hashes, chunk lists, not found, errors with their status and message,
// iteration, GC by history mode, consistency check, read-only sync, close.
#include <cstdio>
#include <filesystem>
#include <string>
#include <tzstore_cemented.hpp>
#include <vector>

#include "blocks.hpp"

namespace fs = std::filesystem;

static std::vector<tzstore::Block> chain(int from, int to) {
  std::vector<tzstore::Block> out;
  for (int i = from; i <= to; ++i) out.push_back(block_of(i));
  return out;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string dir = std::string(argv[1]) + "/cemented";
  {
    tzstore::Cemented c(dir, tzstore::NO_FSYNC, 100);
    CHECK(!c.lowest_level() && !c.highest_level());
    CHECK(c.chunks().empty());
    c.cement(chain(0, 19));
    c.cement(chain(20, 39));
    c.cement(chain(40, 59), false);  // no metadata zip for this chunk
    CHECK(c.lowest_level() == std::optional<std::int32_t>(0));
    CHECK(c.highest_level() == std::optional<std::int32_t>(59));
    CHECK(c.chunks() == (std::vector<tzstore::Chunk>{{0, 19}, {20, 39}, {40, 59}}));
    CHECK(c.metadata_chunks() == (std::vector<tzstore::Chunk>{{0, 19}, {20, 39}}));
    CHECK(c.find_chunk(25) == std::optional<tzstore::Chunk>(tzstore::Chunk{20, 39}));
    CHECK(!c.find_chunk(60));
    for (int i = 0; i < 40; ++i) {
      CHECK(c.read_by_level(i) == std::optional<tzstore::Block>(block_of(i)));
      CHECK(c.read_by_hash(hash_of(i)) == std::optional<tzstore::Block>(block_of(i)));
      CHECK(c.level_of(hash_of(i)) == std::optional<std::int32_t>(i));
      CHECK(c.hash_of(i) == std::optional<tzstore::Hash>(hash_of(i)));
    }
    CHECK(c.read_by_level(45) == std::optional<tzstore::Block>(without_metadata(block_of(45))));
    CHECK(c.read_by_level(10, false) == std::optional<tzstore::Block>(without_metadata(block_of(10))));
    CHECK(c.read_metadata(10) == block_of(10).metadata);
    CHECK(!c.read_metadata(9));   // no metadata given
    CHECK(!c.read_metadata(45));  // cemented without metadata
    CHECK(!c.read_by_level(60) && !c.read_by_hash(hash_of(60)) && !c.level_of(hash_of(60)) &&
          !c.hash_of(60));

    // Borrowed reads equal the copies, with and without metadata (and for
    // the chunk cemented without any); a miss is std::nullopt.
    tzstore::Reader r;
    int bad = 0;
    for (int i = 0; i < 60; ++i) {
      for (bool md : {false, true}) {
        auto v = c.read_view_by_level(r, i, md);
        tzstore::Block want = md && i < 40 ? block_of(i) : without_metadata(block_of(i));
        if (!same(v, want) || v->to_block() != *c.read_by_level(i, md)) ++bad;
      }
    }
    CHECK(bad == 0);
    CHECK(!c.read_view_by_level(r, 60));
    CHECK(!c.read_view_by_level(r, -1));

    // Errors carry their status and a message.
    std::string msg = expect_error(TZS_INCONSISTENT, [&] { c.cement(chain(61, 70)); });
    CHECK(!msg.empty());
    expect_error(TZS_INVALID_ARGUMENT, [&] { c.cement({}); });
    msg = expect_error(TZS_LOCKED, [&] { tzstore::Cemented again(dir); });
    CHECK(!msg.empty());
    expect_error(TZS_INVALID_ARGUMENT, [&] { c.set_zstd_level(99); });
    c.set_zstd_level(5);
    c.check_consistency();
    c.check_consistency(hash_of(0));

    // Iteration in level order.
    int next = 20;
    CHECK(c.for_each(tzstore::Chunk{20, 39}, [&](const tzstore::Block& b) {
      CHECK(b == block_of(next));
      ++next;
    }));
    CHECK(next == 40);
    CHECK(!c.for_each(tzstore::Chunk{20, 30}, [&](const tzstore::Block&) { CHECK(false); }));

    // A read-only instance follows the writer after sync.
    tzstore::Cemented ro(dir, tzstore::READONLY);
    CHECK(ro.highest_level() == std::optional<std::int32_t>(59));
    expect_error(TZS_READ_ONLY, [&] { ro.cement(chain(60, 69)); });
    c.cement(chain(60, 79));
    ro.sync();
    CHECK(ro.read_by_level(70) == std::optional<tzstore::Block>(block_of(70)));

    // GC: FULL keeps the metadata of the last 2 chunks, ROLLING the last 2 chunks.
    // Views taken before (one per reader) outlive both GCs.
    tzstore::Reader held_bare, held_full;
    auto bare = c.read_view_by_level(held_bare, 10, false);
    auto full = c.read_view_by_level(held_full, 11);
    c.gc(tzstore::HistoryMode::ARCHIVE, 1);
    CHECK(c.chunks().size() == 4);
    c.gc(tzstore::HistoryMode::FULL, 2);
    CHECK(c.metadata_chunks() == (std::vector<tzstore::Chunk>{{60, 79}}));
    CHECK(!c.read_metadata(10) && c.read_by_level(10));
    c.gc(tzstore::HistoryMode::ROLLING, 2);
    CHECK(c.chunks() == (std::vector<tzstore::Chunk>{{40, 59}, {60, 79}}));
    CHECK(!c.read_by_level(10) && !c.read_by_hash(hash_of(10)));
    CHECK(c.lowest_level() == std::optional<std::int32_t>(40));
    c.check_consistency();
    CHECK(!c.read_view_by_level(r, 10));
    CHECK(same(bare, without_metadata(block_of(10))));
    CHECK(same(full, block_of(11)));

    tzstore::Cemented moved = std::move(c);
    CHECK(moved.is_open() && !c.is_open());
    expect_error(TZS_CLOSED, [&] { c.chunks(); });
    moved.close();
    expect_error(TZS_CLOSED, [&] { moved.read_by_level(70); });
  }
  {
    tzstore::Cemented c(dir);
    CHECK(c.read_by_level(79) == std::optional<tzstore::Block>(block_of(79)));
    expect_error(TZS_NOT_FOUND, [&] { tzstore::Cemented ro(dir + "-missing", tzstore::READONLY); });
  }
  fs::remove_all(argv[1]);
  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

// Exercises tzstore::BlockStore's chain bookkeeping against an installed
// tzstore, after Octez's test_block_store.ml (test_full_0_merge,
// test_rolling_0_merge): ten 20-block cycles (levels 0..200, genesis 0)
// merged with chunk ends 20..180 and max_op_ttl 1, so that the blocks from
// 179 up keep their metadata; create/load with a genesis; savepoint and
// caboose reads and writes; history switches; the merge status, including
// a merge that fails over a damaged floating entry.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tzstore_block_store.hpp>
#include <vector>

#include "blocks.hpp"

namespace fs = std::filesystem;

// Block n of a chain where every block has the metadata "metadata n".
static tzstore::Block chain_block(int n) {
  tzstore::Block b;
  b.hash = hash_of(n);
  b.level = n;
  b.predecessor = hash_of(n == 0 ? 0 : n - 1);
  std::string c = "contents " + std::to_string(n);
  b.contents.assign(c.begin(), c.end());
  std::string m = "metadata " + std::to_string(n);
  b.metadata.emplace(m.begin(), m.end());
  return b;
}

static tzstore::BlockDescr at(int n) { return tzstore::BlockDescr{hash_of(n), n}; }

static tzstore::BlockStoreOptions options(tzstore::HistoryMode mode) {
  tzstore::BlockStoreOptions o;
  o.flags = tzstore::NO_FSYNC;
  o.history_mode = mode;
  o.history_offset = 0;
  o.index_log_size = 200;
  return o;
}

enum Presence { ABSENT, BARE, WITH_METADATA, WRONG };

static Presence presence(const tzstore::BlockStore& s, int n) {
  std::optional<tzstore::Block> b = s.read(hash_of(n));
  if (!b) return ABSENT;
  tzstore::Block want = chain_block(n);
  if (b->level != want.level || b->contents != want.contents) return WRONG;
  if (!b->metadata) return BARE;
  return b->metadata == want.metadata ? WITH_METADATA : WRONG;
}

// Whether levels 0..=200 read as `below` under the lowest preserved block
// (179) and with their metadata from it up.
static bool chain_is(const tzstore::BlockStore& s, Presence below) {
  int bad = 0;
  for (int n = 0; n <= 200; ++n) {
    Presence want = n < 179 ? below : WITH_METADATA;
    if (presence(s, n) != want) {
      if (bad == 0) std::fprintf(stderr, "block %d: presence %d, want %d\n", n, presence(s, n), want);
      ++bad;
    }
  }
  return bad == 0;
}

static tzstore::BlockStore merged(const std::string& dir, tzstore::HistoryMode mode) {
  tzstore::BlockStore s = tzstore::BlockStore::create(dir, chain_block(0), options(mode));
  for (int n = 1; n <= 200; ++n) s.store(chain_block(n), false);
  std::vector<std::int32_t> ends;
  for (std::int32_t e = 20; e <= 180; e += 20) ends.push_back(e);
  s.merge_preserving(hash_of(200), ends, 1);
  s.await_merge();
  return s;
}

static void test_full_0(const std::string& dir) {
  tzstore::BlockStore s = merged(dir, tzstore::HistoryMode::FULL);
  // Every block kept, metadata only from the lowest preserved block up.
  CHECK(chain_is(s, BARE));
  CHECK(s.savepoint() == std::optional<tzstore::BlockDescr>(at(179)));
  CHECK(s.caboose() == std::optional<tzstore::BlockDescr>(at(0)));
  CHECK(s.genesis() == std::optional<tzstore::BlockDescr>(at(0)));
  // The cemented top, cemented without metadata, reads by level with it.
  std::optional<tzstore::Block> top = s.read_by_level(180);
  CHECK(top && top->metadata == chain_block(180).metadata);
  tzstore::MergeStatus st = s.merge_status();
  CHECK(st.state == tzstore::MergeState::NOT_RUNNING && !st.failure);
  tzstore::History h = s.history();
  CHECK(h.mode == tzstore::HistoryMode::FULL && h.offset == 0);

  // Savepoint and caboose writes: checked, durable.
  expect_error(TZS_INVALID_ARGUMENT, [&] { s.write_caboose(at(190)); });
  s.write_savepoint(at(190));
  expect_error(TZS_INCONSISTENT, [&] { s.write_savepoint(tzstore::BlockDescr{hash_of(190), 191}); });
  expect_error(TZS_NOT_FOUND, [&] { s.write_savepoint(at(999)); });
  s.write_caboose(at(10));
  expect_error(TZS_INVALID_ARGUMENT, [&] { s.write_savepoint(at(5)); });
  CHECK(s.savepoint() == std::optional<tzstore::BlockDescr>(at(190)));
  CHECK(s.caboose() == std::optional<tzstore::BlockDescr>(at(10)));
  s.close();
  expect_error(TZS_CLOSED, [&] { s.genesis(); });

  // create refuses a populated directory; load checks the genesis.
  expect_error(TZS_INVALID_ARGUMENT, [&] { tzstore::BlockStore::create(dir, chain_block(0)); });
  expect_error(TZS_INCONSISTENT, [&] { tzstore::BlockStore::load(dir, hash_of(7)); });
  expect_error(TZS_NOT_FOUND, [&] { tzstore::BlockStore::load(dir + "-missing", hash_of(0)); });
  tzstore::BlockStore l = tzstore::BlockStore::load(dir, hash_of(0));
  CHECK(l.savepoint() == std::optional<tzstore::BlockDescr>(at(190)));
  CHECK(l.caboose() == std::optional<tzstore::BlockDescr>(at(10)));
  l.close();

  tzstore::BlockStoreOptions ro;
  ro.flags = tzstore::READONLY;
  expect_error(TZS_INVALID_ARGUMENT, [&] { tzstore::BlockStore::create(dir + "-ro", chain_block(0), ro); });
  tzstore::BlockStore r(dir, ro);
  expect_error(TZS_READ_ONLY, [&] { r.write_savepoint(at(195)); });
}

static void test_history_switch(const std::string& dir) {
  tzstore::BlockStore s = merged(dir, tzstore::HistoryMode::FULL);
  // Refused: to archive (the message names both modes), an unknown mode,
  // an unknown head.
  std::string msg = expect_error(TZS_INVALID_ARGUMENT, [&] {
    s.switch_history_mode(hash_of(200), tzstore::HistoryMode::ARCHIVE, 0, 1);
  });
  CHECK(msg.find("full 0") != std::string::npos);
  expect_error(TZS_INVALID_ARGUMENT, [&] {
    s.switch_history_mode(hash_of(200), static_cast<tzstore::HistoryMode>(7), 0, 1);
  });
  expect_error(TZS_NOT_FOUND, [&] {
    s.switch_history_mode(hash_of(999), tzstore::HistoryMode::ROLLING, 0, 1);
  });
  CHECK(s.history().mode == tzstore::HistoryMode::FULL);
  // Accepted: FULL 0 -> ROLLING 0 keeps the preserved blocks and above.
  s.switch_history_mode(hash_of(200), tzstore::HistoryMode::ROLLING, 0, 1);
  tzstore::History h = s.history();
  CHECK(h.mode == tzstore::HistoryMode::ROLLING && h.offset == 0);
  CHECK(s.caboose() == std::optional<tzstore::BlockDescr>(at(179)));
  CHECK(chain_is(s, ABSENT));
  expect_error(TZS_INVALID_ARGUMENT, [&] {
    s.switch_history_mode(hash_of(200), tzstore::HistoryMode::FULL, 1, 1);
  });
  s.close();
  // Persisted.
  tzstore::BlockStore l = tzstore::BlockStore::load(dir, hash_of(0));
  CHECK(l.history().mode == tzstore::HistoryMode::ROLLING);
}

// The RW_floating_block_store file of the floating store with the highest
// id under dir.
static fs::path newest_floating_file(const std::string& dir) {
  long best = -1;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::path(dir) / "floating")) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (fs::exists(e.path() / "RW_floating_block_store")) best = std::max(best, std::stol(name));
  }
  return fs::path(dir) / "floating" / std::to_string(best) / "RW_floating_block_store";
}

static void test_rolling_0(const std::string& dir) {
  tzstore::BlockStore s = merged(dir, tzstore::HistoryMode::ROLLING);
  CHECK(chain_is(s, ABSENT));
  CHECK(s.savepoint() == std::optional<tzstore::BlockDescr>(at(179)));
  CHECK(s.caboose() == std::optional<tzstore::BlockDescr>(at(179)));
  // ROLLING 0 cements nothing, as in Octez.
  CHECK(s.stats().cemented_blocks == 0);

  // A merge over a damaged floating entry fails; the status says so with
  // the merge's error, without waiting.
  for (int n = 201; n <= 240; ++n) s.store(chain_block(n));
  const fs::path file = newest_floating_file(dir);
  const auto size = static_cast<std::streamoff>(fs::file_size(file));
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(size - 200);
    f.write("\xff\xff\xff\xff", 4);
    CHECK(f.good());
  }
  s.merge_preserving(hash_of(240), {220}, 1);
  std::string merge_msg = expect_error(TZS_CORRUPTED, [&] { s.await_merge(); });
  tzstore::MergeStatus st = s.merge_status();
  CHECK(st.state == tzstore::MergeState::FAILED && st.failure);
  CHECK(st.failure && st.failure->status() == TZS_CORRUPTED && st.failure->message() == merge_msg &&
        !merge_msg.empty());
  // The store holds what it held before.
  CHECK(s.caboose() == std::optional<tzstore::BlockDescr>(at(179)));
  CHECK(s.mem(hash_of(240)));
}

static void test_empty(const std::string& dir) {
  tzstore::BlockStore s(dir, options(tzstore::HistoryMode::ARCHIVE));
  CHECK(!s.genesis() && !s.savepoint() && !s.caboose());
  CHECK(s.merge_status().state == tzstore::MergeState::NOT_RUNNING);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
    return 2;
  }
  fs::remove_all(argv[1]);
  fs::create_directories(argv[1]);
  const std::string work = argv[1];
  try {
    test_full_0(work + "/full");
    test_history_switch(work + "/switch");
    test_rolling_0(work + "/rolling");
    test_empty(work + "/empty");
  } catch (const tzstore::Error& e) {
    std::fprintf(stderr, "unexpected error: %s\n", e.what());
    ++failures;
  }
  fs::remove_all(argv[1]);
  std::printf("%d passed, %d failed\n", passed, failures);
  return failures == 0 ? 0 : 1;
}

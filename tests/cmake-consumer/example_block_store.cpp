#include <iostream>
#include <string>
#include <tzstore_block_store.hpp>

int main(int argc, char** argv) {
  tzstore::BlockStoreOptions opts;
  opts.flags = tzstore::NO_FSYNC;
  opts.history_mode = tzstore::HistoryMode::ROLLING;
  opts.history_offset = 2;  // keep the last 2 cemented chunks
  tzstore::BlockStore s(std::string(argc > 1 ? argv[1] : ".") + "/node", opts);
  auto hash = [](int n) { return tzstore::Hash{static_cast<std::uint8_t>(n), 0xAB}; };
  for (int n = 0; n < 30; ++n) {  // a chain: genesis is its own predecessor
    std::string c = "block " + std::to_string(n);
    s.store({hash(n), n, hash(n > 0 ? n - 1 : 0), {c.begin(), c.end()}, std::nullopt});
  }
  auto b = s.read(hash(29));  // std::optional<tzstore::Block>
  std::cout << "head: level " << b->level << "\n";
  b = s.read(hash(29), 10);  // the ancestor 10 blocks below
  std::cout << "ancestor: " << std::string(b->contents.begin(), b->contents.end()) << "\n";
  if (!s.read(hash(99))) std::cout << "not found\n";
  try {
    s.store({hash(50), 50, hash(49), {'x'}, std::nullopt});  // unknown predecessor
  } catch (const tzstore::Error& e) {
    std::cout << "error: " << e.what() << "\n";  // TZS_INCONSISTENT: ...
  }
  s.merge(hash(29), {9, 19});  // cement levels 0..19 in the background
  s.await_merge();
  std::cout << "cemented up to " << s.stats().cemented_highest << "\n";
  s.close();
}

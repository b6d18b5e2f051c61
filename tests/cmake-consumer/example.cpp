#include <iostream>
#include <string>
#include <tzstore.hpp>

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : ".";
  tzstore::Index ix(dir + "/index", 4, 8, tzstore::NO_FSYNC);  // 4-byte keys, 8-byte values
  ix.add("key1", "value--1");
  auto v = ix.find("key1");  // std::optional<std::vector<uint8_t>>
  std::cout << "index: " << std::string(v->begin(), v->end()) << "\n";
  if (!ix.find("nope")) std::cout << "not found\n";
  try {
    ix.add("too long key", "value--2");
  } catch (const tzstore::Error& e) {
    std::cout << "error: " << e.what() << "\n";  // TZS_INVALID_ARGUMENT: ...
  }
  ix.close();

  tzstore::Floating f(dir + "/blocks", tzstore::FloatingKind::RW, tzstore::NO_FSYNC);
  tzstore::Block genesis{{1}, 0, {1}, {'g'}, std::nullopt};
  tzstore::Block b1{{2}, 1, genesis.hash, {'b', '1'}, std::vector<uint8_t>{'m'}};
  f.append(genesis);
  f.append(b1, {genesis.hash});  // predecessors: the 2^i-th ancestors
  auto b = f.read_block(b1.hash);  // std::optional<tzstore::Block>
  std::cout << "block level " << b->level << ": " << std::string(b->contents.begin(), b->contents.end()) << "\n";
  if (!f.read_block(tzstore::Hash{9})) std::cout << "block not found\n";
  f.close();
}

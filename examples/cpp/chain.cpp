// Stores a small chain in a block store and reads it back (C++17).
// Build: see CMakeLists.txt beside it. Run: ./chain DIR
#include <iostream>
#include <string>
#include <tzstore_block_store.hpp>

// Block n's hash: 32 bytes of value n + 1.
static tzstore::Hash hash_of(int n) {
  tzstore::Hash h;
  h.fill(static_cast<std::uint8_t>(n + 1));
  return h;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: " << argv[0] << " DIR\n";
    return 2;
  }
  try {
    std::cout << "tzstore " << tzstore::version() << "\n";
    tzstore::BlockStore store(std::string(argv[1]) + "/blocks");  // durable, full history
    for (int n = 0; n <= 3; ++n) {  // genesis (its own predecessor) and three blocks
      std::string contents = "block " + std::to_string(n);
      store.store({hash_of(n), n, hash_of(n > 0 ? n - 1 : 0), {contents.begin(), contents.end()}, std::nullopt});
    }
    std::cout << "stored levels 0..3\n";
    for (std::uint32_t distance : {0u, 2u}) {
      auto b = store.read(hash_of(3), distance);  // std::optional<tzstore::Block>
      std::cout << distance << " below the head: level " << b->level << ", \""
                << std::string(b->contents.begin(), b->contents.end()) << "\"\n";
    }
    if (!store.read(tzstore::Hash{0x99})) std::cout << "unknown hash: not found\n";
    store.close();
  } catch (const tzstore::Error& e) {  // status name and message
    std::cerr << e.what() << "\n";
    return 1;
  }
}

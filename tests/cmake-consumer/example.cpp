#include <iostream>
#include <string>
#include <tzstore.hpp>

int main(int argc, char** argv) {
  std::string path = std::string(argc > 1 ? argv[1] : ".") + "/head";
  tzstore::Singleton s(path, tzstore::NO_FSYNC);
  s.write("block 42");
  auto v = s.read();  // std::optional<std::vector<uint8_t>>
  std::cout << "read: " << std::string(v->begin(), v->end()) << "\n";
  s.remove();
  if (!s.read()) std::cout << "not found\n";
  try {
    tzstore::Singleton(path, tzstore::READONLY).write("x");
  } catch (const tzstore::Error& e) {
    std::cout << "error: " << e.what() << "\n";  // TZS_READ_ONLY: ...
  }
  s.close();
}

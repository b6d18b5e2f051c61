// Sample blocks shared by the block-store tests (floating, cemented, block
// store): block n of a chain (0 is genesis, its own predecessor); contents
// hold a NUL byte, every third block has no metadata, block 4 has empty
// metadata.
#pragma once

#include <string>
#include <vector>

#include "check.hpp"

inline tzstore::Hash hash_of(int n) {
  tzstore::Hash h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>((n * 31 + i * 7) ^ (n >> 8));
  h[0] = static_cast<std::uint8_t>(n);
  h[1] = static_cast<std::uint8_t>(n >> 8);
  return h;
}

inline tzstore::Block block_of(int n) {
  tzstore::Block b;
  b.hash = hash_of(n);
  b.level = n;
  b.predecessor = hash_of(n == 0 ? 0 : n - 1);
  std::string c = "block " + std::to_string(n) + std::string(1, '\0') + "ops";
  b.contents.assign(c.begin(), c.end());
  if (n == 4) {
    b.metadata.emplace();
  } else if (n % 3 != 0) {
    b.metadata = std::vector<std::uint8_t>(static_cast<std::size_t>(100 + n), static_cast<std::uint8_t>(n));
  }
  return b;
}

inline tzstore::Block without_metadata(tzstore::Block b) {
  b.metadata.reset();
  return b;
}

// Whether a borrowed view shows exactly `b`, compared field by field in
// place (through ByteView's ==), then through its owning copy.
inline bool same(const std::optional<tzstore::BlockView>& v, const tzstore::Block& b) {
  if (!v || v->hash != b.hash || v->level != b.level || v->predecessor != b.predecessor ||
      v->contents != b.contents || v->metadata.has_value() != b.metadata.has_value())
    return false;
  if (b.metadata && *v->metadata != *b.metadata) return false;
  return v->to_block() == b;
}

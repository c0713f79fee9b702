// IPv6 longest-prefix match: an expanded 16-bit first level followed by Tree Bitmap nodes
// with an 8-bit stride.
//
// Sources: W. Eatherton, G. Varghese, Z. Dittia, "Tree Bitmap: Hardware/Software IP Lookups
// with Incremental Updates", ACM SIGCOMM CCR 34(2), 2004 (internal/external bitmaps,
// popcount-indexed child and result arrays); the first level is the same expanded slot table
// as the IPv4 side (see ipv4_table.h).
//
//   address bytes  0  1 | 2 | 3 | … | 15
//                  level 0 | node at byte 2 | node at byte 3 | …   (up to 14 nodes deep)
//
//   level 0: 65536 slots {value, child node}, prefixes /0 … /16, expanded as in IPv4
//   node at byte k (covers prefixes /(8k+1) … /(8k+8), i.e. 1…8 bits of byte k):
//     inner[8]  : 510 bits, one per (l, top l bits of byte k), l = 1…8, at (2^l - 2) + bits
//     ext[4]    : 256 bits, one per byte value with a child node
//     vals      : values of the set inner bits, in bit order (rank = popcount below)
//     kids      : child node indices of the set ext bits, in bit order
//
// Prefixes are not expanded inside nodes, so an insert or delete edits one node's bitmap and
// one small array; memory is about 150 bytes per node plus 4 per prefix and 4 per child,
// which keeps sparse long IPv6 prefixes affordable where a fully expanded 8-bit stride would
// spend 2 KiB per node. A lookup walks at most 14 nodes, each a few bit tests and popcounts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "expanded.h"
#include "flat_map.h"
#include "huge_alloc.h"

namespace interpose::lpm {

class Ipv6Table {
 public:
  /** Inserts or replaces addr/len (host bits ignored). Returns true when the prefix is new. */
  bool insert(const uint8_t addr[16], unsigned len, int32_t value);
  /** Removes addr/len (host bits ignored). Returns false when it was not present. */
  bool erase(const uint8_t addr[16], unsigned len);
  /** Value of the longest prefix containing addr, or kNoMatch. */
  int32_t lookup(const uint8_t addr[16]) const;

  size_t size() const { return rootPrefixes_.size() + nodePrefixes_; }
  size_t memoryBytes() const;

 private:
  struct Node {
    uint64_t inner[8];
    uint64_t ext[4];
    std::vector<int32_t> vals;
    std::vector<uint32_t> kids;
  };

  uint32_t allocNode();
  void freeNode(uint32_t n);

  std::vector<Slot> root_;
  std::vector<uint8_t> rootLen_;
  FlatMap rootPrefixes_;  // (masked top 16 bits << 8 | len)
  std::vector<Node, HugeAlloc<Node>> nodes_;  // node 0 is the "no child" sentinel
  std::vector<uint32_t> freeNodes_;
  size_t nodePrefixes_ = 0;
  size_t arrayBytes_ = 0;  // capacity of every node's vals and kids, kept up to date
};

}  // namespace interpose::lpm

// IPv6 longest-prefix match: an expanded 16-bit first level followed by Tree Bitmap nodes
// with an 8-bit stride.
//
// Sources: W. Eatherton, G. Varghese, Z. Dittia, "Tree Bitmap: Hardware/Software IP Lookups
// with Incremental Updates", ACM SIGCOMM CCR 34(2), 2004 (internal/external bitmaps,
// popcount-indexed child and result arrays); path compression as in D. R. Morrison,
// "PATRICIA", JACM 15(4), 1968, and S. Nilsson, G. Karlsson, "IP-Address Lookup Using
// LC-Tries", IEEE JSAC 17(6), 1999 (the basis of Linux's fib_trie); the first level is the
// same expanded slot table as the IPv4 side (see ipv4_table.h).
//
//   address bytes  0  1 | 2 | 3 | … | 15
//                  level 0 | node at byte 2 | node at byte 3 | …   (up to 14 nodes deep)
//
//   level 0: 65536 slots {value, child node}, prefixes /0 … /16, expanded as in IPv4
//   node at byte k (covers prefixes /(8k+1) … /(8k+8), i.e. 1…8 bits of byte k):
//     k, key    : the byte it consumes and the address bytes leading to it. Paths are
//                 compressed (as in PATRICIA / Linux fib_trie's skipped bits): a child
//                 pointer may jump over bytes where nothing branches, and the walk then
//                 compares those bytes with the child's key instead of visiting one node
//                 per byte. Sparse IPv6 tables become two or three nodes deep.
//     lengths   : which of the 8 prefix lengths occur in inner (lets a walk skip empty ones)
//     inner[8]  : 510 bits, one per (l, top l bits of byte k), l = 1…8, at (2^l - 2) + bits
//     ext[4]    : 256 bits, one per byte value with a child node
//     vals      : values of the set inner bits, in bit order (rank = popcount below)
//     kids      : child node indices of the set ext bits, in bit order
//   (vals and kids are blocks in two pools, addressed by 32-bit offsets; see block_pool.h)
//
// Prefixes are not expanded inside nodes, so an insert or delete edits one node's bitmap and
// one small array (plus at most two nodes created or spliced out by path compression);
// a node is 128 bytes (two cache lines) plus 4 per prefix and 4 per child, which keeps
// sparse long IPv6 prefixes affordable where a fully expanded 8-bit stride would spend
// 2 KiB per node. A lookup visits at most 14 nodes, each a few bit tests and popcounts;
// lookupMany interleaves 16 walks with software prefetch to overlap their cache misses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "block_pool.h"
#include "expanded.h"
#include "flat_map.h"
#include "pod_array.h"

namespace interpose::lpm {

class Ipv6Table {
 public:
  /** Inserts or replaces addr/len (host bits ignored). Returns true when the prefix is new. */
  bool insert(const uint8_t addr[16], unsigned len, int32_t value);
  /** Removes addr/len (host bits ignored). Returns false when it was not present. */
  bool erase(const uint8_t addr[16], unsigned len);
  /** Value of the longest prefix containing addr, or kNoMatch. */
  int32_t lookup(const uint8_t addr[16]) const;
  /**
   * Batch lookup of n addresses of 16 bytes. Walks several addresses at once, prefetching
   * each one's next node, so the cache misses of a deep walk overlap instead of queueing.
   */
  void lookupMany(const uint8_t* addrs, int32_t* out, size_t n) const;

  size_t size() const { return rootPrefixes_.size() + nodePrefixes_; }
  size_t memoryBytes() const;

 private:
  // Two cache lines. The first holds everything a step of a walk reads (which kid, whether
  // the compressed path matches, where the kids are); the second the prefix bitmap, read only
  // when the node holds prefixes. Kids and values live in the pools (block_pool.h).
  struct alignas(64) Node {
    uint64_t ext[4];
    uint32_t kids;      // offset in kidPool_ of popcount(ext) node indices, in bit order
    uint32_t vals;      // offset in valPool_ of popcount(inner) values, in bit order
    uint32_t lengths;   // bit l-1 set when the node holds a prefix using l bits of its byte
    uint8_t k;          // address byte this node consumes (2 … 15)
    uint8_t kidsClass;  // capacity class of the kids block (BlockPool::kNoBlock: none)
    uint8_t valsClass;
    uint8_t unused;
    uint8_t key[16];    // bytes 0 … k-1 of every address below this node
    uint64_t inner[8];
  };
  static_assert(sizeof(Node) == 128, "a node is two cache lines");

  uint32_t* kidsOf(const Node& n) { return kidPool_.at(n.kids); }
  const uint32_t* kidsOf(const Node& n) const { return kidPool_.at(n.kids); }
  const int32_t* valsOf(const Node& n) const { return valPool_.at(n.vals); }

  uint32_t allocNode(unsigned k, const uint8_t key[16]);
  void freeNode(uint32_t n);
  void addKid(uint32_t parent, unsigned b, uint32_t kid);
  void removeKid(uint32_t parent, unsigned b);
  void setInner(uint32_t n, unsigned l, unsigned b, int32_t value, bool* fresh);

  std::vector<Slot> root_;
  std::vector<uint8_t> rootLen_;
  FlatMap rootPrefixes_;  // FlatMap::prefixKey(top len bits, len) -> value
  PodArray<Node> nodes_;  // node 0 is the "no child" sentinel
  std::vector<uint32_t> freeNodes_;
  BlockPool<uint32_t> kidPool_;
  BlockPool<int32_t> valPool_;
  size_t nodePrefixes_ = 0;
};

}  // namespace interpose::lpm

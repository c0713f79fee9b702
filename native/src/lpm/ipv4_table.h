// IPv4 longest-prefix match: a three-level 16-8-8 multibit trie with controlled prefix
// expansion, in the spirit of DIR-24-8 but with a smaller first level.
//
// Sources: P. Gupta, S. Lin, N. McKeown, "Routing Lookups in Hardware at Memory Access
// Speeds", IEEE INFOCOM 1998 (DIR-24-8: direct-indexed first level, 8-bit second level);
// V. Srinivasan, G. Varghese, "Fast Address Lookups Using Controlled Prefix Expansion",
// ACM TOCS 17(1), 1999 (expanding prefixes to stride boundaries, choosing strides).
//
//   address bits  31 ............ 16 15 ...... 8 7 ....... 0
//                 |   level 0 index  | lvl 1 idx | lvl 2 idx |
//
//   level 0: 65536 slots (512 KiB, stays in L2), prefixes /0 … /16
//   level 1: groups of 256 slots, one per /16 that holds longer prefixes: /17 … /24
//   level 2: groups of 256 slots, one per /24 that holds longer prefixes: /25 … /32
//
//   slot = { int32 value, uint32 child group }   (8 bytes, one load gives both)
//
// A prefix /L is expanded into the 2^(stride end - L) slots of its level; each slot keeps the
// length of the prefix that set it (a parallel byte array) so a longer prefix is never
// overwritten by a shorter one and a delete can restore the next-longest prefix. Unlike
// DIR-24-8 the values are not pushed into child groups (the lookup keeps the best value seen
// while descending), which bounds an update to 65536 slots (a /0) and keeps short-prefix
// churn cheap. Deletes look up the replacement in an exact-match hash of all prefixes.
//
// A lookup is at most three dependent loads; the first hits a table that fits in cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "expanded.h"
#include "flat_map.h"
#include "huge_alloc.h"

namespace interpose::lpm {

class Ipv4Table {
 public:
  /** Inserts or replaces addr/len (host bits ignored). Returns true when the prefix is new. */
  bool insert(uint32_t addr, unsigned len, int32_t value);
  /** Removes addr/len (host bits ignored). Returns false when it was not present. */
  bool erase(uint32_t addr, unsigned len);
  /** Value of the longest prefix containing addr, or kNoMatch. */
  int32_t lookup(uint32_t addr) const {
    if (root_.empty()) return kNoMatch;
    const Slot s0 = root_[addr >> 16];
    int32_t best = s0.value;
    if (s0.child != 0) {
      const Slot s1 = groups_[(size_t{s0.child} << 8) | ((addr >> 8) & 0xff)];
      if (s1.value != kNoMatch) best = s1.value;
      if (s1.child != 0) {
        const Slot s2 = groups_[(size_t{s1.child} << 8) | (addr & 0xff)];
        if (s2.value != kNoMatch) best = s2.value;
      }
    }
    return best;
  }
  /** Batch lookup; software-prefetches the second level to overlap cache misses. */
  void lookupMany(const uint32_t* addrs, int32_t* out, size_t n) const;

  size_t size() const { return prefixes_.size(); }
  size_t memoryBytes() const;

 private:
  uint32_t allocGroup();
  void freeGroup(uint32_t g);
  // Longest prefix of length in [minLen, len) that covers addr: value and tag (len+1), or none.
  void replacement(uint32_t addr, unsigned len, unsigned minLen, int32_t* value,
                   uint8_t* tag) const;

  std::vector<Slot> root_;       // 65536 slots once the first prefix arrives
  std::vector<uint8_t> rootLen_;
  std::vector<Slot, HugeAlloc<Slot>> groups_;  // 256 slots per group; group 0 = "no child"
  std::vector<uint8_t, HugeAlloc<uint8_t>> groupLen_;
  std::vector<uint16_t> groupUse_;  // prefixes stored in the group + child groups it points to
  std::vector<uint32_t> freeGroups_;
  FlatMap prefixes_;  // (masked addr << 6 | len) -> value
};

}  // namespace interpose::lpm

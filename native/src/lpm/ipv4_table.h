// IPv4 longest-prefix match: a four-level 16-8-4-4 multibit trie with controlled prefix
// expansion, in the spirit of DIR-24-8 but with a smaller first level and small groups for
// the rare prefixes longer than /24.
//
// Sources: P. Gupta, S. Lin, N. McKeown, "Routing Lookups in Hardware at Memory Access
// Speeds", IEEE INFOCOM 1998 (DIR-24-8: direct-indexed first level, 8-bit second level,
// entries that hold either a next hop or a pointer); V. Srinivasan, G. Varghese, "Fast
// Address Lookups Using Controlled Prefix Expansion", ACM TOCS 17(1), 1999 (expanding
// prefixes to stride boundaries, choosing strides to trade depth for memory).
//
//   address bits  31 ............ 16 15 ...... 8 7..4 3..0
//                 |   level 0 index  | lvl 1 idx | L2 | L3 |
//
//   level 0: 65536 slots {int32 value, uint32 child} (512 KiB, stays in L2): /0 … /16
//   level 1: groups of 256 uint32 entries, one per /16 holding longer prefixes: /17 … /24
//   level 2: groups of 16 slots, one per /24 holding longer prefixes:            /25 … /28
//   level 3: groups of 16 slots, one per /28 holding longer prefixes:            /29 … /32
//   and per level-1 group a 64-byte summary (see Summary) that single lookups read instead
//   of the group itself
//
//   level 1 entry:  0xxxxxxx…  value (0 … 2^31-1)
//                   ffffffff   no match
//                   1xxxxxxx…  level-2 group index
//   level 2/3 slot: {int32 value, uint32 child (level-3 group, 0 = none)}, see expanded.h
//
// A prefix /L is expanded into the 2^(stride end - L) entries of its level; each entry keeps
// the length of the prefix that set it (a parallel byte array, only read by updates) so a
// longer prefix is never overwritten by a shorter one and a delete can restore the
// next-longest prefix, found in an exact-match hash of all prefixes.
//
// Level-0 values are not pushed into level 1 and level-2 values not into level 3 (the lookup
// carries the best value seen), so a short prefix touches at most 2^15 root slots however
// many groups exist. Level-1 values are pushed into the level-2 slots no /25-/28 covers
// (DIR-24-8 style), so that a level-1 entry needs no room for both a value and a pointer;
// the group remembers the pushed value ("inherited") for when it changes.
//
// Why 8 bits then 4+4 rather than 8+8: most tables are /24 and shorter, which a lookup
// answers in the first two levels (the second one read, as in DIR-24-8, with one load). A
// /24 holding longer prefixes usually holds one or two, and a 256-entry group for it cost
// 1.25 KB; with a million random prefixes those groups were 400 of 530 MB, and the kernel
// zeroing their fresh pages dominated build time. A 16-slot group is 128 bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "expanded.h"
#include "flat_map.h"
#include "pod_array.h"

namespace interpose::lpm {

class Ipv4Table {
 public:
  /** Inserts or replaces addr/len (host bits ignored). Returns true when the prefix is new. */
  bool insert(uint32_t addr, unsigned len, int32_t value);
  /** insert() for n prefixes in order; prefetches ahead, so a big table loads faster. */
  void insertMany(const uint32_t* addrs, const uint8_t* lens, const int32_t* values, size_t n);
  /** Removes addr/len (host bits ignored). Returns false when it was not present. */
  bool erase(uint32_t addr, unsigned len);
  /** Value of the longest prefix containing addr, or kNoMatch. */
  int32_t lookup(uint32_t addr) const {
    if (root_.empty()) return kNoMatch;
    const Slot s0 = root_[addr >> 16];
    int32_t best = s0.value;
    if (s0.child != 0) {
      const uint32_t e1 = level1(s0.child, (addr >> 8) & 0xff);
      if (static_cast<int32_t>(e1) >= 0) {
        best = static_cast<int32_t>(e1);
      } else if (e1 != kNone) {
        const Slot s2 = sub_[(size_t{e1 & kIndexMask} << 4) | ((addr >> 4) & 0xf)];
        if (s2.value >= 0) best = s2.value;
        if (s2.child != 0) {
          const int32_t v3 = sub_[(size_t{s2.child} << 4) | (addr & 0xf)].value;
          if (v3 >= 0) best = v3;
        }
      }
    }
    return best;
  }
  /** Batch lookup; software-prefetches each level to overlap cache misses. */
  void lookupMany(const uint32_t* addrs, int32_t* out, size_t n) const;

  size_t size() const { return prefixes_.size(); }
  size_t memoryBytes() const;

 private:
  static constexpr uint32_t kNone = 0xffffffffu;
  static constexpr uint32_t kChildBit = 0x80000000u;
  static constexpr uint32_t kIndexMask = 0x7fffffffu;

  static bool isChild(uint32_t e) { return (e & kChildBit) != 0 && e != kNone; }

  // One cache line summing up a level-1 group for lookup(): a bit per entry that starts a run
  // of equal entries, running counts of those bits per 64-bit word, and the runs' entries when
  // there are at most kSummaryRuns of them (a /16 holding one or two longer prefixes has three
  // to five). Why: with 100k random prefixes the groups take ~50 MB, so a single lookup paid a
  // DRAM miss there; the summaries take 64 bytes a group (~3 MB) and mostly stay in cache.
  // The idea is Poptrie's (H. Asai, Y. Ohara, "Poptrie: A Compressed Trie with Population
  // Count for Fast and Scalable Software IP Routing Table Lookup", SIGCOMM 2015): find an
  // entry's slot in a packed array by counting set bits before it. Batch lookups prefetch the
  // expanded groups instead, which needs no summary.
  static constexpr uint8_t kSummaryRuns = 7;
  static constexpr uint8_t kDense = 0xff;  // more runs than fit: read the expanded group
  struct alignas(64) Summary {
    uint64_t starts[4];
    uint8_t before[3];  // set bits in starts[0..w-1], for w = 1..3
    uint8_t runs;       // number of runs, or kDense
    uint32_t entries[kSummaryRuns];
  };
  static_assert(sizeof(Summary) == 64, "one cache line");

  uint32_t level1(uint32_t g, unsigned i) const {
    const Summary& k = summaries_[g];
    if (k.runs == kDense) return entries_[(size_t{g} << 8) | i];
    const unsigned w = i >> 6;
    // Bits 0..i of word w; bit 0 of word 0 is always set, so the rank is at least 1.
    const uint64_t upto = k.starts[w] & (~uint64_t{0} >> (63 - (i & 63)));
    const unsigned rank = (w == 0 ? 0u : k.before[w - 1]) + static_cast<unsigned>(__builtin_popcountll(upto));
    return k.entries[rank - 1];
  }
  // Rebuilds group g's summary from its expanded entries (after any change to them).
  void summarize(uint32_t g);

  uint32_t allocGroup();
  uint32_t allocSub();
  // Longest prefix of length in [minLen, len) that covers addr: value and tag (len+1), or none.
  void replacement(uint32_t addr, unsigned len, unsigned minLen, int32_t* value,
                   uint8_t* tag) const;
  // Sets the level-1 value pushed into level-2 group g (slots no level-2 prefix covers).
  void setInherited(uint32_t g, int32_t value, uint8_t tag);
  // Level-1 entry `at` (an index into entries_) now says `value` with `tag`; a /24 that has its
  // own level-2 group takes it as that group's inherited value instead. Used by insert and erase
  // alike, as paint/unpaint are for the other levels.
  void setLevel1(size_t at, int32_t value, uint8_t tag);

  std::vector<Slot> root_;       // 65536 slots once the first prefix arrives
  std::vector<uint8_t> rootLen_;
  PodArray<uint32_t> entries_;   // level 1: 256 per group; group 0 is unused
  PodArray<uint8_t> entryLen_;   // tag (len+1) per entry; 0 = none
  std::vector<uint16_t> groupUse_;  // prefixes stored in the group + level-2 groups below it
  std::vector<uint32_t> freeGroups_;
  PodArray<Slot> sub_;           // levels 2 and 3: 16 slots per group; group 0 is unused
  PodArray<uint8_t> subLen_;     // tag per slot; 0 = none (level 2: holds the inherited value)
  std::vector<uint8_t> subUse_;  // prefixes stored in the group + level-3 groups below it
  std::vector<int32_t> inherited_;     // level-2 groups: the level-1 value pushed into them
  std::vector<uint8_t> inheritedLen_;
  std::vector<uint32_t> freeSubs_;
  FlatMap prefixes_;  // FlatMap::prefixKey(prefix bits, len) -> value
  std::vector<Summary> summaries_;  // one per level-1 group, index as entries_
  // insertMany summarizes each changed group once, at the end, instead of after every insert.
  bool deferSummaries_ = false;
  std::vector<uint32_t> dirtyGroups_;
};

}  // namespace interpose::lpm

#include "ipv4_table.h"

#include <algorithm>

namespace interpose::lpm {
namespace {

constexpr size_t kGroup = 256;
constexpr size_t kSub = 16;

inline uint32_t maskOf(unsigned len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
inline uint64_t keyOf(uint32_t masked, unsigned len) {
  return FlatMap::prefixKey(len == 0 ? 0 : masked >> (32 - len), len);
}

}  // namespace

uint32_t Ipv4Table::allocGroup() {
  uint32_t g;
  if (!freeGroups_.empty()) {
    g = freeGroups_.back();
    freeGroups_.pop_back();
  } else {
    if (groupUse_.empty()) {
      // Group 0 is never handed out, so a child index of 0 can mean "none".
      entries_.growTo(kGroup);
      entryLen_.growTo(kGroup);
      groupUse_.assign(1, 0);
    }
    g = static_cast<uint32_t>(groupUse_.size());
    entries_.growTo(entries_.size() + kGroup);
    entryLen_.growTo(entryLen_.size() + kGroup);
    groupUse_.push_back(0);
  }
  std::fill_n(entries_.data() + size_t{g} * kGroup, kGroup, kNone);
  std::fill_n(entryLen_.data() + size_t{g} * kGroup, kGroup, 0);
  groupUse_[g] = 0;
  if (summaries_.size() < groupUse_.size()) summaries_.resize(groupUse_.size());
  summarize(g);
  return g;
}

void Ipv4Table::summarize(uint32_t g) {
  if (deferSummaries_) {
    dirtyGroups_.push_back(g);
    return;
  }
  Summary& k = summaries_[g];
  const uint32_t* e = entries_.data() + size_t{g} * kGroup;
  k = Summary{};
  unsigned runs = 0;
  for (size_t i = 0; i < kGroup; ++i) {
    if (i != 0 && e[i] == e[i - 1]) continue;
    k.starts[i >> 6] |= uint64_t{1} << (i & 63);
    if (runs < kSummaryRuns) k.entries[runs] = e[i];
    ++runs;
  }
  for (unsigned w = 0; w < 3; ++w) {
    k.before[w] = static_cast<uint8_t>((w == 0 ? 0 : k.before[w - 1]) + __builtin_popcountll(k.starts[w]));
  }
  k.runs = runs <= kSummaryRuns ? static_cast<uint8_t>(runs) : kDense;
}

uint32_t Ipv4Table::allocSub() {
  uint32_t g;
  if (!freeSubs_.empty()) {
    g = freeSubs_.back();
    freeSubs_.pop_back();
  } else {
    if (subUse_.empty()) {
      sub_.growTo(kSub);  // group 0: "none", as above
      subLen_.growTo(kSub);
      subUse_.assign(1, 0);
      inherited_.assign(1, kNoMatch);
      inheritedLen_.assign(1, 0);
    }
    g = static_cast<uint32_t>(subUse_.size());
    sub_.growTo(sub_.size() + kSub);
    subLen_.growTo(subLen_.size() + kSub);
    subUse_.push_back(0);
    inherited_.push_back(kNoMatch);
    inheritedLen_.push_back(0);
  }
  std::fill_n(sub_.data() + size_t{g} * kSub, kSub, Slot{kNoMatch, 0});
  std::fill_n(subLen_.data() + size_t{g} * kSub, kSub, 0);
  subUse_[g] = 0;
  inherited_[g] = kNoMatch;
  inheritedLen_[g] = 0;
  return g;
}

void Ipv4Table::replacement(uint32_t addr, unsigned len, unsigned minLen, int32_t* value,
                            uint8_t* tag) const {
  for (unsigned l = len; l-- > minLen;) {
    if (prefixes_.find(keyOf(addr & maskOf(l), l), value)) {
      *tag = static_cast<uint8_t>(l + 1);
      return;
    }
  }
  *value = kNoMatch;
  *tag = 0;
}

void Ipv4Table::setInherited(uint32_t g, int32_t value, uint8_t tag) {
  inherited_[g] = value;
  inheritedLen_[g] = tag;
  Slot* s = sub_.data() + size_t{g} * kSub;
  const uint8_t* len = subLen_.data() + size_t{g} * kSub;
  for (size_t j = 0; j < kSub; ++j) {
    if (len[j] == 0) s[j].value = value;
  }
}

void Ipv4Table::setLevel1(size_t at, int32_t value, uint8_t tag) {
  entryLen_[at] = tag;
  const uint32_t e = entries_[at];
  if (isChild(e)) {
    setInherited(e & kIndexMask, value, tag);
  } else {
    entries_[at] = static_cast<uint32_t>(value);
  }
}

bool Ipv4Table::insert(uint32_t addr, unsigned len, int32_t value) {
  addr &= maskOf(len);
  const bool fresh = prefixes_.set(keyOf(addr, len), value);
  const uint8_t tag = static_cast<uint8_t>(len + 1);

  if (root_.empty()) {
    root_.assign(size_t{1} << 16, Slot{kNoMatch, 0});
    rootLen_.assign(size_t{1} << 16, 0);
  }
  if (len <= 16) {
    paint(root_.data(), rootLen_.data(), addr >> 16, size_t{1} << (16 - len), len, value);
    return fresh;
  }

  const size_t r = addr >> 16;
  if (root_[r].child == 0) {
    const uint32_t g = allocGroup();
    root_[r].child = g;
  }
  const uint32_t g1 = root_[r].child;
  const size_t base1 = size_t{g1} * kGroup;

  if (len <= 24) {
    const size_t first = (addr >> 8) & 0xff;
    // Every entry the prefix covers, except those a longer level-1 prefix owns.
    for (size_t i = first; i < first + (size_t{1} << (24 - len)); ++i) {
      if (entryLen_[base1 + i] <= tag) setLevel1(base1 + i, value, tag);
    }
    summarize(g1);
    if (fresh) ++groupUse_[g1];
    return fresh;
  }

  const size_t i1 = base1 + ((addr >> 8) & 0xff);
  if (!isChild(entries_[i1])) {
    // The /24 gets its own group; what level 1 said about it becomes the pushed value.
    const uint32_t g = allocSub();
    setInherited(g, static_cast<int32_t>(entries_[i1]), entryLen_[i1]);
    entries_[i1] = kChildBit | g;
    summarize(g1);
    ++groupUse_[g1];
  }
  const uint32_t g2 = entries_[i1] & kIndexMask;
  if (len <= 28) {
    paint(sub_.data() + size_t{g2} * kSub, subLen_.data() + size_t{g2} * kSub,
          (addr >> 4) & 0xf, size_t{1} << (28 - len), len, value);
    if (fresh) ++subUse_[g2];
    return fresh;
  }

  // Indices, not references: allocSub may move sub_.
  const size_t i2 = size_t{g2} * kSub + ((addr >> 4) & 0xf);
  if (sub_[i2].child == 0) {
    const uint32_t g = allocSub();
    sub_[i2].child = g;
    ++subUse_[g2];
  }
  const uint32_t g3 = sub_[i2].child;
  paint(sub_.data() + size_t{g3} * kSub, subLen_.data() + size_t{g3} * kSub, addr & 0xf,
        size_t{1} << (32 - len), len, value);
  if (fresh) ++subUse_[g3];
  return fresh;
}

void Ipv4Table::insertMany(const uint32_t* addrs, const uint8_t* lens, const int32_t* values,
                           size_t n) {
  // Each insert misses in the cache twice, in the exact-match hash and in the prefix's
  // level-1 group: start both loads a few prefixes ahead so they overlap.
  constexpr size_t kAhead = 8;
  prefixes_.reserve(prefixes_.size() + n);
  deferSummaries_ = true;
  for (size_t i = 0; i < n; ++i) {
    if (i + kAhead < n) {
      const unsigned l = lens[i + kAhead];
      const uint32_t a = addrs[i + kAhead] & maskOf(l);
      prefixes_.prefetch(keyOf(a, l));
      if (!root_.empty() && l > 16) {
        const uint32_t g = root_[a >> 16].child;
        if (g != 0) __builtin_prefetch(&entries_[(size_t{g} << 8) | ((a >> 8) & 0xff)]);
      }
    }
    insert(addrs[i], lens[i], values[i]);
  }
  deferSummaries_ = false;
  std::sort(dirtyGroups_.begin(), dirtyGroups_.end());
  dirtyGroups_.erase(std::unique(dirtyGroups_.begin(), dirtyGroups_.end()), dirtyGroups_.end());
  for (uint32_t g : dirtyGroups_) summarize(g);
  dirtyGroups_.clear();
  dirtyGroups_.shrink_to_fit();
}

bool Ipv4Table::erase(uint32_t addr, unsigned len) {
  addr &= maskOf(len);
  if (!prefixes_.erase(keyOf(addr, len))) return false;
  const uint8_t tag = static_cast<uint8_t>(len + 1);

  int32_t replValue;
  uint8_t replTag;
  if (len <= 16) {
    replacement(addr, len, 0, &replValue, &replTag);
    unpaint(root_.data(), rootLen_.data(), addr >> 16, size_t{1} << (16 - len), len, replValue,
            replTag);
    return true;
  }

  Slot& s0 = root_[addr >> 16];
  const uint32_t g1 = s0.child;
  const size_t base1 = size_t{g1} * kGroup;
  if (len <= 24) {
    replacement(addr, len, 17, &replValue, &replTag);
    const size_t first = (addr >> 8) & 0xff;
    // The entries this prefix set (one of each length covers an address; see unpaint).
    for (size_t i = first; i < first + (size_t{1} << (24 - len)); ++i) {
      if (entryLen_[base1 + i] == tag) setLevel1(base1 + i, replValue, replTag);
    }
    summarize(g1);
  } else {
    const size_t i1 = base1 + ((addr >> 8) & 0xff);
    const uint32_t g2 = entries_[i1] & kIndexMask;
    Slot* slots2 = sub_.data() + size_t{g2} * kSub;
    uint8_t* lens2 = subLen_.data() + size_t{g2} * kSub;
    if (len <= 28) {
      replacement(addr, len, 25, &replValue, &replTag);
      if (replTag == 0) replValue = inherited_[g2];  // back to what level 1 says
      unpaint(slots2, lens2, (addr >> 4) & 0xf, size_t{1} << (28 - len), len, replValue,
              replTag);
      --subUse_[g2];
    } else {
      const size_t j2 = (addr >> 4) & 0xf;
      const uint32_t g3 = slots2[j2].child;
      replacement(addr, len, 29, &replValue, &replTag);
      unpaint(sub_.data() + size_t{g3} * kSub, subLen_.data() + size_t{g3} * kSub, addr & 0xf,
              size_t{1} << (32 - len), len, replValue, replTag);
      if (--subUse_[g3] == 0) {
        // No /29+ left in this /28.
        slots2[j2].child = 0;
        freeSubs_.push_back(g3);
        --subUse_[g2];
      }
    }
    if (subUse_[g2] != 0) return true;
    // No /25+ left in this /24: the level-1 entry takes back its own value.
    entries_[i1] = static_cast<uint32_t>(inherited_[g2]);
    summarize(g1);
    freeSubs_.push_back(g2);
  }
  if (--groupUse_[g1] == 0) {
    freeGroups_.push_back(g1);
    s0.child = 0;
  }
  return true;
}

void Ipv4Table::lookupMany(const uint32_t* addrs, int32_t* out, size_t n) const {
  if (root_.empty()) {
    std::fill_n(out, n, kNoMatch);
    return;
  }
  // A software pipeline over the addresses: address i reads its root slot and prefetches its
  // level-1 entry, which is read kDistance addresses later, so about kDistance cache misses
  // are in flight while each is waited for at most once. Passes of one level over small
  // blocks (the previous form) gave a prefetch too little time to arrive before its block
  // needed it, and ran at a third of what the memory system can serve here.
  //
  // The few addresses that continue into levels 2 and 3 (a /24 holding longer prefixes)
  // would stall the pipeline: they are queued with their next slot prefetched and resolved
  // kPending at a time, by when most of those prefetches have arrived.
  constexpr size_t kDistance = 16;  // a power of two; 16 measured best here, 32 and 64 within 10%
  constexpr size_t kPending = 64;
  struct Pending {
    size_t index;
    size_t at;
  };
  size_t ring[kDistance];  // level-1 entry to read for address i (slot i % kDistance), 0 = none
  Pending level2[kPending];
  Pending level3[kPending];
  size_t pending = 0;

  auto resolvePending = [&] {
    size_t deeper = 0;
    for (size_t k = 0; k < pending; ++k) {
      const Slot s2 = sub_[level2[k].at];
      if (s2.value >= 0) out[level2[k].index] = s2.value;
      if (s2.child != 0) {
        const size_t at = (size_t{s2.child} << 4) | (addrs[level2[k].index] & 0xf);
        __builtin_prefetch(&sub_[at]);
        level3[deeper++] = Pending{level2[k].index, at};
      }
    }
    for (size_t k = 0; k < deeper; ++k) {
      const int32_t v3 = sub_[level3[k].at].value;
      if (v3 >= 0) out[level3[k].index] = v3;
    }
    pending = 0;
  };

  for (size_t i = 0; i < n + kDistance; ++i) {
    // Stage 2, address j = i - kDistance: its level-1 entry should be in cache by now.
    if (i >= kDistance) {
      const size_t j = i - kDistance;
      const size_t at = ring[j % kDistance];
      if (at != 0) {
        const uint32_t e1 = entries_[at];
        if (static_cast<int32_t>(e1) >= 0) {
          out[j] = static_cast<int32_t>(e1);
        } else if (e1 != kNone) {
          const size_t at2 = (size_t{e1 & kIndexMask} << 4) | ((addrs[j] >> 4) & 0xf);
          __builtin_prefetch(&sub_[at2]);
          level2[pending++] = Pending{j, at2};
          if (pending == kPending) resolvePending();
        }
      }
    }
    // Stage 1, address i: root slot (the root stays in L2; prefetched a stage ahead anyway).
    if (i < n) {
      if (i + kDistance < n) __builtin_prefetch(&root_[addrs[i + kDistance] >> 16]);
      const uint32_t a = addrs[i];
      const Slot s0 = root_[a >> 16];
      out[i] = s0.value;
      size_t at = 0;
      if (s0.child != 0) {
        at = (size_t{s0.child} << 8) | ((a >> 8) & 0xff);
        __builtin_prefetch(&entries_[at]);
      }
      ring[i % kDistance] = at;
    }
  }
  resolvePending();
}

size_t Ipv4Table::memoryBytes() const {
  return root_.capacity() * sizeof(Slot) + rootLen_.capacity() + entries_.usedBytes() +
         entryLen_.usedBytes() + groupUse_.capacity() * sizeof(uint16_t) +
         freeGroups_.capacity() * sizeof(uint32_t) + sub_.usedBytes() + subLen_.usedBytes() +
         subUse_.capacity() + inherited_.capacity() * sizeof(int32_t) + inheritedLen_.capacity() +
         freeSubs_.capacity() * sizeof(uint32_t) + prefixes_.memoryBytes() +
         summaries_.capacity() * sizeof(Summary);
}

}  // namespace interpose::lpm

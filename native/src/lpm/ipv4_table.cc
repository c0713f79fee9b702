#include "ipv4_table.h"

#include <algorithm>

namespace interpose::lpm {
namespace {

constexpr size_t kGroup = 256;

inline uint32_t maskOf(unsigned len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
inline uint64_t keyOf(uint32_t masked, unsigned len) { return (uint64_t{masked} << 6) | len; }

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
      inherited_.assign(1, kNoMatch);
      inheritedLen_.assign(1, 0);
    }
    g = static_cast<uint32_t>(groupUse_.size());
    entries_.growTo(entries_.size() + kGroup);
    entryLen_.growTo(entryLen_.size() + kGroup);
    groupUse_.push_back(0);
    inherited_.push_back(kNoMatch);
    inheritedLen_.push_back(0);
  }
  std::fill_n(entries_.data() + size_t{g} * kGroup, kGroup, kNone);
  std::fill_n(entryLen_.data() + size_t{g} * kGroup, kGroup, 0);
  groupUse_[g] = 0;
  inherited_[g] = kNoMatch;
  inheritedLen_[g] = 0;
  return g;
}

void Ipv4Table::replacement(uint32_t addr, unsigned len, unsigned minLen, int32_t* value,
                            uint8_t* tag) const {
  for (unsigned l = len; l-- > minLen;) {
    if (const int32_t* v = prefixes_.find(keyOf(addr & maskOf(l), l))) {
      *value = *v;
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
  uint32_t* e = entries_.data() + size_t{g} * kGroup;
  const uint8_t* len = entryLen_.data() + size_t{g} * kGroup;
  for (size_t j = 0; j < kGroup; ++j) {
    if (len[j] == 0) e[j] = static_cast<uint32_t>(value);
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
    for (size_t i = first; i < first + (size_t{1} << (24 - len)); ++i) {
      if (entryLen_[base1 + i] > tag) continue;  // a longer level-1 prefix owns it
      entryLen_[base1 + i] = tag;
      const uint32_t e = entries_[base1 + i];
      if (isChild(e)) {
        setInherited(e & kIndexMask, value, tag);
      } else {
        entries_[base1 + i] = static_cast<uint32_t>(value);
      }
    }
    if (fresh) ++groupUse_[g1];
    return fresh;
  }

  const size_t i1 = base1 + ((addr >> 8) & 0xff);
  if (!isChild(entries_[i1])) {
    // The /24 gets its own group; what level 1 said about it becomes the pushed value.
    const uint32_t g = allocGroup();
    const uint32_t old = entries_[i1];
    setInherited(g, static_cast<int32_t>(old), entryLen_[i1]);
    entries_[i1] = kChildBit | g;
    ++groupUse_[g1];
  }
  const uint32_t g2 = entries_[i1] & kIndexMask;
  const size_t base2 = size_t{g2} * kGroup;
  const size_t first = addr & 0xff;
  for (size_t j = first; j < first + (size_t{1} << (32 - len)); ++j) {
    if (entryLen_[base2 + j] <= tag) {
      entryLen_[base2 + j] = tag;
      entries_[base2 + j] = static_cast<uint32_t>(value);
    }
  }
  if (fresh) ++groupUse_[g2];
  return fresh;
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
    for (size_t i = first; i < first + (size_t{1} << (24 - len)); ++i) {
      if (entryLen_[base1 + i] != tag) continue;
      entryLen_[base1 + i] = replTag;
      const uint32_t e = entries_[base1 + i];
      if (isChild(e)) {
        setInherited(e & kIndexMask, replValue, replTag);
      } else {
        entries_[base1 + i] = static_cast<uint32_t>(replValue);
      }
    }
  } else {
    const size_t i1 = base1 + ((addr >> 8) & 0xff);
    const uint32_t g2 = entries_[i1] & kIndexMask;
    const size_t base2 = size_t{g2} * kGroup;
    replacement(addr, len, 25, &replValue, &replTag);
    if (replTag == 0) replValue = inherited_[g2];  // back to what level 1 says
    const size_t first = addr & 0xff;
    for (size_t j = first; j < first + (size_t{1} << (32 - len)); ++j) {
      if (entryLen_[base2 + j] == tag) {
        entryLen_[base2 + j] = replTag;
        entries_[base2 + j] = static_cast<uint32_t>(replValue);
      }
    }
    if (--groupUse_[g2] != 0) return true;
    // No /25+ left in this /24: the level-1 entry takes back its own value.
    entries_[i1] = static_cast<uint32_t>(inherited_[g2]);
    freeGroups_.push_back(g2);
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
  // Three passes over small blocks, one per level: each pass prefetches what the next one
  // reads, so up to kBlock cache misses are in flight at once.
  constexpr size_t kBlock = 16;
  size_t at1[kBlock];
  size_t at2[kBlock];
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = std::min(kBlock, n - i);
    for (size_t j = 0; j < m; ++j) {
      const uint32_t a = addrs[i + j];
      const Slot s0 = root_[a >> 16];
      out[i + j] = s0.value;
      at1[j] = s0.child == 0 ? 0 : (size_t{s0.child} << 8) | ((a >> 8) & 0xff);
      if (at1[j] != 0) __builtin_prefetch(&entries_[at1[j]]);
    }
    for (size_t j = 0; j < m; ++j) {
      at2[j] = 0;
      if (at1[j] == 0) continue;
      const uint32_t e1 = entries_[at1[j]];
      if (static_cast<int32_t>(e1) >= 0) {
        out[i + j] = static_cast<int32_t>(e1);
      } else if (e1 != kNone) {
        at2[j] = (size_t{e1 & kIndexMask} << 8) | (addrs[i + j] & 0xff);
        __builtin_prefetch(&entries_[at2[j]]);
      }
    }
    for (size_t j = 0; j < m; ++j) {
      if (at2[j] == 0) continue;
      const int32_t e2 = static_cast<int32_t>(entries_[at2[j]]);
      if (e2 >= 0) out[i + j] = e2;
    }
  }
}

size_t Ipv4Table::memoryBytes() const {
  return root_.capacity() * sizeof(Slot) + rootLen_.capacity() + entries_.usedBytes() +
         entryLen_.usedBytes() + groupUse_.capacity() * sizeof(uint16_t) +
         inherited_.capacity() * sizeof(int32_t) + inheritedLen_.capacity() +
         freeGroups_.capacity() * sizeof(uint32_t) + prefixes_.memoryBytes();
}

}  // namespace interpose::lpm

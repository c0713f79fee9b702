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
    if (groups_.empty()) {
      // Group 0 is never handed out, so a child index of 0 can mean "none".
      groups_.assign(kGroup, Slot{kNoMatch, 0});
      groupLen_.assign(kGroup, 0);
      groupUse_.assign(1, 0);
    }
    g = static_cast<uint32_t>(groupUse_.size());
    groups_.resize(groups_.size() + kGroup);
    groupLen_.resize(groupLen_.size() + kGroup);
    groupUse_.push_back(0);
  }
  std::fill_n(groups_.begin() + static_cast<ptrdiff_t>(size_t{g} * kGroup), kGroup,
              Slot{kNoMatch, 0});
  std::fill_n(groupLen_.begin() + static_cast<ptrdiff_t>(size_t{g} * kGroup), kGroup, 0);
  groupUse_[g] = 0;
  return g;
}

void Ipv4Table::freeGroup(uint32_t g) { freeGroups_.push_back(g); }

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

bool Ipv4Table::insert(uint32_t addr, unsigned len, int32_t value) {
  addr &= maskOf(len);
  const bool fresh = prefixes_.set(keyOf(addr, len), value);

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
  if (len <= 24) {
    const size_t base = size_t{g1} * kGroup;
    paint(groups_.data() + base, groupLen_.data() + base, (addr >> 8) & 0xff,
          size_t{1} << (24 - len), len, value);
    if (fresh) ++groupUse_[g1];
    return fresh;
  }

  const size_t s1 = size_t{g1} * kGroup + ((addr >> 8) & 0xff);
  if (groups_[s1].child == 0) {
    const uint32_t g = allocGroup();  // may reallocate groups_: index again afterwards
    groups_[s1].child = g;
    ++groupUse_[g1];
  }
  const uint32_t g2 = groups_[s1].child;
  const size_t base = size_t{g2} * kGroup;
  paint(groups_.data() + base, groupLen_.data() + base, addr & 0xff, size_t{1} << (32 - len),
        len, value);
  if (fresh) ++groupUse_[g2];
  return fresh;
}

bool Ipv4Table::erase(uint32_t addr, unsigned len) {
  addr &= maskOf(len);
  if (!prefixes_.erase(keyOf(addr, len))) return false;

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
    unpaint(groups_.data() + base1, groupLen_.data() + base1, (addr >> 8) & 0xff,
            size_t{1} << (24 - len), len, replValue, replTag);
  } else {
    Slot& s1 = groups_[base1 + ((addr >> 8) & 0xff)];
    const uint32_t g2 = s1.child;
    const size_t base2 = size_t{g2} * kGroup;
    replacement(addr, len, 25, &replValue, &replTag);
    unpaint(groups_.data() + base2, groupLen_.data() + base2, addr & 0xff,
            size_t{1} << (32 - len), len, replValue, replTag);
    if (--groupUse_[g2] != 0) return true;
    // Empty: every slot is back to {none, no child}; unlink it.
    freeGroup(g2);
    s1.child = 0;
  }
  if (--groupUse_[g1] == 0) {
    freeGroup(g1);
    s0.child = 0;
  }
  return true;
}

void Ipv4Table::lookupMany(const uint32_t* addrs, int32_t* out, size_t n) const {
  if (root_.empty()) {
    std::fill_n(out, n, kNoMatch);
    return;
  }
  // Two passes over small blocks: the first reads level 0 (cached) and prefetches the level-1
  // slot, the second finishes the walk, so up to kBlock misses are in flight at once.
  constexpr size_t kBlock = 16;
  Slot first[kBlock];
  for (size_t i = 0; i < n; i += kBlock) {
    const size_t m = std::min(kBlock, n - i);
    for (size_t j = 0; j < m; ++j) {
      const uint32_t a = addrs[i + j];
      first[j] = root_[a >> 16];
      if (first[j].child != 0) {
        __builtin_prefetch(&groups_[(size_t{first[j].child} << 8) | ((a >> 8) & 0xff)]);
      }
    }
    for (size_t j = 0; j < m; ++j) {
      const uint32_t a = addrs[i + j];
      int32_t best = first[j].value;
      if (first[j].child != 0) {
        const Slot s1 = groups_[(size_t{first[j].child} << 8) | ((a >> 8) & 0xff)];
        if (s1.value != kNoMatch) best = s1.value;
        if (s1.child != 0) {
          const Slot s2 = groups_[(size_t{s1.child} << 8) | (a & 0xff)];
          if (s2.value != kNoMatch) best = s2.value;
        }
      }
      out[i + j] = best;
    }
  }
}

size_t Ipv4Table::memoryBytes() const {
  return root_.capacity() * sizeof(Slot) + rootLen_.capacity() +
         groups_.capacity() * sizeof(Slot) + groupLen_.capacity() +
         groupUse_.capacity() * sizeof(uint16_t) + freeGroups_.capacity() * sizeof(uint32_t) +
         prefixes_.memoryBytes();
}

}  // namespace interpose::lpm

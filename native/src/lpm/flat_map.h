// Exact-match set of prefixes (key -> value) with open addressing and linear probing. The
// tables consult it on every insert (is the prefix new?) and on deletes (which shorter prefix
// takes over); std::unordered_map's node-per-entry layout made each of those a cache miss
// through a linked list, which dominated build time at a million prefixes.
//
// A key and its 31-bit value share one 64-bit word (key << 31 | value), so a million IPv4
// prefixes take 16 MB instead of 32: every byte of a new table is a page the kernel must
// zero first, which is what building a large table mostly costs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "huge_alloc.h"

namespace interpose::lpm {

class FlatMap {
 public:
  /** Largest key + 1: keys are 1 … 2^33-1 (see prefixKey). */
  static constexpr uint64_t kKeyLimit = uint64_t{1} << 33;

  /** Key of a prefix of `len` (0 … 32) bits whose value is `bits` (right-aligned): a one bit
   *  above the prefix bits, so every length has its own keys and none is 0 (empty). */
  static uint64_t prefixKey(uint32_t bits, unsigned len) { return (uint64_t{1} << len) | bits; }

  /** True (and *value set) when key is present. */
  bool find(uint64_t key, int32_t* value) const {
    if (entries_.empty()) return false;
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      if (entries_[i] >> kValueBits == key) {
        *value = valueOf(entries_[i]);
        return true;
      }
      if (entries_[i] == kEmpty) return false;
    }
  }

  /** Starts loading key's home bucket, for a caller that will set or find it shortly. */
  void prefetch(uint64_t key) const {
    if (!entries_.empty()) __builtin_prefetch(&entries_[home(key)]);
  }

  /** Makes room for n keys without growing again (growing rehashes every key). */
  void reserve(size_t n) {
    while (n * 2 > entries_.size()) grow();
  }

  /** Sets key to value (0 … 2^31-1); true when the key was new. */
  bool set(uint64_t key, int32_t value) {
    if ((size_ + 1) * 2 > entries_.size()) grow();
    // Masked so that a (never valid) negative value cannot spill into the key.
    const uint64_t entry = (key << kValueBits) | (static_cast<uint32_t>(value) & 0x7fffffffu);
    size_t i = home(key);
    for (; entries_[i] != kEmpty; i = (i + 1) & mask_) {
      if (entries_[i] >> kValueBits == key) {
        entries_[i] = entry;
        return false;
      }
    }
    entries_[i] = entry;
    ++size_;
    return true;
  }

  /** Removes key; false when absent. Backward-shift deletion keeps probe chains tombstone-free. */
  bool erase(uint64_t key) {
    if (entries_.empty()) return false;
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (entries_[i] >> kValueBits == key) break;
      if (entries_[i] == kEmpty) return false;
    }
    for (size_t j = (i + 1) & mask_; entries_[j] != kEmpty; j = (j + 1) & mask_) {
      // Move j back into the hole at i unless j's home lies cyclically in (i, j].
      const size_t h = home(entries_[j] >> kValueBits);
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (!stays) {
        entries_[i] = entries_[j];
        i = j;
      }
    }
    entries_[i] = kEmpty;
    --size_;
    return true;
  }

  size_t size() const { return size_; }
  size_t memoryBytes() const { return entries_.capacity() * sizeof(uint64_t); }

 private:
  static constexpr unsigned kValueBits = 31;
  static constexpr uint64_t kEmpty = 0;  // key 0 is never used

  static int32_t valueOf(uint64_t entry) {
    return static_cast<int32_t>(entry & ((uint64_t{1} << kValueBits) - 1));
  }

  size_t home(uint64_t key) const {
    // Fibonacci hashing: spreads the structured keys over the table.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void grow() {
    std::vector<uint64_t, HugeAlloc<uint64_t>> old;
    old.swap(entries_);
    const size_t cap = old.empty() ? 64 : old.size() * 2;
    entries_.assign(cap, kEmpty);
    mask_ = cap - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(cap));
    size_ = 0;
    for (const uint64_t e : old) {
      if (e != kEmpty) set(e >> kValueBits, valueOf(e));
    }
  }

  std::vector<uint64_t, HugeAlloc<uint64_t>> entries_;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t size_ = 0;
};

}  // namespace interpose::lpm

// Exact-match set of prefixes (key -> value) with open addressing and linear probing. The
// tables consult it on every insert (is the prefix new?) and on deletes (which shorter prefix
// takes over); std::unordered_map's node-per-entry layout made each of those a cache miss
// through a linked list, which dominated build time at a million prefixes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "huge_alloc.h"

namespace interpose::lpm {

class FlatMap {
 public:
  /** Keys must not be kEmpty. */
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  const int32_t* find(uint64_t key) const {
    if (entries_.empty()) return nullptr;
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      if (entries_[i].key == key) return &entries_[i].value;
      if (entries_[i].key == kEmpty) return nullptr;
    }
  }

  /** Sets key to value; true when the key was new. */
  bool set(uint64_t key, int32_t value) {
    if ((size_ + 1) * 2 > entries_.size()) grow();
    size_t i = home(key);
    for (; entries_[i].key != kEmpty; i = (i + 1) & mask_) {
      if (entries_[i].key == key) {
        entries_[i].value = value;
        return false;
      }
    }
    entries_[i] = Entry{key, value};
    ++size_;
    return true;
  }

  /** Removes key; false when absent. Backward-shift deletion keeps probe chains tombstone-free. */
  bool erase(uint64_t key) {
    if (entries_.empty()) return false;
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (entries_[i].key == key) break;
      if (entries_[i].key == kEmpty) return false;
    }
    for (size_t j = (i + 1) & mask_; entries_[j].key != kEmpty; j = (j + 1) & mask_) {
      // Move j back into the hole at i unless j's home lies cyclically in (i, j].
      const size_t h = home(entries_[j].key);
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (!stays) {
        entries_[i] = entries_[j];
        i = j;
      }
    }
    entries_[i].key = kEmpty;
    --size_;
    return true;
  }

  size_t size() const { return size_; }
  size_t memoryBytes() const { return entries_.capacity() * sizeof(Entry); }

 private:
  struct Entry {
    uint64_t key;
    int32_t value;
  };

  size_t home(uint64_t key) const {
    // Fibonacci hashing: spreads the structured keys (address << 6 | length) over the table.
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void grow() {
    std::vector<Entry, HugeAlloc<Entry>> old;
    old.swap(entries_);
    const size_t cap = old.empty() ? 64 : old.size() * 2;
    entries_.assign(cap, Entry{kEmpty, 0});
    mask_ = cap - 1;
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(cap));
    size_ = 0;
    for (const Entry& e : old) {
      if (e.key != kEmpty) set(e.key, e.value);
    }
  }

  std::vector<Entry, HugeAlloc<Entry>> entries_;
  size_t mask_ = 0;
  unsigned shift_ = 64;
  size_t size_ = 0;
};

}  // namespace interpose::lpm

// Small arrays (1 … 512 elements, power-of-two capacities) carved out of one PodArray, with a
// free list per capacity. The IPv6 nodes keep their packed child and value arrays here
// instead of in a std::vector each: a node then needs 8 bytes of offsets instead of 48 bytes
// of vector headers (so everything a lookup step reads fits in one cache line), and the
// arrays sit in huge pages next to each other instead of scattered over the malloc heap,
// where nearly every access of a million-prefix table missed the TLB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pod_array.h"

namespace interpose::lpm {

template <typename T>
class BlockPool {
 public:
  static constexpr unsigned kClasses = 10;  // capacities 1, 2, 4 … 512
  static constexpr uint8_t kNoBlock = 0xff;

  /** Offset of a free block of 2^cls elements. May move the storage: re-read pointers. */
  uint32_t alloc(unsigned cls) {
    std::vector<uint32_t>& free = free_[cls];
    if (!free.empty()) {
      const uint32_t off = free.back();
      free.pop_back();
      return off;
    }
    const size_t off = data_.size();
    data_.growTo(off + (size_t{1} << cls));
    return static_cast<uint32_t>(off);
  }
  void release(uint32_t off, unsigned cls) { free_[cls].push_back(off); }

  T* at(uint32_t off) { return data_.data() + off; }
  const T* at(uint32_t off) const { return data_.data() + off; }

  size_t memoryBytes() const {
    size_t bytes = data_.usedBytes();
    for (const auto& f : free_) bytes += f.capacity() * sizeof(uint32_t);
    return bytes;
  }

 private:
  PodArray<T> data_;
  std::vector<uint32_t> free_[kClasses];
};

/** Smallest class whose capacity holds n elements (n >= 1). */
inline unsigned blockClass(unsigned n) {
  unsigned cls = 0;
  while ((1u << cls) < n) ++cls;
  return cls;
}

/**
 * Inserts `value` at position `rank` of the packed array (`count` elements) at `*off` of
 * capacity class `*cls` (kNoBlock: none yet), moving it to a larger block when full.
 */
template <typename T>
void blockInsert(BlockPool<T>& pool, uint32_t* off, uint8_t* cls, unsigned count, unsigned rank,
                 T value) {
  if (*cls == BlockPool<T>::kNoBlock || count + 1 > (1u << *cls)) {
    const unsigned bigger = blockClass(count + 1);
    const uint32_t to = pool.alloc(bigger);  // may move the pool: pointers only after this
    if (*cls != BlockPool<T>::kNoBlock) {
      const T* src = pool.at(*off);
      T* dst = pool.at(to);
      for (unsigned i = 0; i < rank; ++i) dst[i] = src[i];
      for (unsigned i = rank; i < count; ++i) dst[i + 1] = src[i];
      pool.release(*off, *cls);
    }
    pool.at(to)[rank] = value;
    *off = to;
    *cls = static_cast<uint8_t>(bigger);
    return;
  }
  T* a = pool.at(*off);
  for (unsigned i = count; i > rank; --i) a[i] = a[i - 1];
  a[rank] = value;
}

/** Removes position `rank` of the packed array; frees the block when it becomes empty. */
template <typename T>
void blockErase(BlockPool<T>& pool, uint32_t* off, uint8_t* cls, unsigned count, unsigned rank) {
  if (count == 1) {
    pool.release(*off, *cls);
    *cls = BlockPool<T>::kNoBlock;
    *off = 0;
    return;
  }
  T* a = pool.at(*off);
  for (unsigned i = rank; i + 1 < count; ++i) a[i] = a[i + 1];
}

}  // namespace interpose::lpm

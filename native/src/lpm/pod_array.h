// A growable array of trivially copyable elements backed by an anonymous mapping that grows
// with mremap: growing moves page-table entries instead of copying and re-zeroing the whole
// table, and fresh pages arrive zero-filled. For the IPv4 groups, which reach hundreds of
// megabytes at a million prefixes, doubling a std::vector spent most of the build time in the
// kernel clearing pages for copies. Linux only (mremap), like the rest of the addon.
#pragma once

#include <cstddef>
#include <new>
#include <sys/mman.h>
#include <type_traits>

namespace interpose::lpm {

template <typename T>
class PodArray {
  static_assert(std::is_trivially_copyable_v<T>, "PodArray holds plain data only");

 public:
  PodArray() = default;
  PodArray(const PodArray&) = delete;
  PodArray& operator=(const PodArray&) = delete;
  ~PodArray() {
    if (data_ != nullptr) munmap(data_, capacityBytes_);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  /** Address space reserved; pages are only committed when first written. */
  size_t capacityBytes() const { return capacityBytes_; }
  /** Bytes in use (what has been written; the rest of the reservation costs no memory). */
  size_t usedBytes() const { return size_ * sizeof(T); }

  /** Grows to n elements; the new ones are zero bytes. */
  void growTo(size_t n) {
    const size_t need = n * sizeof(T);
    if (need > capacityBytes_) reserveBytes(need);
    size_ = n;
  }

 private:
  static constexpr size_t kStep = size_t{2} << 20;  // 2 MiB: one huge page

  void reserveBytes(size_t need) {
    size_t cap = capacityBytes_ < kStep ? kStep : capacityBytes_ * 2;
    while (cap < need) cap *= 2;
    void* p = data_ == nullptr
                  ? mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                  : mremap(data_, capacityBytes_, cap, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, cap, MADV_HUGEPAGE);  // advisory: ignored when THP is off
    data_ = static_cast<T*>(p);
    capacityBytes_ = cap;
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacityBytes_ = 0;
};

}  // namespace interpose::lpm

// Objects kept for reuse by the fast path's thread, so that a request does not allocate again
// what the request before it freed. A profile of h2c saturation put a tenth of the thread's
// time in malloc and free: most of it the per-request objects' strings growing from nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace interpose::http_fast_path {

/**
 * At most `max` spare objects. The owner resets an object before giving it back: assigning a
 * default-constructed object keeps the room its std::string members grew (libstdc++ copies a
 * short source into the buffer the destination already has), so a reused object's strings
 * are filled again without allocating; the owner drops the room of any that grew large.
 */
template <typename T>
class SparePool {
 public:
  explicit SparePool(size_t max) : max_(max) {}

  /** A spare object (reset by give()'s caller), or a new one. */
  std::unique_ptr<T> take() {
    if (spare_.empty()) return std::make_unique<T>();
    std::unique_ptr<T> p = std::move(spare_.back());
    spare_.pop_back();
    return p;
  }

  /** Keeps `p` (already reset) while there is room, else frees it. */
  void give(std::unique_ptr<T> p) {
    if (p && spare_.size() < max_) spare_.push_back(std::move(p));
  }


 private:
  size_t max_;
  std::vector<std::unique_ptr<T>> spare_;
};

/**
 * Lends the room of a kept vector (`spare`) to `v`, a local, for a scope, and keeps the larger
 * of the two after it: a parse of a head fills its field list without allocating. A nested
 * borrower finds the spare empty and allocates, as it would without one.
 */
template <typename V>
class LentRoom {
 public:
  LentRoom(V& spare, V& v) : spare_(spare), v_(v) { v_.swap(spare_); }
  ~LentRoom() {
    if (v_.capacity() <= spare_.capacity()) return;
    v_.clear();
    v_.swap(spare_);
  }
  LentRoom(const LentRoom&) = delete;
  LentRoom& operator=(const LentRoom&) = delete;

 private:
  V& spare_;
  V& v_;
};

/** Frees the room of `s` when it is above `max` bytes (a spare keeps only ordinary sizes). */
inline void dropLargeRoom(std::string& s, size_t max) {
  if (s.capacity() > max) std::string().swap(s);
}

}  // namespace interpose::http_fast_path

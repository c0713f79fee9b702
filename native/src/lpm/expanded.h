// Shared pieces of the two tables: the 8-byte slot of a controlled-prefix-expansion
// (multibit) level, and the paint/unpaint operations that keep such a level correct under
// inserts and deletes. No Node types here.
#pragma once

#include <cstddef>
#include <cstdint>

namespace interpose::lpm {

/** Value of "no prefix matches"; values stored by callers are 0 … 2^31-1. */
constexpr int32_t kNoMatch = -1;

/**
 * One slot of an expanded level. `value` is the best prefix that ends inside this level and
 * covers the slot (kNoMatch if none); `child` is the index of the next level's node for
 * addresses under this slot (0 = none). Prefixes are not pushed down into children: a lookup
 * carries the best value seen so far while it descends, so an update touches only the slots
 * of one level of one node.
 */
struct Slot {
  int32_t value;
  uint32_t child;
};

/**
 * Marks slots [first, first+count) as covered by a prefix of `len` bits (stored as len+1 so
 * that 0 means "no prefix"), unless a slot already holds a longer prefix.
 */
inline void paint(Slot* slots, uint8_t* lens, size_t first, size_t count, unsigned len,
                  int32_t value) {
  const uint8_t tag = static_cast<uint8_t>(len + 1);
  for (size_t i = first; i < first + count; ++i) {
    if (lens[i] <= tag) {
      slots[i].value = value;
      lens[i] = tag;
    }
  }
}

/**
 * Removes a prefix of `len` bits from slots [first, first+count): every slot it set gets the
 * replacement (the next-longest prefix of this level that covers the range, or none). A slot
 * whose tag equals len+1 can only have been set by this prefix, because an address is
 * covered by at most one prefix of each length.
 */
inline void unpaint(Slot* slots, uint8_t* lens, size_t first, size_t count, unsigned len,
                    int32_t replValue, uint8_t replTag) {
  const uint8_t tag = static_cast<uint8_t>(len + 1);
  for (size_t i = first; i < first + count; ++i) {
    if (lens[i] == tag) {
      slots[i].value = replValue;
      lens[i] = replTag;
    }
  }
}

}  // namespace interpose::lpm

// The CIDR trie behind CidrTrie: one IPv4 table and one IPv6 table (see their headers for the
// layouts and sources). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are looked up in the IPv4
// table, because that is the traffic they carry; callers convert IPv4-mapped prefixes
// (::ffff:0:0/96 and longer) to IPv4 prefixes before inserting. No Node types here.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ipv4_table.h"
#include "ipv6_table.h"

namespace interpose::lpm {

/** True for ::ffff:0:0/96, whose last four bytes are an IPv4 address. */
inline bool isV4Mapped(const uint8_t a[16]) {
  for (int i = 0; i < 10; ++i) {
    if (a[i] != 0) return false;
  }
  return a[10] == 0xff && a[11] == 0xff;
}

inline uint32_t mappedV4(const uint8_t a[16]) {
  return (uint32_t{a[12]} << 24) | (uint32_t{a[13]} << 16) | (uint32_t{a[14]} << 8) | a[15];
}

class LpmTrie {
 public:
  bool insert4(uint32_t addr, unsigned len, int32_t value) { return v4_.insert(addr, len, value); }
  bool erase4(uint32_t addr, unsigned len) { return v4_.erase(addr, len); }
  int32_t lookup4(uint32_t addr) const { return v4_.lookup(addr); }

  /** insert4 for n prefixes in order (a later duplicate replaces an earlier one). */
  void insertMany4(const uint32_t* addrs, const uint8_t* lens, const int32_t* values, size_t n) {
    v4_.insertMany(addrs, lens, values, n);
  }
  /** insert6 for n prefixes of 16 bytes each, in order. */
  void insertMany6(const uint8_t* addrs, const uint8_t* lens, const int32_t* values, size_t n) {
    for (size_t i = 0; i < n; ++i) v6_.insert(addrs + 16 * i, lens[i], values[i]);
  }

  bool insert6(const uint8_t addr[16], unsigned len, int32_t value) {
    return v6_.insert(addr, len, value);
  }
  bool erase6(const uint8_t addr[16], unsigned len) { return v6_.erase(addr, len); }
  int32_t lookup6(const uint8_t addr[16]) const {
    return isV4Mapped(addr) ? v4_.lookup(mappedV4(addr)) : v6_.lookup(addr);
  }

  void lookupMany4(const uint32_t* addrs, int32_t* out, size_t n) const {
    v4_.lookupMany(addrs, out, n);
  }
  void lookupMany6(const uint8_t* addrs, int32_t* out, size_t n) const {
    v6_.lookupMany(addrs, out, n);
    // IPv4-mapped addresses are rare in IPv6 batches: answer them again from the IPv4 table.
    for (size_t i = 0; i < n; ++i) {
      if (isV4Mapped(addrs + 16 * i)) out[i] = v4_.lookup(mappedV4(addrs + 16 * i));
    }
  }

  size_t size() const { return v4_.size() + v6_.size(); }
  size_t memoryBytes() const { return sizeof(*this) + v4_.memoryBytes() + v6_.memoryBytes(); }

 private:
  Ipv4Table v4_;
  Ipv6Table v6_;
};

}  // namespace interpose::lpm

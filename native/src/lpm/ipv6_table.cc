#include "ipv6_table.h"

#include <cstring>

namespace interpose::lpm {
namespace {

inline bool testBit(const uint64_t* w, unsigned i) { return (w[i >> 6] >> (i & 63)) & 1; }
inline void setBit(uint64_t* w, unsigned i) { w[i >> 6] |= uint64_t{1} << (i & 63); }
inline void clearBit(uint64_t* w, unsigned i) { w[i >> 6] &= ~(uint64_t{1} << (i & 63)); }

// Number of set bits below bit i: the position of bit i's entry in the packed array.
inline unsigned rankBelow(const uint64_t* w, unsigned i) {
  unsigned r = 0;
  for (unsigned k = 0; k < (i >> 6); ++k) r += static_cast<unsigned>(__builtin_popcountll(w[k]));
  const uint64_t below = (uint64_t{1} << (i & 63)) - 1;
  return r + static_cast<unsigned>(__builtin_popcountll(w[i >> 6] & below));
}

// Bit of a prefix that uses the top l (1…8) bits of byte b.
inline unsigned innerIndex(unsigned l, unsigned b) { return (1u << l) - 2 + (b >> (8 - l)); }

inline uint16_t mask16(unsigned len) {
  return len == 0 ? 0 : static_cast<uint16_t>(0xffffu << (16 - len));
}

void maskAddress(const uint8_t in[16], unsigned len, uint8_t out[16]) {
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bits = len > 8 * i ? len - 8 * i : 0;
    out[i] = bits >= 8 ? in[i] : static_cast<uint8_t>(in[i] & ~(0xffu >> bits));
  }
}

template <typename T, typename A>
size_t capBytes(const std::vector<T, A>& v) {
  return v.capacity() * sizeof(T);
}

}  // namespace

uint32_t Ipv6Table::allocNode() {
  if (nodes_.empty()) nodes_.emplace_back();  // sentinel: index 0 means "no child"
  uint32_t n;
  if (!freeNodes_.empty()) {
    n = freeNodes_.back();
    freeNodes_.pop_back();
  } else {
    n = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& node = nodes_[n];
  std::memset(node.inner, 0, sizeof node.inner);
  std::memset(node.ext, 0, sizeof node.ext);
  return n;
}

void Ipv6Table::freeNode(uint32_t n) {
  Node& node = nodes_[n];
  arrayBytes_ -= capBytes(node.vals) + capBytes(node.kids);
  std::vector<int32_t>().swap(node.vals);
  std::vector<uint32_t>().swap(node.kids);
  freeNodes_.push_back(n);
}

bool Ipv6Table::insert(const uint8_t in[16], unsigned len, int32_t value) {
  uint8_t a[16];
  maskAddress(in, len, a);
  if (root_.empty()) {
    root_.assign(size_t{1} << 16, Slot{kNoMatch, 0});
    rootLen_.assign(size_t{1} << 16, 0);
  }
  const uint16_t top = static_cast<uint16_t>((a[0] << 8) | a[1]);

  if (len <= 16) {
    const bool fresh = rootPrefixes_.set((uint32_t{top} << 8) | len, value);
    paint(root_.data(), rootLen_.data(), top, size_t{1} << (16 - len), len, value);
    return fresh;
  }

  if (root_[top].child == 0) {
    const uint32_t n = allocNode();
    root_[top].child = n;
  }
  uint32_t n = root_[top].child;
  unsigned k = 2;
  for (; len > 8 * (k + 1); ++k) {
    const unsigned b = a[k];
    if (!testBit(nodes_[n].ext, b)) {
      const uint32_t child = allocNode();  // may move nodes_: take references afterwards
      Node& node = nodes_[n];
      const size_t before = capBytes(node.kids);
      node.kids.insert(node.kids.begin() + rankBelow(node.ext, b), child);
      setBit(node.ext, b);
      arrayBytes_ += capBytes(node.kids) - before;
    }
    const Node& node = nodes_[n];
    n = node.kids[rankBelow(node.ext, b)];
  }

  Node& node = nodes_[n];
  const unsigned idx = innerIndex(len - 8 * k, a[k]);
  const unsigned rank = rankBelow(node.inner, idx);
  if (testBit(node.inner, idx)) {
    node.vals[rank] = value;
    return false;
  }
  const size_t before = capBytes(node.vals);
  node.vals.insert(node.vals.begin() + rank, value);
  setBit(node.inner, idx);
  arrayBytes_ += capBytes(node.vals) - before;
  ++nodePrefixes_;
  return true;
}

bool Ipv6Table::erase(const uint8_t in[16], unsigned len) {
  uint8_t a[16];
  maskAddress(in, len, a);
  if (root_.empty()) return false;
  const uint16_t top = static_cast<uint16_t>((a[0] << 8) | a[1]);

  if (len <= 16) {
    if (!rootPrefixes_.erase((uint32_t{top} << 8) | len)) return false;
    int32_t replValue = kNoMatch;
    uint8_t replTag = 0;
    for (unsigned l = len; l-- > 0;) {
      if (const int32_t* r =
              rootPrefixes_.find((uint32_t{static_cast<uint16_t>(top & mask16(l))} << 8) | l)) {
        replValue = *r;
        replTag = static_cast<uint8_t>(l + 1);
        break;
      }
    }
    unpaint(root_.data(), rootLen_.data(), top, size_t{1} << (16 - len), len, replValue,
            replTag);
    return true;
  }

  // Walk down remembering the path so empty nodes can be unlinked bottom-up.
  uint32_t pathNode[16];
  unsigned pathByte[16];
  unsigned depth = 0;
  uint32_t n = root_[top].child;
  if (n == 0) return false;
  unsigned k = 2;
  for (; len > 8 * (k + 1); ++k) {
    const Node& node = nodes_[n];
    if (!testBit(node.ext, a[k])) return false;
    pathNode[depth] = n;
    pathByte[depth] = a[k];
    ++depth;
    n = node.kids[rankBelow(node.ext, a[k])];
  }
  Node& node = nodes_[n];
  const unsigned idx = innerIndex(len - 8 * k, a[k]);
  if (!testBit(node.inner, idx)) return false;
  node.vals.erase(node.vals.begin() + rankBelow(node.inner, idx));
  clearBit(node.inner, idx);
  --nodePrefixes_;

  for (;;) {
    const Node& cur = nodes_[n];
    bool empty = true;
    for (uint64_t w : cur.inner) empty = empty && w == 0;
    for (uint64_t w : cur.ext) empty = empty && w == 0;
    if (!empty) break;
    freeNode(n);
    if (depth == 0) {
      root_[top].child = 0;
      break;
    }
    --depth;
    n = pathNode[depth];
    Node& parent = nodes_[n];
    parent.kids.erase(parent.kids.begin() + rankBelow(parent.ext, pathByte[depth]));
    clearBit(parent.ext, pathByte[depth]);
  }
  return true;
}

int32_t Ipv6Table::lookup(const uint8_t a[16]) const {
  if (root_.empty()) return kNoMatch;
  const Slot s = root_[(a[0] << 8) | a[1]];
  int32_t best = s.value;
  uint32_t n = s.child;
  for (unsigned k = 2; n != 0; ++k) {
    const Node& node = nodes_[n];
    const unsigned b = a[k];
    for (unsigned l = 8; l >= 1; --l) {
      const unsigned idx = innerIndex(l, b);
      if (testBit(node.inner, idx)) {
        best = node.vals[rankBelow(node.inner, idx)];
        break;
      }
    }
    if (!testBit(node.ext, b)) break;
    n = node.kids[rankBelow(node.ext, b)];
  }
  return best;
}

size_t Ipv6Table::memoryBytes() const {
  return capBytes(root_) + capBytes(rootLen_) + capBytes(nodes_) + capBytes(freeNodes_) +
         arrayBytes_ + rootPrefixes_.memoryBytes();
}

}  // namespace interpose::lpm

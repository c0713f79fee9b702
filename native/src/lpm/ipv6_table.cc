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

// Set bits in the first `words` words: the length of the packed array a bitmap indexes.
inline unsigned popcountWords(const uint64_t* w, unsigned words) {
  unsigned r = 0;
  for (unsigned k = 0; k < words; ++k) r += static_cast<unsigned>(__builtin_popcountll(w[k]));
  return r;
}

// Bit of a prefix that uses the top l (1…8) bits of byte b.
inline unsigned innerIndex(unsigned l, unsigned b) { return (1u << l) - 2 + (b >> (8 - l)); }

// Longest prefix in `inner` matching byte b, as its bit index, or -1. Only the lengths
// recorded in `lengths` are probed, longest first.
inline int longestInner(const uint64_t* inner, uint32_t lengths, unsigned b) {
  while (lengths != 0) {
    const unsigned l = 32 - static_cast<unsigned>(__builtin_clz(lengths));  // highest set bit + 1
    const unsigned idx = innerIndex(l, b);
    if (testBit(inner, idx)) return static_cast<int>(idx);
    lengths &= ~(1u << (l - 1));
  }
  return -1;
}

// True when no prefix of l bits remains in `inner`.
inline bool noneOfLength(const uint64_t* inner, unsigned l) {
  const unsigned first = (1u << l) - 2;
  for (unsigned i = first; i < first + (1u << l); ++i) {
    if (testBit(inner, i)) return false;
  }
  return true;
}

// Exact-match key of the root prefix of `len` (0 … 16) bits at the top of `top`.
inline uint64_t rootKey(uint16_t top, unsigned len) {
  return FlatMap::prefixKey(len == 0 ? 0 : uint32_t{top} >> (16 - len), len);
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

uint32_t Ipv6Table::allocNode(unsigned k, const uint8_t key[16]) {
  if (nodes_.empty()) nodes_.growTo(1);  // sentinel: index 0 means "no child"
  uint32_t n;
  if (!freeNodes_.empty()) {
    n = freeNodes_.back();
    freeNodes_.pop_back();
  } else {
    n = static_cast<uint32_t>(nodes_.size());
    nodes_.growTo(nodes_.size() + 1);
  }
  Node& node = nodes_[n];
  std::memset(&node, 0, sizeof node);
  node.k = static_cast<uint8_t>(k);
  node.kidsClass = BlockPool<uint32_t>::kNoBlock;
  node.valsClass = BlockPool<int32_t>::kNoBlock;
  std::memcpy(node.key, key, sizeof node.key);
  return n;
}

void Ipv6Table::freeNode(uint32_t n) {
  Node& node = nodes_[n];
  if (node.kidsClass != BlockPool<uint32_t>::kNoBlock) kidPool_.release(node.kids, node.kidsClass);
  if (node.valsClass != BlockPool<int32_t>::kNoBlock) valPool_.release(node.vals, node.valsClass);
  node.kidsClass = BlockPool<uint32_t>::kNoBlock;
  node.valsClass = BlockPool<int32_t>::kNoBlock;
  freeNodes_.push_back(n);
}

void Ipv6Table::addKid(uint32_t parent, unsigned b, uint32_t kid) {
  Node& node = nodes_[parent];
  blockInsert(kidPool_, &node.kids, &node.kidsClass, popcountWords(node.ext, 4), rankBelow(node.ext, b),
              kid);
  setBit(node.ext, b);
}

void Ipv6Table::removeKid(uint32_t parent, unsigned b) {
  Node& node = nodes_[parent];
  blockErase(kidPool_, &node.kids, &node.kidsClass, popcountWords(node.ext, 4), rankBelow(node.ext, b));
  clearBit(node.ext, b);
}

void Ipv6Table::setInner(uint32_t n, unsigned l, unsigned b, int32_t value, bool* fresh) {
  Node& node = nodes_[n];
  const unsigned idx = innerIndex(l, b);
  const unsigned rank = rankBelow(node.inner, idx);
  if (testBit(node.inner, idx)) {
    valPool_.at(node.vals)[rank] = value;
    *fresh = false;
    return;
  }
  blockInsert(valPool_, &node.vals, &node.valsClass, popcountWords(node.inner, 8), rank, value);
  setBit(node.inner, idx);
  node.lengths |= 1u << (l - 1);
  ++nodePrefixes_;
  *fresh = true;
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
    const bool fresh = rootPrefixes_.set(rootKey(top, len), value);
    paint(root_.data(), rootLen_.data(), top, size_t{1} << (16 - len), len, value);
    return fresh;
  }

  const unsigned t = (len - 1) / 8;  // byte of the node that holds this prefix
  const unsigned l = len - 8 * t;    // bits of byte t it uses (1 … 8)
  bool fresh = false;

  // `link` says where the current node hangs: the root slot (parent 0) or parent's kid
  // under byte `linkByte`. Indices, not references: allocNode may move nodes_.
  uint32_t parent = 0;
  unsigned linkByte = 0;
  uint32_t n = root_[top].child;
  unsigned kk = 2;  // the byte the walk expects next
  auto relink = [&](uint32_t to) {
    if (parent == 0) {
      root_[top].child = to;
    } else {
      Node& p = nodes_[parent];
      kidsOf(p)[rankBelow(p.ext, linkByte)] = to;
    }
  };

  if (n == 0) {
    n = allocNode(t, a);
    root_[top].child = n;
    setInner(n, l, a[t], value, &fresh);
    return true;
  }
  for (;;) {
    const unsigned nk = nodes_[n].k;
    // First byte in [kk, min(t, nk)) where the prefix leaves this node's compressed path.
    unsigned s = kk;
    const unsigned limit = t < nk ? t : nk;
    while (s < limit && a[s] == nodes_[n].key[s]) ++s;

    if (s < nk) {
      // The prefix diverges from (or ends inside) the skipped bytes: a new node at byte s
      // takes the existing node as a kid, and the prefix either lives in it (t == s) or in
      // a new node hanging beside the existing one.
      const unsigned oldByte = nodes_[n].key[s];
      const uint32_t m = allocNode(s, a);
      addKid(m, oldByte, n);
      relink(m);
      if (t == s) {
        setInner(m, l, a[t], value, &fresh);
      } else {
        const uint32_t leaf = allocNode(t, a);
        addKid(m, a[s], leaf);
        setInner(leaf, l, a[t], value, &fresh);
      }
      return fresh;
    }
    if (t == nk) {
      setInner(n, l, a[t], value, &fresh);
      return fresh;
    }
    // t > nk: continue below this node through byte a[nk].
    const unsigned b = a[nk];
    if (!testBit(nodes_[n].ext, b)) {
      const uint32_t leaf = allocNode(t, a);
      addKid(n, b, leaf);
      setInner(leaf, l, a[t], value, &fresh);
      return fresh;
    }
    parent = n;
    linkByte = b;
    const Node& node = nodes_[n];
    n = kidsOf(node)[rankBelow(node.ext, b)];
    kk = nk + 1;
  }
}

bool Ipv6Table::erase(const uint8_t in[16], unsigned len) {
  uint8_t a[16];
  maskAddress(in, len, a);
  if (root_.empty()) return false;
  const uint16_t top = static_cast<uint16_t>((a[0] << 8) | a[1]);

  if (len <= 16) {
    if (!rootPrefixes_.erase(rootKey(top, len))) return false;
    int32_t replValue = kNoMatch;
    uint8_t replTag = 0;
    for (unsigned l = len; l-- > 0;) {
      if (rootPrefixes_.find(rootKey(top, l), &replValue)) {
        replTag = static_cast<uint8_t>(l + 1);
        break;
      }
    }
    unpaint(root_.data(), rootLen_.data(), top, size_t{1} << (16 - len), len, replValue,
            replTag);
    return true;
  }

  const unsigned t = (len - 1) / 8;
  const unsigned l = len - 8 * t;
  // Path of (node, byte it was reached through) so nodes can be unlinked bottom-up.
  uint32_t pathNode[16];
  unsigned pathByte[16];
  unsigned depth = 0;
  uint32_t n = root_[top].child;
  unsigned kk = 2;
  for (;;) {
    if (n == 0) return false;
    const Node& node = nodes_[n];
    if (node.k > t) return false;  // the prefix would live above this node
    for (unsigned j = kk; j < node.k; ++j) {
      if (a[j] != node.key[j]) return false;
    }
    if (node.k == t) break;
    const unsigned b = a[node.k];
    if (!testBit(node.ext, b)) return false;
    pathNode[depth] = n;
    pathByte[depth] = b;
    ++depth;
    n = kidsOf(node)[rankBelow(node.ext, b)];
    kk = node.k + 1;
  }

  {
    Node& node = nodes_[n];
    const unsigned idx = innerIndex(l, a[t]);
    if (!testBit(node.inner, idx)) return false;
    blockErase(valPool_, &node.vals, &node.valsClass, popcountWords(node.inner, 8),
               rankBelow(node.inner, idx));
    clearBit(node.inner, idx);
    if (noneOfLength(node.inner, l)) node.lengths &= ~(1u << (l - 1));
    --nodePrefixes_;
  }

  // Unlink nodes that no longer hold anything, and splice out nodes left with no prefix and
  // a single kid (their kid's key already carries the full path).
  for (;;) {
    const Node& cur = nodes_[n];
    const unsigned kids = popcountWords(cur.ext, 4);
    if (cur.lengths != 0 || kids > 1) break;
    const uint32_t replacement = kids == 1 ? kidsOf(cur)[0] : 0;
    freeNode(n);
    if (depth == 0) {
      root_[top].child = replacement;
      break;
    }
    --depth;
    const uint32_t p = pathNode[depth];
    if (replacement != 0) {
      Node& parentNode = nodes_[p];
      kidsOf(parentNode)[rankBelow(parentNode.ext, pathByte[depth])] = replacement;
      break;
    }
    removeKid(p, pathByte[depth]);
    n = p;  // the parent lost a kid: it may now be empty or a pass-through
  }
  return true;
}

int32_t Ipv6Table::lookup(const uint8_t a[16]) const {
  if (root_.empty()) return kNoMatch;
  const Slot s = root_[(a[0] << 8) | a[1]];
  // Remember where the best match is and rank it once at the end: most nodes on a deep path
  // are superseded by a longer match further down.
  const Node* bestNode = nullptr;
  unsigned bestIdx = 0;
  uint32_t n = s.child;
  unsigned kk = 2;
  while (n != 0) {
    // The node's two lines are independent loads: request the second with the first.
    __builtin_prefetch(reinterpret_cast<const char*>(&nodes_[n]) + 64);
    const Node& node = nodes_[n];
    bool onPath = true;
    for (unsigned j = kk; j < node.k; ++j) onPath = onPath && a[j] == node.key[j];
    if (!onPath) break;
    const unsigned b = a[node.k];
    const int idx = longestInner(node.inner, node.lengths, b);
    if (idx >= 0) {
      bestNode = &node;
      bestIdx = static_cast<unsigned>(idx);
    }
    if (!testBit(node.ext, b)) break;
    n = kidsOf(node)[rankBelow(node.ext, b)];
    kk = node.k + 1u;
  }
  return bestNode != nullptr ? valsOf(*bestNode)[rankBelow(bestNode->inner, bestIdx)] : s.value;
}

void Ipv6Table::lookupMany(const uint8_t* addrs, int32_t* out, size_t n) const {
  if (root_.empty()) {
    for (size_t i = 0; i < n; ++i) out[i] = kNoMatch;
    return;
  }
  struct Lane {
    const uint8_t* a;
    size_t index;
    uint32_t node;
    unsigned k;             // the byte the walk expects next
    const uint32_t* kid;    // set between the two halves of a step
    const int32_t* best;    // value of the longest match so far (prefetched)
    int32_t rootValue;
    bool done;              // walk finished; read *best on the next visit, once it arrived
  };
  // A node spans two cache lines (the step's data, the prefix bitmap); ask for both at once.
  auto prefetchNode = [this](uint32_t i) {
    const char* p = reinterpret_cast<const char*>(&nodes_[i]);
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
  };
  constexpr unsigned kLanes = 16;
  Lane lanes[kLanes];
  size_t next = 0;

  // Starts the next address that needs a walk in `lane`; addresses answered by the first
  // level are written straight away. False when none are left.
  auto start = [&](Lane& lane) {
    while (next < n) {
      const size_t i = next++;
      const uint8_t* a = addrs + 16 * i;
      const Slot s = root_[(a[0] << 8) | a[1]];
      if (s.child == 0) {
        out[i] = s.value;
        continue;
      }
      lane = Lane{a, i, s.child, 2, nullptr, nullptr, s.value, false};
      prefetchNode(s.child);
      return true;
    }
    return false;
  };

  unsigned active = 0;
  for (unsigned j = 0; j < kLanes && start(lanes[active]); ++j) ++active;

  while (active > 0) {
    for (unsigned j = 0; j < active;) {
      Lane& lane = lanes[j];
      if (lane.kid != nullptr) {
        // Second half of a step: the child index has arrived; fetch the child node.
        lane.node = *lane.kid;
        lane.kid = nullptr;
        prefetchNode(lane.node);
        ++j;
        continue;
      }
      if (!lane.done) {
        const Node& node = nodes_[lane.node];
        bool onPath = true;
        for (unsigned x = lane.k; x < node.k; ++x) onPath = onPath && lane.a[x] == node.key[x];
        if (onPath) {
          const unsigned b = lane.a[node.k];
          const int idx = longestInner(node.inner, node.lengths, b);
          if (idx >= 0) {
            lane.best = &valsOf(node)[rankBelow(node.inner, static_cast<unsigned>(idx))];
            __builtin_prefetch(lane.best);
          }
          if (testBit(node.ext, b)) {
            lane.kid = &kidsOf(node)[rankBelow(node.ext, b)];
            __builtin_prefetch(lane.kid);
            lane.k = node.k + 1u;
            ++j;
            continue;
          }
        }
        if (lane.best != nullptr) {
          // Give the prefetched value a round to arrive before reading it.
          lane.done = true;
          ++j;
          continue;
        }
      }
      out[lane.index] = lane.best != nullptr ? *lane.best : lane.rootValue;
      if (!start(lane)) {
        // No more work: move the last active lane into this slot and revisit it.
        lane = lanes[--active];
      } else {
        ++j;
      }
    }
  }
}

size_t Ipv6Table::memoryBytes() const {
  return capBytes(root_) + capBytes(rootLen_) + nodes_.usedBytes() + capBytes(freeNodes_) +
         kidPool_.memoryBytes() + valPool_.memoryBytes() + rootPrefixes_.memoryBytes();
}

}  // namespace interpose::lpm

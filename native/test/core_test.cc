// Randomized differential test of the plain C++ core against a brute-force reference (an
// ordered map of every prefix, probed from the longest length down), plus the errno paths of
// the socket helpers. Built with -fsanitize=address,undefined by
// test/native/sanitizer.test.ts; any mismatch or sanitizer report fails it.
//
//   core_test [seed] [rounds]
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "lpm/lpm_trie.h"
#include "original_dst.h"
#include "socket_opts.h"

using interpose::lpm::kNoMatch;
using interpose::lpm::LpmTrie;
using Bytes = std::array<uint8_t, 16>;

namespace {

uint64_t rngState;
uint64_t next() {  // xorshift64*
  rngState ^= rngState >> 12;
  rngState ^= rngState << 25;
  rngState ^= rngState >> 27;
  return rngState * 0x2545F4914F6CDD1Dull;
}
unsigned below(unsigned n) { return static_cast<unsigned>(next() % n); }

Bytes masked(const Bytes& a, unsigned len) {
  Bytes out{};
  for (unsigned i = 0; i < 16; ++i) {
    const unsigned bits = len > 8 * i ? len - 8 * i : 0;
    out[i] = bits >= 8 ? a[i] : static_cast<uint8_t>(a[i] & ~(0xffu >> bits));
  }
  return out;
}

uint32_t toV4(const Bytes& a) {
  return (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | a[3];
}

// The oracle: every prefix of one family, keyed by (masked address, length).
struct Reference {
  unsigned maxLen;
  std::map<std::pair<Bytes, unsigned>, int32_t> prefixes;

  int32_t lookup(const Bytes& a) const {
    for (unsigned l = maxLen + 1; l-- > 0;) {
      auto it = prefixes.find({masked(a, l), l});
      if (it != prefixes.end()) return it->second;
    }
    return kNoMatch;
  }
};

int failures = 0;
void check(bool ok, const char* what, uint64_t seed) {
  if (ok) return;
  std::fprintf(stderr, "MISMATCH: %s (seed %" PRIu64 ")\n", what, seed);
  if (++failures > 10) std::exit(1);
}

Bytes randomAddress(unsigned family, const std::vector<std::pair<Bytes, unsigned>>& known) {
  Bytes a{};
  const unsigned n = family == 4 ? 4 : 16;
  for (unsigned i = 0; i < n; ++i) a[i] = static_cast<uint8_t>(next());
  // Most addresses fall inside a known prefix so every level of the tables is exercised.
  if (!known.empty() && below(4) != 0) {
    const auto& [p, len] = known[below(static_cast<unsigned>(known.size()))];
    const Bytes keep = masked(p, len);
    for (unsigned i = 0; i < n; ++i) {
      const unsigned bits = len > 8 * i ? len - 8 * i : 0;
      const uint8_t hostMask = bits >= 8 ? 0 : static_cast<uint8_t>(0xffu >> bits);
      a[i] = static_cast<uint8_t>((keep[i] & ~hostMask) | (a[i] & hostMask));
    }
  }
  return a;
}

std::pair<Bytes, unsigned> randomPrefix(unsigned family,
                                        const std::vector<std::pair<Bytes, unsigned>>& known) {
  const unsigned maxLen = family == 4 ? 32 : 128;
  const unsigned len = below(maxLen + 1);
  // Unmasked on purpose: the tables must ignore host bits.
  return {randomAddress(family, known), len};
}

void runFamily(unsigned family, uint64_t seed, unsigned rounds) {
  LpmTrie trie;
  Reference ref{family == 4 ? 32u : 128u, {}};
  std::vector<std::pair<Bytes, unsigned>> known;

  for (unsigned round = 0; round < rounds; ++round) {
    for (unsigned i = 0; i < 200; ++i) {
      const unsigned op = below(10);
      std::pair<Bytes, unsigned> p;
      if (op < 3 && !known.empty()) {
        p = known[below(static_cast<unsigned>(known.size()))];  // existing: delete or replace
      } else {
        p = randomPrefix(family, known);
      }
      const auto key = std::make_pair(masked(p.first, p.second), p.second);
      if (op < 2) {
        const bool expect = ref.prefixes.erase(key) == 1;
        const bool got = family == 4 ? trie.erase4(toV4(p.first), p.second)
                                     : trie.erase6(p.first.data(), p.second);
        check(got == expect, "erase result", seed);
      } else {
        const int32_t value = static_cast<int32_t>(next() & 0x7fffffff);
        const bool expect = ref.prefixes.find(key) == ref.prefixes.end();
        ref.prefixes[key] = value;
        const bool got = family == 4 ? trie.insert4(toV4(p.first), p.second, value)
                                     : trie.insert6(p.first.data(), p.second, value);
        check(got == expect, "insert freshness", seed);
        known.push_back(p);
      }
    }
    // A batch through insertMany; its last prefix repeats its first, and the later value wins.
    {
      constexpr unsigned kBatch = 24;
      std::vector<std::pair<Bytes, unsigned>> batch;
      std::vector<uint32_t> a4;
      std::vector<uint8_t> a6(16 * kBatch), lens;
      std::vector<int32_t> values;
      for (unsigned i = 0; i < kBatch; ++i) {
        batch.push_back(i + 1 == kBatch ? batch[0] : randomPrefix(family, known));
        const auto& [addr, len] = batch.back();
        values.push_back(static_cast<int32_t>(next() & 0x7fffffff));
        lens.push_back(static_cast<uint8_t>(len));
        a4.push_back(toV4(addr));
        std::memcpy(&a6[16 * i], addr.data(), 16);
        ref.prefixes[std::make_pair(masked(addr, len), len)] = values.back();
        known.push_back(batch.back());
      }
      if (family == 4) {
        trie.insertMany4(a4.data(), lens.data(), values.data(), kBatch);
      } else {
        trie.insertMany6(a6.data(), lens.data(), values.data(), kBatch);
      }
    }
    check(trie.size() == ref.prefixes.size() + 0, "size", seed);

    constexpr unsigned kLookups = 256;
    std::vector<uint32_t> v4(kLookups);
    std::vector<uint8_t> v6(kLookups * 16);
    std::vector<int32_t> expect(kLookups), got(kLookups);
    for (unsigned i = 0; i < kLookups; ++i) {
      const Bytes a = randomAddress(family, known);
      expect[i] = ref.lookup(a);
      if (family == 4) {
        v4[i] = toV4(a);
        check(trie.lookup4(v4[i]) == expect[i], "lookup4", seed);
        // The same address written as IPv4-mapped IPv6 must give the same answer.
        Bytes mapped{};
        mapped[10] = mapped[11] = 0xff;
        std::memcpy(&mapped[12], a.data(), 4);
        check(trie.lookup6(mapped.data()) == expect[i], "lookup6 of IPv4-mapped", seed);
      } else {
        std::memcpy(&v6[16 * i], a.data(), 16);
        const bool mapped = interpose::lpm::isV4Mapped(a.data());
        if (!mapped) check(trie.lookup6(a.data()) == expect[i], "lookup6", seed);
      }
    }
    if (family == 4) {
      trie.lookupMany4(v4.data(), got.data(), kLookups);
      for (unsigned i = 0; i < kLookups; ++i) check(got[i] == expect[i], "lookupMany4", seed);
    } else {
      trie.lookupMany6(v6.data(), got.data(), kLookups);
      for (unsigned i = 0; i < kLookups; ++i) {
        if (!interpose::lpm::isV4Mapped(&v6[16 * i])) {
          check(got[i] == expect[i], "lookupMany6", seed);
        }
      }
    }
  }

  // Drain everything: the tables must end empty and match nothing.
  for (const auto& [key, value] : std::map(ref.prefixes)) {
    (void)value;
    const bool got = family == 4 ? trie.erase4(toV4(key.first), key.second)
                                 : trie.erase6(key.first.data(), key.second);
    check(got, "drain erase", seed);
  }
  check(trie.size() == 0, "empty after drain", seed);
  Bytes any{};
  any[0] = 0x20;
  check((family == 4 ? trie.lookup4(0x0a000001) : trie.lookup6(any.data())) == kNoMatch,
        "no match after drain", seed);
}

void socketErrors() {
  interpose::OriginalDst dst;
  const char* syscall = "";
  check(interpose::readOriginalDst(-1, &dst, &syscall) == EBADF, "originalDst(-1) EBADF", 0);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0) {
    check(interpose::readOriginalDst(pair[0], &dst, &syscall) == EAFNOSUPPORT,
          "originalDst(unix socket) EAFNOSUPPORT", 0);
    check(interpose::setMark(-1, 1, &syscall) == EBADF, "setMark(-1) EBADF", 0);
    check(interpose::setTransparent(-1, 4, &syscall) == EBADF, "setTransparent(-1) EBADF", 0);
    close(pair[0]);
    close(pair[1]);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t seed = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20261123;
  const unsigned rounds = argc > 2 ? static_cast<unsigned>(std::atoi(argv[2])) : 60;
  std::printf("core_test seed=%" PRIu64 " rounds=%u\n", seed, rounds);
  rngState = seed | 1;
  runFamily(4, seed, rounds);
  runFamily(6, seed, rounds);
  socketErrors();
  if (failures != 0) return 1;
  std::printf("core_test ok\n");
  return 0;
}

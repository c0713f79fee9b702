#include "trie_binding.h"

#include <cstdint>
#include <type_traits>

namespace interpose {
namespace {

// Identifies externals created here, so a foreign external is refused instead of misread.
constexpr napi_type_tag kTrieTag = {0x696e74657270736full, 0x6c706d7472696531ull};

struct TrieBox {
  lpm::LpmTrie trie;
  int64_t reported = 0;  // bytes announced to V8 with napi_adjust_external_memory
};

void Finalize(napi_env env, void* data, void* /*hint*/) {
  auto* box = static_cast<TrieBox*>(data);
  int64_t ignored;
  napi_adjust_external_memory(env, -box->reported, &ignored);
  delete box;
}

// Tells V8 about memory held outside its heap so a dropped trie is collected promptly; only
// large changes, since the GC only needs the scale.
void ReportMemory(napi_env env, TrieBox* box) {
  const int64_t now = static_cast<int64_t>(box->trie.memoryBytes());
  const int64_t delta = now - box->reported;
  if (delta > (256 << 20) || delta < -(256 << 20)) {
    int64_t ignored;
    napi_adjust_external_memory(env, delta, &ignored);
    box->reported = now;
  }
}

template <size_t N>
bool Args(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return false;
  if (argc < N) {
    napi_throw_type_error(env, nullptr, "missing arguments");
    return false;
  }
  return true;
}

TrieBox* Box(napi_env env, napi_value handle) {
  bool ok = false;
  if (napi_check_object_type_tag(env, handle, &kTrieTag, &ok) != napi_ok || !ok) {
    napi_throw_type_error(env, nullptr, "expected a trie handle from createTrie");
    return nullptr;
  }
  void* data = nullptr;
  napi_get_value_external(env, handle, &data);
  return static_cast<TrieBox*>(data);
}

// The hot lookups skip the tag check: the handle comes from a private field of CidrTrie. They
// still refuse anything that is not an external.
TrieBox* FastBox(napi_env env, napi_value handle) {
  void* data = nullptr;
  if (napi_get_value_external(env, handle, &data) != napi_ok || data == nullptr) {
    napi_throw_type_error(env, nullptr, "expected a trie handle from createTrie");
    return nullptr;
  }
  return static_cast<TrieBox*>(data);
}

uint32_t U32(napi_env env, napi_value v) {
  uint32_t out = 0;
  napi_get_value_uint32(env, v, &out);
  return out;
}

int32_t I32(napi_env env, napi_value v) {
  int32_t out = 0;
  napi_get_value_int32(env, v, &out);
  return out;
}

napi_value Bool(napi_env env, bool b) {
  napi_value r;
  napi_get_boolean(env, b, &r);
  return r;
}

napi_value Int(napi_env env, int32_t i) {
  napi_value r;
  napi_create_int32(env, i, &r);
  return r;
}

// A typed array's data, or nullptr (with a TypeError pending) when it is not of `type`.
void* TypedData(napi_env env, napi_value v, napi_typedarray_type type, size_t* length) {
  bool is = false;
  napi_is_typedarray(env, v, &is);
  napi_typedarray_type actual;
  void* data = nullptr;
  if (!is || napi_get_typedarray_info(env, v, &actual, length, &data, nullptr, nullptr) != napi_ok ||
      actual != type) {
    napi_throw_type_error(env, nullptr, "unexpected typed array type");
    return nullptr;
  }
  return data;
}

const uint8_t* Bytes16(napi_env env, napi_value v) {
  size_t length = 0;
  auto* data = static_cast<const uint8_t*>(TypedData(env, v, napi_uint8_array, &length));
  if (data != nullptr && length != 16) {
    napi_throw_type_error(env, nullptr, "expected a Uint8Array of 16 bytes");
    return nullptr;
  }
  return data;
}

// The prefix length argument into *len, or false (with a RangeError pending) when it is above max.
bool PrefixLength(napi_env env, napi_value v, unsigned max, unsigned* len) {
  *len = U32(env, v);
  if (*len <= max) return true;
  napi_throw_range_error(env, nullptr, max == 32 ? "prefix length above 32" : "prefix length above 128");
  return false;
}

napi_value Double(napi_env env, double d) {
  napi_value r;
  napi_create_double(env, d, &r);
  return r;
}

napi_value CreateTrie(napi_env env, napi_callback_info /*info*/) {
  auto* box = new TrieBox();
  napi_value ext;
  if (napi_create_external(env, box, Finalize, nullptr, &ext) != napi_ok) {
    delete box;
    return nullptr;
  }
  napi_type_tag_object(env, ext, &kTrieTag);
  return ext;
}

// An address argument: IPv4 as a number, IPv6 as a Uint8Array of 16 bytes. False with a
// TypeError pending when it is not one.
bool ReadAddress(napi_env env, napi_value v, uint32_t* out) {
  *out = U32(env, v);
  return true;
}

bool ReadAddress(napi_env env, napi_value v, const uint8_t** out) {
  *out = Bytes16(env, v);
  return *out != nullptr;
}

template <typename Addr>
constexpr unsigned kMaxLen = std::is_same_v<Addr, uint32_t> ? 32 : 128;

// The (h, addr, len, ...) that trieInsert4/6 and trieErase4/6 start with, checked: the trie,
// the address and a prefix length within the family's; false with an error pending.
template <typename Addr, size_t N>
bool PrefixArgs(napi_env env, napi_callback_info info, napi_value (&argv)[N], TrieBox** box, Addr* addr,
                unsigned* len) {
  if (!Args(env, info, argv)) return false;
  *box = Box(env, argv[0]);
  return *box != nullptr && ReadAddress(env, argv[1], addr) && PrefixLength(env, argv[2], kMaxLen<Addr>, len);
}

// trieInsert4/6(h, addr, len, value) -> whether the prefix is new.
template <typename Addr>
napi_value Insert(napi_env env, napi_callback_info info, bool (lpm::LpmTrie::*insert)(Addr, unsigned, int32_t)) {
  napi_value argv[4];
  TrieBox* box = nullptr;
  Addr addr{};
  unsigned len = 0;
  if (!PrefixArgs(env, info, argv, &box, &addr, &len)) return nullptr;
  const bool fresh = (box->trie.*insert)(addr, len, I32(env, argv[3]));
  ReportMemory(env, box);
  return Bool(env, fresh);
}

// trieErase4/6(h, addr, len) -> whether the prefix was there.
template <typename Addr>
napi_value Erase(napi_env env, napi_callback_info info, bool (lpm::LpmTrie::*erase)(Addr, unsigned)) {
  napi_value argv[3];
  TrieBox* box = nullptr;
  Addr addr{};
  unsigned len = 0;
  if (!PrefixArgs(env, info, argv, &box, &addr, &len)) return nullptr;
  const bool found = (box->trie.*erase)(addr, len);
  ReportMemory(env, box);
  return Bool(env, found);
}

// trieLookup4/6(h, addr) -> the longest match's value, or -1.
template <typename Addr>
napi_value Lookup(napi_env env, napi_callback_info info, int32_t (lpm::LpmTrie::*lookup)(Addr) const) {
  napi_value argv[2];
  if (!Args(env, info, argv)) return nullptr;
  TrieBox* box = FastBox(env, argv[0]);
  Addr addr{};
  if (box == nullptr || !ReadAddress(env, argv[1], &addr)) return nullptr;
  return Int(env, (box->trie.*lookup)(addr));
}

napi_value Insert4(napi_env env, napi_callback_info info) {
  return Insert<uint32_t>(env, info, &lpm::LpmTrie::insert4);
}

napi_value Erase4(napi_env env, napi_callback_info info) {
  return Erase<uint32_t>(env, info, &lpm::LpmTrie::erase4);
}

napi_value Lookup4(napi_env env, napi_callback_info info) {
  return Lookup<uint32_t>(env, info, &lpm::LpmTrie::lookup4);
}

napi_value Insert6(napi_env env, napi_callback_info info) {
  return Insert<const uint8_t*>(env, info, &lpm::LpmTrie::insert6);
}

napi_value Erase6(napi_env env, napi_callback_info info) {
  return Erase<const uint8_t*>(env, info, &lpm::LpmTrie::erase6);
}

napi_value Lookup6(napi_env env, napi_callback_info info) {
  return Lookup<const uint8_t*>(env, info, &lpm::LpmTrie::lookup6);
}

// Arguments of trieInsertMany4/6: (h, addrs, lens: Uint8Array, values: Int32Array), with
// `perEntry` elements of type `addrType` in addrs per prefix. Checks the lengths agree and
// every prefix length is at most maxLen (the tables rely on it).
struct ManyArgs {
  TrieBox* box;
  const void* addrs;
  const uint8_t* lens;
  const int32_t* values;
  size_t n;
};

bool UnpackMany(napi_env env, napi_callback_info info, napi_typedarray_type addrType,
                size_t perEntry, unsigned maxLen, ManyArgs* out) {
  napi_value argv[4];
  if (!Args(env, info, argv)) return false;
  out->box = Box(env, argv[0]);
  if (out->box == nullptr) return false;
  size_t elems = 0, nLens = 0, nValues = 0;
  out->addrs = TypedData(env, argv[1], addrType, &elems);
  if (out->addrs == nullptr) return false;
  out->lens = static_cast<const uint8_t*>(TypedData(env, argv[2], napi_uint8_array, &nLens));
  if (out->lens == nullptr) return false;
  out->values = static_cast<const int32_t*>(TypedData(env, argv[3], napi_int32_array, &nValues));
  if (out->values == nullptr) return false;
  out->n = elems / perEntry;
  if (elems % perEntry != 0 || nLens < out->n || nValues < out->n) {
    napi_throw_range_error(env, nullptr, "addrs, lens and values must describe the same prefixes");
    return false;
  }
  for (size_t i = 0; i < out->n; ++i) {
    if (out->lens[i] > maxLen) {
      napi_throw_range_error(env, nullptr, "prefix length out of range");
      return false;
    }
  }
  return true;
}

// trieInsertMany4(h, addrs: Uint32Array, lens, values): one crossing for a whole table. At a
// million prefixes the per-call cost of insert (argument unpacking, the handle's type-tag
// check, memory reporting) was as large as the inserts themselves.
// trieInsertMany6(h, addrs: Uint8Array of 16 bytes per prefix, lens, values) likewise.
template <typename Addr>
napi_value InsertMany(napi_env env, napi_callback_info info, napi_typedarray_type addrType, size_t perEntry,
                      unsigned maxLen,
                      void (lpm::LpmTrie::*insertMany)(const Addr*, const uint8_t*, const int32_t*, size_t)) {
  ManyArgs a;
  if (!UnpackMany(env, info, addrType, perEntry, maxLen, &a)) return nullptr;
  (a.box->trie.*insertMany)(static_cast<const Addr*>(a.addrs), a.lens, a.values, a.n);
  ReportMemory(env, a.box);
  return nullptr;
}

napi_value InsertMany4(napi_env env, napi_callback_info info) {
  return InsertMany<uint32_t>(env, info, napi_uint32_array, 1, 32, &lpm::LpmTrie::insertMany4);
}

napi_value InsertMany6(napi_env env, napi_callback_info info) {
  return InsertMany<uint8_t>(env, info, napi_uint8_array, 16, 128, &lpm::LpmTrie::insertMany6);
}

// trieLookupMany4(h, addrs: Uint32Array, out) / trieLookupMany6(h, addrs: Uint8Array of 16
// bytes per address, out): `perEntry` elements of addrType per address, one result each.
template <typename Addr>
napi_value LookupMany(napi_env env, napi_callback_info info, napi_typedarray_type addrType,
                      size_t perEntry, void (lpm::LpmTrie::*lookupMany)(const Addr*, int32_t*, size_t) const) {
  napi_value argv[3];
  if (!Args(env, info, argv)) return nullptr;
  TrieBox* box = Box(env, argv[0]);
  if (box == nullptr) return nullptr;
  size_t n = 0, outLen = 0;
  auto* addrs = static_cast<const Addr*>(TypedData(env, argv[1], addrType, &n));
  if (addrs == nullptr) return nullptr;
  auto* out = static_cast<int32_t*>(TypedData(env, argv[2], napi_int32_array, &outLen));
  if (out == nullptr) return nullptr;
  if (n % perEntry != 0 || outLen < n / perEntry) {
    napi_throw_range_error(env, nullptr, perEntry == 1 ? "out is shorter than addrs"
                                                       : "addrs must hold 16 bytes per entry of out");
    return nullptr;
  }
  (box->trie.*lookupMany)(addrs, out, n / perEntry);
  return nullptr;
}

napi_value LookupMany4(napi_env env, napi_callback_info info) {
  return LookupMany<uint32_t>(env, info, napi_uint32_array, 1, &lpm::LpmTrie::lookupMany4);
}

napi_value LookupMany6(napi_env env, napi_callback_info info) {
  return LookupMany<uint8_t>(env, info, napi_uint8_array, 16, &lpm::LpmTrie::lookupMany6);
}

// trieSize(h) / trieMemoryBytes(h): one count about the trie, as a number.
template <size_t (lpm::LpmTrie::*count)() const>
napi_value Count(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!Args(env, info, argv)) return nullptr;
  TrieBox* box = Box(env, argv[0]);
  if (box == nullptr) return nullptr;
  return Double(env, static_cast<double>((box->trie.*count)()));
}

}  // namespace

const lpm::LpmTrie* TrieFromHandle(napi_env env, napi_value handle) {
  TrieBox* box = Box(env, handle);
  return box == nullptr ? nullptr : &box->trie;
}

void InitTrieBindings(napi_env env, napi_value exports) {
  const struct {
    const char* name;
    napi_callback fn;
  } fns[] = {
      {"createTrie", CreateTrie},
      {"trieInsert4", Insert4},
      {"trieErase4", Erase4},
      {"trieLookup4", Lookup4},
      {"trieInsert6", Insert6},
      {"trieErase6", Erase6},
      {"trieLookup6", Lookup6},
      {"trieLookupMany4", LookupMany4},
      {"trieLookupMany6", LookupMany6},
      {"trieSize", Count<&lpm::LpmTrie::size>},
      {"trieMemoryBytes", Count<&lpm::LpmTrie::memoryBytes>},
      {"trieInsertMany4", InsertMany4},
      {"trieInsertMany6", InsertMany6},
  };
  for (const auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.fn, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
}

}  // namespace interpose

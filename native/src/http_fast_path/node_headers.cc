#include "http_fast_path/node_headers.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace interpose::http_fast_path {
namespace {

bool isOneOf(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// internal/http2/util.js kSingleValueHeaders (the pseudo-headers never reach here).
bool http2SingleValue(std::string_view n) {
  return isOneOf(n, {"access-control-allow-credentials", "access-control-max-age", "access-control-request-method", "age", "authorization",
                     "content-encoding", "content-language", "content-length", "content-location", "content-md5", "content-range",
                     "content-type", "date", "dnt", "etag", "expires", "from", "host", "if-match", "if-modified-since", "if-none-match",
                     "if-range", "if-unmodified-since", "last-modified", "location", "max-forwards", "proxy-authorization", "range",
                     "referer", "retry-after", "tk", "upgrade-insecure-requests", "user-agent", "x-content-type-options"});
}

// _http_incoming.js matchKnownFields: the fields whose repeats are dropped.
bool http1DropsRepeats(std::string_view n) {
  return isOneOf(n, {"content-type", "content-length", "user-agent", "referer", "host", "authorization", "proxy-authorization",
                     "if-modified-since", "if-unmodified-since", "from", "location", "max-forwards", "retry-after", "etag",
                     "last-modified", "server", "age", "expires"});
}

// Fields grouped by name in order of first occurrence; each group's values in order.
struct Group {
  std::string name;
  std::vector<std::string> values;
};

HeaderList flatten(std::vector<Group>& groups) {
  HeaderList out;
  for (Group& g : groups) {
    for (std::string& v : g.values) out.emplace_back(g.name, std::move(v));
  }
  return out;
}

// Pairwise for a usual head (no allocation on the request path); with a hash set beyond, since
// an upstream's response head may hold thousands of fields within its 64 KiB.
bool hasRepeatedName(const HeaderList& fields) {
  constexpr size_t kPairwiseMax = 32;
  if (fields.size() <= kPairwiseMax) {
    for (size_t i = 1; i < fields.size(); i++) {
      for (size_t j = 0; j < i; j++) {
        if (fields[i].first == fields[j].first) return true;
      }
    }
    return false;
  }
  std::unordered_set<std::string_view> seen;
  seen.reserve(fields.size());
  for (const auto& field : fields) {
    if (!seen.insert(field.first).second) return true;
  }
  return false;
}

// Node's merge of repeated fields (names lowercase): a name `keepsFirst` says keeps its first
// value, set-cookie stays several fields listed next to its first, cookie is joined with "; ",
// any other with ", ". A list without a repeated name (the usual one) is returned as it came.
HeaderList mergeRepeats(HeaderList fields, bool (*keepsFirst)(std::string_view)) {
  if (!hasRepeatedName(fields)) return fields;
  std::vector<Group> groups;
  std::unordered_map<std::string_view, size_t> index;  // name -> its group; views into `fields`
  for (auto& [name, value] : fields) {
    const auto [it, first] = index.emplace(name, groups.size());
    if (first) {
      groups.push_back({name, {std::move(value)}});
      continue;
    }
    Group& g = groups[it->second];
    if (keepsFirst(name)) {
      // kept once: the first
    } else if (name == "set-cookie") {
      g.values.push_back(std::move(value));  // a list, listed again as several fields
    } else {
      g.values[0].append(name == "cookie" ? "; " : ", ").append(value);
    }
  }
  return flatten(groups);
}

}  // namespace

HeaderList nodeHttp2RequestFields(HeaderList fields) { return mergeRepeats(std::move(fields), http2SingleValue); }

void nodeHttp1ResponseFields(const std::vector<std::pair<std::string_view, std::string_view>>& fields, HeaderList* out) {
  out->resize(fields.size());
  for (size_t i = 0; i < fields.size(); i++) {
    auto& [name, value] = (*out)[i];
    name.assign(fields[i].first);
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    value.assign(fields[i].second);
  }
  if (hasRepeatedName(*out)) *out = mergeRepeats(std::move(*out), http1DropsRepeats);
}

}  // namespace interpose::http_fast_path

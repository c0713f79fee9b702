#include "http_fast_path/node_headers.h"

#include <algorithm>
#include <cctype>

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

Group* find(std::vector<Group>& groups, std::string_view name) {
  for (Group& g : groups) {
    if (g.name == name) return &g;
  }
  return nullptr;
}

HeaderList flatten(std::vector<Group>& groups) {
  HeaderList out;
  for (Group& g : groups) {
    for (std::string& v : g.values) out.emplace_back(g.name, std::move(v));
  }
  return out;
}

bool hasRepeatedName(const HeaderList& fields) {
  // Quadratic, but over a head's fields (the fast path takes at most 100), usually a handful.
  for (size_t i = 1; i < fields.size(); i++) {
    for (size_t j = 0; j < i; j++) {
      if (fields[i].first == fields[j].first) return true;
    }
  }
  return false;
}

// Node's merge of repeated fields (names lowercase): a name `keepsFirst` says keeps its first
// value, set-cookie stays several fields listed next to its first, cookie is joined with "; ",
// any other with ", ". A list without a repeated name (the usual one) is returned as it came.
HeaderList mergeRepeats(HeaderList fields, bool (*keepsFirst)(std::string_view)) {
  if (!hasRepeatedName(fields)) return fields;
  std::vector<Group> groups;
  for (auto& [name, value] : fields) {
    Group* g = find(groups, name);
    if (g == nullptr) {
      groups.push_back({std::move(name), {std::move(value)}});
    } else if (keepsFirst(name)) {
      // kept once: the first
    } else if (name == "set-cookie") {
      g->values.push_back(std::move(value));  // a list, listed again as several fields
    } else {
      g->values[0].append(name == "cookie" ? "; " : ", ").append(value);
    }
  }
  return flatten(groups);
}

}  // namespace

HeaderList nodeHttp2RequestFields(HeaderList fields) { return mergeRepeats(std::move(fields), http2SingleValue); }

HeaderList nodeHttp1ResponseFields(const std::vector<std::pair<std::string_view, std::string_view>>& fields) {
  HeaderList lowered;
  lowered.reserve(fields.size());
  for (const auto& [name, value] : fields) {
    std::string lower(name);
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    lowered.emplace_back(std::move(lower), std::string(value));
  }
  return mergeRepeats(std::move(lowered), http1DropsRepeats);
}

}  // namespace interpose::http_fast_path

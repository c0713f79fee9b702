// The checks the C++ test binaries share: CHECK counts a failure and goes on, so one run
// reports every broken expectation; main() exits non-zero when `check_failures` is not 0.
#pragma once

#include <cstdio>

inline int check_failures = 0;

#define CHECK(cond)                                                                  \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      check_failures++;                                                              \
    }                                                                                \
  } while (0)

// ssbnet: the serial backend, the reference every other backend is tested against.
//     ssb::sample(ssb::serial{}, weights, x, xr);
#pragma once

#include <cstdint>

#include "detail/verbs.hpp"
#include "types.hpp"

namespace ssb {
namespace detail {

template <>
struct launcher<serial> {
  static constexpr bool available = true;
  template <class F>
  static void for_each(const serial&, std::int64_t count, F&& f, std::int64_t /*work*/) {
    for (std::int64_t i = 0; i < count; ++i) f(i);
  }
};

}  // namespace detail
}  // namespace ssb

// ssbnet: SSBNet's saliency sampling kernels. Umbrella header: the core and the serial backend.
// Other backends: <ssb/openmp.hpp> (ssbnet::openmp).
#pragma once

#include "backward.hpp"
#include "dense.hpp"
#include "host.hpp"
#include "kernels.hpp"
#include "pair_dot.hpp"
#include "pair_dot_rows.hpp"
#include "planar.hpp"
#include "planar_dots.hpp"
#include "planar_packed.hpp"
#include "serial.hpp"
#include "types.hpp"
#include "vector.hpp"
#include "weights.hpp"

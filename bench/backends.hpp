// ssbnet benchmarks: the registry of backends and the run options.
//
// A backend is a small type with
//     std::string name() const;   // in benchmark names: "serial", "openmp2" (thread count
//     appended) int threads() const;        // host threads it uses (the bandwidth reference uses
//     as many) Exec exec() const;          // the execution tag passed to the verbs void sync()
//     const;          // waits for the work issued so far (no-op on host backends)
// and one line in for_each_backend below, guarded by the macro that its CMake option defines
// (bench/CMakeLists.txt). Every verb benchmark is a template over it. The buffers are host memory
// (problem.hpp); a device backend (CUDA, Kokkos) adds its own Problem mirror and its own
// bandwidth reference, and is registered the same way. The Kokkos backend runs on host spaces over
// the same host buffers (bench/CMakeLists.txt: SSB_ENABLE_KOKKOS); it is registered before the
// native OpenMP backend, which stays the primary one, so the report puts Kokkos-OpenMP next to it.
#pragma once

#include <cctype>
#include <ssb/ssb.hpp>
#include <string>
#if SSB_BENCH_OPENMP
#include <ssb/openmp.hpp>
#endif
#if SSB_BENCH_KOKKOS
#include <cstdlib>
#include <ssb/kokkos.hpp>
#endif

namespace ssb_bench {

struct Options {
  int threads = 2;      // SSB_BENCH_THREADS or --ssb_threads=N: OpenMP and OpenBLAS threads
  bool full = false;    // SSB_BENCH_FULL=1 or --ssb_full: every combination (slow)
  std::string primary;  // name of the backend the report's targets use
};

struct SerialBackend {
  std::string name() const { return "serial"; }
  int threads() const { return 1; }
  ssb::serial exec() const { return {}; }
  void sync() const {}
};

#if SSB_BENCH_OPENMP
struct OpenmpBackend {
  int num_threads;
  std::string name() const { return "openmp" + std::to_string(num_threads); }
  int threads() const { return num_threads; }
  ssb::openmp exec() const { return ssb::openmp{num_threads}; }
  void sync() const {}
};
#endif

#if SSB_BENCH_KOKKOS
// Kokkos (SSB_ENABLE_KOKKOS): initialised on first use with the run's thread count (--ssb_threads,
// default 2; Kokkos fixes it at initialisation), finalised at exit.
inline void ensure_kokkos(int threads) {
  if (Kokkos::is_initialized()) return;
#if KOKKOS_VERSION >= 40000
  Kokkos::initialize(Kokkos::InitializationSettings().set_num_threads(threads));
#else
  Kokkos::InitArguments arguments;
  arguments.num_threads = threads;
  Kokkos::initialize(arguments);
#endif
  std::atexit([] { Kokkos::finalize(); });
}

// The Kokkos backend on one host execution space, raw-pointer views (the same buffers as the
// other backends): "kokkos_openmp2" next to the native "openmp2", or "kokkos_serial".
template <class Space>
struct KokkosBackend {
  int num_threads;
  std::string name() const {
    std::string space = Space::name();
    for (char& c : space) c = char(std::tolower(static_cast<unsigned char>(c)));
    return "kokkos_" + space + (space == "serial" ? "" : std::to_string(num_threads));
  }
  int threads() const { return num_threads; }
  Space exec() const {
    ensure_kokkos(num_threads);
    return Space{};
  }
  void sync() const {}  // every verb fences its space before it returns
};
#endif

// Calls f(backend) for every built backend, the primary one (options.primary) last.
template <class F>
void for_each_backend(const Options& options, F&& f) {
  f(SerialBackend{});
#if SSB_BENCH_KOKKOS && defined(KOKKOS_ENABLE_OPENMP)
  f(KokkosBackend<Kokkos::OpenMP>{options.threads});
#elif SSB_BENCH_KOKKOS && defined(KOKKOS_ENABLE_SERIAL)
  f(KokkosBackend<Kokkos::Serial>{1});
#endif
#if SSB_BENCH_OPENMP
  f(OpenmpBackend{options.threads});
#else
  (void)options;
#endif
}

// The backend whose numbers the report's targets are checked against: the last one registered.
inline std::string primary_backend_name(const Options& options) {
  std::string name;
  for_each_backend(options, [&name](const auto& backend) { name = backend.name(); });
  return name;
}

}  // namespace ssb_bench

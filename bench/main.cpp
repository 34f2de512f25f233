// ssbnet benchmarks: options, context and registration.
//
//   ssb_bench [--ssb_threads=N] [--ssb_full] [Google Benchmark flags]
//     --ssb_threads=N  OpenMP backend and OpenBLAS threads (default: SSB_BENCH_THREADS, else 2)
//     --ssb_full       every backend x verb x layout x saliency (default: SSB_BENCH_FULL=1; slow)
// Defaults put before the user's flags (later flags win):
//     --benchmark_min_time=0.2 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
// Subsets: --benchmark_filter='^sample/openmp2/NHWC/sigmoid/imagenet' (names: problem.hpp).
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#if SSB_BENCH_OPENBLAS
#include <cblas.h>
#endif

#include "problem.hpp"

namespace {

using ssb_bench::Options;

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line
                                        : line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

bool cpu_has(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0)
      return (line + " ").find(" " + flag + " ") != std::string::npos;
  }
  return false;
}

int parse_threads(const std::string& text) {
  const int threads = std::atoi(text.c_str());
  if (threads <= 0) {
    std::fprintf(stderr, "ssb_bench: bad thread count '%s'\n", text.c_str());
    std::exit(2);
  }
  return threads;
}

// Takes the --ssb_* flags out of argv; returns the options.
Options parse(int& argc, char** argv) {
  Options options;
  options.threads = parse_threads(env_or("SSB_BENCH_THREADS", "2"));
  options.full = env_or("SSB_BENCH_FULL", "0") == "1";
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--ssb_threads=", 0) == 0) {
      options.threads = parse_threads(arg.substr(14));
    } else if (arg == "--ssb_full") {
      options.full = true;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  options.primary = ssb_bench::primary_backend_name(options);
  return options;
}

void add_context(const Options& options) {
  using benchmark::AddCustomContext;
  std::string backends;
  ssb_bench::for_each_backend(options, [&backends](const auto& b) {
    backends += (backends.empty() ? "" : ",") + b.name();
  });
  AddCustomContext("ssb_backends", backends);
  AddCustomContext("ssb_primary_backend", options.primary);
  AddCustomContext("ssb_threads", std::to_string(options.threads));
  AddCustomContext("ssb_full", options.full ? "1" : "0");
  AddCustomContext("ssbnet_version", SSB_BENCH_SSBNET_VERSION);
  AddCustomContext("cpu_model", cpu_model());
  AddCustomContext("cpu_avx512f", cpu_has("avx512f") ? "yes" : "no");
  AddCustomContext("cache_sizes_sysconf",
                   "L1d " + std::to_string(sysconf(_SC_LEVEL1_DCACHE_SIZE) / 1024) + "K, L2 " +
                       std::to_string(sysconf(_SC_LEVEL2_CACHE_SIZE) / 1024) + "K, L3 " +
                       std::to_string(sysconf(_SC_LEVEL3_CACHE_SIZE) / 1024) + "K");
  utsname u{};
  if (uname(&u) == 0) AddCustomContext("kernel", std::string(u.sysname) + " " + u.release);
#if defined(__clang__)
  AddCustomContext("compiler", std::string("clang ") + __VERSION__);
#elif defined(__GNUC__)
  AddCustomContext("compiler", std::string("gcc ") + __VERSION__);
#else
  AddCustomContext("compiler", __VERSION__);
#endif
  AddCustomContext("build_type", SSB_BENCH_BUILD_TYPE);
  AddCustomContext("cxx_flags", SSB_BENCH_CXX_FLAGS);
  AddCustomContext("libbenchmark_version", SSB_BENCH_LIBBENCHMARK_VERSION);
#ifdef _OPENMP
  AddCustomContext("openmp", std::to_string(_OPENMP) + ", omp_get_max_threads " +
                                 std::to_string(omp_get_max_threads()));
#else
  AddCustomContext("openmp", "not built");
#endif
  for (const char* name :
       {"OMP_NUM_THREADS", "OMP_PROC_BIND", "OMP_PLACES", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
        "OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OPENBLAS_L2_SIZE"}) {
    AddCustomContext(std::string("env_") + name, env_or(name, "(unset)"));
  }
#if SSB_BENCH_OPENBLAS
  AddCustomContext("openblas_config", openblas_get_config());
  AddCustomContext("openblas_corename", openblas_get_corename());
  AddCustomContext("openblas_threads", std::to_string(openblas_get_num_threads()));
  const int parallel = openblas_get_parallel();
  AddCustomContext("openblas_parallel", parallel == 0   ? "sequential"
                                        : parallel == 1 ? "pthreads"
                                                        : "openmp");
#else
  AddCustomContext("openblas_config", "not built");
#endif
  AddCustomContext("bytes_model", "bench/problem.hpp; pct_of_bw_ref = 100 * reference time / time");
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
#if SSB_BENCH_OPENBLAS
  openblas_set_num_threads(options.threads);
#endif
  for (const ssb_bench::Shape& shape : ssb_bench::shapes()) {  // shape-major: one Problem at a time
    ssb_bench::register_bandwidth(options, shape);
    ssb_bench::register_verbs(options, shape);
    ssb_bench::register_dense(options, shape);
  }
  add_context(options);

  std::vector<char*> args{argv[0]};
  std::string defaults[] = {"--benchmark_min_time=0.2", "--benchmark_repetitions=3",
                            "--benchmark_report_aggregates_only=true"};
  for (std::string& d : defaults) args.push_back(d.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  int count = int(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  const std::size_t ran = benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return ran > 0 ? 0 : 1;  // a filter that matches nothing is an error, not an empty report
}

// ssb_zoom: the command line (what the user asked for, checked before any file is touched).
#pragma once

#include <stdexcept>
#include <string>

namespace zoom {

// A bad command line: unknown option, missing or malformed value. The program exits with 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The saliency blob: a Gaussian centred at (cx, cy), fractions of the image width and height,
// with standard deviation sigma, a fraction of the smaller side.
struct Blob {
  double cx = 0.35;
  double cy = 0.4;
  double sigma = 0.1;
};

struct Options {
  std::string input;     // empty: draw the checkerboard
  std::string saliency;  // a grey-scale PNG; empty: the blob
  Blob blob;
  bool blob_given = false;
  int sampled_height = 96;   // Hr
  int sampled_width = 96;    // Wr
  double floor = 0.05;       // added to the saliency, as a fraction of its maximum
  bool raw_inverse = false;  // show eq. 9 as is, without dividing by sample_inverse(1)
  std::string out;
  bool help = false;
  std::string check_png;  // --check-png FILE HxW: only check FILE
  int check_height = 0;
  int check_width = 0;
};

// The --help text.
extern const char* const kUsage;

// Parses argv. Throws UsageError with a one-line message naming the culprit.
Options parse_args(int argc, const char* const* argv);

}  // namespace zoom

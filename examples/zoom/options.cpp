// ssb_zoom: parsing and checking the command line (see options.hpp and kUsage below).
#include "options.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "png_io.hpp"

namespace zoom {

const char* const kUsage =
    R"(Usage: ssb_zoom [--input IN.png] [--saliency MAP.png | --blob CX,CY,SIGMA]
                [--size HRxWR] [--floor F] [--raw-inverse] --out OUT.png
       ssb_zoom --check-png FILE.png HxW

Saliency sampling (SSBNet, Kwan & Song, ECCV 2022) of one image: ssb::sample resamples the image
to HR x WR pixels, spending more of them where the saliency is high (a zoom into the salient
region), and ssb::sample_inverse maps the sampled image back to full size. Writes one PNG with
four panels side by side, at the input height:

  input | saliency (grey, scaled to its maximum) | sampled (enlarged with nearest neighbour
  to the input height) | restored (the sampled image, inverse-sampled to the input size)

Options:
  --input IN.png       the image (any PNG: palette, grey, 16-bit and alpha are converted to
                       8-bit RGB or RGBA). Default: a 256x256 checkerboard with coloured shapes
                       and a ring target under the default blob.
  --saliency MAP.png   the saliency from a PNG: its brightness (alpha ignored), bilinearly
                       resized to the image size when the sizes differ.
  --blob CX,CY,SIGMA   the saliency is a Gaussian blob centred at (CX, CY), fractions in [0,1]
                       of the image width and height, of standard deviation SIGMA (> 0), a
                       fraction of the smaller side. Default: 0.35,0.4,0.1.
  --size HRxWR         the sampled size, height x width (one number: a square).
                       Default: 96x96.
  --floor F            F times the saliency's maximum is added to every saliency pixel
                       (0 <= F <= 1000). Default: 0.05. Without it, rows and columns far from
                       the blob get next to no sampled pixels and vanish from the sampled
                       panel; with it every part of the image keeps a few. An all-zero
                       saliency gives plain (uniform) resampling.
  --raw-inverse        show the restored panel as eq. 9 gives it. By default it is divided
                       by sample_inverse of an all-ones image, so that a constant image comes
                       back unchanged; eq. 9 alone scales pixel (h,w) by H*sy[h] * W*sx[w]
                       (the saliency marginals), bright under the blob, dark away from it.
  --out OUT.png        the picture to write (required).
  --check-png FILE HxW exit 0 if FILE is a PNG of height H and width W, else 1 (for tests).
  -h, --help           this text.

Options take their value as the next argument or after '=' (--size=64x128).
Exit status: 0 success, 1 unreadable or unwritable file, 2 bad command line.
)";

namespace {

double parse_number(const std::string& option, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE ||
      !std::isfinite(value)) {
    throw UsageError(option + ": '" + text + "' is not a number");
  }
  return value;
}

// A side length: a whole number in [1, kMaxImageSide].
int parse_side(const std::string& option, const std::string& text) {
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno == ERANGE) {
    throw UsageError(option + ": '" + text + "' is not a whole number");
  }
  if (value <= 0 || value > kMaxImageSide) {
    throw UsageError(option + ": " + text + " is not a size in 1.." +
                     std::to_string(kMaxImageSide));
  }
  return int(value);
}

// "HxW" (or "N" for NxN) -> height, width.
void parse_size(const std::string& option, const std::string& text, int* height, int* width) {
  const std::size_t x = text.find_first_of("xX");
  if (x == std::string::npos) {
    *height = *width = parse_side(option, text);
  } else {
    *height = parse_side(option, text.substr(0, x));
    *width = parse_side(option, text.substr(x + 1));
  }
}

Blob parse_blob(const std::string& text) {
  std::vector<std::string> parts;
  std::size_t begin = 0;
  for (std::size_t comma; (comma = text.find(',', begin)) != std::string::npos;) {
    parts.push_back(text.substr(begin, comma - begin));
    begin = comma + 1;
  }
  parts.push_back(text.substr(begin));
  if (parts.size() != 3) {
    throw UsageError("--blob: '" + text + "' is not CX,CY,SIGMA (three numbers)");
  }
  Blob blob;
  blob.cx = parse_number("--blob", parts[0]);
  blob.cy = parse_number("--blob", parts[1]);
  blob.sigma = parse_number("--blob", parts[2]);
  if (blob.cx < 0 || blob.cx > 1 || blob.cy < 0 || blob.cy > 1) {
    throw UsageError("--blob: the centre " + parts[0] + "," + parts[1] +
                     " is outside the image (CX and CY are fractions in [0,1])");
  }
  if (blob.sigma <= 0) throw UsageError("--blob: SIGMA " + parts[2] + " must be > 0");
  return blob;
}

}  // namespace

Options parse_args(int argc, const char* const* argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string option = argv[i];
    std::string inline_value;
    bool has_inline_value = false;
    const std::size_t equals = option.find('=');
    if (option.rfind("--", 0) == 0 && equals != std::string::npos) {
      inline_value = option.substr(equals + 1);
      option.resize(equals);
      has_inline_value = true;
    }
    const auto value = [&]() -> std::string {
      if (has_inline_value) return inline_value;
      if (i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0) {
        throw UsageError(option + " needs a value");
      }
      return argv[++i];
    };
    const auto file_name = [&]() -> std::string {
      std::string name = value();
      if (name.empty()) throw UsageError(option + " needs a file name");
      return name;
    };

    if (option == "--help" || option == "-h") {
      if (has_inline_value) throw UsageError(option + " takes no value");
      options.help = true;
    } else if (option == "--input") {
      options.input = file_name();
    } else if (option == "--saliency") {
      options.saliency = file_name();
    } else if (option == "--blob") {
      options.blob = parse_blob(value());
      options.blob_given = true;
    } else if (option == "--size") {
      parse_size(option, value(), &options.sampled_height, &options.sampled_width);
    } else if (option == "--floor") {
      const std::string text = value();
      options.floor = parse_number(option, text);
      if (options.floor < 0 || options.floor > 1000) {
        throw UsageError("--floor: " + text + " is not in [0, 1000]");
      }
    } else if (option == "--raw-inverse") {
      if (has_inline_value) throw UsageError(option + " takes no value");
      options.raw_inverse = true;
    } else if (option == "--out") {
      options.out = file_name();
    } else if (option == "--check-png") {
      options.check_png = file_name();
      if (i + 1 >= argc) throw UsageError("--check-png needs a file and a size HxW");
      parse_size(option, argv[++i], &options.check_height, &options.check_width);
    } else if (!option.empty() && option[0] == '-') {
      throw UsageError("unknown option '" + option + "'");
    } else {
      throw UsageError("unexpected argument '" + option + "' (the input is --input FILE)");
    }
  }
  if (options.help || !options.check_png.empty()) return options;
  if (options.out.empty()) throw UsageError("missing --out OUT.png");
  if (!options.saliency.empty() && options.blob_given) {
    throw UsageError("--saliency and --blob exclude each other");
  }
  return options;
}

}  // namespace zoom

// ssb_zoom: 8-bit RGB / RGBA images in memory and their PNG files (read and written with libpng).
//
// Every PNG libpng understands is read: palette, grey, 1 to 16 bits, alpha or tRNS transparency,
// interlaced. It arrives as 8-bit RGB, or RGBA when the file has any transparency. Errors (a file
// that cannot be opened, is not a PNG, or that libpng rejects as corrupt) come back as
// zoom::FileError with a message naming the file; libpng never aborts the program.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace zoom {

// The largest side read_png accepts, and that the program writes.
constexpr int kMaxImageSide = 16384;

// An 8-bit image: rows top to bottom, channels interleaved (3: RGB, 4: RGBA).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<std::uint8_t> pixels;

  Image() = default;
  Image(int width_, int height_, int channels_, std::uint8_t fill = 0)
      : width(width_),
        height(height_),
        channels(channels_),
        pixels(std::size_t(width_) * std::size_t(height_) * std::size_t(channels_), fill) {}

  std::uint8_t* at(int y, int x) {
    return pixels.data() + (std::size_t(y) * std::size_t(width) + std::size_t(x)) * channels;
  }
  const std::uint8_t* at(int y, int x) const {
    return pixels.data() + (std::size_t(y) * std::size_t(width) + std::size_t(x)) * channels;
  }
};

// A file that cannot be opened, read or written, is not a PNG, or is a broken one.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads `path` as 8-bit RGB (channels 3) or RGBA (channels 4). Throws FileError.
Image read_png(const std::string& path);

// Writes `image` (channels 3 or 4) to `path`. On failure throws FileError and leaves no file.
void write_png(const std::string& path, const Image& image);

}  // namespace zoom

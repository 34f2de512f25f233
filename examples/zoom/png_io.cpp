// ssb_zoom: PNG reading and writing with libpng (see png_io.hpp).
//
// libpng reports errors by calling an error function that must not return. Ours copies the message
// into an ErrorSink and longjmps back to the setjmp of the function that called libpng. The
// functions holding a setjmp (read_header, read_rows, write_rows) have only trivially destructible
// locals and never modify them after the setjmp, so the jump skips no destructor and clobbers
// nothing; owning C++ objects (the Image, the row pointers, the FILE and libpng structs) live in
// their callers and are released there on every path.
#include "png_io.hpp"

#include <png.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>

namespace zoom {
namespace {

struct ErrorSink {
  char message[256];
};

[[noreturn]] void on_png_error(png_structp png, png_const_charp message) {
  auto* sink = static_cast<ErrorSink*>(png_get_error_ptr(png));
  std::snprintf(sink->message, sizeof sink->message, "%s", message ? message : "libpng error");
  png_longjmp(png, 1);
}

// Warnings (an odd colour profile, a bad ancillary chunk) do not stop the read: stay quiet.
void on_png_warning(png_structp, png_const_charp) {}

// Closes the file on every path.
class File {
 public:
  File(const std::string& path, const char* mode) : file_(std::fopen(path.c_str(), mode)) {}
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File() { close(); }
  std::FILE* get() const { return file_; }
  // Closes now; false when the buffered data could not be written.
  bool close() {
    if (!file_) return true;
    const bool ok = std::fclose(file_) == 0;
    file_ = nullptr;
    return ok;
  }

 private:
  std::FILE* file_;
};

struct Header {
  png_uint_32 width;
  png_uint_32 height;
  int channels;
  int bit_depth;
};

// Reads the chunks before the image data and sets the transforms to 8-bit RGB or RGBA.
bool read_header(png_structp png, png_infop info, std::FILE* file, Header* header) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_set_sig_bytes(png, 8);
  png_set_user_limits(png, kMaxImageSide, kMaxImageSide);
  png_read_info(png, info);
  png_set_expand(png);  // palette -> RGB, grey below 8 bits -> 8 bits, tRNS -> alpha
#ifdef PNG_READ_SCALE_16_TO_8_SUPPORTED
  png_set_scale_16(png);  // 16 -> 8 bits, rounded
#else
  png_set_strip_16(png);
#endif
  png_set_gray_to_rgb(png);  // no-op for colour images
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  header->width = png_get_image_width(png, info);
  header->height = png_get_image_height(png, info);
  header->channels = png_get_channels(png, info);
  header->bit_depth = png_get_bit_depth(png, info);
  return true;
}

bool read_rows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  return true;
}

bool write_rows(png_structp png, png_infop info, std::FILE* file, const Image* image,
                png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_init_io(png, file);
  png_set_IHDR(png, info, png_uint_32(image->width), png_uint_32(image->height), 8,
               image->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, nullptr);
  return true;
}

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

// libpng's message, or a plainer one for the usual cause of its "Read Error": a short file.
std::string read_failure(const ErrorSink& sink, std::FILE* file) {
  if (std::feof(file)) return "the file ends too early (a truncated PNG)";
  return sink.message;
}

}  // namespace

Image read_png(const std::string& path) {
  File file(path, "rb");
  if (!file.get()) {
    const int error = errno;
    throw FileError("cannot open " + quoted(path) + ": " + std::strerror(error));
  }
  png_byte signature[8];
  const std::size_t got = std::fread(signature, 1, sizeof signature, file.get());
  if (got != sizeof signature && std::ferror(file.get())) {
    const int error = errno;
    throw FileError("cannot read " + quoted(path) + ": " + std::strerror(error));
  }
  if (got != sizeof signature || png_sig_cmp(signature, 0, sizeof signature) != 0) {
    throw FileError(quoted(path) + " is not a PNG file");
  }

  ErrorSink sink{};
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  struct Structs {
    png_structp png;
    png_infop info;
    ~Structs() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
  } structs{png, info};
  if (!png || !info) throw FileError("cannot read " + quoted(path) + ": out of memory");

  Header header{};
  if (!read_header(png, info, file.get(), &header)) {
    throw FileError("cannot read " + quoted(path) + ": " + read_failure(sink, file.get()));
  }
  if (header.bit_depth != 8 || (header.channels != 3 && header.channels != 4)) {
    throw FileError("cannot read " + quoted(path) + ": unsupported PNG format (" +
                    std::to_string(header.channels) + " channels of " +
                    std::to_string(header.bit_depth) + " bits after conversion)");
  }
  Image image(int(header.width), int(header.height), header.channels);
  std::vector<png_bytep> rows(header.height);
  for (png_uint_32 y = 0; y < header.height; ++y) rows[y] = image.at(int(y), 0);
  if (!read_rows(png, rows.data())) {
    throw FileError("cannot read " + quoted(path) + ": " + read_failure(sink, file.get()));
  }
  return image;
}

void write_png(const std::string& path, const Image& image) {
  if (image.channels != 3 && image.channels != 4) {
    throw FileError("cannot write " + quoted(path) + ": images have 3 or 4 channels");
  }
  if (image.width <= 0 || image.height <= 0 || image.width > 4 * kMaxImageSide ||
      image.height > kMaxImageSide) {
    throw FileError("cannot write " + quoted(path) + ": bad size " + std::to_string(image.height) +
                    "x" + std::to_string(image.width));
  }
  File file(path, "wb");
  if (!file.get()) {
    const int error = errno;
    throw FileError("cannot write " + quoted(path) + ": " + std::strerror(error));
  }

  ErrorSink sink{};
  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  struct Structs {
    png_structp png;
    png_infop info;
    ~Structs() { png_destroy_write_struct(&png, info ? &info : nullptr); }
  } structs{png, info};

  std::string failure;
  if (!png || !info) {
    failure = "out of memory";
  } else {
    // libpng takes non-const row pointers but only reads them when writing.
    std::vector<png_bytep> rows(std::size_t(image.height));
    for (int y = 0; y < image.height; ++y) rows[y] = const_cast<png_bytep>(image.at(y, 0));
    if (!write_rows(png, info, file.get(), &image, rows.data())) failure = sink.message;
  }
  if (!file.close() && failure.empty()) failure = std::strerror(errno);
  if (!failure.empty()) {
    std::remove(path.c_str());
    throw FileError("cannot write " + quoted(path) + ": " + failure);
  }
}

}  // namespace zoom

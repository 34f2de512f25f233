// A small reader of IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed.
//
//     ssb_idx::Array images =
//     ssb_idx::read("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte");
//     // images.dims == {10000, 28, 28}, images.data: 7 840 000 bytes
//
// The format: a big-endian magic number 0x0000TTNN (TT: element type, here only 0x08 = unsigned
// byte; NN: number of dimensions, 1 to 4), NN big-endian uint32 extents, then the elements in
// row-major order. Debian's dataset-fashion-mnist ships the files gzipped (*.gz); zlib's gzread
// reads gzipped and plain files alike, and read() tries PATH and then PATH.gz. Every error (a
// missing file, a wrong magic number, an extent of 0 or over the limit, a file that ends early or
// has bytes after the data, a corrupt gzip stream) is an ssb_idx::Error whose message names the
// file.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace ssb_idx {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An IDX array of unsigned bytes.
struct Array {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
  int64_t count() const { return dims.empty() ? 0 : dims[0]; }
  // Elements per item (the product of the extents after the first).
  int64_t item_size() const {
    int64_t n = 1;
    for (size_t i = 1; i < dims.size(); ++i) n *= dims[i];
    return n;
  }
};

// The largest total number of elements read() accepts (1 GiB).
constexpr int64_t kMaxElements = int64_t(1) << 30;

namespace detail {

class GzFile {
 public:
  explicit GzFile(const std::string& path) : file_(gzopen(path.c_str(), "rb")) {}
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  ~GzFile() {
    if (file_) gzclose(file_);
  }
  gzFile get() const { return file_; }

 private:
  gzFile file_;
};

// Reads exactly `size` bytes; false at the end of the file, throws on a read error.
inline bool read_exact(gzFile file, const std::string& path, void* buffer, size_t size) {
  auto* out = static_cast<unsigned char*>(buffer);
  while (size > 0) {
    const unsigned chunk = size > (1u << 30) ? (1u << 30) : unsigned(size);
    const int got = gzread(file, out, chunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      throw Error("cannot read '" + path + "': " + (message ? message : "zlib error"));
    }
    if (got == 0) return false;
    out += got;
    size -= size_t(got);
  }
  return true;
}

inline uint32_t big_endian(const unsigned char* b) {
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

inline bool exists(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  std::fclose(f);
  return true;
}

}  // namespace detail

// Reads the IDX file `path` (or `path`.gz when `path` does not exist). `expected_dims`, when not
// empty, is the number of dimensions the caller needs.
inline Array read(const std::string& path, int expected_dims = 0) {
  std::string file = path;
  if (!detail::exists(file)) {
    if (detail::exists(path + ".gz")) {
      file = path + ".gz";
    } else {
      throw Error("cannot open '" + path + "' (nor '" + path +
                  ".gz'): no such file; on Debian: apt-get install dataset-fashion-mnist");
    }
  }
  detail::GzFile gz(file);
  if (!gz.get()) throw Error("cannot open '" + file + "'");
  unsigned char magic[4];
  if (!detail::read_exact(gz.get(), file, magic, 4)) {
    throw Error("'" + file + "' is not an IDX file: it ends before the 4-byte magic number");
  }
  if (magic[0] != 0 || magic[1] != 0) {
    throw Error("'" + file +
                "' is not an IDX file: the magic number does not start with two zero "
                "bytes");
  }
  if (magic[2] != 0x08) {
    throw Error("'" + file + "': IDX element type 0x" + std::to_string(int(magic[2])) +
                " is not supported (only 0x08, unsigned byte)");
  }
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 4) {
    throw Error("'" + file + "': " + std::to_string(ndims) +
                " dimensions; the reader supports 1 to 4");
  }
  if (expected_dims > 0 && ndims != expected_dims) {
    throw Error("'" + file + "' has " + std::to_string(ndims) + " dimensions, expected " +
                std::to_string(expected_dims));
  }
  Array array;
  int64_t total = 1;
  for (int d = 0; d < ndims; ++d) {
    unsigned char extent[4];
    if (!detail::read_exact(gz.get(), file, extent, 4)) {
      throw Error("'" + file + "' ends in its header (dimension " + std::to_string(d + 1) + " of " +
                  std::to_string(ndims) + ")");
    }
    const int64_t n = detail::big_endian(extent);
    if (n == 0) throw Error("'" + file + "': dimension " + std::to_string(d + 1) + " is 0");
    total *= n;
    if (total > kMaxElements) {
      throw Error("'" + file + "' holds more than " + std::to_string(kMaxElements) +
                  " elements; refused");
    }
    array.dims.push_back(n);
  }
  array.data.resize(size_t(total));
  if (!detail::read_exact(gz.get(), file, array.data.data(), array.data.size())) {
    throw Error("'" + file + "' ends early: the header promises " + std::to_string(total) +
                " bytes of data");
  }
  unsigned char extra;
  if (detail::read_exact(gz.get(), file, &extra, 1)) {
    throw Error("'" + file + "' has bytes after the " + std::to_string(total) +
                " the header promises");
  }
  return array;
}

// Writes `array` as an IDX file of unsigned bytes, gzipped when `path` ends in .gz (for tests).
inline void write(const std::string& path, const Array& array) {
  const bool gzipped = path.size() > 3 && path.compare(path.size() - 3, 3, ".gz") == 0;
  std::vector<unsigned char> bytes{0, 0, 0x08, static_cast<unsigned char>(array.dims.size())};
  for (const int64_t n : array.dims) {
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back((uint64_t(n) >> shift) & 0xff);
  }
  bytes.insert(bytes.end(), array.data.begin(), array.data.end());
  if (gzipped) {
    gzFile f = gzopen(path.c_str(), "wb");
    if (!f) throw Error("cannot write '" + path + "'");
    const bool ok = gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size());
    if (gzclose(f) != Z_OK || !ok) throw Error("cannot write '" + path + "'");
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error("cannot write '" + path + "'");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  if (std::fclose(f) != 0 || !ok) throw Error("cannot write '" + path + "'");
}

}  // namespace ssb_idx

// Little-endian binary writing and bounds-checked reading of plain values,
// byte strings and arrays of trivially copyable values: what state
// snapshots are made of. A reader never reads past its end: a short or
// malformed input leaves it !ok() with every later read returning zeros.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace spate::kernels {

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}

  template <typename T>
  void put(T value) {
    static_assert(std::is_trivially_copyable_v<T>);
    const std::size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &value, sizeof(T));
  }
  void put_bytes(std::string_view bytes) {
    put<std::uint64_t>(bytes.size());
    out_.append(bytes);
  }
  template <typename T>
  void put_array(const T* data, std::size_t n) {
    static_assert(std::is_trivially_copyable_v<T>);
    put<std::uint64_t>(n);
    out_.append(reinterpret_cast<const char*>(data), n * sizeof(T));
  }
  template <typename T>
  void put_vector(const std::vector<T>& v) {
    put_array(v.data(), v.size());
  }
  std::size_t size() const noexcept { return out_.size(); }

 private:
  std::string& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : p_(in.data()), end_(in.data() + in.size()) {}

  template <typename T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T value{};
    if (!take(sizeof(T))) return value;
    std::memcpy(&value, p_ - sizeof(T), sizeof(T));
    return value;
  }
  std::string_view get_bytes() {
    const std::uint64_t n = get<std::uint64_t>();
    if (!take(n)) return {};
    return {p_ - n, static_cast<std::size_t>(n)};
  }
  // An array of at most `max` elements (more is malformed).
  template <typename T>
  bool get_vector(std::vector<T>& v, std::uint64_t max = UINT64_MAX) {
    static_assert(std::is_trivially_copyable_v<T>);
    const std::uint64_t n = get<std::uint64_t>();
    if (n > max || n > remaining() / sizeof(T)) return fail();
    v.resize(n);
    if (n != 0) std::memcpy(v.data(), p_, n * sizeof(T));
    p_ += n * sizeof(T);
    return ok_;
  }
  // Marks the input malformed (a value out of its range); always false.
  bool fail() noexcept {
    ok_ = false;
    p_ = end_;
    return false;
  }
  bool ok() const noexcept { return ok_; }
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }

 private:
  bool take(std::uint64_t n) noexcept {
    if (!ok_ || n > remaining()) return fail();
    p_ += n;
    return true;
  }

  const char* p_;
  const char* end_;
  bool ok_ = true;
};

}  // namespace spate::kernels

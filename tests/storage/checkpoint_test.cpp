// Checkpoint files: the round trip, what reading makes of files cut short or
// with a flipped byte, the listing and deletion of a shard's files, and the
// bounds-checked ByteReader the state is read with.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/byte_io.hpp"
#include "storage/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace spate::storage;
using spate::kernels::ByteReader;
using spate::kernels::ByteWriter;

namespace {

constexpr std::size_t kHeaderBytes = 68;  // magic .. body length
constexpr std::size_t kTailBytes = 16;    // checksum, trailer

// A fresh directory under the system's temporary directory, removed with
// everything in it at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "spate-ckpt-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string random_bytes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

CheckpointHeader sample_header(std::uint64_t epoch = 41) {
  CheckpointHeader h;
  h.shard = 2;
  h.shards = 3;
  h.epoch = epoch;
  h.created_ms = 1764000000123;
  h.fingerprint = 0x0123456789abcdefULL;
  h.position = {7, 12};
  return h;
}

// Writes an (empty-bodied) checkpoint of `epoch` into `shard_dir`.
void put_checkpoint(const fs::path& shard_dir, std::uint64_t epoch) {
  write_checkpoint_file(shard_dir.string(), epoch, encode_checkpoint(sample_header(epoch), ""));
}

std::vector<std::uint64_t> epochs_of(const fs::path& shard_dir) {
  std::vector<std::uint64_t> out;
  for (const auto& [epoch, path] : list_checkpoints(shard_dir.string())) out.push_back(epoch);
  return out;
}

}  // namespace

TEST_CASE("checkpoint: a file written reads back with the same header and body") {
  TempDir tmp;
  const fs::path shard = tmp.path / "shard-2";
  const std::string body = random_bytes(300 * 1024 + 17, 1);
  const std::string bytes = encode_checkpoint(sample_header(), body);
  CHECK(bytes.size() == kHeaderBytes + body.size() + kTailBytes);
  write_checkpoint_file(shard.string(), 41, bytes);

  const std::string path = checkpoint_dir(shard.string()) + "/" + checkpoint_file_name(41);
  CHECK(fs::path(path).filename() == "00000000000000000041.ckpt");
  CHECK(fs::file_size(path) == bytes.size());
  CHECK_FALSE(fs::exists(path + ".tmp"));  // renamed into place

  std::string error;
  const std::optional<Checkpoint> c = read_checkpoint(path, error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->path == path);
  CHECK(c->header.shard == 2);
  CHECK(c->header.shards == 3);
  CHECK(c->header.epoch == 41);
  CHECK(c->header.created_ms == 1764000000123);
  CHECK(c->header.fingerprint == 0x0123456789abcdefULL);
  CHECK(c->header.position.segment == 7);
  CHECK(c->header.position.block == 12);
  CHECK(c->body == body);

  // An empty body is a state too.
  write_checkpoint_file(shard.string(), 42, encode_checkpoint(sample_header(42), ""));
  const auto empty = read_checkpoint(checkpoint_dir(shard.string()) + "/" + checkpoint_file_name(42), error);
  REQUIRE(empty.has_value());
  CHECK(empty->body.empty());
  CHECK(empty->header.epoch == 42);
}

TEST_CASE("checkpoint: a file cut short anywhere is refused, with the reason") {
  TempDir tmp;
  const std::string bytes = encode_checkpoint(sample_header(), random_bytes(200 * 1024, 2));
  const fs::path path = tmp.path / "cut.ckpt";
  std::mt19937_64 rng(40);
  std::vector<std::size_t> cuts = {0, 1, 7, 8, kHeaderBytes - 1, kHeaderBytes, bytes.size() - kTailBytes,
                                   bytes.size() - 8, bytes.size() - 1};
  while (cuts.size() < 49) cuts.push_back(static_cast<std::size_t>(rng() % bytes.size()));
  for (const std::size_t cut : cuts) {
    CAPTURE(cut);
    write_file(path, bytes.substr(0, cut));
    std::string error;
    CHECK_FALSE(read_checkpoint(path.string(), error).has_value());
    CHECK_FALSE(error.empty());
    if (cut < kHeaderBytes + kTailBytes) CHECK(error.find("cut short") != std::string::npos);
  }
  // No file at all is refused the same way.
  std::string error;
  CHECK_FALSE(read_checkpoint((tmp.path / "none.ckpt").string(), error).has_value());
  CHECK(error.find("cannot open") != std::string::npos);
}

TEST_CASE("checkpoint: one flipped byte anywhere, header, body, checksum or trailer, is refused") {
  TempDir tmp;
  const std::string bytes = encode_checkpoint(sample_header(), random_bytes(200 * 1024, 3));
  const fs::path path = tmp.path / "flipped.ckpt";
  const std::size_t body_end = bytes.size() - kTailBytes;
  std::mt19937_64 rng(41);
  // Ten offsets in each part: [from, to).
  const std::pair<std::size_t, std::size_t> parts[] = {
      {0, kHeaderBytes}, {kHeaderBytes, body_end}, {body_end, body_end + 8}, {body_end + 8, bytes.size()}};
  for (const auto& [from, to] : parts) {
    for (int i = 0; i < 10; ++i) {
      const std::size_t at = from + static_cast<std::size_t>(rng() % (to - from));
      const auto mask = static_cast<unsigned char>(1u + rng() % 255u);  // never 0: the byte changes
      CAPTURE(at);
      std::string copy = bytes;
      copy[at] = static_cast<char>(static_cast<unsigned char>(copy[at]) ^ mask);
      write_file(path, copy);
      std::string error;
      CHECK_FALSE(read_checkpoint(path.string(), error).has_value());
      CHECK_FALSE(error.empty());
      if (at >= 8 && at < body_end) CHECK(error == "checksum mismatch");
    }
  }
  // A byte flipped in the magic: not a checkpoint at all.
  std::string copy = bytes;
  copy[0] = 'X';
  write_file(path, copy);
  std::string error;
  CHECK_FALSE(read_checkpoint(path.string(), error).has_value());
  CHECK(error.find("bad magic") != std::string::npos);
}

TEST_CASE("checkpoint: list_checkpoints gives the epochs newest first and ignores other names") {
  TempDir tmp;
  const fs::path shard = tmp.path / "shard-0";
  CHECK(list_checkpoints(shard.string()).empty());  // no checkpoints directory yet
  for (const std::uint64_t epoch : {5, 41, 7, 1000}) put_checkpoint(shard, epoch);
  const fs::path dir = checkpoint_dir(shard.string());
  for (const char* other : {"x.ckpt", "123.ckpt.tmp", "00000000000000000009.ckpt.tmp", "0000000000000000000a.ckpt",
                            "000000000000000000011.ckpt", "00000000000000000012.seg", "00000000000000000013"}) {
    write_file(dir / other, "not a checkpoint");
  }

  const auto listed = list_checkpoints(shard.string());
  REQUIRE(listed.size() == 4);
  CHECK(epochs_of(shard) == std::vector<std::uint64_t>{1000, 41, 7, 5});
  for (const auto& [epoch, path] : listed) CHECK(fs::path(path) == dir / checkpoint_file_name(epoch));
}

TEST_CASE("checkpoint: remove_checkpoints deletes exactly the epochs outside [below, above] and .tmp leftovers") {
  TempDir tmp;
  const fs::path shard = tmp.path / "shard-1";
  for (const std::uint64_t epoch : {3, 4, 5, 6, 8, 9, 12}) put_checkpoint(shard, epoch);
  const fs::path dir = checkpoint_dir(shard.string());
  write_file(dir / "x.ckpt", "not a checkpoint");
  write_file(dir / (checkpoint_file_name(13) + ".tmp"), "a write cut short");
  write_file(dir / "123.ckpt.tmp", "another");

  remove_checkpoints(shard.string(), 5, 8);
  CHECK(epochs_of(shard) == std::vector<std::uint64_t>{8, 6, 5});
  CHECK_FALSE(fs::exists(dir / (checkpoint_file_name(13) + ".tmp")));
  CHECK_FALSE(fs::exists(dir / "123.ckpt.tmp"));
  CHECK(fs::exists(dir / "x.ckpt"));  // not a checkpoint: not touched

  // By default nothing above is deleted.
  remove_checkpoints(shard.string(), 6);
  CHECK(epochs_of(shard) == std::vector<std::uint64_t>{8, 6});
  // A shard without a checkpoints directory: nothing to do, no error.
  remove_checkpoints((tmp.path / "shard-9").string(), 100);
  CHECK_FALSE(fs::exists(tmp.path / "shard-9"));
}

TEST_CASE("checkpoint: CheckpointWriter writes the file off the calling thread") {
  TempDir tmp;
  const fs::path shard = tmp.path / "shard-2";
  const std::string body = random_bytes(64 * 1024, 4);
  CheckpointWriter writer;
  writer.start(shard.string(), sample_header(77), body, -1);
  writer.wait();
  CHECK(writer.finished());
  CHECK(writer.error().empty());
  CHECK(writer.bytes() == kHeaderBytes + body.size() + kTailBytes);
  std::string error;
  const auto c = read_checkpoint(checkpoint_dir(shard.string()) + "/" + checkpoint_file_name(77), error);
  REQUIRE_MESSAGE(c.has_value(), error);
  CHECK(c->body == body);
  CHECK(writer.take_buffer().empty());
}

TEST_CASE("byte reader: reading past the end fails, and every later read returns zeros") {
  std::string bytes;
  ByteWriter w(bytes);
  w.put<std::uint32_t>(0xdeadbeef);
  w.put<std::uint64_t>(42);
  w.put<std::uint16_t>(7);
  CHECK(w.size() == 14);

  ByteReader r(bytes);
  CHECK(r.get<std::uint32_t>() == 0xdeadbeef);
  CHECK(r.get<std::uint64_t>() == 42);
  CHECK(r.ok());
  CHECK(r.remaining() == 2);
  CHECK(r.get<std::uint32_t>() == 0);  // 4 bytes asked, 2 left
  CHECK_FALSE(r.ok());
  CHECK(r.remaining() == 0);
  CHECK(r.get<std::uint16_t>() == 0);  // the 2 bytes are not read after a failure either
  CHECK(r.get<std::uint8_t>() == 0);
  CHECK(r.get_bytes().empty());
  std::vector<std::uint32_t> v;
  CHECK_FALSE(r.get_vector(v));
  CHECK_FALSE(r.ok());

  ByteReader empty{std::string_view()};
  CHECK(empty.get<std::uint64_t>() == 0);
  CHECK_FALSE(empty.ok());
}

TEST_CASE("byte reader: a length longer than what remains fails; one within bounds reads back") {
  SUBCASE("get_vector") {
    std::string bytes;
    ByteWriter w(bytes);
    w.put<std::uint64_t>(1000);  // claims 1000 elements
    for (std::uint32_t i = 0; i < 10; ++i) w.put<std::uint32_t>(i);
    ByteReader r(bytes);
    std::vector<std::uint32_t> v;
    CHECK_FALSE(r.get_vector(v));
    CHECK_FALSE(r.ok());
    CHECK(v.empty());
    CHECK(r.get<std::uint32_t>() == 0);
  }
  SUBCASE("get_vector with a count so large that its byte size overflows") {
    std::string bytes;
    ByteWriter w(bytes);
    w.put<std::uint64_t>(UINT64_MAX / 4 + 2);
    w.put<std::uint64_t>(0);
    ByteReader r(bytes);
    std::vector<std::uint64_t> v;
    CHECK_FALSE(r.get_vector(v));
    CHECK_FALSE(r.ok());
  }
  SUBCASE("get_vector above its maximum") {
    std::string bytes;
    ByteWriter w(bytes);
    w.put_vector(std::vector<std::uint16_t>{1, 2, 3});
    ByteReader r(bytes);
    std::vector<std::uint16_t> v;
    CHECK_FALSE(r.get_vector(v, 2));
    CHECK_FALSE(r.ok());
  }
  SUBCASE("get_bytes") {
    std::string bytes;
    ByteWriter w(bytes);
    w.put<std::uint64_t>(100);
    bytes += "only ten..";
    ByteReader r(bytes);
    CHECK(r.get_bytes().empty());
    CHECK_FALSE(r.ok());
  }
  SUBCASE("within bounds") {
    std::string bytes;
    ByteWriter w(bytes);
    const std::vector<std::int64_t> values = {-1, 0, 1LL << 40};
    w.put_vector(values);
    w.put_bytes("abc");
    w.put_vector(std::vector<std::uint32_t>{});
    ByteReader r(bytes);
    std::vector<std::int64_t> v;
    CHECK(r.get_vector(v, 3));
    CHECK(v == values);
    CHECK(r.get_bytes() == "abc");
    std::vector<std::uint32_t> none = {9};
    CHECK(r.get_vector(none));
    CHECK(none.empty());
    CHECK(r.ok());
    CHECK(r.remaining() == 0);
  }
}

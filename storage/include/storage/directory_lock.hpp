// One daemon per data directory: an exclusive flock on `spate.lock` in it,
// held for the daemon's life, the file naming its holder. The kernel drops
// the lock when the process ends, however it ends (kill -9 included), so a
// stale file never keeps the next daemon out.
#pragma once

#include <string>

namespace spate::storage {

class DirectoryLock {
 public:
  // Takes the lock on `dir` (which must exist). Throws std::runtime_error
  // when another process holds it, naming that process as its file says
  // ("pid 1234, started 2026-12-07T20:15:00Z"), or when the file cannot be
  // opened.
  explicit DirectoryLock(const std::string& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace spate::storage

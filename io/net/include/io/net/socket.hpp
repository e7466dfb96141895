// Thin, error-checked wrappers over POSIX sockets for the shard loops: each
// returns a non-blocking descriptor or throws std::system_error at start-up.
#pragma once

#include <cstdint>
#include <string>

namespace spate::io {

// A listening TCP socket; with reuse_port several shards bind the same port
// and the kernel spreads connections across them.
int listen_tcp(const std::string& host, std::uint16_t port, bool reuse_port, int backlog = 1024);

// A bound UDP socket (SO_REUSEPORT when asked) with a large receive buffer
// and SO_RXQ_OVFL so kernel drops can be counted.
int bind_udp(const std::string& host, std::uint16_t port, bool reuse_port, int rcvbuf_bytes);

// The local port a socket is bound to.
std::uint16_t local_port(int fd);

}  // namespace spate::io

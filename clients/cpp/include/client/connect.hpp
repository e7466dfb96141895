// The one way spate's clients and tools connect: every address the name
// resolves to, in order, each attempt bounded by a timeout.
#pragma once

#include <cstdint>
#include <string>

namespace spate::query {

// A connected, blocking socket of `socktype` (SOCK_STREAM, SOCK_DGRAM) to
// host:port, or -1 with the reason in `error`. timeout_ms bounds each
// attempt (0: the kernel's own). TCP sockets get TCP_NODELAY.
int connect_socket(const std::string& host, std::uint16_t port, int socktype, int timeout_ms, std::string& error);

}  // namespace spate::query

// A build without DPDK (-Ddpdk=disabled, or no dpdk-dev found): a dpdk
// source is refused at start with the reason.
#include <stdexcept>

#include "io/net/dpdk_source.hpp"

namespace spate::io {

DpdkPort::DpdkPort(DpdkOptions options, std::uint32_t) : options_(std::move(options)) {
  throw std::runtime_error("this spated was built without DPDK: install dpdk-dev and build again (-Ddpdk=enabled)");
}
DpdkPort::~DpdkPort() = default;
void DpdkPort::read_stats() noexcept {}
std::string DpdkPort::describe() const { return "dpdk=none"; }

DpdkSource::DpdkSource(DpdkPort& port, std::uint16_t queue, std::size_t padding)
    : port_(port), queue_(queue), padding_(padding) {}
DpdkSource::~DpdkSource() = default;
void DpdkSource::attach(LineSink&) {}
bool DpdkSource::poll(LineSink&, std::size_t) { return false; }
void DpdkSource::drain(LineSink&, std::int64_t) {}
void DpdkSource::deliver(rte_mbuf*, LineSink&) {}

}  // namespace spate::io

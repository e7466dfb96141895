// DPDK ports and their per-shard sources; see dpdk_source.hpp.
#include "io/net/dpdk_source.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/packet.hpp"

namespace spate::io {
namespace {

std::string dpdk_error(const char* what, int err) {
  return std::string(what) + ": " + rte_strerror(err < 0 ? -err : err);
}

bool has_option(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
  for (const auto& a : args) {
    for (const char* n : names) {
      if (a == n || a.rfind(std::string(n) + "=", 0) == 0) return true;
    }
  }
  return false;
}

}  // namespace

DpdkPort::DpdkPort(DpdkOptions options, std::uint32_t queues) : options_(std::move(options)) {
  std::vector<std::string> args{"spated"};
  args.insert(args.end(), options_.eal_args.begin(), options_.eal_args.end());
  // Files under /var/run/dpdk are per prefix: two daemons must not share one.
  if (!has_option(args, {"--file-prefix"})) args.push_back("--file-prefix=spate-" + std::to_string(::getpid()));
  // The EAL's own threads: one lcore, the main one. The shards are threads
  // of ours, pinned as always, and registered with the EAL as they start.
  cpu_set_t before;
  CPU_ZERO(&before);
  ::sched_getaffinity(0, sizeof(before), &before);
  if (!has_option(args, {"-l", "-c", "--lcores"})) {
    int first = 0;
    while (first < CPU_SETSIZE && !CPU_ISSET(first, &before)) ++first;
    args.push_back("-l");
    args.push_back(std::to_string(first));
  }
  if (!has_option(args, {"--no-telemetry", "--telemetry"})) args.push_back("--no-telemetry");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(argv.size()), argv.data()) < 0) {
    throw std::runtime_error(dpdk_error("DPDK EAL initialisation failed (check [[source]] eal_args)", rte_errno));
  }
  // rte_eal_init pins the calling thread to the main lcore: the threads
  // spated starts later (the query server) must not inherit that.
  ::sched_setaffinity(0, sizeof(before), &before);
  const std::uint16_t port = options_.port;
  if (!rte_eth_dev_is_valid_port(port)) {
    throw std::runtime_error("DPDK port " + std::to_string(port) + " does not exist (" +
                             std::to_string(rte_eth_dev_count_avail()) + " ports found; a --vdev or an allowed PCI device makes one)");
  }
  rte_eth_dev_info info{};
  if (const int r = rte_eth_dev_info_get(port, &info); r != 0) throw std::runtime_error(dpdk_error("rte_eth_dev_info_get", r));
  queues_ = std::max<std::uint32_t>(1, std::min<std::uint32_t>(queues, info.max_rx_queues));
  const std::uint32_t mbufs =
      options_.mbufs != 0 ? options_.mbufs : std::max<std::uint32_t>(8191, queues_ * (options_.rx_descriptors + 2 * 32) + 1024);
  pool_ = rte_pktmbuf_pool_create(("spate_rx_" + std::to_string(port)).c_str(), mbufs, 256, 0,
                                  RTE_MBUF_DEFAULT_BUF_SIZE, static_cast<int>(rte_eth_dev_socket_id(port)));
  if (pool_ == nullptr) throw std::runtime_error(dpdk_error("DPDK mbuf pool", rte_errno));
  rte_eth_conf conf{};
  if (queues_ > 1) {  // spread flows over the queues by the UDP 5-tuple, when the device can
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    if (conf.rx_adv_conf.rss_conf.rss_hf == 0) conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
  }
  if (const int r = rte_eth_dev_configure(port, static_cast<std::uint16_t>(queues_), 1, &conf); r != 0) {
    throw std::runtime_error(dpdk_error("rte_eth_dev_configure", r));
  }
  const int socket = rte_eth_dev_socket_id(port);
  for (std::uint32_t q = 0; q < queues_; ++q) {
    if (const int r = rte_eth_rx_queue_setup(port, static_cast<std::uint16_t>(q), static_cast<std::uint16_t>(options_.rx_descriptors),
                                             static_cast<unsigned>(socket), nullptr, pool_);
        r != 0) {
      throw std::runtime_error(dpdk_error("rte_eth_rx_queue_setup", r));
    }
  }
  if (const int r = rte_eth_tx_queue_setup(port, 0, 512, static_cast<unsigned>(socket), nullptr); r != 0) {
    throw std::runtime_error(dpdk_error("rte_eth_tx_queue_setup", r));
  }
  if (const int r = rte_eth_dev_start(port); r != 0) throw std::runtime_error(dpdk_error("rte_eth_dev_start", r));
  started_ = true;
  rte_eth_promiscuous_enable(port);
}

DpdkPort::~DpdkPort() {
  if (started_) {
    rte_eth_dev_stop(options_.port);
    rte_eth_dev_close(options_.port);
  }
  rte_eal_cleanup();
}

void DpdkPort::read_stats() noexcept {
  rte_eth_stats s{};
  if (rte_eth_stats_get(options_.port, &s) != 0) return;
  counters_.rx.store(s.ipackets, std::memory_order_relaxed);
  counters_.missed.store(s.imissed, std::memory_order_relaxed);
  counters_.errors.store(s.ierrors, std::memory_order_relaxed);
  counters_.no_mbuf.store(s.rx_nombuf, std::memory_order_relaxed);
}

std::string DpdkPort::describe() const {
  rte_eth_dev_info info{};
  rte_eth_dev_info_get(options_.port, &info);
  return "dpdk=port" + std::to_string(options_.port) + "/" + (info.driver_name ? info.driver_name : "?") + "/" +
         std::to_string(queues_) + "q";
}

DpdkSource::DpdkSource(DpdkPort& port, std::uint16_t queue, std::size_t padding)
    : port_(port), queue_(queue), padding_(padding) {}

DpdkSource::~DpdkSource() = default;

void DpdkSource::attach(LineSink& sink) {
  if (attached_) return;
  attached_ = true;
  rte_thread_register();  // this shard's thread as an lcore: the mbuf pool keeps a cache for it
  input_ = sink.open_input(kind(), false);
  SourceCounters::add(counters().inputs, 1);
}

bool DpdkSource::poll(LineSink& sink, std::size_t) {
  if (paused()) return false;
  attach(sink);
  if (queue_ == 0 && (++polls_ & 4095) == 0) port_.read_stats();
  rte_mbuf* burst[kBurst];
  const std::uint16_t n = rte_eth_rx_burst(port_.options().port, queue_, burst, kBurst);
  for (std::uint16_t i = 0; i < n; ++i) deliver(burst[i], sink);
  if (n != 0) rte_pktmbuf_free_bulk(burst, n);
  return n != 0;
}

void DpdkSource::deliver(rte_mbuf* m, LineSink& sink) {
  SourceCounters::add(counters()[DpdkFigure::frames], 1);
  const auto* data = rte_pktmbuf_mtod(m, const std::uint8_t*);
  const bool linear = m->nb_segs == 1;
  if (!linear) {  // a frame over several mbufs: made whole in the scratch buffer
    scratch_.resize(m->pkt_len + padding_);
    data = static_cast<const std::uint8_t*>(rte_pktmbuf_read(m, 0, m->pkt_len, scratch_.data()));
  }
  const kernels::Frame f = kernels::parse_frame(data, linear ? m->data_len : m->pkt_len, kernels::LinkType::ethernet,
                                                port_.options().verify_checksums);
  switch (f.kind) {
    case kernels::FrameKind::udp: break;
    case kernels::FrameKind::fragment: SourceCounters::add(counters()[DpdkFigure::fragments], 1); return;
    case kernels::FrameKind::truncated: SourceCounters::add(counters()[DpdkFigure::truncated], 1); return;
    case kernels::FrameKind::bad_checksum: SourceCounters::add(counters()[DpdkFigure::bad_checksums], 1); return;
    case kernels::FrameKind::tcp:
    case kernels::FrameKind::other: SourceCounters::add(counters()[DpdkFigure::frames_other], 1); return;
  }
  if (port_.options().udp_port != 0 && f.dst_port != port_.options().udp_port) {
    SourceCounters::add(counters()[DpdkFigure::frames_other], 1);
    return;
  }
  SourceCounters::add(counters().bytes_in, f.payload_len);
  const char* payload = reinterpret_cast<const char*>(f.payload);
  // The parser reads up to `padding_` bytes past the payload: the frame's
  // own trailing bytes and the mbuf's tailroom are readable, so most
  // payloads go in place; the rest are copied.
  const std::size_t after = (linear ? m->data_len + rte_pktmbuf_tailroom(m) : scratch_.size()) -
                            (f.payload_offset + f.payload_len);
  if (after < padding_) {  // (a frame made whole in scratch_ has its padding already)
    SourceCounters::add(counters()[DpdkFigure::padding_copies], 1);
    copy_.resize(f.payload_len + padding_);
    std::memcpy(copy_.data(), payload, f.payload_len);
    payload = copy_.data();
  }
  sink.lines(input_, payload, f.payload_len, position_);
  position_ += f.payload_len;
}

void DpdkSource::drain(LineSink& sink, std::int64_t deadline_ms) {
  // What the queue holds now, up to the deadline.
  for (int bursts = 0; bursts < 4096 && monotonic_ms() < deadline_ms && poll(sink, 0); ++bursts) {
  }
}

}  // namespace spate::io

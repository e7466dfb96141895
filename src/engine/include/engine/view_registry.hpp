// View kinds by name: `window = "..."` in a [[view]] names one. A kind is
// one file (its View implementation and a ViewKind that describes it) and
// one line in view_registry.cpp's list; nothing else names it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "engine/view.hpp"

namespace spate::engine {

struct ViewKind {
  std::string_view name;
  // The kind's own checks of a view's settings (its size, its slide),
  // beyond what the config parser checks for every view; each problem
  // appended as the reason, without the view's name.
  void (*check)(const ViewConfig& view, std::vector<std::string>& problems);
  // What of the view's settings its state depends on, for the checkpoint
  // fingerprint: state kept under other settings is not loaded.
  std::string (*state_tag)(const ViewConfig& view);
  std::unique_ptr<View> (*make)(const ViewConfig& view, std::int64_t allowed_lateness_ms);
  // The start of the newest window that starts at or before `t` (t within
  // the RFC 3339 range): where VIEW_TOP's WINDOW_START is moved to.
  std::int64_t (*align)(const ViewConfig& view, std::int64_t t);
};

// The kind of that name, or nullptr.
const ViewKind* find_view_kind(std::string_view name) noexcept;
// Every kind's name, for error messages and docs ("tumbling, hopping").
std::string view_kind_names();

// Every view's kind exists and accepts its settings: what --check-config and
// a start add to the config parser's checks (each error at the view's line).
std::vector<ConfigError> check_views(const Config& config);

// The start of the newest window of `view` that starts at or before `t`, for
// a view that check_views() accepted: a time inside a tumbling window gives
// that window, one inside a hopping view's slide the window starting there.
// `t` is first held to the RFC 3339 range, which holds every event time.
std::int64_t align_window_start(const ViewConfig& view, std::int64_t t);

// The view for a config that check_views() accepted (throws otherwise).
std::unique_ptr<View> make_view(const ViewConfig& config, std::int64_t allowed_lateness_ms);

}  // namespace spate::engine

// jemalloc options compiled into every spate executable (MALLOC_CONF in the
// environment still overrides them).
// - Transparent huge pages for the heap: a page fault costs about 10 us in a
//   VM, and growing view state took 3.9k of them per 2M events on one shard;
//   with THP 1.4k, and 10% less CPU.
// - One arena per CPU: shard threads are pinned, so each shard allocates from
//   its own CPU's arena and memory a shard freed is what the next shard on
//   that CPU reuses. With arenas dealt to threads round-robin, an engine
//   started after another one got cold arenas and paid the page faults again
//   (1-shard harness runs 0.30 s instead of 0.27 s).
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's interface.
const char* malloc_conf = "thp:always,metadata_thp:always,percpu_arena:percpu";
}

//! The binaries' allocator and its upkeep. A proxy allocates and frees a little for every call
//! on every thread; mimalloc's per-thread heaps do that at a fraction of the system
//! allocator's cost (see docs/benchmarks.md). By default it commits its
//! arenas eagerly and returns pages freed after a burst — a flood of connections, say — only
//! when the threads that freed them allocate again, so an idle node kept its peak resident.
//! Here arenas are committed as they are used, and a collection every few seconds returns
//! what has been free for longer than mimalloc's purge delay (1 s, for arenas as well).

use std::os::raw::{c_int, c_long};
use std::time::Duration;

// `mi_option_e` of mimalloc 3.3 (libmimalloc-sys 0.1.49), which the Rust bindings do not name;
// with another version the options are left alone.
const MI_VERSION: c_int = 303;
const MI_OPTION_ARENA_EAGER_COMMIT: c_int = 4;
const MI_OPTION_ARENA_PURGE_MULT: c_int = 24;

const COLLECT_EVERY: Duration = Duration::from_secs(5);

pub use mimalloc::MiMalloc;

/// Makes mimalloc the binary's allocator, its options set as the process loads: it reserves
/// its first arena at the first allocation, before `main`.
#[macro_export]
macro_rules! global_allocator {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::memory::MiMalloc = $crate::memory::MiMalloc;

        #[cfg(target_os = "linux")]
        #[used]
        #[unsafe(link_section = ".init_array")]
        static TUNE_ALLOCATOR: extern "C" fn() = {
            extern "C" fn tune() {
                $crate::memory::tune_allocator();
            }
            tune
        };
    };
}

/// Must run before the first allocation ([`global_allocator!`] runs it as the process
/// loads): the options apply to arenas reserved afterwards.
pub fn tune_allocator() {
    if !options_known() {
        return;
    }
    // SAFETY: setting an option is allowed at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0 as c_long);
        // Free arena memory is purged after the purge delay itself, not ten times it.
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_PURGE_MULT, 1 as c_long);
    }
}

fn options_known() -> bool {
    // SAFETY: a plain query.
    unsafe { libmimalloc_sys::mi_version() / 100 == MI_VERSION }
}

/// Returns freed memory to the operating system every few seconds, for as long as the runtime
/// runs.
pub fn spawn_collector() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(COLLECT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: a collection may run on any thread at any time.
            unsafe { libmimalloc_sys::mi_collect(true) };
        }
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_numbers_are_for_the_mimalloc_in_use() {
        assert!(
            super::options_known(),
            "mimalloc {} is not 3.3: check the option numbers in memory.rs",
            unsafe { libmimalloc_sys::mi_version() }
        );
    }
}

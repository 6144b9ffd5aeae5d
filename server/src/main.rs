//! The `sio-server` binary: see [`sio_server::entry`].

/// jemalloc with its background threads rather than glibc's malloc: freed memory (the
/// connections of a wave that left) goes back to the OS within seconds, even on an idle
/// node, where glibc keeps a peak's worth in its arenas for good.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    sio_server::entry::main()
}

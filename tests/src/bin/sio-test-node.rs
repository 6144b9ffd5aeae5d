//! `sio-server` as a child process of the tests (so a test can SIGKILL a node):
//! exactly the server's entry point, built inside this package so integration tests
//! find it as `CARGO_BIN_EXE_sio-test-node`.

/// jemalloc with its background threads rather than glibc's malloc: freed memory (the
/// connections of a wave that left) goes back to the OS within seconds, even on an idle
/// node, where glibc keeps a peak's worth in its arenas for good.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    sio_server::entry::main()
}

//! `sio-server` as a child process of the tests (so a test can SIGKILL a node):
//! exactly the server's entry point, built inside this package so integration tests
//! find it as `CARGO_BIN_EXE_sio-test-node`.

fn main() -> std::process::ExitCode {
    sio_server::entry::main()
}

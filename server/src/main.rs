//! The `sio-server` binary: see [`sio_server::entry`].

fn main() -> std::process::ExitCode {
    sio_server::entry::main()
}

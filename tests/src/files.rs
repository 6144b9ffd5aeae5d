//! Where the kit's files live, and temporary directories a test owns.

use std::path::PathBuf;

/// The `tests/` folder of the repository.
pub fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder of the Node.js clients (`tests/js`).
pub fn js_dir() -> PathBuf {
    tests_dir().join("js")
}

/// The npm copy of the browser bundle, served to the demo page in tests.
pub fn client_bundle() -> PathBuf {
    js_dir().join("node_modules/socket.io-client/dist/socket.io.min.js")
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `<temp dir>/<name>-<pid>`, unique to this process for a unique `name`.
    pub fn create(name: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

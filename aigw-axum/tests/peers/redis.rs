//! A real `redis-server` for the tests that share counters between processes, in
//! aigw-axum's and aigw-extproc's tests alike (each includes this file).
#![allow(
    unreachable_pub,
    dead_code,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The password every test server requires (tests check it never reaches a log).
pub const REDIS_PASSWORD: &str = "s3cret";

/// A `redis-server` on a free loopback port with a password, killed on drop.
pub struct RedisServer {
    /// The server process.
    pub child: Child,
    /// `redis://:password@127.0.0.1:port/0`.
    pub url: String,
    bin: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Kills the server (its data is lost, as in a crash).
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts a fresh, empty server on the same port with the same password.
    pub fn restart(&mut self) {
        self.child = spawn(&self.bin, self.port, self._dir.path());
    }
}

fn spawn(bin: &std::path::Path, port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--requirepass", REDIS_PASSWORD])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` from `PATH`; `None` (skip, with a note) when absent, a
/// failure when `AIGW_REQUIRE_EXTERNAL=1`.
pub fn redis_server() -> Option<RedisServer> {
    let found = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("redis-server"))
            .find(|f| f.is_file())
    });
    let Some(bin) = found else {
        assert!(
            std::env::var("AIGW_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
            "redis-server is not on PATH and AIGW_REQUIRE_EXTERNAL=1"
        );
        eprintln!("skipping: redis-server is not on PATH");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let child = spawn(&bin, port, dir.path());
    Some(RedisServer {
        child,
        url: format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"),
        bin,
        port,
        _dir: dir,
    })
}

//! The real `partyd` binary as a child process: started on port 0 with a temporary data dir,
//! its address read from its log, stopped with SIGTERM or killed with SIGKILL.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// A running partyd process.
pub struct Partyd {
    pub child: Child,
    pub addr: SocketAddr,
}

/// The parties of the conformance suite, as a file.
const PARTY_TOML: &str = "[parties.main]\nkind = \"tinybase-persister\"\n\n[parties.custom]\nkind = \"tinybase-persister\"\nstore_path = \"/my_tinybase\"\nmessage_prefix = \"tb:\"\n";

impl Partyd {
    /// Spawns the binary cargo built for the tests, with its data under `dir/data`, and waits
    /// for the log line that names its address.
    pub fn spawn(dir: &Path) -> Self {
        let config = dir.join("party.toml");
        std::fs::write(&config, PARTY_TOML).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_partyd"))
            .args(["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn partyd");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("partyd exited before listening").expect("read stderr");
            if let Some((_, addr)) = line.split_once("listening on ") {
                break addr.trim().parse().expect("address");
            }
        };
        // Keep draining the log so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    /// SIGKILL, then waits for the exit.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

//! The real `partyd` binary as a child process: started on port 0 with a temporary data dir,
//! its address read from its log, stopped with SIGTERM or killed with SIGKILL.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// A running partyd process.
pub struct Partyd {
    pub child: Child,
    pub addr: SocketAddr,
    /// Every line it has logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// The parties of the conformance suite, as a file.
pub const PARTY_TOML: &str = "[parties.main]\nkind = \"tinybase-persister\"\n\n[parties.custom]\nkind = \"tinybase-persister\"\nstore_path = \"/my_tinybase\"\nmessage_prefix = \"tb:\"\n";

impl Partyd {
    /// Spawns the binary cargo built for the tests, with its data under `dir/data`, and waits
    /// for the log line that names its address.
    pub fn spawn(dir: &Path) -> Self {
        Self::spawn_with(dir, PARTY_TOML, &[("RUST_LOG", "info")])
    }

    /// Spawns with this configuration file and these environment variables.
    pub fn spawn_with(dir: &Path, party_toml: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn_command(dir, party_toml, env, |_| {})
    }

    /// Spawns with this configuration file and these environment variables, after `setup` has
    /// had its say on the command (resource limits of the child, for one).
    pub fn spawn_command(
        dir: &Path,
        party_toml: &str,
        env: &[(&str, &str)],
        setup: impl FnOnce(&mut Command),
    ) -> Self {
        let config = dir.join("party.toml");
        std::fs::write(&config, party_toml).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_partyd"));
        command
            .args(["--config", config.to_str().unwrap(), "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        setup(&mut command);
        let mut child = command.spawn().expect("spawn partyd");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let addr = loop {
            let line = lines.next().expect("partyd exited before listening").expect("read stderr");
            log.lock().unwrap().push(line.clone());
            // The line is text or JSON (the log format follows the terminal); the address is
            // the run of address characters after the words.
            if let Some((_, rest)) = line.split_once("listening on ") {
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                    .collect();
                break addr.parse().expect("address");
            }
        };
        // Keep reading the log so the child never blocks on a full pipe.
        let kept = log.clone();
        std::thread::spawn(move || {
            lines.map_while(Result::ok).for_each(|line| kept.lock().unwrap().push(line))
        });
        Self { child, addr, log }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status =
            Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill -TERM");
        assert!(status.success());
        self.child.wait().expect("wait")
    }

    /// SIGKILL, then waits for the exit.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("wait");
    }
}

impl Drop for Partyd {
    /// A test that fails before stopping its server must not leave the process running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

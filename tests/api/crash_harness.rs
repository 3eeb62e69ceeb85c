//! The real binary as a child process, for the crash, fault, shutdown and backup tests:
//! like `helpers::ServerProcess`, but it keeps the log lines, can fail to start, and
//! can be sent signals.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::helpers::{RemoteApp, serve_command};

/// Generous bound for things that take milliseconds (a start, a log line, a recovery):
/// only reached when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A running `permetrix serve`.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    logs: Receiver<String>,
}

/// A start that failed: the exit status and everything the server wrote.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stderr: String,
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_permetrix")
}

impl Proc {
    /// Starts the server on a free port; panics if it does not become ready.
    pub fn start(dir: &Path, token: &str, extra: &[&str]) -> Proc {
        match Self::try_start(dir, token, extra) {
            Ok(p) => p,
            Err(f) => panic!("the server did not start ({}):\n{}", f.status, f.stderr),
        }
    }

    /// Starts the server; returns its output if it exits instead of becoming ready.
    pub fn try_start(dir: &Path, token: &str, extra: &[&str]) -> Result<Proc, StartFailure> {
        Self::spawn(dir, token, extra, None)
    }

    /// Starts the server with its log written to the regular file `log` (as a service
    /// logging to a file on its data volume would), and reads the log from there.
    pub fn start_logging_to(dir: &Path, token: &str, log: &Path) -> Proc {
        match Self::spawn(dir, token, &[], Some(log)) {
            Ok(p) => p,
            Err(f) => panic!("the server did not start ({}):\n{}", f.status, f.stderr),
        }
    }

    fn spawn(
        dir: &Path,
        token: &str,
        extra: &[&str],
        log: Option<&Path>,
    ) -> Result<Proc, StartFailure> {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::piped(),
        };
        let mut child = serve_command(dir, token, "2")
            .args(extra)
            .env("RUST_LOG", "info")
            .stderr(stderr)
            .spawn()
            .expect("the binary starts");
        let (tx, logs) = channel();
        match log {
            // Drains stderr for the life of the child, so that it never blocks on the pipe.
            None => {
                let stderr = child.stderr.take().expect("stderr is piped");
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines() {
                        let Ok(line) = line else { break };
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                });
            }
            Some(path) => {
                let path = path.to_owned();
                let pid = child.id();
                std::thread::spawn(move || tail(&path, pid, &tx));
            }
        }
        let mut seen = String::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match logs.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                        return Ok(Proc { child, addr, logs });
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = child.wait().expect("the child is waited for");
                    return Err(StartFailure {
                        status,
                        stderr: seen,
                    });
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("the server was not ready within {PATIENCE:?}:\n{seen}");
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// HTTP helpers for this server.
    pub fn app(&self, token: &str) -> RemoteApp {
        RemoteApp::new(self.addr, token)
    }

    /// SIGKILL and reap.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends a signal by name (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill(1) runs")
            .success();
        assert!(ok, "kill -{name} failed");
    }

    /// Waits (bounded) for a log line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.logs.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line containing {needle:?}: {e:?}"),
            }
        }
    }

    /// Waits (bounded) for the process to exit; the log lines it wrote meanwhile.
    pub fn wait_exit(self) -> (ExitStatus, Vec<String>) {
        let Proc {
            mut child, logs, ..
        } = self;
        let pid = child.id();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(PATIENCE) {
            // The pipe closes with the process: the rest of its log is a bounded read.
            Ok(status) => (status.unwrap(), logs.iter().collect()),
            Err(_) => {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                panic!("the server did not exit within {PATIENCE:?}");
            }
        }
    }
}

/// Follows a log file while process `pid` lives (a file has no end-of-stream to wait for,
/// so it is re-read every few milliseconds).
fn tail(path: &Path, pid: u32, tx: &std::sync::mpsc::Sender<String>) {
    let mut offset = 0usize;
    let mut partial = String::new();
    loop {
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        let bytes = std::fs::read(path).unwrap_or_default();
        if bytes.len() > offset {
            partial.push_str(&String::from_utf8_lossy(&bytes[offset..]));
            offset = bytes.len();
            while let Some(end) = partial.find('\n') {
                let line: String = partial.drain(..=end).collect();
                if tx.send(line.trim_end().to_owned()).is_err() {
                    return;
                }
            }
        }
        if !alive {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `permetrix ARGS` to completion (backup, restore).
pub fn run_cli(args: &[impl AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(binary())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

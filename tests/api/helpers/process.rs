//! The one process harness: the real binary (the server, or a client program such as
//! `permetrix run`) as a child process whose stderr is kept line by line, waited on with
//! bounds, signalled, and killed and reaped when dropped.
use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output as ProgramOutput, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use nix::unistd::Pid;

pub use nix::sys::signal::Signal;

use super::accounts::Tenant;
use super::app::{TestApp, TestAppBuilder};
use super::poll::PATIENCE;

/// The binary under test, not started yet.
pub fn permetrix() -> Command {
    Command::new(env!("CARGO_BIN_EXE_permetrix"))
}

/// `permetrix run` of `ci-agent` wrapping `sh -c JOB` for a seat of `tool` at `t`
/// through the server at `addr`, with `t`'s admin key and no signing; its output is
/// kept.
pub fn permetrix_run(
    addr: SocketAddr,
    t: &Tenant,
    tool: &str,
    extra: &[&OsStr],
    job: &str,
) -> Process {
    let url = format!("http://{}:{}", t.host, addr.port());
    Process::spawn(&mut permetrix_run_command(&url, addr, t, tool, extra, job))
}

/// The command [`permetrix_run`] starts, for the broker at `url` reached at `connect`,
/// for a test to change (its environment) first.
pub fn permetrix_run_command(
    url: &str,
    connect: SocketAddr,
    t: &Tenant,
    tool: &str,
    extra: &[&OsStr],
    job: &str,
) -> Command {
    let mut command = permetrix();
    command
        .arg("run")
        .args(["--server", url])
        .args(["--connect", &connect.to_string()])
        .args(["--tool", tool, "--user", "ci-agent"])
        .args(extra)
        .args(["--", "sh", "-c", job])
        .env("PERMETRIX_API_KEY", &t.admin_key)
        .env_remove("PERMETRIX_SIGNING_SECRET")
        .env_remove("PERMETRIX_VENDOR_ID");
    command
}

/// Runs `permetrix ARGS` to completion.
pub fn run_cli(args: &[String]) -> ProgramOutput {
    permetrix()
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

/// Runs `permetrix ARGS`, which must succeed; its stdout.
pub fn cli_ok(args: &[String]) -> String {
    let out = run_cli(args);
    assert!(
        out.status.success(),
        "permetrix {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `permetrix ARGS`, which must fail; its stderr.
pub fn cli_err(args: &[String]) -> String {
    let out = run_cli(args);
    assert!(!out.status.success(), "permetrix {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The lines a child wrote, as they arrive.
#[derive(Default)]
struct Output {
    lines: Mutex<Lines>,
    grew: Condvar,
}

#[derive(Default)]
struct Lines {
    all: Vec<String>,
    /// The source is exhausted: the pipe closed, or the followed file's writer is gone.
    ended: bool,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, Lines> {
        self.lines.lock().unwrap()
    }

    fn push(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line).trim_end().to_owned();
        self.lock().all.push(line);
        self.grew.notify_all();
    }

    fn end(&self) {
        self.lock().ended = true;
        self.grew.notify_all();
    }

    /// Waits (bounded) until `ready` says the lines are complete enough.
    fn wait<'a>(
        &'a self,
        what: &str,
        mut ready: impl FnMut(&Lines) -> bool,
    ) -> MutexGuard<'a, Lines> {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.lock();
        while !ready(&lines) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "gave up after {PATIENCE:?} waiting for {what}; output so far:\n{}",
                lines.all.join("\n")
            );
            lines = self.grew.wait_timeout(lines, left).unwrap().0;
        }
        lines
    }
}

/// Reads `source` line by line into `output` until it ends. Never stops early, so the
/// child never blocks on a full pipe.
fn collect(source: impl Read + Send + 'static, output: Arc<Output>) {
    std::thread::spawn(move || {
        let mut source = BufReader::new(source);
        let mut line = Vec::new();
        while source.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            output.push(&line);
            line.clear();
        }
        output.end();
    });
}

/// Follows the log file `path` while process `pid` lives. A file has no end-of-stream
/// to wait for, so it is re-read every few milliseconds (reading, not synchronisation:
/// the tests wait for lines through [`Output::wait`]).
fn follow(path: &Path, pid: u32, output: Arc<Output>) {
    let path = path.to_owned();
    std::thread::spawn(move || {
        let mut offset = 0;
        let mut partial = Vec::new();
        loop {
            // A process that was waited for is gone from /proc: read once more, then end.
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.len() > offset {
                partial.extend_from_slice(&bytes[offset..]);
                offset = bytes.len();
                while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = partial.drain(..=end).collect();
                    output.push(&line);
                }
            }
            if !alive {
                output.end();
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
}

/// A child process with its stderr kept. Killed and reaped when dropped.
pub struct Process {
    /// `None` once waited for by [`Process::wait_exit`].
    child: Option<Child>,
    output: Arc<Output>,
    /// Lines before this index were read by [`Process::log_line`].
    read: Cell<usize>,
}

impl Process {
    /// Starts `command` with its stderr on a pipe, read line by line.
    pub fn spawn(command: &mut Command) -> Process {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("the program starts");
        let output = Arc::<Output>::default();
        let stderr = child.stderr.take().expect("stderr is piped");
        collect(stderr, Arc::clone(&output));
        Process::of(child, output)
    }

    /// Starts `command` with its stderr written to the regular file `log`, followed.
    fn spawn_logging_to(command: &mut Command, log: &Path) -> Process {
        let file = std::fs::File::create(log).expect("the log file is created");
        let child = command.stderr(file).spawn().expect("the program starts");
        let output = Arc::<Output>::default();
        follow(log, child.id(), Arc::clone(&output));
        Process::of(child, output)
    }

    fn of(child: Child, output: Arc<Output>) -> Process {
        Process {
            child: Some(child),
            output,
            read: Cell::new(0),
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("the process was waited for")
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("the process was waited for")
            .id()
    }

    /// Sends `signal` (`SIGTERM`, `SIGINT`, `SIGSTOP`, `SIGCONT`, ...).
    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, signal).expect("the signal is sent");
    }

    /// Waits (bounded) for the next line satisfying `wanted`; returns it. Lines are read
    /// once: the next call looks only at lines after this one.
    pub fn log_line(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        self.next_line(what, wanted).unwrap_or_else(|| {
            panic!(
                "the output ended without {what}:\n{}",
                self.output().join("\n")
            )
        })
    }

    /// Waits (bounded) for the next line containing `needle`; returns it.
    pub fn wait_for_log(&self, needle: &str) -> String {
        self.log_line(&format!("a line with {needle:?}"), |l| l.contains(needle))
    }

    /// The next line satisfying `wanted`, or `None` if the output ends first.
    fn next_line(&self, what: &str, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let mut found = None;
        let lines = self.output.wait(what, |lines| {
            let from = self.read.get();
            if let Some(at) = lines.all[from..].iter().position(|l| wanted(l)) {
                found = Some(from + at);
                self.read.set(from + at + 1);
                return true;
            }
            self.read.set(lines.all.len());
            lines.ended
        });
        found.map(|at| lines.all[at].clone())
    }

    /// Every line written so far.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().all.clone()
    }

    /// SIGKILL, and reap.
    pub fn kill9(mut self) {
        self.child().kill().unwrap();
        self.child().wait().unwrap();
    }

    /// Waits (bounded) for the process to exit; its status and every line it wrote.
    pub fn wait_exit(mut self) -> (ExitStatus, Vec<String>) {
        let mut child = self.child.take().expect("the process was waited for");
        let pid = child.id();
        let (tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let Ok(status) = exited.recv_timeout(PATIENCE) else {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            panic!("the process did not exit within {PATIENCE:?}");
        };
        let status = status.expect("the process is waited for");
        // The output ends with the process: the pipe closes, the file is read to its end.
        let lines = self
            .output
            .wait("the end of the output", |lines| lines.ended);
        (status, lines.all.clone())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `permetrix serve` as a child process: its address, its log, and HTTP helpers.
pub struct ServerProcess {
    pub addr: SocketAddr,
    token: String,
    process: Process,
    /// The data directory when the test did not choose one (removed after the process
    /// is killed: fields drop in order).
    _dir: Option<tempfile::TempDir>,
}

/// A start that failed: the exit status and everything the server wrote.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stderr: String,
}

impl ServerProcess {
    /// Starts the server the builder describes, on a free port, and waits (bounded) for
    /// its `listening on` line.
    pub(super) fn start(b: &TestAppBuilder) -> Result<ServerProcess, StartFailure> {
        let own = match &b.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().unwrap()),
        };
        let dir = match (&b.data_dir, &own) {
            (Some(dir), _) => dir.as_path(),
            (None, own) => own.as_ref().unwrap().path(),
        };
        let (store_args, store_env) = b.store.process_args();
        let mut command = permetrix();
        command
            .args(["serve", "--bind", "127.0.0.1:0", "--workers", "2"])
            .args(["--arbiters", "2", "--data-dir"])
            .arg(dir)
            .args(&store_args)
            .envs(store_env)
            .args(&b.args)
            .env("PERMETRIX_ADMIN_TOKEN", &b.token)
            .env("RUST_LOG", "info")
            .envs(b.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null());
        let process = match &b.log_file {
            Some(log) => Process::spawn_logging_to(&mut command, log),
            None => Process::spawn(&mut command),
        };
        let Some(ready) = process.next_line("the ready line", |l| l.contains("listening on "))
        else {
            let (status, lines) = process.wait_exit();
            return Err(StartFailure {
                status,
                stderr: lines.join("\n"),
            });
        };
        Ok(ServerProcess {
            addr: listening_address(&ready),
            token: b.token.clone(),
            process,
            _dir: own,
        })
    }

    /// HTTP helpers for this server.
    pub fn app(&self) -> TestApp {
        TestApp::remote(self.addr, &self.token)
    }

    /// SIGKILL, and reap.
    pub fn kill9(self) {
        self.process.kill9();
    }

    /// Waits (bounded) for the server to exit; its status and every line it wrote.
    pub fn wait_exit(self) -> (ExitStatus, Vec<String>) {
        self.process.wait_exit()
    }
}

impl Deref for ServerProcess {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

/// The address of a `listening on ADDR` line, in text or JSON logs.
fn listening_address(line: &str) -> SocketAddr {
    let rest = line.split("listening on ").nth(1).unwrap();
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    addr.parse()
        .unwrap_or_else(|e| panic!("no address in {line:?}: {e}"))
}

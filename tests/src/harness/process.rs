//! Child processes, free ports and scratch directories for one test.
//!
//! Every process a test starts is a [`Process`], which kills and reaps its child when dropped,
//! so a failing assertion never leaves a collector or an Envoy running. A [`TempDir`] is removed
//! when dropped, except while a test is panicking: then it is kept and its path printed, so the
//! logs inside can be read.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A directory under the system temp dir, removed on drop unless the thread is panicking.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<temp>/<prefix>-<pid>-<nanos>-<n>`.
    pub fn new(prefix: &str) -> io::Result<TempDir> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{nanos}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test failed: keeping {} (logs inside)", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// A loopback port that was free a moment ago and was not handed out before in this process.
///
/// The port is released before the caller's child binds it, so another process could take it
/// in between; remembering handed-out ports at least keeps parallel tests apart.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if given.insert(port) {
            return port;
        }
    }
}

/// A running child process whose output goes to a log file; killed and reaped on drop.
#[derive(Debug)]
pub struct Process {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Process {
    /// Starts `command` with stdin closed and stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> Process {
        let out = open_log(log, name);
        let err = out.try_clone().expect("clone log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        Process {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the child has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    /// Asks the child to stop (SIGTERM), waits up to `grace`, then kills it.
    pub fn terminate(&mut self, grace: Duration) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if child.try_wait().ok().flatten().is_none() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.kill();
    }

    /// Kills the child (if still running) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// Panics with the log's tail if the child has exited; used while waiting for readiness.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.exited() {
            panic!(
                "{} exited ({status}) while the test needed it; last lines of {}:\n{}",
                self.name,
                self.log.display(),
                self.log_tail(30)
            );
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn open_log(path: &Path, name: &str) -> File {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open log {} for {name}: {e}", path.display()));
    let _ = writeln!(file, "---- {name} starting ----");
    file
}

/// The last `lines` lines of a text file (lossy), or a note that it could not be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = fs::read(path) else {
        return format!("(cannot read {})", path.display());
    };
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Calls `check` until it returns `Ok`, at most for `timeout`, pausing `every` between calls.
///
/// `check` returns `Err(state)` describing what it saw; on timeout this panics with `what` and
/// the last state, so a failing test says what it waited for and how far it got.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(value) => return value,
            Err(state) => state,
        };
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
        }
        std::thread::sleep(every);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_not_handed_out_twice() {
        let ports: HashSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }

    #[test]
    fn temp_dir_is_removed_on_drop() {
        let dir = TempDir::new("plumbline-harness-test").unwrap();
        let path = dir.path().to_path_buf();
        fs::write(path.join("f"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_dropped_process_is_killed_and_reaped() {
        let dir = TempDir::new("plumbline-harness-test").unwrap();
        let mut command = Command::new("sleep");
        command.arg("30");
        let mut process = Process::spawn("sleep", command, &dir.path().join("sleep.log"));
        let pid = process.child.as_ref().unwrap().id();
        assert!(process.exited().is_none());
        drop(process);
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        assert!(!proc_dir.exists(), "sleep {pid} still exists");
    }

    #[test]
    fn wait_for_returns_the_first_ok_value() {
        let mut n = 0;
        let value = wait_for(
            "n to reach 3",
            Duration::from_secs(5),
            Duration::ZERO,
            || {
                n += 1;
                if n >= 3 {
                    Ok(n)
                } else {
                    Err(format!("n = {n}"))
                }
            },
        );
        assert_eq!(value, 3);
    }

    #[test]
    #[should_panic(expected = "waiting for the impossible; last seen: never")]
    fn wait_for_names_what_it_waited_for_on_timeout() {
        wait_for::<()>(
            "the impossible",
            Duration::from_millis(50),
            Duration::from_millis(10),
            || Err("never".into()),
        );
    }
}

//! The demo upstream as a child process, and the count of requests it served, in all and per
//! `x-api-key` value.

use super::process::{wait_for, Process};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A running `demo-upstream`.
#[derive(Debug)]
pub struct Upstream {
    process: Process,
    port: u16,
    agent: ureq::Agent,
}

impl Upstream {
    /// Starts `bin --listen 127.0.0.1:port` and waits until it answers.
    pub fn start(bin: &Path, port: u16, dir: &Path) -> Upstream {
        if !bin.is_file() {
            panic!(
                "demo upstream not found at {}: run `make test`, which builds it",
                bin.display()
            );
        }
        let mut command = Command::new(bin);
        command.arg("--listen").arg(format!("127.0.0.1:{port}"));
        let process = Process::spawn("demo-upstream", command, &dir.join("upstream.log"));
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .proxy(None)
                .timeout_global(Some(Duration::from_secs(10)))
                .build(),
        );
        let mut upstream = Upstream {
            process,
            port,
            agent,
        };
        upstream.wait_ready();
        upstream
    }

    fn wait_ready(&mut self) {
        let (process, agent, port) = (&mut self.process, &self.agent, self.port);
        wait_for(
            "the demo upstream to answer",
            Duration::from_secs(15),
            Duration::from_millis(50),
            || {
                process.assert_running();
                requests(agent, port)
            },
        );
    }

    /// How many requests (other than its stats page) the upstream has served.
    pub fn requests(&self) -> u64 {
        requests(&self.agent, self.port).unwrap_or_else(|e| panic!("demo upstream stats: {e}"))
    }

    /// How many requests with `x-api-key: key` the upstream has served.
    pub fn requests_of(&self, key: &str) -> u64 {
        let stats =
            stats(&self.agent, self.port).unwrap_or_else(|e| panic!("demo upstream stats: {e}"));
        stats["by_key"][key].as_u64().unwrap_or(0)
    }
}

fn stats(agent: &ureq::Agent, port: u16) -> Result<serde_json::Value, String> {
    let url = format!("http://127.0.0.1:{port}/__demo/stats");
    let mut response = agent.get(&url).call().map_err(|e| e.to_string())?;
    let text = response
        .body_mut()
        .with_config()
        .limit(16 * 1024 * 1024)
        .read_to_string()
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))
}

fn requests(agent: &ureq::Agent, port: u16) -> Result<u64, String> {
    let stats = stats(agent, port)?;
    stats["requests"]
        .as_u64()
        .ok_or_else(|| format!("no `requests` count in {stats}"))
}

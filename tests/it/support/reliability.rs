//! Shared by the reliability tests: the real `floe-guard serve` binary in a
//! child process (so its memory can be read from /proc without the test's
//! own allocations), raw TLS connections and HTTP/1.1 on them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::server as server_support;
pub use crate::support::server::{closed_within, raw_tls, read_response, request_head, tls_config};

/// A `floe-guard serve` child process, killed on drop.
pub struct Served {
    pub child: Child,
    pub port: u16,
    pub ca: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

/// A free local port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Served {
    /// Starts `floe-guard serve --self-signed` with `extra` arguments and
    /// waits until `/readyz` answers 200 over verified TLS. Logs go to
    /// `self.log_path()` at `info`.
    pub async fn start(extra: &[&str]) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let ca_path = dir.path().join("ca.crt");
        let ca_out = ca_path.to_str().unwrap().to_string();
        let args: Vec<&str> = ["--self-signed", "--ca-out", &ca_out]
            .into_iter()
            .chain(extra.iter().copied())
            .collect();
        Self::spawn(dir, &ca_path, &args).await
    }

    /// Starts `floe-guard serve` with certificate files (`--tls-cert`,
    /// `--tls-key`) whose CA is `ca`.
    pub async fn start_with_files(ca: &str, dir: tempfile::TempDir, extra: &[&str]) -> Served {
        let ca_path = dir.path().join("trusted-ca.crt");
        std::fs::write(&ca_path, ca).unwrap();
        Self::spawn(dir, &ca_path, extra).await
    }

    /// Runs `floe-guard --log-level info serve --addr 127.0.0.1:PORT ARGS`,
    /// logging to `server.log` in `dir`, and waits until it serves
    /// certificates signed by the CA in `ca`.
    async fn spawn(dir: tempfile::TempDir, ca: &Path, args: &[&str]) -> Served {
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_floe-guard"))
            .args(["--log-level", "info", "serve"])
            .arg("--addr")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self::wait_ready(child, port, dir, ca).await
    }

    async fn wait_ready(mut child: Child, port: u16, dir: tempfile::TempDir, ca: &Path) -> Served {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
                panic!("server exited with {status}: {log}");
            }
            if let Ok(ca_pem) = std::fs::read_to_string(ca)
                && !ca_pem.is_empty()
            {
                let client = server_support::client(&[&ca_pem]).build().unwrap();
                let url = format!("https://localhost:{port}/readyz");
                if let Ok(resp) = client.get(&url).send().await
                    && resp.status() == 200
                {
                    return Served {
                        child,
                        port,
                        ca: ca_pem,
                        dir,
                        client,
                    };
                }
            }
            assert!(Instant::now() < deadline, "server did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `https://localhost:PORT`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The log once `ready` holds for it (the server writes its log lines
    /// from a writer thread), or as it is after 5 s.
    pub async fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        for _ in 0..100 {
            let log = self.log();
            if ready(&log) {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.log()
    }

    /// A field of /proc/PID/status in kB (`VmRSS`, `VmHWM`).
    pub fn status_kb(&self, field: &str) -> u64 {
        proc_status_kb(self.child.id(), field)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Asserts the server is alive and answers a normal review correctly.
    pub async fn assert_serves(&mut self) {
        assert!(self.alive(), "server died: {}", self.log());
        let pod = server_support::job_pod("floe-jobs");
        let review = server_support::pod_review("uid-next", "CREATE", Some(&pod), None);
        let (status, body) =
            server_support::post(&self.client, &format!("{}/mutate", self.url()), &review).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["response"]["uid"], "uid-next");
        assert_eq!(body["response"]["allowed"], true);
        assert!(body["response"]["patch"].is_string());
    }

    /// Prints one row of the hostile-input matrix (`--nocapture` shows it).
    pub fn report(&self, case: &str, answer: &str) {
        eprintln!(
            "| {case} | {answer} | VmHWM {} MiB, VmRSS {} MiB |",
            self.status_kb("VmHWM") / 1024,
            self.status_kb("VmRSS") / 1024
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of /proc/PID/status, kB.
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The value of a metric line `name` (exact, labels included).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

/// POSTs raw bytes with a content type; status and text.
pub async fn post_raw(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, String) {
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Parses a JSON answer.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Writes a certificate pair the way the kubelet updates a Secret volume:
/// files in a fresh timestamped directory, then `..data` swapped atomically
/// by renaming a symlink; `tls.crt` / `tls.key` link through `..data`.
pub fn kubelet_write(dir: &Path, version: usize, cert: &str, key: &str) {
    let ts = dir.join(format!("..v{version}"));
    std::fs::create_dir(&ts).unwrap();
    std::fs::write(ts.join("tls.crt"), cert).unwrap();
    std::fs::write(ts.join("tls.key"), key).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(ts.file_name().unwrap(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    for name in ["tls.crt", "tls.key"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(format!("..data/{name}"), &link).unwrap();
        }
    }
}

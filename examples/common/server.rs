//! The `floe-guard serve --self-signed` child process the load examples
//! drive: started on a free loopback port, its CA written to a scratch
//! directory, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::Context;

/// The server process, killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its HTTPS port on 127.0.0.1.
    pub port: u16,
    /// Where it writes its CA certificate.
    pub ca_path: PathBuf,
    /// The scratch directory (`floe-guard-NAME-PID` under the temp dir).
    pub dir: PathBuf,
}

impl Server {
    /// Starts `binary serve --self-signed` on a free port; `configure` adds
    /// arguments, environment and output redirection.
    pub fn start(
        binary: &Path,
        name: &str,
        configure: impl FnOnce(&mut Command, &Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<Server> {
        let dir = std::env::temp_dir().join(format!("floe-guard-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let ca_path = dir.join("ca.crt");
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut cmd = Command::new(binary);
        cmd.args(["serve", "--self-signed", "--shutdown-delay", "0", "--addr"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--ca-out")
            .arg(&ca_path);
        configure(&mut cmd, &dir)?;
        let child = cmd.spawn().with_context(|| {
            format!(
                "cannot start {} (build it with `cargo build --release`)",
                binary.display()
            )
        })?;
        Ok(Server {
            child,
            port,
            ca_path,
            dir,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

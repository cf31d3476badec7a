//! DynamoDB Local for the end-to-end tests: started from the directory the test command
//! installs (`TOLLGATE_DYNAMODB_LOCAL_DIR`), on a free loopback port, killed on drop.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Dummy credentials: DynamoDB Local checks their form, not their value.
pub const CREDENTIALS: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", "e2e"),
    ("AWS_SECRET_ACCESS_KEY", "e2e"),
];

pub struct DynamoLocal {
    child: Child,
    port: u16,
}

impl DynamoLocal {
    /// `None` (with a loud line) only when `TOLLGATE_SKIP_DYNAMODB=1`; a missing emulator
    /// otherwise fails the test.
    pub fn start() -> anyhow::Result<Option<DynamoLocal>> {
        let Some(dir) = std::env::var_os("TOLLGATE_DYNAMODB_LOCAL_DIR").map(PathBuf::from) else {
            if std::env::var("TOLLGATE_SKIP_DYNAMODB").as_deref() == Ok("1") {
                eprintln!("*** SKIPPED: DynamoDB e2e test (TOLLGATE_SKIP_DYNAMODB=1) ***");
                return Ok(None);
            }
            anyhow::bail!(
                "TOLLGATE_DYNAMODB_LOCAL_DIR is not set: run scripts/test-all.sh (it installs DynamoDB Local), or set TOLLGATE_SKIP_DYNAMODB=1 to skip"
            );
        };
        // The port is picked here and bound by Java a moment later, so another process can
        // take it in between: DynamoDB Local then exits, and a new port is tried.
        let mut attempt = 0;
        let local = loop {
            attempt += 1;
            let port = crate::free_addr()?.port();
            let child = Command::new("java")
                .current_dir(&dir)
                .args([
                    "-Djava.library.path=./DynamoDBLocal_lib",
                    "-jar",
                    "DynamoDBLocal.jar",
                    "-inMemory",
                    "-port",
                ])
                .arg(port.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            let mut local = DynamoLocal { child, port };
            let started = Instant::now();
            // Java takes far longer than this to listen: a port that answers at once is
            // another process's, and Java will fail to bind it.
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                anyhow::ensure!(attempt < 3, "{attempt} ports in a row were taken by others");
                eprintln!("port {port} was taken before DynamoDB Local started; another port");
                continue;
            }
            while TcpStream::connect(("127.0.0.1", port)).is_err()
                && local.child.try_wait()?.is_none()
            {
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(60),
                    "DynamoDB Local did not start in 60 s"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            // `try_wait` keeps answering the status once the child has exited.
            match local.child.try_wait()? {
                None => break local,
                Some(status) if attempt < 3 => {
                    eprintln!("DynamoDB Local on port {port} exited ({status}); another port");
                }
                Some(status) => {
                    anyhow::bail!("DynamoDB Local exited ({status}) on {attempt} ports in a row")
                }
            }
        };
        Ok(Some(local))
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Launches DynamoDB Local (AWS's emulator) for a test: its own process on a free port,
//! killed when the fixture is dropped, and by a watchdog if the test process dies.
//!
//! The emulator is installed by scripts/test.d/05-dynamodb-local.sh (npm package
//! `amplify-dynamodb-simulator`, Java 17), which exports `TOLLGATE_DYNAMODB_LOCAL_DIR`.
//! Without it the tests fail, unless `TOLLGATE_SKIP_DYNAMODB=1` says to skip them.
// Test fixture: a failure to start the emulator is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tollgate_runtime::store::dynamodb::{Credentials, DynamoConfig};

/// How long the JVM may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct DynamoLocal {
    dir: PathBuf,
    port: u16,
    /// `Some` for an on-disk database that survives a kill and restart.
    db: Option<tempfile::TempDir>,
    wrapper: Option<Child>,
    java_pid: Option<u32>,
}

/// The emulator's directory, or `None` (after a loud line) when skipping is asked for.
pub fn emulator_dir() -> Option<PathBuf> {
    if std::env::var("TOLLGATE_SKIP_DYNAMODB").as_deref() == Ok("1") {
        eprintln!(
            "\n*** SKIPPED: DynamoDB Local tests skipped because TOLLGATE_SKIP_DYNAMODB=1 ***\n"
        );
        return None;
    }
    match std::env::var("TOLLGATE_DYNAMODB_LOCAL_DIR") {
        Ok(dir) if PathBuf::from(&dir).join("DynamoDBLocal.jar").is_file() => Some(dir.into()),
        Ok(dir) => panic!("TOLLGATE_DYNAMODB_LOCAL_DIR={dir} has no DynamoDBLocal.jar"),
        Err(_) => panic!(
            "TOLLGATE_DYNAMODB_LOCAL_DIR is not set: run scripts/test-all.sh (it installs \
             DynamoDB Local), or `source scripts/lib.sh && ensure_dynamodb_local` and export \
             the directory it prints; set TOLLGATE_SKIP_DYNAMODB=1 to skip these tests"
        ),
    }
}

/// A free port, never one handed out before in this process: the kernel can give a port
/// just released to the next bind, and two tests' emulators must not share one.
fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
    panic!("100 binds in a row gave ports already handed out")
}

impl DynamoLocal {
    /// An in-memory instance (fast; loses everything when killed).
    pub fn start() -> Option<DynamoLocal> {
        Self::launch(false)
    }

    /// An instance on disk: data survives `kill` and `restart`.
    pub fn start_on_disk() -> Option<DynamoLocal> {
        Self::launch(true)
    }

    fn launch(on_disk: bool) -> Option<DynamoLocal> {
        let dir = emulator_dir()?;
        let db = on_disk.then(|| tempfile::tempdir().expect("a temp dir"));
        let mut local = DynamoLocal {
            dir,
            port: free_port(),
            db,
            wrapper: None,
            java_pid: None,
        };
        local.spawn();
        Some(local)
    }

    fn spawn(&mut self) {
        let storage = match &self.db {
            Some(db) => format!("-dbPath '{}'", db.path().display()),
            None => "-inMemory".to_string(),
        };
        // The wrapper prints java's pid, then kills java as soon as the test process is
        // gone, so no emulator outlives its test even when the test is killed.
        let script = format!(
            "java -Xmx512m -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
             {storage} -port {port} >/dev/null 2>&1 & child=$!; echo $child; \
             while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done; \
             kill -9 $child 2>/dev/null",
            port = self.port,
            parent = std::process::id(),
        );
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(&self.dir)
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start DynamoDB Local (is java installed?)");
        let mut line = String::new();
        BufReader::new(wrapper.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("the wrapper prints java's pid");
        self.java_pid = Some(line.trim().parse().expect("a pid"));
        self.wrapper = Some(wrapper);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            // The wrapper ends when java does: it could not take the port, or failed.
            if let Some(status) = self
                .wrapper
                .as_mut()
                .and_then(|w| w.try_wait().ok().flatten())
            {
                panic!(
                    "DynamoDB Local on port {} exited at start ({status})",
                    self.port
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "DynamoDB Local did not listen on port {} within {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A DynamoDB client of the test's own for this instance (to read or damage what a
    /// store wrote), with dummy credentials.
    pub fn client(&self) -> aws_sdk_dynamodb::Client {
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .endpoint_url(self.endpoint())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("tollgate", "local", None, None, "test"))
                .build(),
        )
    }

    /// `kill -9` of the emulator.
    pub fn kill(&mut self) {
        if let Some(pid) = self.java_pid.take() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        if let Some(mut wrapper) = self.wrapper.take() {
            let _ = wrapper.wait();
        }
    }

    /// Starts the emulator again on the same port (and database, if on disk).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A store configuration for this instance with a table prefix of its own, so tests
    /// sharing an instance never see each other's data. Creates the tables.
    pub fn config(&self, name: &str) -> DynamoConfig {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let prefix = format!(
            "t{}-{}-{name}-",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        DynamoConfig {
            endpoint: Some(self.endpoint()),
            credentials: Credentials::Static {
                access_key_id: "tollgate".into(),
                secret_access_key: "local".into(),
            },
            auto_create_tables: true,
            ..DynamoConfig::new("us-east-1", prefix)
        }
    }
}

impl Drop for DynamoLocal {
    fn drop(&mut self) {
        self.kill();
    }
}

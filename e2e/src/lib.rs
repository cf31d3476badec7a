//! End-to-end harness: runs the real `tollgate serve` binary on free loopback ports with a
//! temporary data directory and a catalog directory the test controls, waits until it is
//! ready, hands out connected gRPC clients, and can `kill -9` it and start it again on the
//! same data directory. Every wait is bounded; all traffic goes to 127.0.0.1.

pub mod catalog;
pub mod dynamodb;
pub mod http;

use std::fs::{File, OpenOptions};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use tollgate_runtime::grpc::proto::{
    customers_client::CustomersClient, enforcement_client::EnforcementClient,
    metering_client::MeteringClient, wallets_client::WalletsClient,
};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

pub use catalog::CatalogDir;
pub use tollgate_runtime::grpc::proto;

/// Micro-credits in one credit.
pub const MICROS_PER_CREDIT: u64 = 1_000_000;

/// How long a started server may take to answer 200 on /readyz.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Timeout of every gRPC call made through [`Clients`]: far above any healthy answer, so a
/// hung server fails the test instead of hanging it.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Credits as micro-credits.
pub const fn credits(n: u64) -> u64 {
    n * MICROS_PER_CREDIT
}

/// A key no other call in this process (or an earlier run) has used.
pub fn unique_key(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// The `tollgate` binary: `$TOLLGATE_BIN` if set, else `tollgate` in the cargo target profile
/// directory of the running test or binary (`target/<profile>/deps/<test>` or
/// `target/<profile>/<bin>`). When it is missing, or older than a source it is built from
/// (`cargo test -p tollgate-e2e` alone does not rebuild it), builds it once with
/// `cargo build -p tollgate-runtime --bin tollgate`.
pub fn tollgate_bin() -> anyhow::Result<PathBuf> {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    if let Some(path) = std::env::var_os("TOLLGATE_BIN") {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("TOLLGATE_BIN={} is not a file", path.display());
        }
        return Ok(path);
    }
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.as_ref() {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().context("current_exe")?;
    let mut dir = exe.parent().context("executable has no directory")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let profile_dir = dir.to_path_buf();
    let bin = profile_dir.join(format!("tollgate{}", std::env::consts::EXE_SUFFIX));
    let why = match std::fs::metadata(&bin).and_then(|m| m.modified()) {
        Err(_) => Some("is missing".to_string()),
        Ok(built) => {
            newer_source(built)?.map(|source| format!("is older than {}", source.display()))
        }
    };
    if let Some(why) = why {
        eprintln!(
            "e2e: {} {why}; running cargo build -p tollgate-runtime --bin tollgate",
            bin.display()
        );
        build_tollgate(&profile_dir)?;
        // Cargo leaves a binary it finds up to date as it is: mark it checked, so that the
        // next test process does not ask again for the same source.
        if let Ok(file) = std::fs::File::open(&bin) {
            let _ = file.set_modified(std::time::SystemTime::now());
        }
        if !bin.is_file() {
            bail!(
                "built tollgate but {} is still missing; set TOLLGATE_BIN to the binary",
                bin.display()
            );
        }
    }
    *built = Some(bin.clone());
    Ok(bin)
}

fn build_tollgate(profile_dir: &Path) -> anyhow::Result<()> {
    let target_dir = profile_dir
        .parent()
        .context("profile directory has no parent")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("profile directory name")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args([
            "build",
            "-p",
            "tollgate-runtime",
            "--bin",
            "tollgate",
            "--target-dir",
        ])
        .arg(target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p tollgate-runtime --bin tollgate failed: {status}");
    }
    Ok(())
}

/// Sources of the `tollgate` binary, relative to the workspace root: the runtime's and the
/// CRD crate's code, protos, build script, manifests, the lock file, and the table schema
/// the DynamoDB store compiles in. (Test-only files count too: a change to one costs a
/// `cargo build` that finds nothing to do, once.)
const BINARY_SOURCES: [&str; 9] = [
    "Cargo.toml",
    "Cargo.lock",
    "terraform/modules/dynamodb-ledger/tables.json",
    "runtime/Cargo.toml",
    "runtime/build.rs",
    "runtime/src",
    "runtime/proto",
    "crds/Cargo.toml",
    "crds/src",
];

/// The first source of the `tollgate` binary changed after `built`, if any.
fn newer_source(built: std::time::SystemTime) -> anyhow::Result<Option<PathBuf>> {
    fn walk(path: &Path, built: std::time::SystemTime) -> std::io::Result<Option<PathBuf>> {
        // Not followed: an editor's lock file is a dangling symbolic link.
        let meta = std::fs::symlink_metadata(path)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(path)? {
                if let Some(newer) = walk(&entry?.path(), built)? {
                    return Ok(Some(newer));
                }
            }
            return Ok(None);
        }
        Ok((meta.is_file() && meta.modified()? > built).then(|| path.to_path_buf()))
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?;
    for source in BINARY_SOURCES {
        let path = workspace.join(source);
        // A source tree without some of these (a packaged crate) checks what it has.
        if !path.exists() {
            continue;
        }
        if let Some(newer) =
            walk(&path, built).with_context(|| format!("reading {}", path.display()))?
        {
            return Ok(Some(newer));
        }
    }
    Ok(None)
}

/// A free TCP port on 127.0.0.1 (bound, then released for a child process to take), never
/// one handed out before in this process: the kernel can give a port just released to the
/// next bind, and two tests must not start their children on the same port.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..100 {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        if !handed_out.contains(&addr.port()) {
            handed_out.push(addr.port());
            return Ok(addr);
        }
    }
    bail!("100 binds in a row gave ports already handed out")
}

/// How to start a server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// `--catalog`.
    pub catalog_dir: PathBuf,
    /// `--partitions`.
    pub partitions: u32,
    /// More `serve` arguments.
    pub extra_args: Vec<String>,
    /// More environment variables for the server.
    pub extra_env: Vec<(String, String)>,
}

impl ServerOptions {
    pub fn new(catalog_dir: &Path) -> Self {
        Self {
            catalog_dir: catalog_dir.to_path_buf(),
            partitions: 4,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
        }
    }
}

/// A running `tollgate serve`, killed when dropped.
pub struct Server {
    bin: PathBuf,
    options: ServerOptions,
    data_dir: PathBuf,
    log_path: PathBuf,
    addr_file: PathBuf,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    child: Option<Child>,
    starts: u32,
    _tmp: tempfile::TempDir,
}

impl Server {
    /// Starts a server on a new temporary data directory and waits until it is ready.
    pub async fn start(options: ServerOptions) -> anyhow::Result<Self> {
        let tmp = tempfile::Builder::new().prefix("tollgate-e2e-").tempdir()?;
        let data_dir = tmp.path().join("data");
        let log_path = tmp.path().join("server.log");
        let addr_file = tmp.path().join("addrs.json");
        let unbound = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut server = Self {
            bin: tollgate_bin()?,
            options,
            data_dir,
            log_path,
            addr_file,
            grpc_addr: unbound,
            http_addr: unbound,
            child: None,
            starts: 0,
            _tmp: tmp,
        };
        server.spawn_and_wait().await?;
        Ok(server)
    }

    /// Starts a server on a catalog directory with the default options.
    pub async fn start_with_catalog(catalog: &CatalogDir) -> anyhow::Result<Self> {
        Self::start(ServerOptions::new(catalog.path())).await
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Everything the server wrote to stdout and stderr, over all its starts.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `max_bytes` of the log.
    pub fn log_tail(&self, max_bytes: usize) -> String {
        let log = self.log();
        let mut start = log.len().saturating_sub(max_bytes);
        while !log.is_char_boundary(start) {
            start += 1;
        }
        log[start..].to_string()
    }

    async fn spawn_and_wait(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        {
            use std::io::Write;
            let mut header: &File = &log;
            writeln!(header, "===== e2e: start #{}", self.starts)?;
        }
        let mut cmd = Command::new(&self.bin);
        cmd.arg("serve")
            .arg("--catalog")
            .arg(&self.options.catalog_dir)
            .arg("--data-dir")
            .arg(&self.data_dir)
            // Port 0: the server takes free ports and writes them to the address file, so
            // no port picked here can be taken by another process before the server binds.
            .arg("--grpc-addr")
            .arg("127.0.0.1:0")
            .arg("--http-addr")
            .arg("127.0.0.1:0")
            .arg("--addr-file")
            .arg(&self.addr_file)
            .arg("--partitions")
            .arg(self.options.partitions.to_string())
            .arg("--log-format")
            .arg("text")
            .args(&self.options.extra_args)
            .envs(self.options.extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                bail!(
                    "tollgate serve exited before it was ready ({status}); its output:\n{}",
                    self.log_tail(16_384)
                );
            }
            let last = match self.read_addr_file() {
                Ok(None) => format!("no address file {} yet", self.addr_file.display()),
                Err(e) => {
                    self.kill9();
                    return Err(e);
                }
                Ok(Some((grpc, http))) => {
                    self.grpc_addr = grpc;
                    self.http_addr = http;
                    match http::get(self.http_addr, "/readyz").await {
                        Ok(resp) if resp.status == 200 => match self.grpc_serving().await {
                            Ok(()) => return Ok(()),
                            Err(e) => {
                                // Readiness should mean the gRPC port answers too; say so
                                // loudly, then keep waiting (bounded) so the tests still run.
                                eprintln!(
                                    "e2e: WARNING: /readyz is 200 but gRPC is not serving: {e:#}"
                                );
                                format!("gRPC health: {e:#}")
                            }
                        },
                        Ok(resp) => format!("/readyz answered {}", resp.status),
                        Err(e) => format!("/readyz: {e:#}"),
                    }
                }
            };
            if Instant::now() >= deadline {
                let tail = self.log_tail(16_384);
                self.kill9();
                bail!(
                    "tollgate serve not ready after {READY_TIMEOUT:?} (last: {last}); its output:\n{tail}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The addresses the server wrote once bound, or None before it has.
    fn read_addr_file(&self) -> anyhow::Result<Option<(SocketAddr, SocketAddr)>> {
        let text = match std::fs::read_to_string(&self.addr_file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("reading the server's address file"),
        };
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("the server's address file is not JSON: {text:?}"))?;
        let addr = |key: &str| -> anyhow::Result<SocketAddr> {
            json[key]
                .as_str()
                .with_context(|| format!("no {key:?} in the address file {text:?}"))?
                .parse()
                .with_context(|| format!("{key:?} in the address file {text:?}"))
        };
        Ok(Some((addr("grpc")?, addr("http")?)))
    }

    /// One gRPC health check of the whole server (service "").
    async fn grpc_serving(&self) -> anyhow::Result<()> {
        let check = async {
            let mut health = Clients::connect(self.grpc_addr).await?.health;
            let resp = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await?
                .into_inner();
            let serving = tonic_health::pb::health_check_response::ServingStatus::Serving;
            if resp.status != serving as i32 {
                bail!("health status {}", resp.status);
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(Duration::from_secs(5), check)
            .await
            .context("gRPC health check timed out")?
    }

    /// SIGKILL, then reap. Does nothing if not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // `Child::kill` sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `kill -9`s the server (if running) and starts it again on the same data directory and
    /// catalog, on new ports. Clients of the old process must be replaced.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9();
        // The killed server's file names its old ports; the new one removes it too, but
        // only once it runs, and the wait must not read the old ports before that.
        match std::fs::remove_file(&self.addr_file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).context("removing the old address file");
            }
            _ => {}
        }
        self.spawn_and_wait().await
    }

    /// Connected clients for every service.
    pub async fn clients(&self) -> anyhow::Result<Clients> {
        Clients::connect(self.grpc_addr).await
    }

    /// GET on the HTTP port.
    pub async fn http_get(&self, path: &str) -> anyhow::Result<http::Response> {
        http::get(self.http_addr, path).await
    }

    /// POST JSON text on the HTTP port.
    pub async fn http_post_json(&self, path: &str, body: &str) -> anyhow::Result<http::Response> {
        http::post_json(self.http_addr, path, body).await
    }

    /// GET /v1/policy, parsed.
    pub async fn policy(&self) -> anyhow::Result<PolicyStatus> {
        let resp = self.http_get("/v1/policy").await?;
        if resp.status != 200 {
            bail!("/v1/policy answered {}: {}", resp.status, resp.body);
        }
        let json: serde_json::Value = serde_json::from_str(&resp.body)
            .with_context(|| format!("/v1/policy body is not JSON: {}", resp.body))?;
        PolicyStatus::from_json(&json)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "----- tollgate serve output (last 8 KiB) -----\n{}\n-----",
                self.log_tail(8_192)
            );
        }
    }
}

/// What GET /v1/policy says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyStatus {
    pub version: String,
    pub objects: u64,
    pub last_error: Option<String>,
    pub loaded_at_ms: u64,
}

impl PolicyStatus {
    fn from_json(json: &serde_json::Value) -> anyhow::Result<Self> {
        let version = json["version"]
            .as_str()
            .with_context(|| format!("/v1/policy has no string `version`: {json}"))?
            .to_string();
        let objects = json["objects"]
            .as_u64()
            .with_context(|| format!("/v1/policy has no integer `objects`: {json}"))?;
        let last_error = match &json["last_error"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => bail!("/v1/policy `last_error` is neither null nor a string: {other}"),
        };
        let loaded_at_ms = json["loaded_at_ms"]
            .as_u64()
            .with_context(|| format!("/v1/policy has no integer `loaded_at_ms`: {json}"))?;
        Ok(Self {
            version,
            objects,
            last_error,
            loaded_at_ms,
        })
    }
}

/// gRPC clients of one server, sharing one HTTP/2 connection.
#[derive(Clone)]
pub struct Clients {
    pub channel: Channel,
    pub enforcement: EnforcementClient<Channel>,
    pub customers: CustomersClient<Channel>,
    pub wallets: WalletsClient<Channel>,
    pub metering: MeteringClient<Channel>,
    pub health: HealthClient<Channel>,
}

impl Clients {
    /// Connects to `addr` (one connection, every call with [`RPC_TIMEOUT`]).
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(format!("http://{addr}"))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(RPC_TIMEOUT)
            .tcp_nodelay(true)
            .connect()
            .await
            .with_context(|| format!("connecting to gRPC at {addr}"))?;
        Ok(Self::from_channel(channel))
    }

    pub fn from_channel(channel: Channel) -> Self {
        Self {
            enforcement: EnforcementClient::new(channel.clone()),
            customers: CustomersClient::new(channel.clone()),
            wallets: WalletsClient::new(channel.clone())
                .max_decoding_message_size(64 * 1024 * 1024),
            metering: MeteringClient::new(channel.clone()),
            health: HealthClient::new(channel.clone()),
            channel,
        }
    }

    /// Creates a customer and subscribes it to `plan`.
    pub async fn create_subscribed(&self, customer_id: &str, plan: &str) -> anyhow::Result<()> {
        let mut customers = self.customers.clone();
        customers
            .upsert_customer(proto::UpsertCustomerRequest {
                customer_id: customer_id.to_string(),
                display_name: format!("e2e {customer_id}"),
                idempotency_key: unique_key("upsert"),
            })
            .await
            .with_context(|| format!("UpsertCustomer {customer_id}"))?;
        customers
            .subscribe(proto::SubscribeRequest {
                customer_id: customer_id.to_string(),
                plan: plan.to_string(),
                start_ms: 0,
                idempotency_key: unique_key("subscribe"),
            })
            .await
            .with_context(|| format!("Subscribe {customer_id} to {plan}"))?;
        Ok(())
    }

    /// Grants `amount` paid micro-credits, effective now, never expiring.
    pub async fn grant(
        &self,
        customer_id: &str,
        amount_micro_credits: u64,
    ) -> anyhow::Result<proto::GrantResponse> {
        let resp = self
            .wallets
            .clone()
            .grant(paid_grant(
                customer_id,
                amount_micro_credits,
                &unique_key("grant"),
            ))
            .await
            .with_context(|| format!("Grant {amount_micro_credits} to {customer_id}"))?;
        Ok(resp.into_inner())
    }

    pub async fn balance(&self, customer_id: &str) -> anyhow::Result<proto::GetBalanceResponse> {
        let resp = self
            .wallets
            .clone()
            .get_balance(proto::GetBalanceRequest {
                customer_id: customer_id.to_string(),
            })
            .await
            .with_context(|| format!("GetBalance {customer_id}"))?;
        Ok(resp.into_inner())
    }

    /// Every journal entry of the wallet, oldest first (at most 100 pages).
    pub async fn all_entries(&self, customer_id: &str) -> anyhow::Result<Vec<proto::JournalEntry>> {
        let mut wallets = self.wallets.clone();
        let mut entries = Vec::new();
        let mut page_token = String::new();
        for _ in 0..100 {
            let page = wallets
                .list_entries(proto::ListEntriesRequest {
                    customer_id: customer_id.to_string(),
                    page_size: 1000,
                    page_token: page_token.clone(),
                })
                .await
                .with_context(|| format!("ListEntries {customer_id}"))?
                .into_inner();
            entries.extend(page.entries);
            if page.next_page_token.is_empty() {
                return Ok(entries);
            }
            page_token = page.next_page_token;
        }
        bail!("ListEntries {customer_id}: more than 100 pages")
    }
}

/// A Grant request for paid credits, effective now, never expiring.
pub fn paid_grant(customer_id: &str, amount: u64, key: &str) -> proto::GrantRequest {
    proto::GrantRequest {
        customer_id: customer_id.to_string(),
        amount_micro_credits: amount,
        category: proto::GrantCategory::Paid as i32,
        priority: 0,
        effective_at_ms: 0,
        expires_at_ms: 0,
        cost_basis_micros: 1_000_000,
        idempotency_key: key.to_string(),
    }
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A Grant request for paid credits effective from an explicit time (not "0: now"), so the
/// request is the same bytes however late it is retried.
pub fn paid_grant_at(
    customer_id: &str,
    amount: u64,
    key: &str,
    effective_at_ms: i64,
) -> proto::GrantRequest {
    proto::GrantRequest {
        effective_at_ms,
        ..paid_grant(customer_id, amount, key)
    }
}

/// Polls `probe` every `every` until it returns `Some`, for at most `timeout`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, every: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}

/// Why a call's result is not a failure with one of `codes` whose message names `field`
/// (case-insensitive); `None` when it is.
pub fn status_problem<T: std::fmt::Debug>(
    what: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
    codes: &[tonic::Code],
    field: &str,
) -> Option<String> {
    match result {
        Ok(resp) => Some(format!(
            "{what}: expected {codes:?} naming {field:?}, got OK: {:?}",
            resp.into_inner()
        )),
        Err(status) if !codes.contains(&status.code()) => Some(format!(
            "{what}: expected {codes:?} naming {field:?}, got {:?}: {}",
            status.code(),
            status.message()
        )),
        Err(status)
            if !status
                .message()
                .to_ascii_lowercase()
                .contains(&field.to_ascii_lowercase()) =>
        {
            Some(format!(
                "{what}: status {:?} should name {field:?}, message is {:?}",
                status.code(),
                status.message()
            ))
        }
        Err(_) => None,
    }
}

/// Asserts that a call failed with one of `codes` and that the status message names `field`
/// (case-insensitive). Panics with the whole answer otherwise.
pub fn expect_status<T: std::fmt::Debug>(
    what: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
    codes: &[tonic::Code],
    field: &str,
) {
    if let Some(problem) = status_problem(what, result, codes, field) {
        panic!("{problem}");
    }
}

/// The decision of a Reserve or Check answer (panics if the server left it out).
pub fn decision_of(decision: &Option<proto::Decision>) -> &proto::Decision {
    match decision {
        Some(d) => d,
        None => panic!("answer carries no decision"),
    }
}

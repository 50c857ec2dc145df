//! The project's own throwaway infrastructure: a PostgreSQL cluster (from the machine's
//! `initdb`/`pg_ctl`) and an anvil node (from npm), per instance (`dev`, `test`) so a running
//! dev platform and a test run never share state. Starting is idempotent; stopping is clean and
//! throws the data away (the chain does not outlive a stop, so nothing that refers to it may).
//! When `DATABASE_URL` / `RPC_URL` are set, those are used and nothing is started for them.

use std::{
    fs,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    str::FromStr,
    time::Duration,
};

use std::os::unix::process::CommandExt as _;

use anyhow::{Context, Result, bail};

use crate::util::{self, alive, is_root, port_open, run, terminate, wait_for, which};

/// Which set of servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instance {
    Dev,
    Test,
}

impl FromStr for Instance {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "dev" => Ok(Instance::Dev),
            "test" => Ok(Instance::Test),
            other => bail!("unknown instance `{other}` (dev or test)"),
        }
    }
}

impl Instance {
    fn name(self) -> &'static str {
        match self {
            Instance::Dev => "dev",
            Instance::Test => "test",
        }
    }
    fn pg_port(self) -> u16 {
        match self {
            Instance::Dev => 54329,
            Instance::Test => 54339,
        }
    }
    fn anvil_port(self) -> u16 {
        match self {
            Instance::Dev => 18545,
            Instance::Test => 18555,
        }
    }
}

pub const CHAIN_ID: u64 = 31337;
const DB_USER: &str = "brandmint";
const DB_NAME: &str = "brandmint";

/// Where the platform's dependencies are.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub database_url: String,
    pub rpc_url: String,
}

/// `cargo xtask infra up|down|status [instance]`.
pub fn command(action: &str, instance: Instance) -> Result<()> {
    match action {
        "up" => {
            let endpoints = up(instance)?;
            println!("DATABASE_URL={}\nRPC_URL={}", endpoints.database_url, endpoints.rpc_url);
            Ok(())
        }
        "down" => down(instance),
        "status" => {
            let dirs = Dirs::new(instance)?;
            let pg = if pg_running(&dirs) { "running" } else { "stopped" };
            let anvil = if anvil_pid(&dirs).is_some() { "running" } else { "stopped" };
            let port = |server, default| dirs.port(server).unwrap_or(default);
            println!("postgres ({}, port {}): {pg}", dirs.pg_data.display(), port("postgres", instance.pg_port()));
            println!("anvil (port {}): {anvil}", port("anvil", instance.anvil_port()));
            Ok(())
        }
        other => bail!("unknown infra action `{other}` (up, down or status)"),
    }
}

/// Starts (or reuses) PostgreSQL and anvil unless `DATABASE_URL` / `RPC_URL` point elsewhere.
pub fn up(instance: Instance) -> Result<Endpoints> {
    let dirs = Dirs::new(instance)?;
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => {
            println!("using DATABASE_URL from the environment; not starting PostgreSQL");
            url
        }
        _ => start_postgres(instance, &dirs)?,
    };
    let rpc_url = match std::env::var("RPC_URL") {
        Ok(url) if !url.is_empty() => {
            println!("using RPC_URL from the environment; not starting anvil");
            url
        }
        _ => format!("http://{}", start_anvil(instance, &dirs)?),
    };
    Ok(Endpoints { database_url, rpc_url })
}

/// The running anvil of `instance` (`RPC_URL` when set), or `None` when it is not running.
pub fn running_anvil(instance: Instance) -> Result<Option<String>> {
    if let Ok(url) = std::env::var("RPC_URL")
        && !url.is_empty()
    {
        return Ok(Some(url));
    }
    let dirs = Dirs::new(instance)?;
    Ok(anvil_pid(&dirs).map(|_| format!("http://127.0.0.1:{}", dirs.port("anvil").unwrap_or(instance.anvil_port()))))
}

/// Stops whatever this instance started. Safe to call when nothing runs.
pub fn down(instance: Instance) -> Result<()> {
    let dirs = Dirs::new(instance)?;
    if let Some(pid) = anvil_pid(&dirs) {
        terminate(pid, Duration::from_secs(5));
        println!("anvil stopped (pid {pid})");
    }
    drop(fs::remove_file(dirs.anvil_pid()));
    if pg_running(&dirs) {
        let mut stop = dirs.as_pg_user("pg_ctl");
        stop.args(["stop", "-m", "fast", "-w", "-t", "30", "-D"]).arg(&dirs.pg_data).stdout(Stdio::null());
        run(&mut stop)?;
        println!("postgres stopped");
    }
    // anvil keeps no state across runs, so neither may the database: its campaigns, orders and
    // transactions name contracts and blocks that are gone with the node.
    if dirs.pg_data.exists() {
        fs::remove_dir_all(&dirs.pg_data).with_context(|| format!("removing {}", dirs.pg_data.display()))?;
    }
    Ok(())
}

/// The instance's directories. Preferred under `target/infra/<instance>`; when running as root,
/// PostgreSQL runs as the `postgres` user, which must be able to reach its data directory — if
/// the checkout sits somewhere it cannot enter (e.g. a 0700 temp dir), a per-checkout directory
/// under the system temp dir is used instead.
struct Dirs {
    base: PathBuf,
    pg_data: PathBuf,
    as_postgres: bool,
}

impl Dirs {
    fn new(instance: Instance) -> Result<Self> {
        let as_postgres = is_root();
        let preferred = util::root().join("target/infra");
        let base_root = if as_postgres && !postgres_can_enter(&preferred)? {
            std::env::temp_dir()
                .join(format!("brandmint-infra-{:016x}", fnv1a(util::root().to_string_lossy().as_bytes())))
        } else {
            preferred
        };
        let base = base_root.join(instance.name());
        fs::create_dir_all(&base).with_context(|| format!("cannot create {}", base.display()))?;
        Ok(Self { pg_data: base.join("pg"), base, as_postgres })
    }

    /// The port a server of this instance was started on.
    fn port(&self, server: &str) -> Option<u16> {
        fs::read_to_string(self.base.join(format!("{server}.port"))).ok()?.trim().parse().ok()
    }

    fn anvil_pid(&self) -> PathBuf {
        self.base.join("anvil.pid")
    }

    /// A PostgreSQL binary, run as the `postgres` user when we are root.
    fn as_pg_user(&self, program: &str) -> Command {
        let mut cmd = if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(pg_binary(program));
            cmd
        } else {
            Command::new(pg_binary(program))
        };
        // A working directory the postgres user can enter (the checkout may be private).
        cmd.current_dir(&self.base);
        cmd
    }
}

fn pg_binary(program: &str) -> PathBuf {
    which(program).unwrap_or_else(|| PathBuf::from(program))
}

fn postgres_can_enter(dir: &Path) -> Result<bool> {
    fs::create_dir_all(dir)?;
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .context("running as root needs `runuser` and a `postgres` user to run PostgreSQL (initdb refuses root)")?;
    Ok(status.success())
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn check_postgres_installed() -> Result<()> {
    let missing: Vec<&str> = ["initdb", "pg_ctl", "postgres"].into_iter().filter(|p| which(p).is_none()).collect();
    if !missing.is_empty() {
        bail!(
            "PostgreSQL server binaries not found on PATH ({}). Install PostgreSQL 15 or newer: \
             Debian/Ubuntu `apt-get install postgresql` and add /usr/lib/postgresql/<version>/bin to PATH; \
             macOS `brew install postgresql@15`. Or set DATABASE_URL to an existing server.",
            missing.join(", ")
        );
    }
    Ok(())
}

fn pg_running(dirs: &Dirs) -> bool {
    dirs.pg_data.join("postmaster.pid").exists()
        && dirs
            .as_pg_user("pg_ctl")
            .args(["status", "-D"])
            .arg(&dirs.pg_data)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn start_postgres(instance: Instance, dirs: &Dirs) -> Result<String> {
    check_postgres_installed()?;
    let url = |port: u16| format!("postgres://{DB_USER}@127.0.0.1:{port}/{DB_NAME}");
    if pg_running(dirs) {
        let port = dirs.port("postgres").unwrap_or(instance.pg_port());
        println!("postgres already running on port {port}");
        return Ok(url(port));
    }
    let port = free_port(instance, instance.pg_port(), "DATABASE_URL to use an existing PostgreSQL")?;
    if dirs.as_postgres {
        run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dirs.base))?;
    }
    if !dirs.pg_data.join("PG_VERSION").exists() {
        println!("initialising a throwaway PostgreSQL cluster in {}", dirs.pg_data.display());
        let mut initdb = dirs.as_pg_user("initdb");
        initdb
            .args(["--auth=trust", "--encoding=UTF8", "--no-locale", "--username", DB_USER, "-D"])
            .arg(&dirs.pg_data)
            .stdout(Stdio::null());
        run(&mut initdb)?;
        // Single-user mode creates the database without a client binary or a running server.
        let mut single = dirs.as_pg_user("postgres");
        single
            .args(["--single", "-D"])
            .arg(&dirs.pg_data)
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = single.spawn().context("cannot start postgres --single")?;
        if let Some(stdin) = child.stdin.as_mut() {
            use std::io::Write;
            writeln!(stdin, "CREATE DATABASE {DB_NAME} OWNER {DB_USER};")?;
        }
        drop(child.stdin.take());
        if !child.wait()?.success() {
            bail!("creating database {DB_NAME} failed");
        }
    }
    // Throwaway cluster: durability off (fsync, full page writes) for speed; never for real data.
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=300 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB"
    );
    let mut start = dirs.as_pg_user("pg_ctl");
    start
        .args(["start", "-w", "-t", "60", "-l"])
        .arg(dirs.base.join("postgres.log"))
        .args(["-o", &options, "-D"])
        .arg(&dirs.pg_data)
        .stdout(Stdio::null())
        // Own process group: a Ctrl-C in the terminal reaches our services, and we stop
        // PostgreSQL ourselves afterwards, cleanly.
        .process_group(0);
    run(&mut start).with_context(|| format!("see {}", dirs.base.join("postgres.log").display()))?;
    fs::write(dirs.base.join("postgres.port"), port.to_string())?;
    println!("postgres running on port {port}");
    Ok(url(port))
}

/// The instance's usual port, or — for the test instance, whose port nobody types — the next
/// free one, so two checkouts on one machine can test at the same time. The dev instance keeps
/// its documented ports and says what is in the way.
fn free_port(instance: Instance, preferred: u16, alternative: &str) -> Result<u16> {
    let free = |port: u16| !port_open(SocketAddr::from(([127, 0, 0, 1], port)));
    if free(preferred) {
        return Ok(preferred);
    }
    if instance == Instance::Test
        && let Some(port) = (preferred + 1..preferred + 100).find(|p| free(*p))
    {
        return Ok(port);
    }
    bail!("port {preferred} is taken by another process; stop it, or set {alternative}")
}

fn anvil_pid(dirs: &Dirs) -> Option<u32> {
    let pid: u32 = fs::read_to_string(dirs.anvil_pid()).ok()?.trim().parse().ok()?;
    alive(pid).then_some(pid)
}

fn start_anvil(instance: Instance, dirs: &Dirs) -> Result<SocketAddr> {
    if let (Some(_), Some(port)) = (anvil_pid(dirs), dirs.port("anvil")) {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if port_open(addr) {
            println!("anvil already running on {addr}");
            return Ok(addr);
        }
    }
    let addr =
        SocketAddr::from(([127, 0, 0, 1], free_port(instance, instance.anvil_port(), "RPC_URL to use another node")?));
    util::npm_install()?;
    let log = fs::File::create(dirs.base.join("anvil.log"))?;
    let child = Command::new(util::npm_bin("anvil"))
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string(), "--chain-id", &CHAIN_ID.to_string()])
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start anvil (node_modules/.bin/anvil)")?;
    fs::write(dirs.anvil_pid(), child.id().to_string())?;
    fs::write(dirs.base.join("anvil.port"), addr.port().to_string())?;
    wait_for("anvil", Duration::from_secs(30), || rpc_answers(addr))?;
    println!("anvil running on {addr} (chain id {CHAIN_ID}, pid {})", child.id());
    Ok(addr)
}

fn rpc_answers(addr: SocketAddr) -> bool {
    util::http(addr, "POST", "/", Some(r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#))
        .is_ok_and(|(status, body)| status == 200 && body.contains("result"))
}

//! The platform as production runs it: each service its own OS process (the shipped binaries,
//! started as the compose file starts them), any number of replicas each, on loopback ports, on
//! a PostgreSQL cluster of its own (so it can be restarted without disturbing other tests) and
//! an anvil reached through a proxy that can cut the node off. A test kills any process with
//! `SIGKILL`, restarts it, cuts the RPC, restarts PostgreSQL, and reads the database and the
//! chain afterwards.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::proxy::TcpProxy;

/// The services, their binaries and their address variables.
pub const SERVICES: [(&str, &str); 4] = [
    ("backoffice", "BACKOFFICE_ADDR"),
    ("payment", "PAYMENT_ADDR"),
    ("redemption", "REDEMPTION_ADDR"),
    ("indexer", "INDEXER_ADDR"),
];

/// A throwaway PostgreSQL cluster (`initdb` + `pg_ctl` from the machine's binaries, run as the
/// `postgres` user when we are root, since `initdb` refuses root); removed when dropped.
#[derive(Debug)]
pub struct Postgres {
    base: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// Initialises and starts a cluster on a free port with database `brandmint`.
    pub fn start() -> std::io::Result<Self> {
        let as_postgres = is_root();
        // A directory the postgres user can enter (the temp dir is world-traversable).
        let base = std::env::temp_dir().join(format!("brandmint-cluster-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&base)?;
        let port = free_addr().port();
        let pg = Self { base, port, as_postgres };
        if as_postgres {
            check(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&pg.base).status()?, "chown")?;
        }
        let status = pg
            .command("initdb")
            .args(["--auth=trust", "--encoding=UTF8", "--no-locale", "--username=brandmint", "-D"])
            .arg(pg.data())
            .stdout(Stdio::null())
            .status()?;
        check(status, "initdb")?;
        // Single-user mode creates the database without a client binary or a running server.
        let mut single = pg
            .command("postgres")
            .args(["--single", "-D"])
            .arg(pg.data())
            .arg("postgres")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = single.stdin.take() {
            use std::io::Write;
            writeln!(stdin, "CREATE DATABASE brandmint OWNER brandmint;")?;
        }
        check(single.wait()?, "CREATE DATABASE")?;
        pg.start_server()?;
        Ok(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://brandmint@127.0.0.1:{}/brandmint", self.port)
    }

    /// Stops the server at once (as a crash would: `immediate` mode) and starts it again.
    pub fn restart(&self) -> std::io::Result<()> {
        let status = self
            .command("pg_ctl")
            .args(["stop", "-m", "immediate", "-w", "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .status()?;
        check(status, "pg_ctl stop")?;
        self.start_server()
    }

    fn start_server(&self) -> std::io::Result<()> {
        // Throwaway: no fsync (the OS keeps what was written across a process crash), but
        // commits wait for their WAL write, so an immediate stop loses no committed row.
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=400 \
             -c fsync=off -c full_page_writes=off",
            self.port
        );
        let status = self
            .command("pg_ctl")
            .args(["start", "-w", "-t", "60", "-l"])
            .arg(self.base.join("postgres.log"))
            .args(["-o", &options, "-D"])
            .arg(self.data())
            .stdout(Stdio::null())
            .status()?;
        check(status, "pg_ctl start")
    }

    fn data(&self) -> PathBuf {
        self.base.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = match self.as_postgres {
            true => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--", program]);
                cmd
            }
            false => Command::new(program),
        };
        cmd.current_dir(&self.base);
        cmd
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        drop(
            self.command("pg_ctl")
                .args(["stop", "-m", "immediate", "-D"])
                .arg(self.data())
                .stdout(Stdio::null())
                .status(),
        );
        drop(std::fs::remove_dir_all(&self.base));
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

fn check(status: std::process::ExitStatus, what: &str) -> std::io::Result<()> {
    match status.success() {
        true => Ok(()),
        false => Err(std::io::Error::other(format!("{what} failed ({status})"))),
    }
}

/// A loopback address with a port free right now.
pub fn free_addr() -> SocketAddr {
    crate::free_addr()
}

/// One service process.
#[derive(Debug)]
pub struct Process {
    pub service: &'static str,
    pub replica: usize,
    pub addr: SocketAddr,
    child: Option<Child>,
    /// How many times it was killed.
    pub kills: u32,
}

impl Process {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Its resident memory in kB (Linux `/proc`), when it runs.
    pub fn rss_kb(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.as_ref()?.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// The CPU time it has used, user and system, in clock ticks (Linux `/proc`, 100 a second
    /// on every common kernel), when it runs.
    pub fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.as_ref()?.id())).ok()?;
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
    }
}

/// The machine's CPU time so far, busy and total, in clock ticks (Linux `/proc/stat`).
pub fn machine_cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let times: Vec<u64> =
        stat.lines().next()?.split_whitespace().skip(1).filter_map(|field| field.parse().ok()).collect();
    let total: u64 = times.iter().sum();
    // idle and iowait.
    let idle = times.get(3)? + times.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// The cluster: PostgreSQL, the RPC proxy in front of anvil, and the service processes.
#[derive(Debug)]
pub struct Cluster {
    pub postgres: Postgres,
    /// Between every service and anvil: [`TcpProxy::cut`] is an RPC outage.
    pub rpc: TcpProxy,
    pub processes: Vec<Process>,
    env: Vec<(String, String)>,
    bin_dir: PathBuf,
    log_dir: PathBuf,
}

impl Cluster {
    /// Starts `replicas` processes of every service with `env` (the platform's settings: keys,
    /// contract addresses, the fakes' URLs), on a fresh PostgreSQL and through a proxy to
    /// `rpc_upstream` (anvil's address); waits until every one is ready. The public URL of each
    /// service is its first replica's.
    pub async fn start(replicas: usize, rpc_upstream: SocketAddr, env: &[(&str, &str)]) -> std::io::Result<Self> {
        let postgres = Postgres::start()?;
        let rpc = TcpProxy::start(rpc_upstream).await?;
        let bin_dir = bin_dir();
        let log_dir = std::env::temp_dir().join(format!("brandmint-cluster-logs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&log_dir)?;
        let mut processes = Vec::new();
        for (service, _) in SERVICES {
            for replica in 0..replicas {
                processes.push(Process { service, replica, addr: free_addr(), child: None, kills: 0 });
            }
        }
        let mut all: Vec<(String, String)> = vec![
            ("APP_ENV".into(), "local".into()),
            ("DATABASE_URL".into(), postgres.url()),
            ("DATABASE_MAX_CONNECTIONS".into(), "8".into()),
            ("RPC_URL".into(), rpc.url()),
            ("RUST_LOG".into(), "warn".into()),
            ("INDEXER_CONFIRMATIONS".into(), "0".into()),
            ("INDEXER_POLL_MS".into(), "200".into()),
            ("JWT_SECRET".into(), crate::TEST_JWT_SECRET.into()),
            ("KYC_ENCRYPTION_KEY".into(), "6b79632d746573742d6b65792d6f6e6c792d3031323334353637383961626364".into()),
            ("QR_CODE_KEY".into(), "71722d746573742d6b65792d6f6e6c792d303132333435363738396162636465".into()),
            ("MAIL_DIR".into(), log_dir.join("mail").display().to_string()),
            ("STORAGE_DIR".into(), log_dir.join("storage").display().to_string()),
            ("RATE_LIMIT_IP_PER_MINUTE".into(), "0".into()),
        ];
        for (service, var) in SERVICES {
            let first = processes.iter().find(|p| p.service == service).map(|p| p.addr);
            if let Some(addr) = first {
                all.push((format!("{}_PUBLIC_URL", service.to_uppercase()), format!("http://{addr}")));
                all.push((var.into(), addr.to_string()));
            }
        }
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut cluster = Self { postgres, rpc, processes, env: all, bin_dir, log_dir };
        for n in 0..cluster.processes.len() {
            cluster.spawn(n)?;
        }
        for n in 0..cluster.processes.len() {
            cluster.wait_ready(n).await?;
        }
        Ok(cluster)
    }

    /// The first running replica of `service`.
    pub fn any(&self, service: &str) -> &Process {
        self.processes
            .iter()
            .find(|p| p.service == service && p.running())
            .or_else(|| self.processes.iter().find(|p| p.service == service))
            .unwrap_or_else(|| panic!("no {service} process"))
    }

    /// A brand named `brand` owned by a new account `email` (accounts have no public sign-up, so
    /// both are written to the database), signed in through a back office process: the brand's
    /// id and the owner's access token.
    pub async fn brand_owner(&self, db: &sqlx::PgPool, brand: &str, email: &str) -> (i64, String) {
        let mut conn = db.acquire().await.expect("a connection");
        let owner = shared::auth::create_account(&mut conn, email, crate::TEST_PASSWORD.into(), None)
            .await
            .expect("the owner's account");
        drop(conn);
        let id: i64 = sqlx::query_scalar("INSERT INTO brands (name) VALUES ($1) RETURNING id")
            .bind(brand)
            .fetch_one(db)
            .await
            .expect("the brand");
        sqlx::query("INSERT INTO brand_members (brand_id, account_id, role) VALUES ($1, $2, 'owner')")
            .bind(id)
            .bind(owner.id.get())
            .execute(db)
            .await
            .expect("the membership");
        let signed_in: serde_json::Value = reqwest::Client::new()
            .post(self.any("backoffice").url("/auth/sign-in"))
            .json(&serde_json::json!({ "email": email, "password": crate::TEST_PASSWORD }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("the owner signs in")
            .json()
            .await
            .expect("a token pair");
        (id, signed_in["access_token"].as_str().expect("an access token").to_owned())
    }

    /// `SIGKILL`s process `n` (nothing after its current instruction runs) and reaps it.
    pub fn kill(&mut self, n: usize) {
        if let Some(mut child) = self.processes[n].child.take() {
            drop(child.kill());
            drop(child.wait());
            self.processes[n].kills += 1;
        }
    }

    /// Starts process `n` again (on its address) and waits until it is ready.
    pub async fn restart(&mut self, n: usize) -> std::io::Result<()> {
        self.kill(n);
        self.spawn(n)?;
        self.wait_ready(n).await
    }

    /// Where the processes' logs are (stdout and stderr, one file per process and start).
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    fn spawn(&mut self, n: usize) -> std::io::Result<()> {
        let process = &mut self.processes[n];
        let (_, var) = SERVICES.iter().find(|(s, _)| *s == process.service).copied().unwrap_or(SERVICES[0]);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("{}-{}.log", process.service, process.replica)))?;
        let mut command = Command::new(self.bin_dir.join(process.service));
        command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command.env(var, process.addr.to_string()).stdout(log.try_clone()?).stderr(log).stdin(Stdio::null());
        process.child = Some(command.spawn().map_err(|e| {
            std::io::Error::other(format!(
                "{}: {e} (cargo xtask test builds the shipped binaries first)",
                self.bin_dir.join(process.service).display()
            ))
        })?);
        Ok(())
    }

    async fn wait_ready(&mut self, n: usize) -> std::io::Result<()> {
        let url = self.processes[n].url("/health/ready");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.processes[n].child.as_mut().map(Child::try_wait) {
                return Err(std::io::Error::other(format!(
                    "{} {} exited ({status}); see {}",
                    self.processes[n].service,
                    self.processes[n].replica,
                    self.log_dir.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(format!("{url} never became ready")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in 0..self.processes.len() {
            self.kill(n);
        }
    }
}

/// Where the shipped binaries are: `BRANDMINT_BIN_DIR`, else next to the running test's own
/// directory (`target/<profile>/`).
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BRANDMINT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default()
}

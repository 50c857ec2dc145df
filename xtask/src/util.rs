//! Small helpers: where things are, running commands, waiting for ports.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Runs a command to completion, failing with its command line if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{} failed ({}): {}", describe(cmd), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// The full path of a program on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| p.is_file())
}

pub fn port_open(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Polls `probe` until it returns true or `timeout` passes.
pub fn wait_for(what: &str, timeout: Duration, mut probe: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if probe() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not come up within {} s", timeout.as_secs())
}

/// A minimal HTTP request over loopback; returns the status code and body.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).context("malformed HTTP response")?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// Whether a process with this pid is running (an exited child awaiting its parent's `wait`
/// — a zombie — is not).
pub fn alive(pid: u32) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name: "123 (anvil) S ...".
        return stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X']));
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// SIGTERM, then SIGKILL after `grace`; returns once the process is gone.
pub fn terminate(pid: u32, grace: Duration) {
    let send = |signal: &str| {
        drop(Command::new("kill").args([signal, &pid.to_string()]).stderr(std::process::Stdio::null()).status());
    };
    send("-TERM");
    let deadline = Instant::now() + grace;
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        send("-KILL");
    }
}

/// Whether this process runs as root (initdb refuses to).
pub fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0")
}

/// Installs the npm toolchain (anvil, forge, solc, Solidity libraries) when the lock file is
/// newer than the install.
pub fn npm_install() -> Result<()> {
    let root = root();
    if which("node").is_none() || which("npm").is_none() {
        bail!(
            "Node.js and npm are needed for the contract toolchain (anvil, forge, solc): install Node.js 20 or newer \
             (Debian/Ubuntu: `apt-get install nodejs npm`; macOS: `brew install node`)"
        );
    }
    let lock = root.join("package-lock.json");
    let installed = root.join("node_modules/.package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&installed)) {
        (Ok(l), Ok(i)) => i.modified()? >= l.modified()?,
        _ => false,
    };
    if !fresh {
        step("npm ci (contract toolchain)");
        run(Command::new("npm").current_dir(&root).args(["ci", "--prefer-offline", "--no-audit", "--no-fund"]))?;
    }
    Ok(())
}

/// Installs Debian packages with apt when running as root (CI, this kind of machine); returns
/// false, having said what to install, where that cannot be done.
pub fn apt_install(packages: &[&str], why: &str) -> Result<bool> {
    if !is_root() || which("apt-get").is_none() {
        println!("skipped: {why} needs `apt-get install {}`", packages.join(" "));
        return Ok(false);
    }
    println!("installing {} from Debian's packages ({why})", packages.join(" "));
    let install = |cmd: &mut Command| {
        run(cmd
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install(&mut Command::new("apt-get")).is_err() {
        // Stale package lists: refresh them once and try again.
        run(Command::new("apt-get").args(["update", "-q"]))?;
        install(&mut Command::new("apt-get"))?;
    }
    Ok(true)
}

/// A program installed by npm under node_modules/.bin.
pub fn npm_bin(name: &str) -> PathBuf {
    root().join("node_modules/.bin").join(name)
}

pub fn step(what: &str) {
    println!("\n==> {what}");
}

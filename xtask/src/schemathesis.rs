//! Schemathesis, the OpenAPI fuzzer the API-fuzzing end-to-end test drives, from PyPI into a
//! virtualenv of its own under the target directory (`<target>/schemathesis-venv`), pinned.

use std::{path::PathBuf, process::Command};

use anyhow::{Result, bail};

use crate::util::{self, root, which};

/// The pinned release: the test's flags are those of this version's `st run`.
pub const VERSION: &str = "4.32.5";

/// The virtualenv's directory.
fn venv() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    target.join("schemathesis-venv")
}

/// The `schemathesis` program in the virtualenv: what the test finds in `SCHEMATHESIS_BIN`.
pub fn bin() -> PathBuf {
    venv().join("bin/schemathesis")
}

/// The schemathesis version the virtualenv holds, if any.
fn installed() -> Option<String> {
    let python = venv().join("bin/python");
    let query = "import importlib.metadata as m; print(m.version('schemathesis'))";
    util::output(Command::new(python).args(["-c", query])).ok().map(|v| v.trim().to_owned())
}

/// Creates the virtualenv (with Debian's `python3-venv` when `python3 -m venv` is missing) and
/// installs [`VERSION`] into it, unless it is already there.
pub fn install() -> Result<()> {
    if installed().as_deref() == Some(VERSION) && bin().is_file() {
        println!("schemathesis {VERSION} already installed in {}", venv().display());
        return Ok(());
    }
    // Debian splits `venv`'s pip bootstrap (ensurepip) into python3-venv.
    let venv_works =
        || Command::new("python3").args(["-c", "import venv, ensurepip"]).output().is_ok_and(|o| o.status.success());
    if (which("python3").is_none() || !venv_works())
        && !util::apt_install(&["python3", "python3-venv"], "the API fuzzing test (schemathesis)")?
    {
        bail!("the API fuzzing test needs Python 3 with venv (Debian/Ubuntu: `apt-get install python3-venv`)");
    }
    let dir = venv();
    if !dir.join("bin/pip").is_file() {
        // A half-made virtualenv (no pip) is made again from scratch.
        drop(std::fs::remove_dir_all(&dir));
        println!("creating a virtualenv for schemathesis at {}", dir.display());
        util::run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
    }
    println!("installing schemathesis {VERSION} from PyPI into {}", dir.display());
    util::run(Command::new(dir.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("schemathesis=={VERSION}"),
    ]))?;
    match installed() {
        Some(version) if version == VERSION && bin().is_file() => Ok(()),
        other => bail!("schemathesis {VERSION} did not install (found {other:?})"),
    }
}

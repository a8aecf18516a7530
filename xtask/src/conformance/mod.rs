//! `cargo xtask conformance [--real] PATH...`: replays conformance cases.

mod driver;

use std::path::PathBuf;
use std::process::ExitCode;

pub fn main(real: bool, paths: Vec<PathBuf>) -> anyhow::Result<ExitCode> {
    let _ = (real, paths);
    anyhow::bail!("the conformance runner is not written yet")
}

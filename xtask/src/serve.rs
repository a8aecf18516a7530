//! `cargo xtask serve [--bind ADDR]`: build the page, then run the bridge, which
//! serves it (and `/healthz`, `/ws`). Without RabbitMQ the page still works in
//! simulation mode.

use anyhow::{bail, Context};
use std::process::{Command, ExitCode};

pub fn main(bind: &str) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    crate::web::build(&root)?;
    println!("serve: building and starting the bridge on {bind}");
    println!("serve: open http://{bind}/ (Ctrl-C stops it)");
    let static_dir = root.join("static");
    let status = Command::new(crate::web::cargo())
        .args([
            "run",
            "-q",
            "-p",
            "bridge",
            "--release",
            "--",
            "--bind",
            bind,
        ])
        .arg("--static-dir")
        .arg(&static_dir)
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("the bridge exited with {status}");
    }
    Ok(ExitCode::SUCCESS)
}

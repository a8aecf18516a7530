//! `cargo xtask build-web`: the page's wasm bundle, built offline.
//!
//! `cargo build -p web --target wasm32-unknown-unknown --profile wasm-release`,
//! then `wasm-bindgen-cli-support` as a library (no trunk, no wasm-pack, nothing
//! downloaded) writes `static/pkg/web.js` and `static/pkg/web_bg.wasm`.

use anyhow::{bail, Context};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub const PROFILE: &str = "wasm-release";

/// `cargo` as cargo itself was invoked (cargo sets `CARGO` for what it runs).
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// The target directory cargo uses here (honours `CARGO_TARGET_DIR` and config).
pub fn target_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new(cargo())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(root)
        .output()
        .context("cannot run `cargo metadata`")?;
    if !out.status.success() {
        bail!(
            "`cargo metadata` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("`cargo metadata` printed no JSON")?;
    meta.get("target_directory")
        .and_then(|d| d.as_str())
        .map(PathBuf::from)
        .context("`cargo metadata` gave no target_directory")
}

/// Whether rustup (or the toolchain) has the wasm32 standard library.
pub fn wasm_target_installed() -> bool {
    Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
            Path::new(&sysroot)
                .join("lib/rustlib")
                .join(WASM_TARGET)
                .join("lib")
                .is_dir()
        })
        .unwrap_or(false)
}

/// Sizes of the bundle, bytes.
#[derive(Debug, Clone, Copy)]
pub struct BundleSize {
    pub wasm: u64,
    pub wasm_gz: u64,
    pub js_gz: u64,
    pub css_gz: u64,
    pub html_gz: u64,
    /// The lesson catalogue the page fetches at start (`pkg/lessons/index.json`).
    pub index_gz: u64,
    /// The largest lesson file, fetched only when that lesson is opened.
    pub largest_lesson_gz: u64,
}

impl BundleSize {
    pub fn total_gz(&self) -> u64 {
        self.wasm_gz + self.js_gz + self.css_gz + self.html_gz + self.index_gz
    }
}

fn gzipped_len(path: &Path) -> anyhow::Result<u64> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&data)?;
    Ok(enc.finish()?.len() as u64)
}

/// The lessons as the page loads them: `pkg/lessons/<id>.json` (each file as
/// it is in `scenarios/`, fetched when the lesson is opened) and
/// `pkg/lessons/index.json` (id, tags and title of each, for the picker,
/// fetched at start). Keeping them out of the wasm keeps ~140 KB of JSON out
/// of the first load. Returns (index, largest lesson) gzipped sizes.
fn write_lessons(out_dir: &Path) -> anyhow::Result<(u64, u64)> {
    let dir = out_dir.join("lessons");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut index = Vec::new();
    let mut largest = 0;
    for (file, json) in sim_core::scenario::BUILTIN {
        let sc = sim_core::scenario::parse(json)
            .map_err(|e| anyhow::anyhow!("scenarios/{file} does not parse: {e}"))?;
        let path = dir.join(format!("{}.json", sc.id));
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
        largest = largest.max(gzipped_len(&path)?);
        index.push(serde_json::json!({
            "id": sc.id,
            "tags": sc.tags,
            "title": {"en": sc.title.en, "ru": sc.title.ru, "uk": sc.title.uk},
        }));
    }
    let path = dir.join("index.json");
    std::fs::write(&path, serde_json::to_string(&index)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok((gzipped_len(&path)?, largest))
}

fn kib(n: u64) -> String {
    format!("{:.1} KiB", n as f64 / 1024.0)
}

/// Builds the page into `static/pkg`. Returns the bundle's sizes.
pub fn build(root: &Path) -> anyhow::Result<BundleSize> {
    if !wasm_target_installed() {
        bail!("the {WASM_TARGET} target is not installed: run `rustup target add {WASM_TARGET}`");
    }
    let started = Instant::now();
    println!("build-web: cargo build -p web --target {WASM_TARGET} --profile {PROFILE}");
    let status = Command::new(cargo())
        .args([
            "build",
            "-p",
            "web",
            "--target",
            WASM_TARGET,
            "--profile",
            PROFILE,
        ])
        .current_dir(root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the web crate for {WASM_TARGET} failed (see the errors above)");
    }
    let wasm = target_dir(root)?
        .join(WASM_TARGET)
        .join(PROFILE)
        .join("web.wasm");
    if !wasm.is_file() {
        bail!(
            "cargo built the web crate but {} is missing",
            wasm.display()
        );
    }
    let out_dir = root.join("static/pkg");
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)
            .with_context(|| format!("cannot clear {}", out_dir.display()))?;
    }
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .web(true)
        .context("wasm-bindgen: --target web")?
        // `init()` with no argument loads web_bg.wasm next to web.js.
        .omit_default_module_path(false)
        .remove_name_section(true)
        .remove_producers_section(true)
        .out_name("web")
        .generate(&out_dir)
        .context("wasm-bindgen could not generate the JS glue")?;

    let wasm_out = out_dir.join("web_bg.wasm");
    let (index_gz, largest_lesson_gz) = write_lessons(&out_dir)?;
    let size = BundleSize {
        index_gz,
        largest_lesson_gz,
        wasm: std::fs::metadata(&wasm_out)
            .with_context(|| format!("missing {}", wasm_out.display()))?
            .len(),
        wasm_gz: gzipped_len(&wasm_out)?,
        js_gz: gzipped_len(&out_dir.join("web.js"))?,
        css_gz: gzipped_len(&root.join("static/style.css"))?,
        html_gz: gzipped_len(&root.join("static/index.html"))?,
    };
    println!(
        "build-web: static/pkg/web_bg.wasm {} raw, {} gzipped; web.js {} gz; style.css {} gz; index.html {} gz; lessons/index.json {} gz (each lesson, fetched when opened: at most {} gz)",
        kib(size.wasm),
        kib(size.wasm_gz),
        kib(size.js_gz),
        kib(size.css_gz),
        kib(size.html_gz),
        kib(size.index_gz),
        kib(size.largest_lesson_gz),
    );
    println!(
        "build-web: bundle total {} gzipped ({} bytes: wasm {} + js {} + css {} + html {} + lesson index {}); built in {:.1} s",
        kib(size.total_gz()),
        size.total_gz(),
        size.wasm_gz,
        size.js_gz,
        size.css_gz,
        size.html_gz,
        size.index_gz,
        started.elapsed().as_secs_f64()
    );
    Ok(size)
}

pub fn main() -> anyhow::Result<std::process::ExitCode> {
    build(&crate::project_root())?;
    Ok(std::process::ExitCode::SUCCESS)
}

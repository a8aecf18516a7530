//! `cargo xtask e2e`: the real page in headless Chromium, driven by fantoccini
//! through chromedriver.
//!
//! Builds the page and the bridge, starts the bridge on a free 127.0.0.1 port and
//! chromedriver on another, then runs each test in a fresh page. Prints
//! `PASS name` / `FAIL name: reason` per test and last `N passed, M failed`;
//! exits 1 on any failure. Screenshots go to `<target dir>/e2e/*.png`.
//! Children are killed however the run ends. Nothing is skipped: a missing
//! Chromium, chromedriver or RabbitMQ is a failure that says how to fix it.

mod build;

use anyhow::{anyhow, bail, Context};
use fantoccini::{Client, ClientBuilder, Locator};
use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

pub(crate) const CHROMIUM: &str = "/usr/bin/chromium";
pub(crate) const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Debian's Firefox ESR; its WebDriver, geckodriver, comes from crates.io
/// (`cargo install geckodriver --locked`).
pub(crate) const FIREFOX: &str = "/usr/bin/firefox-esr";
const RABBITMQ: ([u8; 4], u16) = ([127, 0, 0, 1], 5672);

/// The tests, in order.
const TESTS: [&str; 24] = [
    "sim-publish-is-delivered-and-acked",
    "real-mode-publish-through-rabbitmq",
    "sim-again-after-real",
    "sim-fanout-reaches-both-queues",
    "real-fanout-reaches-both-queues",
    "sim-burst-waits-in-the-queue-then-drains",
    "lesson-sim-timing-1-consumer-all-checks-pass",
    "lesson-real-hello-world-all-checks-pass",
    "ui-language-projector-and-help",
    "lesson-pipeline-picture-any-topology",
    "import-definitions-json-builds-the-scene",
    "share-url-round-trip",
    "broken-share-fragment-says-why",
    "timeline-step-scrub-back-and-forward",
    "timeline-shared-run-replays-the-same",
    "timeline-real-mode-says-why-not",
    "compare-sim-and-real-side-by-side",
    "firefox-publish-step-and-lesson",
    "build-topology-publish-inspect",
    "build-invalid-input-sends-nothing",
    "build-real-mode-declares-on-rabbitmq",
    "build-share-link-reopens-the-build",
    "build-context-menu-edits-a-binding",
    // Last: it stops the bridge.
    "bridge-gone-says-why-and-sim-still-works",
];

/// Child processes, killed on drop (also on error and panic).
pub(crate) struct Children(pub(crate) Vec<(&'static str, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A temporary directory, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

pub(crate) fn wait_for_port(
    port: u16,
    what: &str,
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within {timeout:?}")
}

pub(crate) fn rabbitmq_answers() -> bool {
    let addr = SocketAddr::from(RABBITMQ);
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

pub(crate) fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn main(no_build: bool, only: &[String]) -> anyhow::Result<ExitCode> {
    let root = crate::project_root();
    let mut missing = Vec::new();
    for (bin, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        if !Path::new(bin).exists() {
            missing.push(format!("{bin} is missing: run `apt-get install {package}`"));
        }
    }
    if !missing.is_empty() {
        for m in &missing {
            println!("FAIL setup: {m}");
        }
        println!("(install both with `apt-get install chromium chromium-driver`)");
        println!("0 passed, {} failed", TESTS.len());
        return Ok(ExitCode::FAILURE);
    }

    let out_dir = crate::web::target_dir(&root)?.join("e2e");
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;

    let selected: Vec<&'static str> = TESTS
        .into_iter()
        .filter(|t| only.is_empty() || only.iter().any(|o| t.contains(o.as_str())))
        .collect();
    if selected.len() != TESTS.len() {
        println!(
            "e2e: --only: running {} of {} tests, {} left out",
            selected.len(),
            TESTS.len(),
            TESTS.len() - selected.len()
        );
    }
    let results = match setup_and_run(&root, &out_dir, no_build, &selected) {
        Ok(results) => results,
        Err(err) => {
            println!("FAIL setup: {err:#}");
            println!("0 passed, {} failed", TESTS.len());
            return Ok(ExitCode::FAILURE);
        }
    };
    let passed = results.iter().filter(|(_, r)| r.is_ok()).count();
    let failed = results.len() - passed;
    println!("screenshots: {}", out_dir.display());
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn setup_and_run(
    root: &Path,
    out_dir: &Path,
    no_build: bool,
    tests: &[&'static str],
) -> anyhow::Result<Vec<(&'static str, anyhow::Result<()>)>> {
    if !no_build {
        crate::web::build(root)?;
        // The debug bridge: `cargo test` has already built it in CI, and the
        // page's behaviour does not depend on the bridge's optimisation level.
        println!("e2e: cargo build -p bridge");
        let status = Command::new(crate::web::cargo())
            .args(["build", "-q", "-p", "bridge"])
            .current_dir(root)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("building the bridge failed");
        }
    }
    if !root.join("static/pkg/web.js").is_file() {
        bail!("static/pkg/web.js is missing: run `cargo xtask build-web`");
    }
    let bridge_bin = crate::web::target_dir(root)?.join("debug/bridge");
    if !bridge_bin.is_file() {
        bail!(
            "{} is missing: run `cargo build -p bridge`",
            bridge_bin.display()
        );
    }

    let mut children = Children(Vec::new());

    let bridge_port = free_port()?;
    let bridge_log = out_dir.join("bridge.log");
    let log = std::fs::File::create(&bridge_log)?;
    let bridge = Command::new(&bridge_bin)
        .arg("--bind")
        .arg(format!("127.0.0.1:{bridge_port}"))
        .arg("--static-dir")
        .arg(root.join("static"))
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", bridge_bin.display()))?;
    children.0.push(("bridge", bridge));
    {
        let (what, child) = children.0.last_mut().expect("just pushed");
        wait_for_port(bridge_port, what, child, Duration::from_secs(30)).with_context(|| {
            format!(
                "bridge log ({}):\n{}",
                bridge_log.display(),
                tail(&bridge_log, 20)
            )
        })?;
    }

    let driver_port = free_port()?;
    let driver_log = out_dir.join("chromedriver.log");
    let log = std::fs::File::create(&driver_log)?;
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={driver_port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("cannot start chromedriver")?;
    children.0.push(("chromedriver", driver));
    {
        let (what, child) = children.0.last_mut().expect("just pushed");
        wait_for_port(driver_port, what, child, Duration::from_secs(30))?;
    }

    let profile = TempDir(std::env::temp_dir().join(format!(
        "amqp-playground-e2e-{}-{driver_port}",
        std::process::id()
    )));
    std::fs::create_dir_all(&profile.0)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start a tokio runtime")?;
    let page = format!("http://127.0.0.1:{bridge_port}/");
    let webdriver = format!("http://127.0.0.1:{driver_port}");
    let bridge = &mut children.0[0].1;
    let results = rt.block_on(run_tests(
        &webdriver, &page, &profile.0, out_dir, bridge, tests,
    ));
    drop(children);
    results
}

pub(crate) async fn connect(webdriver: &str, profile: &Path) -> anyhow::Result<Client> {
    let args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--window-size=1400,900".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": CHROMIUM, "args": args}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(60),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(webdriver),
    )
    .await
    .map_err(|_| anyhow!("chromedriver did not start a Chromium session within 60 s"))?
    .context("chromedriver refused to start a Chromium session")?;
    Ok(client)
}

/// One test by name, then the check that no panic banner appeared (the
/// Firefox test checks its own browser).
async fn run_one(
    client: &Client,
    name: &str,
    page: &str,
    out_dir: &Path,
    bridge: &mut Child,
) -> anyhow::Result<()> {
    // Every test starts as a first visit: the language a test chose is
    // kept by the page (localStorage) and would greet the next one.
    client.goto(page).await.context("cannot open the page")?;
    client.execute("localStorage.clear()", vec![]).await?;
    let result = match name {
        "sim-publish-is-delivered-and-acked" => sim_publish(client, page, out_dir).await,
        "build-topology-publish-inspect" => {
            build::build_publish_inspect(client, page, out_dir).await
        }
        "build-invalid-input-sends-nothing" => {
            build::build_invalid_input(client, page, out_dir).await
        }
        "build-real-mode-declares-on-rabbitmq" => build::build_real(client, page, out_dir).await,
        "build-share-link-reopens-the-build" => build::build_share(client, page, out_dir).await,
        "build-context-menu-edits-a-binding" => {
            build::build_context_menu_edits_binding(client, page, out_dir).await
        }
        "real-mode-publish-through-rabbitmq" => real_publish(client, page, out_dir).await,
        "sim-again-after-real" => sim_again_after_real(client, page, out_dir).await,
        "sim-fanout-reaches-both-queues" => fanout(client, page, out_dir, false).await,
        "real-fanout-reaches-both-queues" => fanout(client, page, out_dir, true).await,
        "sim-burst-waits-in-the-queue-then-drains" => burst(client, page, out_dir).await,
        "lesson-sim-timing-1-consumer-all-checks-pass" => {
            lesson_sim_timing(client, page, out_dir).await
        }
        "lesson-real-hello-world-all-checks-pass" => lesson_real_hello(client, page, out_dir).await,
        "ui-language-projector-and-help" => ui_settings(client, page, out_dir).await,
        "lesson-pipeline-picture-any-topology" => {
            lesson_pipeline_picture(client, page, out_dir).await
        }
        "import-definitions-json-builds-the-scene" => {
            import_definitions(client, page, out_dir).await
        }
        "share-url-round-trip" => share_round_trip(client, page, out_dir).await,
        "broken-share-fragment-says-why" => broken_fragment(client, page, out_dir).await,
        "timeline-step-scrub-back-and-forward" => timeline_scrub(client, page, out_dir).await,
        "timeline-shared-run-replays-the-same" => timeline_shared_run(client, page, out_dir).await,
        "timeline-real-mode-says-why-not" => timeline_real(client, page, out_dir).await,
        "compare-sim-and-real-side-by-side" => compare_sim_real(client, page, out_dir).await,
        "firefox-publish-step-and-lesson" => firefox(page, out_dir).await,
        "bridge-gone-says-why-and-sim-still-works" => {
            bridge_gone(client, page, out_dir, bridge).await
        }
        _ => Err(anyhow!("unknown test")),
    };
    match (result, name != "firefox-publish-step-and-lesson") {
        (Ok(()), true) => no_panic(client).await,
        (r, _) => r,
    }
}

async fn run_tests(
    webdriver: &str,
    page: &str,
    profile: &Path,
    out_dir: &Path,
    bridge: &mut Child,
    tests: &[&'static str],
) -> anyhow::Result<Vec<(&'static str, anyhow::Result<()>)>> {
    let client = connect(webdriver, profile).await?;
    let mut results = Vec::new();
    for &name in tests {
        let mut result = run_one(&client, name, page, out_dir, bridge).await;
        // A browser test that fails once on a loaded machine gets one more
        // try, said out loud. Never after a panic (a fresh page would hide
        // it), nor for the bridge-gone test (it stops the bridge, so its
        // second try would test something else).
        if let Err(first) = &result {
            let panicked =
                format!("{first:#}").contains("panic") || no_panic(&client).await.is_err();
            if !panicked && name != "bridge-gone-says-why-and-sim-still-works" {
                println!("RETRY {name}: the first try failed: {first:#}");
                let _ = screenshot(&client, out_dir, &format!("{name}-first-try")).await;
                result = run_one(&client, name, page, out_dir, bridge)
                    .await
                    .map(|()| println!("FLAKY {name}: passed on the second try"));
            }
        }
        if result.is_err() {
            let _ = screenshot(&client, out_dir, &format!("{name}-failure")).await;
            // The page's protocol log, for the post-mortem.
            if let Ok(events) = text_of(&client, "event-log").await {
                let _ = std::fs::write(out_dir.join(format!("{name}-failure.txt")), events);
            }
        }
        match &result {
            Ok(()) => println!("PASS {name}"),
            Err(e) => println!("FAIL {name}: {e:#}"),
        }
        results.push((name, result));
    }
    let _ = client.close().await;
    Ok(results)
}

/// An error that ends a wait at once (a panic on screen, real mode failed).
#[derive(Debug)]
struct Fatal(String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fatal {}

/// Polls `probe` until it yields a value, or fails after `timeout` saying `what`.
async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    let mut last_err = None;
    loop {
        match probe().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) if e.is::<Fatal>() => return Err(e),
            Err(e) => last_err = Some(e),
        }
        if start.elapsed() > timeout {
            return Err(match last_err {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The element's rendered text, read in one script call: the page re-renders
/// while a test reads it, and a found element can be replaced before a second
/// WebDriver call reaches it (a "stale element reference").
async fn text_of(client: &Client, testid: &str) -> anyhow::Result<String> {
    let v = client
        .execute(
            "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
             return e ? (e.innerText ?? e.textContent) : null;",
            vec![testid.into()],
        )
        .await
        .with_context(|| format!("cannot read [data-testid={testid}]"))?;
    match v {
        serde_json::Value::String(t) => Ok(t),
        _ => bail!("no element [data-testid={testid}]"),
    }
}

/// An attribute of the element (`None` if it has none), read in one script
/// call (see [`text_of`]).
async fn attr_of(client: &Client, testid: &str, attr: &str) -> anyhow::Result<Option<String>> {
    let v = client
        .execute(
            "const e = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
             return e ? [e.getAttribute(arguments[1])] : null;",
            vec![testid.into(), attr.into()],
        )
        .await
        .with_context(|| format!("cannot read [data-testid={testid}]"))?;
    match v {
        serde_json::Value::Array(mut a) if a.len() == 1 => {
            Ok(a.pop().and_then(|x| x.as_str().map(String::from)))
        }
        _ => bail!("no element [data-testid={testid}]"),
    }
}

/// Clicks the element; if the page replaced it between finding and clicking
/// (a stale element reference), finds it again, up to three times.
async fn click(client: &Client, testid: &str) -> anyhow::Result<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let el = client
            .find(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
            .await
            .with_context(|| format!("no element [data-testid={testid}]"))?;
        match el.click().await {
            Err(e) if attempt < 3 && e.to_string().contains("stale element") => continue,
            r => return r.with_context(|| format!("cannot click [data-testid={testid}]")),
        }
    }
}

/// The panic banner is hidden (the app did not crash).
async fn no_panic(client: &Client) -> anyhow::Result<()> {
    let v = client
        .execute(
            "const b = document.getElementById('panic-banner'); \
             return b ? (b.hidden ? '' : (b.textContent || 'panic banner shown')) : 'no panic banner element';",
            vec![],
        )
        .await
        .context("cannot read the panic banner")?;
    match v.as_str() {
        Some("") => Ok(()),
        Some(text) => Err(Fatal(format!("panic banner: {text}")).into()),
        None => bail!("unexpected panic banner probe result {v}"),
    }
}

async fn screenshot(client: &Client, out_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let png = client.screenshot().await.context("screenshot failed")?;
    let path = out_dir.join(format!("{name}.png"));
    std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Opens the page fresh and waits until the scene is declared (Publish enabled).
async fn open_page(client: &Client, page: &str) -> anyhow::Result<()> {
    client.goto(page).await.context("cannot open the page")?;
    wait_for_publish_enabled(client).await
}

async fn wait_for_publish_enabled(client: &Client) -> anyhow::Result<()> {
    wait_until(
        "the Publish button to be enabled (scene declared)",
        Duration::from_secs(20),
        || async {
            no_panic(client).await?;
            Ok((attr_of(client, "publish", "disabled").await?.is_none()).then_some(()))
        },
    )
    .await
}

/// Clicks Publish once and checks the consumer(s) got and acked `copies` messages
/// whose body contains `marker`.
async fn publish_and_check(
    client: &Client,
    out_dir: &Path,
    shot: &str,
    copies: usize,
    marker: &str,
) -> anyhow::Result<()> {
    click(client, "publish").await?;
    // Mid-flight picture: the message on its way.
    tokio::time::sleep(Duration::from_millis(700)).await;
    screenshot(client, out_dir, &format!("{shot}-in-flight")).await?;
    let expect = copies.to_string();
    wait_until(
        &format!("the received counter to show {copies}"),
        Duration::from_secs(15),
        || async { Ok((text_of(client, "received-count").await?.trim() == expect).then_some(())) },
    )
    .await?;
    let log = text_of(client, "consumer-log").await?;
    if log.matches(marker).count() != copies {
        bail!("the consumer log does not show {copies} × {marker}: {log:?}");
    }
    wait_until(
        "the consumers to ack (unacked 0, log says acked)",
        Duration::from_secs(15),
        || async {
            let unacked = text_of(client, "queue-unacked").await?;
            let log = text_of(client, "consumer-log").await?;
            Ok((unacked.trim() == "0" && log.matches("acked ✓").count() == copies).then_some(()))
        },
    )
    .await?;
    let ready = text_of(client, "queue-ready").await?;
    if ready.trim() != "0" {
        bail!("queues show {ready} ready messages after delivery, expected 0");
    }
    // Let the tokens fade out, then the settled picture.
    tokio::time::sleep(Duration::from_millis(900)).await;
    screenshot(client, out_dir, shot).await?;
    Ok(())
}

/// Switches the page to Real and waits until it reports connected.
async fn go_real(client: &Client) -> anyhow::Result<()> {
    if !rabbitmq_answers() {
        bail!(
            "RabbitMQ is not answering on 127.0.0.1:5672: start it with \
             `rabbitmq-server -detached && rabbitmqctl await_startup` (or `bash .ci/run`)"
        );
    }
    click(client, "mode-toggle").await?;
    let checked = attr_of(client, "mode-toggle", "aria-checked").await?;
    if checked.as_deref() != Some("true") {
        bail!("the toggle did not switch to Real (aria-checked {checked:?})");
    }
    wait_until(
        "real mode to report connected",
        Duration::from_secs(20),
        || async {
            let status = attr_of(client, "link-status", "data-status").await?;
            match status.as_deref() {
                Some("connected") => Ok(Some(())),
                Some("bridge-unreachable") | Some("broker-unreachable") => {
                    let text = text_of(client, "link-status").await?;
                    Err(Fatal(format!("real mode failed: {text}")).into())
                }
                _ => Ok(None),
            }
        },
    )
    .await?;
    wait_for_publish_enabled(client).await?;
    if let Ok(banner) = text_of(client, "error-banner").await {
        bail!("error banner in real mode: {banner}");
    }
    Ok(())
}

/// Pairs of a token label and a node's text, a binding's key or another
/// token label whose boxes overlap on screen (each as `label / text`), in
/// the picture `svg` (a CSS selector).
pub(super) async fn label_overlaps(client: &Client, svg: &str) -> anyhow::Result<Vec<String>> {
    let v = client
        .execute(
            "const hit = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && \
                                   a.top < b.bottom - 1 && b.top < a.bottom - 1; \
             const svg = arguments[0]; \
             const texts = [...document.querySelectorAll(`${svg} .node text, ${svg} .edge-key, ${svg} .edge-label text`)]; \
             const labels = [...document.querySelectorAll(`${svg} .token-label`)]; \
             const out = []; \
             labels.forEach((l, i) => { \
               const a = l.getBoundingClientRect(); \
               for (const t of texts.concat(labels.slice(i + 1))) { \
                 if (hit(a, t.getBoundingClientRect())) out.push(l.textContent + ' / ' + t.textContent); \
               } \
             }); \
             return out;",
            vec![serde_json::Value::from(svg)],
        )
        .await?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default())
}

/// The fanout scene: one publish, a copy in each of the two queues, both consumed.
async fn fanout(client: &Client, page: &str, out_dir: &Path, real: bool) -> anyhow::Result<()> {
    open_page(client, page).await?;
    if real {
        go_real(client).await?;
    }
    click(client, "scene-fanout").await?;
    let pressed = attr_of(client, "scene-fanout", "aria-pressed").await?;
    if pressed.as_deref() != Some("true") {
        bail!("the fanout scene was not selected (aria-pressed {pressed:?})");
    }
    wait_for_publish_enabled(client).await?;
    if real {
        let status = attr_of(client, "link-status", "data-status").await?;
        if status.as_deref() != Some("connected") {
            bail!("after switching scene the page is not connected (status {status:?})");
        }
    }
    let shot = if real { "real-fanout" } else { "sim-fanout" };
    publish_and_check(client, out_dir, shot, 2, "\"alert_id\":1").await?;
    if real {
        return Ok(());
    }
    // Each publish sends a copy of `#n` down both bindings: labels must not
    // print over each other, the bindings' words or the nodes' names.
    for _ in 0..4 {
        click(client, "publish").await?;
    }
    let mut seen = Vec::new();
    for _ in 0..15 {
        seen.extend(label_overlaps(client, SCENE_SVG).await?);
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    if !seen.is_empty() {
        screenshot(client, out_dir, "sim-fanout-labels").await?;
        bail!("message labels overlap text in the scene: {seen:?}");
    }
    Ok(())
}

/// The main scene's picture (not the Build page's nor a lesson's).
const SCENE_SVG: &str = "svg.topology:not(.build-topology):not(.lesson-topology)";

async fn sim_publish(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    let status = attr_of(client, "link-status", "data-status").await?;
    if status.as_deref() != Some("simulation") {
        bail!("the page did not start in simulation mode (status {status:?})");
    }
    publish_and_check(client, out_dir, "sim", 1, "\"order_id\":1").await?;
    let why = text_of(client, "why").await?;
    if !why.contains("matched binding `new` on exchange `orders`") {
        bail!("the routing explanation is missing: {why:?}");
    }
    // In Russian and Ukrainian the same explanation is worded anew, and
    // the controls with it.
    for (lang, publish, explained) in [
        (
            "ru",
            "Опубликовать",
            "совпала привязка `new` на exchange `orders`",
        ),
        (
            "uk",
            "Опублікувати",
            "збіглася прив'язка `new` на exchange `orders`",
        ),
        (
            "en",
            "Publish",
            "matched binding `new` on exchange `orders`",
        ),
    ] {
        choose_lang(client, lang).await?;
        wait_until(
            &format!("the page in {lang}"),
            Duration::from_secs(5),
            || async { Ok((text_of(client, "publish").await?.trim() == publish).then_some(())) },
        )
        .await?;
        let why = text_of(client, "why").await?;
        if !why.contains(explained) {
            bail!("in {lang}, the routing explanation reads {why:?}");
        }
        if attr_of(client, "app-root", "lang").await?.as_deref() != Some(lang) {
            bail!("the page's lang attribute is not {lang}");
        }
        if lang == "ru" {
            screenshot(client, out_dir, "sim-ru").await?;
        }
    }
    // The page keeps the choice: opened again, it speaks Ukrainian.
    choose_lang(client, "uk").await?;
    open_page(client, page).await?;
    let publish = text_of(client, "publish").await?;
    if publish.trim() != "Опублікувати" {
        bail!("opened again after choosing Ukrainian, Publish reads {publish:?}");
    }
    Ok(())
}

/// Picks the page's language in its switcher.
async fn choose_lang(client: &Client, lang: &str) -> anyhow::Result<()> {
    let ok = client
        .execute(
            "const s = document.querySelector('[data-testid=\"lang\"]'); \
             if (!s) return false; s.value = arguments[0]; \
             s.dispatchEvent(new Event('change', {bubbles: true})); return s.value === arguments[0];",
            vec![lang.into()],
        )
        .await?;
    if ok.as_bool() != Some(true) {
        bail!("the language switcher has no {lang:?}");
    }
    Ok(())
}

async fn real_publish(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    go_real(client).await?;
    publish_and_check(client, out_dir, "real", 1, "\"order_id\":1").await
}

/// Real, then back to Sim: the simulation works again from a clean scene.
async fn sim_again_after_real(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    click(client, "mode-toggle").await?;
    click(client, "mode-toggle").await?;
    // The page renders the second click's state a moment later.
    wait_until(
        "the status to be back at simulation",
        Duration::from_secs(5),
        || async {
            let status = attr_of(client, "link-status", "data-status").await?;
            Ok((status.as_deref() == Some("simulation")).then_some(()))
        },
    )
    .await?;
    wait_for_publish_enabled(client).await?;
    publish_and_check(client, out_dir, "sim-again", 1, "\"order_id\":1").await
}

/// Real mode, then the bridge goes away: the header says why, and one click
/// brings back a working simulation.
async fn bridge_gone(
    client: &Client,
    page: &str,
    out_dir: &Path,
    bridge: &mut Child,
) -> anyhow::Result<()> {
    open_page(client, page).await?;
    go_real(client).await?;
    bridge.kill().context("cannot stop the bridge")?;
    let _ = bridge.wait();
    wait_until(
        "the header to say the bridge is unreachable",
        Duration::from_secs(15),
        || async {
            let status = attr_of(client, "link-status", "data-status").await?;
            Ok((status.as_deref() == Some("bridge-unreachable")).then_some(()))
        },
    )
    .await?;
    let text = text_of(client, "link-status").await?;
    if !text.starts_with("bridge unreachable: ") {
        bail!("the status does not say why: {text:?}");
    }
    screenshot(client, out_dir, "bridge-gone").await?;
    // The comparison needs the bridge too, and says so.
    click(client, "compare-open").await?;
    let why = wait_until(
        "the comparison to say the bridge is gone",
        Duration::from_secs(15),
        || async { Ok(text_of(client, "compare-error").await.ok()) },
    )
    .await?;
    if !why.contains("bridge") {
        bail!("the comparison does not say why it failed: {why:?}");
    }
    screenshot(client, out_dir, "compare-bridge-gone").await?;
    click(client, "compare-close").await?;
    click(client, "use-sim").await?;
    wait_for_publish_enabled(client).await?;
    publish_and_check(
        client,
        out_dir,
        "sim-after-bridge-gone",
        1,
        "\"order_id\":1",
    )
    .await
}

/// Five quick publishes: with prefetch 1 the consumer takes one at a time, so
/// the others wait (ready) in the queue, then all are delivered and acked.
async fn burst(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    const N: usize = 5;
    open_page(client, page).await?;
    for _ in 0..N - 1 {
        click(client, "publish").await?;
    }
    // The last one with the keyboard shortcut.
    client
        .execute(
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'p'}));",
            vec![],
        )
        .await
        .context("cannot press P")?;
    wait_until(
        "messages waiting in the queue (ready > 0)",
        Duration::from_secs(5),
        || async {
            let ready: usize = text_of(client, "queue-ready").await?.trim().parse()?;
            Ok((ready > 0).then_some(()))
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    screenshot(client, out_dir, "sim-burst-queued").await?;
    wait_until(
        &format!("all {N} messages received and acked"),
        Duration::from_secs(40),
        || async {
            let received = text_of(client, "received-count").await?;
            let ready = text_of(client, "queue-ready").await?;
            let unacked = text_of(client, "queue-unacked").await?;
            Ok(
                (received.trim() == N.to_string() && ready.trim() == "0" && unacked.trim() == "0")
                    .then_some(()),
            )
        },
    )
    .await?;
    let log = text_of(client, "consumer-log").await?;
    for n in 1..=N {
        if !log.contains(&format!("\"order_id\":{n},")) {
            bail!("order {n} missing from the consumer log: {log:?}");
        }
    }
    // A burst of 300 at once moves as a pile (`×n`), not 300 circles.
    let v = client
        .execute_async(
            "const [n, done] = arguments; \
             const btn = document.querySelector('[data-testid=\"publish\"]'); \
             for (let i = 0; i < n; i++) btn.click(); \
             setTimeout(() => { \
               const t = [...document.querySelectorAll('svg.topology .token')]; \
               const piles = t.filter(e => Number(e.dataset.n) > 1); \
               done({circles: t.length, biggest: Math.max(0, ...t.map(e => Number(e.dataset.n))), \
                     label: piles.length ? piles[0].textContent : ''}); \
             }, 300);",
            vec![serde_json::json!(300)],
        )
        .await
        .context("cannot publish the burst")?;
    screenshot(client, out_dir, "sim-burst-piles").await?;
    let circles = v["circles"].as_u64().unwrap_or(u64::MAX);
    let biggest = v["biggest"].as_u64().unwrap_or(0);
    let label = v["label"].as_str().unwrap_or_default();
    if circles > 30 || biggest < 100 || !label.contains('×') {
        bail!("300 messages published at once are not drawn as a pile: {v}");
    }
    no_panic(client).await
}

/// Opens lesson `id` from the picker and answers the first question with `choice`.
async fn open_lesson(client: &Client, id: &str, choice: usize) -> anyhow::Result<()> {
    click(client, "lessons-open").await?;
    click(client, &format!("lesson-{id}")).await?;
    wait_lesson_stage(client).await?;
    click(client, &format!("lesson-choice-{choice}")).await
}

/// A lesson is fetched when it is opened: waits until it is on screen.
async fn wait_lesson_stage(client: &Client) -> anyhow::Result<()> {
    wait_until("the lesson stage", Duration::from_secs(10), || async {
        no_panic(client).await?;
        if let Ok(why) = text_of(client, "import-error").await {
            return Err(Fatal(format!("the lesson did not open: {why}")).into());
        }
        Ok(client
            .find(Locator::Css("[data-testid=\"lesson-stage\"]"))
            .await
            .is_ok()
            .then_some(()))
    })
    .await
}

/// Waits for the lesson's report and requires every check to have passed.
async fn lesson_report_passes(client: &Client, timeout: Duration) -> anyhow::Result<String> {
    let passed = wait_until("the lesson report", timeout, || async {
        no_panic(client).await?;
        attr_of(client, "lesson-report", "data-passed")
            .await
            .map(Some)
    })
    .await?;
    let report = text_of(client, "lesson-report").await?;
    if passed.as_deref() != Some("true") {
        bail!("the lesson's checks failed: {report}");
    }
    // Classes and texts of every check, read in one script call.
    let checks = client
        .execute(
            "return Array.from(document.querySelectorAll('[data-testid^=\"check-\"]')) \
                .map(e => [e.getAttribute('class') || '', e.innerText ?? e.textContent]);",
            vec![],
        )
        .await
        .context("cannot read the checks")?;
    let checks = checks.as_array().cloned().unwrap_or_default();
    for c in &checks {
        if c[0] != "passed" {
            bail!("a check is not shown as passed: {}", c[1]);
        }
    }
    if checks.is_empty() {
        bail!("the report shows no checks: {report}");
    }
    Ok(report)
}

/// The timing lesson with one consumer, in the simulation at 4×: the question
/// holds the run, then all checks pass.
async fn lesson_sim_timing(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    click(client, "lessons-open").await?;
    screenshot(client, out_dir, "lesson-picker").await?;
    click(client, "lesson-timing-1-consumer").await?;
    wait_lesson_stage(client).await?;
    // The question holds the clock at 0 until it is answered.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let t = text_of(client, "lesson-time").await?;
    if t.trim() != "0.0 s" {
        bail!("the run went on before the question was answered: {t}");
    }
    screenshot(client, out_dir, "lesson-sim-question").await?;
    click(client, "lesson-choice-2").await?;
    click(client, "speed-4").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    screenshot(client, out_dir, "lesson-sim-running").await?;
    let state = attr_of(client, "lesson-consumer-worker-1", "data-state").await?;
    if !matches!(state.as_deref(), Some("busy") | Some("prefetch-full")) {
        bail!("mid-run the consumer is {state:?}, not busy");
    }
    let report = lesson_report_passes(client, Duration::from_secs(30)).await?;
    if !report.contains("total_time_ms") {
        bail!("the report has no total_time_ms check: {report}");
    }
    // The metrics strip: the queue filled up, and the total time is shown.
    let total = text_of(client, "metrics-total").await?;
    if !total.ends_with(" s") || total.starts_with('0') {
        bail!("the metrics strip shows total time {total:?}");
    }
    let caption = text_of(client, "metrics").await?;
    if !caption.contains("(max 4)") {
        bail!("with one consumer 4 of the 5 orders should wait in the queue: {caption}");
    }
    screenshot(client, out_dir, "lesson-sim-done").await?;
    // The lesson's timeline: a few events back the run is not over yet, and
    // back to live the report is there again.
    for _ in 0..3 {
        click(client, "step-back").await?;
    }
    if attr_of(client, "time-controls", "data-state")
        .await?
        .as_deref()
        != Some("past")
    {
        bail!("stepping back in the lesson did not show its past");
    }
    if exists(client, "lesson-report").await? {
        bail!("three events before the end, the lesson already shows its report");
    }
    screenshot(client, out_dir, "lesson-sim-past").await?;
    click(client, "time-live").await?;
    wait_until("the report again, live", Duration::from_secs(5), || async {
        Ok(exists(client, "lesson-report").await?.then_some(()))
    })
    .await?;
    // The live lesson held while its past was shown, and plays on once live.
    if attr_of(client, "pause", "aria-pressed").await?.as_deref() != Some("false") {
        bail!("back to live, the lesson does not play on");
    }
    // Run again: from the start, the question asked again, nothing reported.
    click(client, "lesson-restart").await?;
    wait_until(
        "the lesson to start again",
        Duration::from_secs(5),
        || async {
            no_panic(client).await?;
            let again = !exists(client, "lesson-report").await?
                && text_of(client, "lesson-time").await?.trim() == "0.0 s"
                && attr_of(client, "lesson-choice-2", "aria-pressed")
                    .await?
                    .as_deref()
                    == Some("false");
            Ok(again.then_some(()))
        },
    )
    .await?;
    click(client, "lesson-choice-2").await?;
    wait_until(
        "the run to go on after the answer",
        Duration::from_secs(10),
        || async { Ok((text_of(client, "lesson-time").await?.trim() != "0.0 s").then_some(())) },
    )
    .await?;
    // Back to the playground: its scene works as before.
    click(client, "scene-direct").await?;
    wait_for_publish_enabled(client).await?;
    if exists(client, "lesson-stage").await? {
        bail!("the lesson stayed on screen after choosing a playground scene");
    }
    publish_and_check(client, out_dir, "after-lesson", 1, "\"order_id\":1").await
}

/// Hello World against RabbitMQ through the bridge: all checks pass.
async fn lesson_real_hello(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    go_real(client).await?;
    open_lesson(client, "hello-world", 0).await?;
    lesson_report_passes(client, Duration::from_secs(30)).await?;
    screenshot(client, out_dir, "lesson-real-hello-done").await?;
    let status = attr_of(client, "link-status", "data-status").await?;
    if status.as_deref() != Some("connected") {
        bail!("real lesson status {status:?}");
    }
    Ok(())
}

/// Language switch, projector and contrast, the `?` help overlay and the
/// keyboard: space pauses, the arrow keys step through a lesson.
async fn ui_settings(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    choose_lang(client, "uk").await?;
    let publish = text_of(client, "publish").await?;
    if publish.trim() != "Опублікувати" {
        bail!("after switching to Ukrainian, Publish reads {publish:?}");
    }
    let share = text_of(client, "share").await?;
    if share.trim() != "Посилання" {
        bail!("after switching to Ukrainian, Share reads {share:?}");
    }
    click(client, "projector").await?;
    click(client, "contrast").await?;
    let class = attr_of(client, "app-root", "class")
        .await?
        .unwrap_or_default();
    if !(class.contains("projector") && class.contains("contrast")) {
        bail!("projector/contrast not applied: class {class:?}");
    }
    let body = client.find(Locator::Css("body")).await?;
    body.send_keys("?").await?;
    wait_until("the help overlay", Duration::from_secs(5), || async {
        Ok(client
            .find(Locator::Css("[data-testid=\"help-overlay\"]"))
            .await
            .is_ok()
            .then_some(()))
    })
    .await?;
    screenshot(client, out_dir, "ui-uk-projector-help").await?;
    body.send_keys("\u{e00c}").await?; // Escape
    body.send_keys(" ").await?;
    let pressed = attr_of(client, "pause", "aria-pressed").await?;
    if pressed.as_deref() != Some("true") {
        bail!("space did not pause (aria-pressed {pressed:?})");
    }
    body.send_keys(" ").await?;
    // A lesson in Ukrainian, stepped with the keyboard.
    open_lesson(client, "timing-1-consumer", 1).await?;
    click(client, "speed-4").await?;
    lesson_report_passes(client, Duration::from_secs(30)).await?;
    let title = text_of(client, "lesson-title").await?;
    if !title.contains("Час") {
        bail!("the lesson title is not Ukrainian: {title:?}");
    }
    let last = text_of(client, "lesson-step-no").await?;
    body.send_keys("\u{e012}").await?; // ArrowLeft
    let back = text_of(client, "lesson-step-no").await?;
    body.send_keys("\u{e014}").await?; // ArrowRight
    let again = text_of(client, "lesson-step-no").await?;
    if back == last || again != last {
        bail!("arrow keys did not step: {last:?} → {back:?} → {again:?}");
    }
    screenshot(client, out_dir, "ui-uk-lesson-done").await?;
    Ok(())
}

async fn exists(client: &Client, testid: &str) -> anyhow::Result<bool> {
    Ok(client
        .find(Locator::Css(&format!("[data-testid=\"{testid}\"]")))
        .await
        .is_ok())
}

async fn import_file(client: &Client, path: &Path) -> anyhow::Result<()> {
    let input = client
        .find(Locator::Css("[data-testid=\"import-file\"]"))
        .await
        .context("no import file input")?;
    input
        .send_keys(&path.display().to_string())
        .await
        .context("cannot choose the file")
}

const DEFINITIONS: &str = r##"{
  "rabbit_version": "3.10.8",
  "users": [{"name": "guest", "password_hash": "x", "tags": ["administrator"]}],
  "vhosts": [{"name": "/"}],
  "permissions": [{"user": "guest", "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}],
  "exchanges": [
    {"name": "shop", "vhost": "/", "type": "topic", "durable": true, "auto_delete": false, "internal": false, "arguments": {}},
    {"name": "audit", "vhost": "/", "type": "fanout", "durable": true, "auto_delete": false, "internal": false, "arguments": {}}
  ],
  "queues": [
    {"name": "orders", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {"x-max-length": 10}},
    {"name": "log", "vhost": "/", "durable": true, "auto_delete": false, "arguments": {}}
  ],
  "bindings": [
    {"source": "shop", "vhost": "/", "destination": "orders", "destination_type": "queue", "routing_key": "order.*", "arguments": {}},
    {"source": "shop", "vhost": "/", "destination": "audit", "destination_type": "exchange", "routing_key": "#", "arguments": {}},
    {"source": "audit", "vhost": "/", "destination": "log", "destination_type": "queue", "routing_key": "", "arguments": {}}
  ]
}"##;

/// A RabbitMQ definitions.json becomes the scene (exchange-to-exchange edge
/// included); a broken file then says why and leaves that scene alone; the
/// scene exports as definitions.json again.
async fn import_definitions(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    let good = out_dir.join("definitions.json");
    std::fs::write(&good, DEFINITIONS)?;
    import_file(client, &good).await?;
    wait_until("the imported scene", Duration::from_secs(10), || async {
        no_panic(client).await?;
        exists(client, "node-exchange:shop")
            .await
            .map(|b| b.then_some(()))
    })
    .await?;
    for id in [
        "node-exchange:audit",
        "node-queue:orders",
        "node-queue:log",
        "edge-binding:shop->audit",
        "edge-binding:shop->orders",
    ] {
        if !exists(client, id).await? {
            bail!("the imported scene has no [data-testid={id}]");
        }
    }
    let label = text_of(client, "edge-binding:shop->orders").await?;
    if !label.contains("order.*") {
        bail!("the binding is not labelled with its key: {label:?}");
    }
    screenshot(client, out_dir, "import-definitions").await?;
    let bad = out_dir.join("broken.json");
    std::fs::write(
        &bad,
        "{\"exchanges\": [{\"name\": \"x\", \"type\": \"x-delayed-message\"}]}",
    )?;
    import_file(client, &bad).await?;
    let why = wait_until("the import error", Duration::from_secs(10), || async {
        Ok(text_of(client, "import-error").await.ok())
    })
    .await?;
    if !why.contains("broken.json") || !why.contains("not supported") {
        bail!("the import error does not say why: {why:?}");
    }
    if !exists(client, "node-exchange:shop").await? {
        bail!("a broken import replaced the scene");
    }
    screenshot(client, out_dir, "import-broken").await?;
    click(client, "export-definitions").await?;
    let exported = client
        .find(Locator::Css("[data-testid=\"export-text\"]"))
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    if !(exported.contains("\"destination_type\": \"exchange\"") && exported.contains("order.*")) {
        bail!("the exported definitions miss the bindings: {exported}");
    }
    Ok(())
}

/// The link the Share button put in the export panel. The browser deflates
/// it, so it shows a moment after the click; a notice instead says why not.
pub(crate) async fn share_url(client: &Client) -> anyhow::Result<String> {
    wait_until("the share link", Duration::from_secs(10), || async {
        no_panic(client).await?;
        if let Ok(el) = client
            .find(Locator::Css("[data-testid=\"share-url\"]"))
            .await
        {
            return Ok(el.prop("value").await?.filter(|v| !v.is_empty()));
        }
        match text_of(client, "import-error").await {
            Ok(why) if !why.is_empty() => Err(anyhow!("no share link; the page says: {why}")),
            _ => Ok(None),
        }
    })
    .await
}

/// A lesson's share link, opened fresh, shows the same lesson and plays it.
async fn share_round_trip(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    click(client, "lessons-open").await?;
    click(client, "lesson-routing-direct").await?;
    wait_lesson_stage(client).await?;
    let title = text_of(client, "lesson-title").await?;
    click(client, "share").await?;
    let url = share_url(client).await?;
    if !url.contains("#s=") {
        bail!("the share link has no scene: {url:?}");
    }
    client.goto("about:blank").await?;
    client.goto(&url).await?;
    let again = wait_until("the shared lesson", Duration::from_secs(15), || async {
        no_panic(client).await?;
        Ok(text_of(client, "lesson-title").await.ok())
    })
    .await?;
    if again != title {
        bail!("the shared link opened {again:?}, not {title:?}");
    }
    click(client, "lesson-choice-0").await?;
    click(client, "speed-4").await?;
    lesson_report_passes(client, Duration::from_secs(30)).await?;
    screenshot(client, out_dir, "share-opened").await?;
    Ok(())
}

/// A broken shared link says why, and the playground works as usual.
async fn broken_fragment(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    client.goto("about:blank").await?;
    client.goto(&format!("{page}#s=AAAAbroken")).await?;
    let why = wait_until(
        "the broken-link message",
        Duration::from_secs(10),
        || async {
            no_panic(client).await?;
            Ok(text_of(client, "import-error").await.ok())
        },
    )
    .await?;
    if !why.contains("broken") {
        bail!("the message does not say the link is broken: {why:?}");
    }
    screenshot(client, out_dir, "broken-fragment").await?;
    if exists(client, "lesson-stage").await? {
        bail!("a broken link opened a scene");
    }
    wait_for_publish_enabled(client).await?;
    publish_and_check(client, out_dir, "after-broken-link", 1, "\"order_id\":1").await
}

/// A larger lesson (exchanges in layers, dead-lettering back to an exchange):
/// every element of its topology is drawn, and a step's highlight shows.
async fn lesson_pipeline_picture(
    client: &Client,
    page: &str,
    out_dir: &Path,
) -> anyhow::Result<()> {
    open_page(client, page).await?;
    open_lesson(client, "marketplace-orders", 0).await?;
    click(client, "speed-4").await?;
    // Messages' labels keep clear of names, keys and each other as they move.
    let mut overlaps = Vec::new();
    for _ in 0..20 {
        overlaps.extend(label_overlaps(client, ".lesson-topology").await?);
        tokio::time::sleep(Duration::from_millis(125)).await;
    }
    if !overlaps.is_empty() {
        screenshot(client, out_dir, "lesson-pipeline-labels").await?;
        bail!("message labels overlap text in the lesson's picture: {overlaps:?}");
    }
    let lesson = client
        .execute(
            "return [...document.querySelectorAll('[data-testid^=\"node-\"]')].map(e => e.dataset.testid).join(' ')",
            vec![],
        )
        .await?;
    let nodes = lesson.as_str().unwrap_or_default().to_string();
    for want in [
        "node-producer:",
        "node-exchange:",
        "node-queue:",
        "node-consumer:",
    ] {
        if !nodes.contains(want) {
            bail!("no {want}* in the picture: {nodes}");
        }
    }
    let lit = client
        .execute(
            "return document.querySelectorAll('.node.hl, .edge.hl').length",
            vec![],
        )
        .await?;
    if lit.as_u64().unwrap_or(0) == 0 {
        bail!("the step highlights nothing");
    }
    client
        .execute(
            "document.querySelector('[data-testid=\"lesson-stage\"]').scrollIntoView()",
            vec![],
        )
        .await?;
    screenshot(client, out_dir, "lesson-pipeline").await?;
    Ok(())
}

/// `(position, total)` of the timeline ("event 3 / 17 · 0.42 s").
async fn timeline_pos(client: &Client) -> anyhow::Result<(u32, u32)> {
    let text = text_of(client, "timeline-pos").await?;
    let nums: Vec<u32> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("timeline position {text:?}"))?;
    match nums[..] {
        [pos, total] => Ok((pos, total)),
        _ => bail!("the timeline position is not `event N / M`: {text:?}"),
    }
}

/// Moves the scrub bar to `n` as a user dragging it would (an `input` event).
async fn scrub_to(client: &Client, n: u32) -> anyhow::Result<()> {
    client
        .execute(
            "const el = document.querySelector('[data-testid=\"timeline\"]');
             el.value = String(arguments[0]);
             el.dispatchEvent(new Event('input', {bubbles: true}));",
            vec![serde_json::json!(n)],
        )
        .await
        .context("cannot move the scrub bar")?;
    Ok(())
}

/// `(published, received, ready, unacked)` as the page shows them.
async fn counts(client: &Client) -> anyhow::Result<(u32, u32, u32, u32)> {
    let n = |s: String| s.trim().parse::<u32>().context("not a number");
    Ok((
        n(text_of(client, "published-count").await?)?,
        n(text_of(client, "received-count").await?)?,
        n(text_of(client, "queue-ready").await?)?,
        n(text_of(client, "queue-unacked").await?)?,
    ))
}

async fn wait_all_acked(client: &Client, n: u32) -> anyhow::Result<()> {
    wait_until(
        &format!("{n} published, received and acked"),
        Duration::from_secs(20),
        || async { Ok((counts(client).await? == (n, n, 0, 0)).then_some(())) },
    )
    .await
}

/// Three publishes, all acked; then step back, scrub back to where two wait
/// in the queue, step forward (button and →), and back to live: the same
/// final state.
async fn timeline_scrub(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    click(client, "speed-2").await?;
    for _ in 0..3 {
        click(client, "publish").await?;
    }
    wait_all_acked(client, 3).await?;
    tokio::time::sleep(Duration::from_millis(900)).await;
    click(client, "pause").await?;
    let (pos, total) = timeline_pos(client).await?;
    if pos != total || total < 20 {
        bail!("live, the timeline should be at its end with every event: {pos} / {total}");
    }
    let live = counts(client).await?;
    click(client, "step-back").await?;
    let state = attr_of(client, "time-controls", "data-state").await?;
    if state.as_deref() != Some("past") || timeline_pos(client).await? != (total - 1, total) {
        bail!(
            "one step back should show event {} of {total} (state {state:?}, at {:?})",
            total - 1,
            timeline_pos(client).await?
        );
    }
    // Scrub back until the queue holds two ready messages and one unacked.
    let mut found = None;
    for n in (0..total - 1).rev() {
        scrub_to(client, n).await?;
        let (p, _) = timeline_pos(client).await?;
        if p != n {
            bail!("scrubbed to {n}, the timeline shows {p}");
        }
        let c = counts(client).await?;
        if c.2 == 2 && c.3 == 1 {
            found = Some((n, c));
            break;
        }
    }
    let Some((n, earlier)) = found else {
        bail!("no earlier event shows 2 ready and 1 unacked in the queue");
    };
    if earlier.1 >= 3 {
        bail!(
            "at event {n} the consumer already shows {} received",
            earlier.1
        );
    }
    let caption = text_of(client, "counts-orders.new").await?;
    if !caption.contains("ready 2") {
        bail!("the queue box does not show the earlier state: {caption:?}");
    }
    if attr_of(client, "publish", "disabled").await?.is_none() {
        bail!("Publish is enabled while the past is shown");
    }
    screenshot(client, out_dir, "timeline-past").await?;
    click(client, "step").await?;
    if timeline_pos(client).await?.0 != n + 1 {
        bail!("Step did not go one event forward from {n}");
    }
    client
        .execute(
            "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}));",
            vec![],
        )
        .await?;
    if timeline_pos(client).await?.0 != n + 2 {
        bail!("→ did not go one event forward from {}", n + 1);
    }
    click(client, "time-live").await?;
    let state = attr_of(client, "time-controls", "data-state").await?;
    if state.as_deref() != Some("live") {
        bail!("Back to live left the timeline in {state:?}");
    }
    if counts(client).await? != live || timeline_pos(client).await? != (total, total) {
        bail!(
            "back at the end the page shows {:?}, not {live:?}",
            counts(client).await?
        );
    }
    // A live step: publish while paused, then step until the next event.
    click(client, "publish").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, before) = timeline_pos(client).await?;
    click(client, "step").await?;
    wait_until(
        "a live step to stop one event later",
        Duration::from_secs(15),
        || async { Ok((timeline_pos(client).await?.0 == before + 1).then_some(())) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if timeline_pos(client).await?.0 != before + 1 {
        bail!("the live step did not stay one event later");
    }
    let pause = attr_of(client, "pause", "aria-pressed").await?;
    if pause.as_deref() != Some("true") {
        bail!("after a step the clock should be paused (aria-pressed {pause:?})");
    }
    screenshot(client, out_dir, "timeline-step").await?;
    Ok(())
}

/// A shared playground link carries the run: opened fresh, it replays the
/// same events to the same final state.
async fn timeline_shared_run(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    click(client, "scene-fanout").await?;
    wait_for_publish_enabled(client).await?;
    click(client, "speed-4").await?;
    click(client, "publish").await?;
    click(client, "publish").await?;
    wait_until("four copies acked", Duration::from_secs(20), || async {
        Ok((counts(client).await? == (2, 4, 0, 0)).then_some(()))
    })
    .await?;
    click(client, "pause").await?;
    let (_, total) = timeline_pos(client).await?;
    let log = text_of(client, "consumer-log").await?;
    click(client, "share").await?;
    let url = share_url(client).await?;
    if !url.contains("#r=") {
        bail!("the playground's share link carries no run: {url:?}");
    }
    client.goto("about:blank").await?;
    client.goto(&url).await?;
    wait_until("the shared run", Duration::from_secs(15), || async {
        no_panic(client).await?;
        Ok(timeline_pos(client)
            .await
            .ok()
            .filter(|p| *p == (0, total))
            .map(|_| ()))
    })
    .await?;
    let pressed = attr_of(client, "scene-fanout", "aria-pressed").await?;
    if pressed.as_deref() != Some("true") {
        bail!("the shared run did not open its scene (fanout)");
    }
    screenshot(client, out_dir, "shared-run-start").await?;
    click(client, "time-live").await?;
    if counts(client).await? != (2, 4, 0, 0) {
        bail!("the shared run ends in {:?}", counts(client).await?);
    }
    let again = text_of(client, "consumer-log").await?;
    if again != log {
        bail!("the shared run's consumers got other messages: {again:?} vs {log:?}");
    }
    // And it goes on live from there.
    click(client, "pause").await?;
    click(client, "publish").await?;
    wait_until(
        "the next message acked",
        Duration::from_secs(20),
        || async { Ok((counts(client).await? == (3, 6, 0, 0)).then_some(())) },
    )
    .await?;
    screenshot(client, out_dir, "shared-run-live").await?;
    Ok(())
}

/// Real mode: no stepping or scrubbing, and the page says why.
async fn timeline_real(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    go_real(client).await?;
    let why = text_of(client, "timeline-reason").await?;
    if !why.contains("RabbitMQ") {
        bail!("real mode does not say why the timeline is off: {why:?}");
    }
    for id in ["step", "step-back", "timeline"] {
        if attr_of(client, id, "disabled").await?.is_none() {
            bail!("{id} is enabled in real mode");
        }
    }
    screenshot(client, out_dir, "timeline-real").await?;
    Ok(())
}

/// The hello-world lesson in the simulation and on RabbitMQ: both columns
/// filled, no difference.
async fn compare_sim_real(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    if !rabbitmq_answers() {
        bail!("RabbitMQ is not answering on 127.0.0.1:5672 (the comparison needs it)");
    }
    open_page(client, page).await?;
    open_lesson(client, "hello-world", 0).await?;
    click(client, "compare-open").await?;
    wait_until(
        "the real run of the comparison",
        Duration::from_secs(60),
        || async {
            no_panic(client).await?;
            if let Ok(why) = text_of(client, "compare-error").await {
                return Err(Fatal(format!("the comparison failed: {why}")).into());
            }
            let state = attr_of(client, "compare-status", "data-state").await?;
            Ok((state.as_deref() == Some("done")).then_some(()))
        },
    )
    .await?;
    let sim = text_of(client, "compare-sim").await?;
    let real = text_of(client, "compare-real").await?;
    if !(sim.contains("Simulation") && real.contains("RabbitMQ")) {
        bail!("the columns are not simulation and RabbitMQ: {sim:?} / {real:?}");
    }
    let rows = client
        .execute(
            "return [...document.querySelectorAll('[data-testid^=\"compare-row-\"]')].map(r => r.innerText).join('\\n')",
            vec![],
        )
        .await?;
    let rows = rows.as_str().unwrap_or_default().to_string();
    if !(rows.contains("consumer") && rows.contains("checks passed")) {
        bail!("the outcome table misses rows: {rows}");
    }
    screenshot(client, out_dir, "compare").await?;
    // Every outcome and every event the same; times are wall-clock on
    // RabbitMQ and may differ beyond the tolerance on a loaded machine (the
    // panel marks that too, but it says nothing about the broker).
    let differing = client
        .execute(
            "const rows = [...document.querySelectorAll('[data-testid^=\"compare-row-\"][data-diff=\"true\"]:not([data-kind=\"time\"])')];
             const events = [...document.querySelectorAll('.compare-events li[data-diff=\"true\"]')];
             return rows.concat(events).map(r => r.innerText).join(' | ')",
            vec![],
        )
        .await?;
    let differing = differing.as_str().unwrap_or_default().to_string();
    if !differing.is_empty() {
        bail!("hello-world differs between the simulation and RabbitMQ: {differing}");
    }
    if attr_of(client, "compare-summary", "data-differences")
        .await?
        .is_none()
    {
        bail!("the comparison has no summary");
    }
    click(client, "compare-close").await?;
    if exists(client, "compare").await? {
        bail!("the comparison did not close");
    }
    Ok(())
}

/// geckodriver on the PATH or where `cargo install` puts it.
fn geckodriver() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("geckodriver"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = cargo_home {
        candidates.push(home.join("bin/geckodriver"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The same page in headless Firefox ESR through geckodriver: it starts,
/// publishes and acks, steps back in the timeline, and plays a lesson to a
/// passing report.
async fn firefox(page: &str, out_dir: &Path) -> anyhow::Result<()> {
    // Missing Firefox or geckodriver fails this test, with the fix.
    if !Path::new(FIREFOX).exists() {
        bail!("{FIREFOX} is missing: run `apt-get install firefox-esr` (or `bash .ci/run`)");
    }
    let gecko = geckodriver().context(
        "geckodriver is missing: run `cargo install geckodriver --locked` (or `bash .ci/run`)",
    )?;
    let port = free_port()?;
    let log_path = out_dir.join("geckodriver.log");
    let log = std::fs::File::create(&log_path)?;
    let child = Command::new(&gecko)
        .arg("--port")
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", gecko.display()))?;
    let mut children = Children(vec![("geckodriver", child)]);
    {
        let (what, child) = &mut children.0[0];
        wait_for_port(port, what, child, Duration::from_secs(30))?;
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), "firefox".into());
    caps.insert(
        "moz:firefoxOptions".into(),
        serde_json::json!({
            "binary": FIREFOX,
            "args": ["-headless", "--width=1400", "--height=900"],
            "prefs": {"app.update.enabled": false, "browser.shell.checkDefaultBrowser": false}
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = tokio::time::timeout(
        Duration::from_secs(90),
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}")),
    )
    .await
    .map_err(|_| anyhow!("geckodriver did not start a Firefox session within 90 s"))?
    .with_context(|| {
        format!(
            "geckodriver refused to start a Firefox session; its log:\n{}",
            tail(&log_path, 20)
        )
    })?;
    let result = firefox_checks(&client, page, out_dir).await;
    let result = match (result, no_panic(&client).await) {
        (Ok(()), Err(e)) => Err(e),
        (r, _) => r,
    };
    if result.is_err() {
        let _ = screenshot(&client, out_dir, "firefox-failure").await;
    }
    let _ = client.close().await;
    drop(children);
    result
}

async fn firefox_checks(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_page(client, page).await?;
    let agent = client.execute("return navigator.userAgent", vec![]).await?;
    let agent = agent.as_str().unwrap_or_default().to_string();
    if !agent.contains("Firefox") {
        bail!("the browser is not Firefox: {agent:?}");
    }
    publish_and_check(client, out_dir, "firefox", 1, "\"order_id\":1").await?;
    click(client, "pause").await?;
    let (_, total) = timeline_pos(client).await?;
    click(client, "step-back").await?;
    if timeline_pos(client).await? != (total - 1, total) {
        bail!("in Firefox, one step back did not show event {}", total - 1);
    }
    click(client, "time-live").await?;
    if counts(client).await? != (1, 1, 0, 0) {
        bail!(
            "in Firefox, back at the end the page shows {:?}",
            counts(client).await?
        );
    }
    // Play again (the pause carries over into a lesson).
    click(client, "pause").await?;
    open_lesson(client, "hello-world", 0).await?;
    click(client, "speed-4").await?;
    lesson_report_passes(client, Duration::from_secs(30)).await?;
    screenshot(client, out_dir, "firefox-lesson").await?;
    Ok(())
}

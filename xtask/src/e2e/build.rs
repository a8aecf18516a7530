//! Browser tests of the Build page: a topology made with the editor's forms
//! routes a publish into the right queue, the inspector reads the message's
//! route, an invalid form explains itself and sends nothing, the same
//! topology is declared on RabbitMQ in real mode, the share link carries it,
//! the context menu edits a binding (routing follows its new key), and the
//! timeline steps back to a message waiting in its queue and forward again.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MouseActions, PointerAction, MOUSE_BUTTON_RIGHT,
};
use fantoccini::{Client, Locator};

use super::{
    attr_of, click, exists, label_overlaps, no_panic, rabbitmq_answers, screenshot, text_of,
    wait_until, Fatal,
};

async fn find(client: &Client, css: &str) -> anyhow::Result<fantoccini::elements::Element> {
    client
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("no element {css}"))
}

/// Types `text` into form field `field` (after clearing it).
async fn type_in(client: &Client, field: &str, text: &str) -> anyhow::Result<()> {
    let el = find(client, &format!("[data-testid=\"field-{field}\"]")).await?;
    el.clear().await?;
    el.send_keys(text)
        .await
        .with_context(|| format!("cannot type into field {field}"))
}

/// Picks `value` in the select of form field `field`.
async fn choose(client: &Client, field: &str, value: &str) -> anyhow::Result<()> {
    let ok = client
        .execute(
            "const s = document.querySelector(`[data-testid=\"field-${arguments[0]}\"]`); \
             if (!s) return false; s.value = arguments[1]; \
             s.dispatchEvent(new Event('change', {bubbles: true})); return s.value === arguments[1];",
            vec![field.into(), value.into()],
        )
        .await?;
    if ok.as_bool() != Some(true) {
        bail!("field {field} has no choice {value:?}");
    }
    Ok(())
}

/// Opens form `kind`, picks then types, saves, and waits for the form to close.
async fn add(
    client: &Client,
    kind: &str,
    picks: &[(&str, &str)],
    typed: &[(&str, &str)],
) -> anyhow::Result<()> {
    click(client, &format!("add-{kind}")).await?;
    for (f, v) in picks {
        choose(client, f, v).await?;
    }
    for (f, v) in typed {
        type_in(client, f, v).await?;
    }
    save_form(client, kind).await
}

/// Saves the open `kind` form and waits until it closes: the broker took
/// what it sent (a refusal or a panic fails the test at once).
async fn save_form(client: &Client, kind: &str) -> anyhow::Result<()> {
    click(client, "form-save").await?;
    wait_until(
        &format!("the {kind} form to close (the broker accepted it)"),
        Duration::from_secs(15),
        || async {
            no_panic(client).await?;
            if let Ok(e) = text_of(client, "form-broker-error").await {
                return Err(Fatal(format!("the broker refused the {kind}: {e}")).into());
            }
            Ok((!exists(client, &format!("form-{kind}")).await?).then_some(()))
        },
    )
    .await
}

async fn open_build(client: &Client, page: &str) -> anyhow::Result<()> {
    client.goto(page).await.context("cannot open the page")?;
    wait_until("the Build button", Duration::from_secs(20), || async {
        no_panic(client).await?;
        exists(client, "build-open").await.map(|b| b.then_some(()))
    })
    .await?;
    click(client, "build-open").await?;
    wait_until("the Build page", Duration::from_secs(10), || async {
        exists(client, "build-stage").await.map(|b| b.then_some(()))
    })
    .await
}

/// `shop` (topic) → `orders` (`order.*`) and → `invoices` (`invoice.#`), a
/// producer `web` publishing `order.new`.
async fn build_shop(client: &Client) -> anyhow::Result<()> {
    add(
        client,
        "exchange",
        &[("type", "topic")],
        &[("name", "shop")],
    )
    .await?;
    add(client, "queue", &[], &[("name", "orders")]).await?;
    add(client, "queue", &[], &[("name", "invoices")]).await?;
    add(
        client,
        "binding",
        &[("source", "shop"), ("dest", "orders")],
        &[("key", "order.*")],
    )
    .await?;
    add(
        client,
        "binding",
        &[("source", "shop"), ("dest", "invoices")],
        &[("key", "invoice.#")],
    )
    .await?;
    add(
        client,
        "producer",
        &[("exchange", "shop")],
        &[("name", "web"), ("key", "order.new")],
    )
    .await?;
    for id in [
        "node-exchange:shop",
        "node-queue:orders",
        "node-queue:invoices",
        "node-producer:web",
        "edge-binding:shop->orders",
        "edge-binding:web->shop",
    ] {
        if !exists(client, id).await? {
            bail!("the built topology has no [data-testid={id}]");
        }
    }
    Ok(())
}

async fn wait_counts(client: &Client, queue: &str, want: &str) -> anyhow::Result<()> {
    let id = format!("build-counts-{queue}");
    wait_until(
        &format!("queue {queue} to show “{want}”"),
        Duration::from_secs(15),
        || async {
            no_panic(client).await?;
            Ok(text_of(client, &id).await?.contains(want).then_some(()))
        },
    )
    .await
}

/// Build a topology with the forms, publish, see the message wait in the
/// right queue, open the inspector on it and read its route.
pub(super) async fn build_publish_inspect(
    client: &Client,
    page: &str,
    out_dir: &Path,
) -> anyhow::Result<()> {
    open_build(client, page).await?;
    screenshot(client, out_dir, "build-empty").await?;
    build_shop(client).await?;
    click(client, "publish-web").await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    screenshot(client, out_dir, "build-in-flight").await?;
    wait_counts(client, "orders", "ready 1").await?;
    let other = text_of(client, "build-counts-invoices").await?;
    if !other.contains("ready 0") {
        bail!("the message also went to invoices: {other:?}");
    }
    // The message waits in its queue: click it.
    find(
        client,
        "[data-testid=\"node-queue:orders\"] [data-testid=\"message\"]",
    )
    .await?
    .click()
    .await
    .context("cannot click the message in the queue")?;
    let route = wait_until("the inspector's route", Duration::from_secs(5), || async {
        Ok(text_of(client, "route").await.ok())
    })
    .await?;
    for want in [
        "published by web to exchange `shop` with key `order.new`",
        "matched binding `order.*` on exchange `shop` → `orders`",
        "ready in queue `orders`",
    ] {
        if !route.contains(want) {
            bail!("the route does not say {want:?}: {route:?}");
        }
    }
    if route.contains("invoices") {
        bail!("the route mentions invoices: {route:?}");
    }
    let fate = attr_of(client, "message-fate", "data-fate").await?;
    if fate.as_deref() != Some("ready") {
        bail!("the inspector says the message is {fate:?}, not ready");
    }
    let body = text_of(client, "message-body").await?;
    if !body.contains("\"n\": 1") {
        bail!("the inspector shows body {body:?}");
    }
    screenshot(client, out_dir, "build-inspector-message").await?;
    // The queue's inspector lists the message and its arguments; the exchange's its bindings.
    click(client, "node-queue:orders").await?;
    let listed = wait_until("the queue's messages", Duration::from_secs(5), || async {
        Ok(text_of(client, "queue-messages").await.ok())
    })
    .await?;
    if !listed.contains("#1") {
        bail!("the queue inspector does not list message #1: {listed:?}");
    }
    click(client, "node-exchange:shop").await?;
    let bindings = wait_until(
        "the exchange's bindings",
        Duration::from_secs(5),
        || async { Ok(text_of(client, "exchange-bindings").await.ok()) },
    )
    .await?;
    if !(bindings.contains("order.*") && bindings.contains("invoice.#")) {
        bail!("the exchange inspector lists {bindings:?}");
    }
    // A consumer takes it and acks it.
    add(
        client,
        "consumer",
        &[("queue", "orders")],
        &[("name", "worker"), ("work_ms", "200")],
    )
    .await?;
    wait_counts(client, "orders", "ready 0 · unacked 0").await?;
    wait_until("the consumer to ack", Duration::from_secs(15), || async {
        let t = text_of(client, "node-consumer:worker").await?;
        Ok(t.contains("done 1").then_some(()))
    })
    .await?;
    build_time_travel(client, out_dir).await?;
    // Projector mode: the same page, large.
    click(client, "projector").await?;
    click(client, "publish-web").await?;
    tokio::time::sleep(Duration::from_millis(900)).await;
    screenshot(client, out_dir, "build-projector").await?;
    click(client, "projector").await?;
    Ok(())
}

/// The Build page's timeline: step back until the message waits in its
/// queue again (the consumer has done nothing yet), then step forward until
/// it is acked once more, and back to live; Reset from the past plays on.
async fn build_time_travel(client: &Client, out_dir: &Path) -> anyhow::Result<()> {
    let state = || async { attr_of(client, "time-controls", "data-state").await };
    if state().await?.as_deref() != Some("live") {
        bail!("the Build page's timeline is not live before stepping");
    }
    let back = step_until(client, "step-back", 60, "build-counts-orders", "ready 1").await?;
    if state().await?.as_deref() != Some("past") {
        bail!("stepping back did not show the past");
    }
    let worker = text_of(client, "node-consumer:worker").await?;
    if worker.contains("done 1") {
        bail!("in the past before the ack, the consumer already shows {worker:?}");
    }
    screenshot(client, out_dir, "build-past").await?;
    step_until(client, "step", back, "node-consumer:worker", "done 1").await?;
    if state().await?.as_deref() == Some("past") {
        click(client, "time-live").await?;
    }
    wait_until(
        "the timeline to be live",
        Duration::from_secs(5),
        || async { Ok((state().await?.as_deref() == Some("live")).then_some(())) },
    )
    .await?;
    // Reset from the past: the run, held only while the past was shown,
    // plays on from the start.
    let paused = || async { attr_of(client, "pause", "aria-pressed").await };
    if paused().await?.as_deref() != Some("false") {
        bail!("back to live, the Build page's run did not play on");
    }
    click(client, "step-back").await?;
    if state().await?.as_deref() != Some("past") {
        bail!("stepping back did not show the past");
    }
    click(client, "time-reset").await?;
    wait_until(
        "the reset page to be live and playing",
        Duration::from_secs(5),
        || async {
            let live = state().await?.as_deref() == Some("live");
            Ok((live && paused().await?.as_deref() == Some("false")).then_some(()))
        },
    )
    .await?;
    no_panic(client).await
}

/// Clicks `button` until the text of `testid` contains `want`, at most
/// `max` times; returns the clicks it took.
async fn step_until(
    client: &Client,
    button: &str,
    max: u32,
    testid: &str,
    want: &str,
) -> anyhow::Result<u32> {
    for clicks in 1..=max {
        click(client, button).await?;
        if text_of(client, testid).await?.contains(want) {
            return Ok(clicks);
        }
    }
    let now = text_of(client, testid).await?;
    bail!("{max} clicks on {button} never made {testid} say {want:?}: it says {now:?}")
}

/// Invalid input shows its message next to the field and sends nothing.
pub(super) async fn build_invalid_input(
    client: &Client,
    page: &str,
    out_dir: &Path,
) -> anyhow::Result<()> {
    open_build(client, page).await?;
    add(
        client,
        "exchange",
        &[("type", "topic")],
        &[("name", "shop")],
    )
    .await?;
    add(client, "queue", &[], &[("name", "orders")]).await?;
    let sent = attr_of(client, "build", "data-sent").await?;
    click(client, "add-queue").await?;
    type_in(client, "name", "amq.orders").await?;
    type_in(client, "ttl", "-5").await?;
    let name_error = text_of(client, "error-name").await?;
    if !name_error.contains("reserved") {
        bail!("the reserved name is not explained: {name_error:?}");
    }
    let ttl_error = text_of(client, "error-ttl").await?;
    if !ttl_error.contains("negative") {
        bail!("the negative TTL is not explained: {ttl_error:?}");
    }
    let invalid = attr_of(client, "field-ttl", "aria-invalid").await?;
    if invalid.as_deref() != Some("true") {
        bail!("the TTL field is not marked invalid: {invalid:?}");
    }
    screenshot(client, out_dir, "build-invalid-queue").await?;
    click(client, "form-save").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    if !exists(client, "form-queue").await? {
        bail!("an invalid form closed");
    }
    // A bad topic binding key, and a duplicate name.
    click(client, "form-cancel").await?;
    click(client, "add-binding").await?;
    choose(client, "source", "shop").await?;
    choose(client, "dest", "orders").await?;
    type_in(client, "key", "order.new*").await?;
    let key_error = text_of(client, "error-key").await?;
    if !key_error.contains("whole word") {
        bail!("the bad binding key is not explained: {key_error:?}");
    }
    click(client, "form-save").await?;
    click(client, "form-cancel").await?;
    click(client, "add-exchange").await?;
    type_in(client, "name", "shop").await?;
    let dup = text_of(client, "error-name").await?;
    if !dup.contains("taken") {
        bail!("the duplicate name is not explained: {dup:?}");
    }
    click(client, "form-save").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = attr_of(client, "build", "data-sent").await?;
    if after != sent {
        bail!("invalid forms sent requests: {sent:?} before, {after:?} after");
    }
    if exists(client, "node-queue:amq.orders").await? {
        bail!("the invalid queue was drawn");
    }
    Ok(())
}

/// The topology built in the simulation is declared on RabbitMQ when the
/// toggle goes to Real; a publish there lands in the right queue and a
/// consumer acks it.
pub(super) async fn build_real(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    if !rabbitmq_answers() {
        bail!("RabbitMQ is not answering on 127.0.0.1:5672: start it (or `bash .ci/run`)");
    }
    open_build(client, page).await?;
    build_shop(client).await?;
    click(client, "mode-toggle").await?;
    wait_until(
        "the Build page to connect to RabbitMQ",
        Duration::from_secs(20),
        || async {
            no_panic(client).await?;
            let status = attr_of(client, "link-status", "data-status").await?;
            match status.as_deref() {
                Some("connected") => Ok(Some(())),
                Some("bridge-unreachable") => {
                    let text = text_of(client, "link-status").await?;
                    Err(Fatal(format!("real mode failed: {text}")).into())
                }
                _ => Ok(None),
            }
        },
    )
    .await?;
    if !exists(client, "node-queue:orders").await? {
        bail!("the topology did not survive the switch to Real");
    }
    wait_until("Publish to be enabled", Duration::from_secs(15), || async {
        Ok(attr_of(client, "publish-web", "disabled")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    click(client, "publish-web").await?;
    wait_counts(client, "orders", "ready 1").await?;
    // RabbitMQ's own count, through a passive declare.
    click(client, "node-queue:orders").await?;
    wait_until(
        "RabbitMQ's count of the queue",
        Duration::from_secs(10),
        || async {
            let t = text_of(client, "queue-counts").await?;
            Ok(t.contains("the broker counts 1").then_some(()))
        },
    )
    .await?;
    add(
        client,
        "consumer",
        &[("queue", "orders")],
        &[("name", "worker"), ("work_ms", "200")],
    )
    .await?;
    wait_until("the consumer to ack", Duration::from_secs(15), || async {
        no_panic(client).await?;
        let t = text_of(client, "node-consumer:worker").await?;
        Ok(t.contains("done 1").then_some(()))
    })
    .await?;
    screenshot(client, out_dir, "build-real").await?;
    if let Ok(n) = text_of(client, "build-notice").await {
        bail!("the Build page shows a problem in real mode: {n}");
    }
    // RabbitMQ cannot be stepped or rewound: the timeline says so.
    let why = text_of(client, "timeline-reason").await?;
    if !why.contains("own clock") {
        bail!("the Build page's timeline in real mode says {why:?}");
    }
    if attr_of(client, "step-back", "disabled").await?.is_none() {
        bail!("step back is enabled on the Build page in real mode");
    }
    // Back to the simulation: the topology is declared there again.
    click(client, "mode-toggle").await?;
    wait_until("the simulation again", Duration::from_secs(10), || async {
        Ok((attr_of(client, "link-status", "data-status")
            .await?
            .as_deref()
            == Some("simulation"))
        .then_some(()))
    })
    .await?;
    if !exists(client, "node-consumer:worker").await? {
        bail!("the topology did not come back to the simulation");
    }
    Ok(())
}

/// Export and share carry what the user built; the link reopens it in Build.
pub(super) async fn build_share(client: &Client, page: &str, out_dir: &Path) -> anyhow::Result<()> {
    open_build(client, page).await?;
    build_shop(client).await?;
    click(client, "export-definitions").await?;
    let exported = find(client, "[data-testid=\"export-text\"]")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    if !(exported.contains("\"shop\"") && exported.contains("order.*")) {
        bail!("the exported definitions miss the built topology: {exported}");
    }
    click(client, "export-close").await?;
    // The teacher arranges the picture: `invoices` three steps down (keyboard).
    let node = "node-queue:invoices";
    let before = attr_of(client, node, "transform")
        .await?
        .unwrap_or_default();
    client
        .execute(
            &format!("document.querySelector('[data-testid=\"{node}\"]').focus();"),
            vec![],
        )
        .await?;
    for _ in 0..3 {
        press(client, &[ARROW_DOWN]).await?;
    }
    let moved = attr_of(client, node, "transform")
        .await?
        .unwrap_or_default();
    if moved == before {
        bail!("ArrowDown did not move {node}: still {before:?}");
    }
    click(client, "share").await?;
    let url = super::share_url(client).await?;
    if !url.contains("#s=") {
        bail!("the share link has no scene: {url:?}");
    }
    client.goto("about:blank").await?;
    client.goto(&url).await?;
    wait_until(
        "the shared topology in Build",
        Duration::from_secs(15),
        || async {
            no_panic(client).await?;
            exists(client, "node-queue:invoices")
                .await
                .map(|b| b.then_some(()))
        },
    )
    .await?;
    if !exists(client, "build-stage").await? {
        bail!("the shared link did not open the Build page");
    }
    let reopened = attr_of(client, node, "transform")
        .await?
        .unwrap_or_default();
    if reopened != moved {
        bail!("the shared link put {node} at {reopened:?}, not where it was moved ({moved:?})");
    }
    wait_until("Publish to be enabled", Duration::from_secs(15), || async {
        Ok(attr_of(client, "publish-web", "disabled")
            .await?
            .is_none()
            .then_some(()))
    })
    .await?;
    click(client, "publish-web").await?;
    wait_counts(client, "orders", "ready 1").await?;
    screenshot(client, out_dir, "build-shared").await?;
    Ok(())
}

/// Right-clicks the element `css` (its middle) as a mouse would.
async fn right_click(client: &Client, css: &str) -> anyhow::Result<()> {
    let element = find(client, css).await?;
    let mouse = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element,
            duration: None,
            x: 0.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_RIGHT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_RIGHT,
        });
    client
        .perform_actions(mouse)
        .await
        .with_context(|| format!("cannot right-click {css}"))?;
    client.release_actions().await?;
    Ok(())
}

/// Presses `keys` together (WebDriver key codes) on the focused element.
async fn press(client: &Client, keys: &[char]) -> anyhow::Result<()> {
    let mut k = KeyActions::new("keys".into());
    for &value in keys {
        k = k.then(KeyAction::Down { value });
    }
    for &value in keys.iter().rev() {
        k = k.then(KeyAction::Up { value });
    }
    client
        .perform_actions(k)
        .await
        .context("cannot press keys")?;
    client.release_actions().await?;
    Ok(())
}

const SHIFT: char = '\u{E008}';
const F10: char = '\u{E03A}';
const ESCAPE: char = '\u{E00C}';
const ARROW_DOWN: char = '\u{E015}';

/// Right-clicks `css` and waits for the context menu.
async fn open_menu(client: &Client, css: &str) -> anyhow::Result<()> {
    right_click(client, css).await?;
    wait_menu(client, true).await
}

async fn wait_menu(client: &Client, open: bool) -> anyhow::Result<()> {
    let what = if open {
        "the context menu"
    } else {
        "the context menu to close"
    };
    wait_until(what, Duration::from_secs(5), || async {
        no_panic(client).await?;
        Ok((exists(client, "build-menu").await? == open).then_some(()))
    })
    .await
}

/// `document.activeElement`'s role and `data-node`, as `role|node`.
async fn focused(client: &Client) -> anyhow::Result<String> {
    let v = client
        .execute(
            "const a = document.activeElement; \
             return a ? (a.getAttribute('role') || '') + '|' + (a.getAttribute('data-node') || '') : '|';",
            vec![],
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// Right-click a binding's edge, edit its key in the form the menu opens (a
/// duplicate is explained first), and see routing follow the new key; the
/// menu opens from the keyboard too, Escape closes it, and message labels
/// never cover a node's name, a binding's key or each other.
pub(super) async fn build_context_menu_edits_binding(
    client: &Client,
    page: &str,
    out_dir: &Path,
) -> anyhow::Result<()> {
    open_build(client, page).await?;
    build_shop(client).await?;
    click(client, "publish-web").await?;
    wait_counts(client, "orders", "ready 1").await?;
    open_menu(
        client,
        "[data-testid=\"edge-binding:shop->orders\"] .edge-key",
    )
    .await?;
    let role = find(client, "[data-testid=\"build-menu\"]")
        .await?
        .attr("role")
        .await?;
    if role.as_deref() != Some("menu") {
        bail!("the context menu has role {role:?}");
    }
    let f = focused(client).await?;
    if !f.starts_with("menuitem|") {
        bail!("the menu's first entry does not have the focus: {f:?}");
    }
    screenshot(client, out_dir, "build-menu-binding").await?;
    click(client, "menu-edit").await?;
    wait_until("the binding form", Duration::from_secs(5), || async {
        exists(client, "form-binding")
            .await
            .map(|b| b.then_some(()))
    })
    .await?;
    let key = find(client, "[data-testid=\"field-key\"]")
        .await?
        .prop("value")
        .await?;
    if key.as_deref() != Some("order.*") {
        bail!("the edit form shows key {key:?}, not order.*");
    }
    if !exists(client, "form-rebind").await? {
        bail!("the binding form does not say it unbinds and binds");
    }
    // The same inline check as a new binding: that one exists already.
    let sent = attr_of(client, "build", "data-sent").await?;
    choose(client, "dest", "invoices").await?;
    type_in(client, "key", "invoice.#").await?;
    let dup = text_of(client, "error-key").await?;
    if !dup.contains("exists already") {
        bail!("the duplicate binding is not explained: {dup:?}");
    }
    click(client, "form-save").await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    if attr_of(client, "build", "data-sent").await? != sent {
        bail!("saving a duplicate binding sent requests");
    }
    choose(client, "dest", "orders").await?;
    type_in(client, "key", "order.paid").await?;
    screenshot(client, out_dir, "build-binding-edit-form").await?;
    save_form(client, "binding").await?;
    let edge = text_of(client, "edge-binding:shop->orders").await?;
    if !edge.contains("order.paid") || edge.contains("order.*") {
        bail!("the edge is labelled {edge:?} after the edit");
    }
    // order.new no longer reaches orders...
    click(client, "publish-web").await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    wait_counts(client, "orders", "ready 1").await?;
    // ...order.paid does: change the producer's key from the menu of its
    // publishing edge (every edge opens the menu of what draws it).
    open_menu(client, "[data-testid=\"edge-binding:web->shop\"] .edge-key").await?;
    click(client, "menu-edit").await?;
    type_in(client, "key", "order.paid").await?;
    save_form(client, "producer").await?;
    click(client, "publish-web").await?;
    wait_counts(client, "orders", "ready 2").await?;
    let other = text_of(client, "build-counts-invoices").await?;
    if !other.contains("ready 0") {
        bail!("a message went to invoices: {other:?}");
    }
    // The keyboard: Shift+F10 on a focused node, Escape closes, focus returns.
    client
        .execute(
            "document.querySelector('[data-node=\"queue:orders\"]').focus();",
            vec![],
        )
        .await?;
    press(client, &[SHIFT, F10]).await?;
    wait_menu(client, true).await?;
    if !exists(client, "menu-purge").await? {
        bail!("the queue's menu has no Purge");
    }
    screenshot(client, out_dir, "build-menu-keyboard").await?;
    press(client, &[ESCAPE]).await?;
    wait_menu(client, false).await?;
    let f = focused(client).await?;
    if f != "button|queue:orders" {
        bail!("Escape did not give the focus back to the queue: {f:?}");
    }
    // Purge from the menu empties the queue.
    press(client, &[SHIFT, F10]).await?;
    wait_menu(client, true).await?;
    click(client, "menu-purge").await?;
    wait_counts(client, "orders", "ready 0").await?;
    // A consumer working on a message: its label clears the consumer's name.
    open_menu(client, "[data-testid=\"node-queue:orders\"] rect").await?;
    click(client, "menu-consume").await?;
    type_in(client, "name", "a-long-consumer-name").await?;
    type_in(client, "work_ms", "20000").await?;
    save_form(client, "consumer").await?;
    for _ in 0..2 {
        click(client, "publish-web").await?;
    }
    let mut seen = Vec::new();
    for i in 0..12 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let o = label_overlaps(client, ".build-topology").await?;
        if !o.is_empty() && seen.is_empty() {
            screenshot(client, out_dir, &format!("build-label-overlap-{i}")).await?;
        }
        seen.extend(o);
    }
    screenshot(client, out_dir, "build-consumer-working").await?;
    if !seen.is_empty() {
        bail!("message labels overlap node text: {seen:?}");
    }
    // A rate: the producer publishes on the clock until stopped.
    open_menu(client, "[data-testid=\"node-producer:web\"] rect").await?;
    click(client, "menu-edit").await?;
    type_in(client, "rate", "5").await?;
    save_form(client, "producer").await?;
    let rate = text_of(client, "producer-rate-web").await?;
    if !rate.contains("5/s") {
        bail!("the producer shows rate {rate:?}");
    }
    click(client, "run-web").await?;
    // Tokens queue on the short edges at 5/s: their labels keep clear of
    // each other and of the bindings' keys.
    for i in 0..8 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let o = label_overlaps(client, ".build-topology").await?;
        if !o.is_empty() {
            screenshot(client, out_dir, &format!("build-rate-label-overlap-{i}")).await?;
            bail!("at 5/s, message labels overlap: {o:?}");
        }
    }
    wait_counts(client, "orders", "ready 4").await?;
    screenshot(client, out_dir, "build-producer-rate").await?;
    // The metrics strip draws the run: depth and the three rates.
    for chart in ["chart-depth", "chart-rates"] {
        let points = client
            .execute(
                "const c = document.querySelector(`[data-testid=\"${arguments[0]}\"]`); \
                 return c ? [...c.querySelectorAll('polyline')].map(p => p.getAttribute('points').split(' ').length) : [];",
                vec![serde_json::Value::from(chart)],
            )
            .await?;
        let lines = points.as_array().cloned().unwrap_or_default();
        if lines.is_empty() || lines.iter().any(|n| n.as_u64().unwrap_or(0) < 2) {
            bail!("the Build page's {chart} is missing or empty: {points}");
        }
    }
    click(client, "run-web").await?;
    let pressed = attr_of(client, "run-web", "aria-pressed").await?;
    if pressed.as_deref() != Some("false") {
        bail!("the rate button is still pressed: {pressed:?}");
    }
    // What was on its way lands (two edges, 1.3 s), then nothing more comes.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let stopped = text_of(client, "build-counts-orders").await?;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let later = text_of(client, "build-counts-orders").await?;
    if later != stopped {
        bail!("the producer went on after Stop: {stopped:?} then {later:?}");
    }
    // A click elsewhere closes the menu.
    open_menu(client, "[data-testid=\"node-exchange:shop\"] polygon").await?;
    click(client, "build-menu-away").await?;
    wait_menu(client, false).await?;
    Ok(())
}

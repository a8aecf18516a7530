//! The playground page.
//!
//! `model` (the view model, derived from the protocol stream) and `scene` (the
//! scene's declaration and geometry) are pure and tested natively with
//! `cargo test -p web`. The browser shell is wasm32-only: `link` (the one seam
//! to a broker: in-page simulation or the bridge's `/ws`), `sim` and `app`
//! (the Yew components).

pub mod build_time;
pub mod compare;
pub mod deflate;
pub mod editor;
pub mod history;
pub mod i18n;
pub mod inspector;
pub mod label;
pub mod lesson;
pub mod metrics;
pub mod model;
pub mod route;
pub mod scenario_json;
pub mod scene;
pub mod share;
pub mod sim;
pub mod timeline;
pub mod vecmap;
pub mod why;
pub mod wire;
pub mod workbench;

#[cfg(target_arch = "wasm32")]
mod app;
/// `bench_sim`, for `cargo xtask bench` (never called by the page).
#[cfg(target_arch = "wasm32")]
mod bench;
#[cfg(target_arch = "wasm32")]
mod compare_view;
#[cfg(target_arch = "wasm32")]
mod files;
#[cfg(target_arch = "wasm32")]
mod frame_clock;
#[cfg(target_arch = "wasm32")]
mod lesson_view;
#[cfg(target_arch = "wasm32")]
mod link;
#[cfg(target_arch = "wasm32")]
mod timeline_view;
#[cfg(target_arch = "wasm32")]
mod workbench_view;

/// Entry point, called by `static/index.html` after `init()`.
#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    // Through Yew: `Renderer::render` replaces any hook not set this way with
    // its own (console only), and a panic would never reach the banner.
    yew::set_custom_panic_hook(Box::new(|info| show_panic(&info.to_string())));
    let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("app"))
    else {
        show_panic("the page has no element with id \"app\"");
        return;
    };
    // Drop the "Loading…" placeholder.
    root.set_inner_html("");
    yew::Renderer::<app::App>::with_root(root).render();
}

/// Shows a panic on the page (the app is dead after it: the wasm aborts), so a
/// student sees it and the browser tests fail on it.
#[cfg(target_arch = "wasm32")]
fn show_panic(text: &str) {
    web_sys::console::error_1(&format!("panic: {text}").into());
    let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    if let Some(el) = doc.get_element_by_id("panic-banner") {
        el.set_text_content(Some(&format!(
            "The page crashed (please report this): {text}. Reload to start again."
        )));
        let _ = el.remove_attribute("hidden");
    }
}

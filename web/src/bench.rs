//! `bench_sim(n)`: the simulation workload of `cargo xtask bench`, inside the
//! page's wasm. Not called by the page; the benchmark calls it through
//! WebDriver (`import('/pkg/web.js').then(m => m.bench_sim(n))`).
//!
//! The workload is the very file the native benchmark runs
//! (`sim-core/benches/common/workload.rs`): publish → route → deliver → ack
//! through a direct exchange, confirms on, prefetch 100, tracing off.

#[path = "../../sim-core/benches/common/workload.rs"]
mod workload;

/// Runs the direct workload for `n` messages on a fresh broker and returns
/// messages per second (performance.now() timing), or -1 if the broker did
/// not deliver and confirm every message.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn bench_sim(n: u32) -> f64 {
    let perf = web_sys::window().and_then(|w| w.performance());
    let now = || perf.as_ref().map(|p| p.now()).unwrap_or(0.0);
    let mut broker = workload::direct_setup(1);
    let start = now();
    let (delivered, confirmed) = workload::direct_run(&mut broker, u64::from(n));
    let ms = now() - start;
    if delivered != u64::from(n) || confirmed != u64::from(n) || ms <= 0.0 {
        return -1.0;
    }
    f64::from(n) * 1000.0 / ms
}

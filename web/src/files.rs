//! The browser side of import, export and sharing (the logic is in
//! [`crate::share`]): the file picker, the export panel with its download
//! link, the shared link in the URL fragment.

use sim_core::scenario::Scenario;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::app::AppState;
use crate::i18n::{t, Lang};
use crate::inspector::fill;
use crate::lesson_view::open_lesson;
use crate::model::Action;
use crate::share;

/// Files larger than this are refused before reading.
const MAX_FILE: f64 = 2.0 * 1024.0 * 1024.0;

/// The scene on screen as a scenario: the open lesson's, or the playground scene's.
pub fn current_scenario(state: &AppState) -> Scenario {
    if let Some(sc) = state
        .build
        .try_borrow()
        .ok()
        .and_then(|b| b.as_ref().map(|open| open.wb.sc.clone()))
    {
        return sc;
    }
    state
        .lesson
        .try_borrow()
        .ok()
        .and_then(|l| l.as_ref().map(|l| l.player.sc.clone()))
        .unwrap_or_else(|| share::scene_to_scenario(state.model.scene))
}

/// Opens a scenario: one made on the Build page (or imported while it is
/// open) in the Build page, any other as a lesson.
fn open_scenario(state: &UseReducerHandle<AppState>, sc: Scenario, positions: share::Positions) {
    crate::app::leave_past(state, || {
        if state.build_open() || sc.tags.iter().any(|t| t == crate::editor::EDITOR_TAG) {
            crate::workbench_view::open_build(state, sc, state.model.mode, positions);
        } else {
            crate::workbench_view::close_build(state);
            open_lesson(state, sc, state.model.mode);
        }
    })
}

/// Opens the scene of a shared link in the address bar, if there is one; a
/// broken one leaves the scene alone and says why. The link is inflated by
/// the browser, so it opens a moment later.
pub fn open_fragment(state: &UseReducerHandle<AppState>) {
    let Some(hash) = web_sys::window().and_then(|w| w.location().hash().ok()) else {
        return;
    };
    if crate::timeline::is_run(&hash) {
        // A shared playground run: replayed from its seed and command log.
        let state = state.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let opened = match crate::timeline::decode_run(&hash).await {
                Ok(run) => crate::timeline_view::open_run(&state, run),
                Err(e) => Err(e),
            };
            state.dispatch(Action::Notice(opened.err()));
        });
        return;
    }
    if !share::is_shared(&hash) {
        return;
    }
    let state = state.clone();
    wasm_bindgen_futures::spawn_local(async move {
        match share::decode_fragment(&hash).await {
            Ok((sc, positions)) => {
                state.dispatch(Action::Notice(None));
                open_scenario(&state, sc, positions);
            }
            Err(e) => state.dispatch(Action::Notice(Some(e))),
        }
    });
}

/// Re-reads the fragment when it changes (a pasted link) while it lives.
pub struct HashListener(Option<Closure<dyn FnMut()>>);

impl Drop for HashListener {
    fn drop(&mut self) {
        if let (Some(c), Some(w)) = (self.0.take(), web_sys::window()) {
            let _ = w.remove_event_listener_with_callback("hashchange", c.as_ref().unchecked_ref());
        }
    }
}

pub fn hash_listener(state: UseReducerHandle<AppState>) -> HashListener {
    let closure = Closure::<dyn FnMut()>::new(move || open_fragment(&state));
    let added = web_sys::window()
        .map(|w| {
            w.add_event_listener_with_callback("hashchange", closure.as_ref().unchecked_ref())
                .is_ok()
        })
        .unwrap_or(false);
    HashListener(added.then_some(closure))
}

/// Puts `fragment` in the address bar without reloading (no hashchange event).
fn set_fragment(fragment: &str) -> Option<String> {
    let w = web_sys::window()?;
    let loc = w.location();
    let url = format!("{}{}#{fragment}", loc.origin().ok()?, loc.pathname().ok()?);
    let _ = w
        .history()
        .ok()?
        .replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&url));
    Some(url)
}

/// The playground's run so far (seed and command log, up to the simulation's
/// clock), if the timeline can put it in a link.
fn playground_run(state: &AppState) -> Option<crate::timeline::Run> {
    let slot = state.link_slot();
    let live = slot
        .link
        .try_borrow()
        .ok()
        .and_then(|l| l.as_ref().and_then(|l| l.sim_now_ms()));
    slot.time.try_borrow().ok().and_then(|tm| {
        tm.available().ok()?;
        let mut run = tm.run.clone();
        run.end_ms = run.end_ms.max(live.unwrap_or(0));
        Some(run)
    })
}

/// Import, export and share buttons.
pub fn files_bar(state: &UseReducerHandle<AppState>, lang: Lang) -> Html {
    let on_file = {
        let state = state.clone();
        Callback::from(move |e: Event| {
            let Some(input) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            else {
                return;
            };
            let Some(file) = input.files().and_then(|f| f.get(0)) else {
                return;
            };
            // The same file can be chosen again.
            input.set_value("");
            if file.size() > MAX_FILE {
                let kb = format!("{:.0}", file.size() / 1024.0);
                let text = fill(t(lang, "file-too-large"), &[&file.name(), &kb]);
                state.dispatch(Action::Notice(Some(text)));
                return;
            }
            let state = state.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let text = wasm_bindgen_futures::JsFuture::from(file.text())
                    .await
                    .ok()
                    .and_then(|v| v.as_string());
                let Some(text) = text else {
                    let text = fill(t(lang, "file-not-text"), &[&file.name()]);
                    state.dispatch(Action::Notice(Some(text)));
                    return;
                };
                match share::import(&text) {
                    Ok(sc) => {
                        state.dispatch(Action::Notice(None));
                        open_scenario(&state, sc, Default::default());
                    }
                    Err(e) => state.dispatch(Action::Notice(Some(format!("{}: {e}", file.name())))),
                }
            });
        })
    };
    let export = |kind: &'static str| {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            let sc = current_scenario(&state);
            let (name, text) = match kind {
                "definitions" => (
                    "definitions.json".to_string(),
                    share::scenario_to_definitions(&sc),
                ),
                "share" => {
                    // The playground: the run itself (seed and command log), so
                    // the link replays what happened, not only the scene.
                    let run = (!state.lesson_open() && !state.build_open())
                        .then(|| playground_run(&state))
                        .flatten();
                    // The Build page: the picture as the user arranged it.
                    let positions = state
                        .build
                        .try_borrow()
                        .ok()
                        .and_then(|b| b.as_ref().map(|open| open.wb.moved.clone()))
                        .unwrap_or_default();
                    let state = state.clone();
                    // The browser deflates the link, so it shows a moment later.
                    wasm_bindgen_futures::spawn_local(async move {
                        let run_link = match run {
                            Some(run) => crate::timeline::encode_run(&run).await.ok(),
                            None => None,
                        };
                        let frag = match run_link {
                            Some(frag) => Ok(frag),
                            None => share::encode_fragment(&sc, &positions).await,
                        };
                        match frag {
                            Ok(frag) => {
                                let url = set_fragment(&frag).unwrap_or_else(|| format!("#{frag}"));
                                state
                                    .dispatch(Action::Export(Some(("share-url".to_string(), url))));
                            }
                            Err(e) => state.dispatch(Action::Notice(Some(e))),
                        }
                    });
                    return;
                }
                _ => (format!("{}.json", sc.id), share::scenario_to_json(&sc)),
            };
            state.dispatch(Action::Export(Some((name, text))));
        })
    };
    html! {
        <div class="files" role="group" aria-label={t(lang, "files")}>
            <label class="small file-label">
                { t(lang, "import") }
                <input type="file" accept=".json,application/json" data-testid="import-file"
                       aria-label={t(lang, "import")} onchange={on_file} />
            </label>
            <button class="small" data-testid="export-definitions" onclick={export("definitions")}>{ t(lang, "export-definitions") }</button>
            <button class="small" data-testid="export-scenario" onclick={export("scenario")}>{ t(lang, "export-scenario") }</button>
            <button class="small" data-testid="share" onclick={export("share")}>{ t(lang, "share") }</button>
        </div>
    }
}

/// The exported text, selectable, with a download link (or the shared link).
pub fn export_panel(name: &str, text: &str, lang: Lang, on_close: Callback<MouseEvent>) -> Html {
    let is_url = name == "share-url";
    let href = format!(
        "data:application/json;charset=utf-8,{}",
        String::from(js_sys::encode_uri_component(text))
    );
    html! {
        <div class="export-panel" role="region" aria-label={name.to_string()} data-testid="export-panel">
            <div class="export-head">
                <strong>{ if is_url { t(lang, "share").to_string() } else { name.to_string() } }</strong>
                if !is_url {
                    <a class="small" href={href} download={name.to_string()} data-testid="export-download">{ t(lang, "download") }</a>
                }
                <button class="small" onclick={on_close} data-testid="export-close">{ t(lang, "close") }</button>
            </div>
            if is_url {
                <input class="share-url" readonly=true value={text.to_string()} data-testid="share-url"
                       aria-label={t(lang, "share")} />
                <p class="hint">{ t(lang, "share-hint") }</p>
            } else {
                <textarea readonly=true rows="10" data-testid="export-text" aria-label={name.to_string()}
                          value={text.to_string()} />
            }
        </div>
    }
}

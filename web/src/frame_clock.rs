//! `FrameClock`: calls a function once per frame the browser draws
//! (`requestAnimationFrame`), until dropped.
//!
//! The page's animation ticks on it rather than on a 16 ms timer: a timer
//! drifts against the display's 16.7 ms frames, so now and then two ticks
//! (two model updates and two renders) land in one frame and none in the
//! next, and a tick's render can miss the frame it was meant for. One tick
//! per drawn frame, just before the frame is drawn, is all the animation
//! can show. The simulation keeps its own clock (`link.rs`), on wall time:
//! a slow frame never slows it down.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

type Callback = Closure<dyn FnMut(f64)>;

pub struct FrameClock {
    /// The id of the frame request outstanding, to cancel it on drop.
    request: Rc<Cell<Option<i32>>>,
    callback: Rc<RefCell<Option<Callback>>>,
}

fn request(callback: &Callback) -> Option<i32> {
    web_sys::window()?
        .request_animation_frame(callback.as_ref().unchecked_ref())
        .ok()
}

impl FrameClock {
    pub fn new(mut f: impl FnMut() + 'static) -> FrameClock {
        let request_id = Rc::new(Cell::new(None));
        let callback: Rc<RefCell<Option<Callback>>> = Rc::new(RefCell::new(None));
        let again = Rc::downgrade(&callback);
        let id = request_id.clone();
        let closure = Closure::<dyn FnMut(f64)>::new(move |_timestamp: f64| {
            f();
            // Dropped meanwhile: no more frames.
            let Some(callback) = again.upgrade() else {
                return;
            };
            let next = match callback.try_borrow() {
                Ok(c) => c.as_ref().and_then(request),
                Err(_) => None,
            };
            id.set(next);
        });
        request_id.set(request(&closure));
        *callback.borrow_mut() = Some(closure);
        FrameClock {
            request: request_id,
            callback,
        }
    }
}

impl Drop for FrameClock {
    fn drop(&mut self) {
        if let (Some(id), Some(window)) = (self.request.take(), web_sys::window()) {
            let _ = window.cancel_animation_frame(id);
        }
        if let Ok(mut c) = self.callback.try_borrow_mut() {
            c.take();
        }
    }
}

//! Raw DEFLATE (RFC 1951) for shared links (`#s=`, `#r=`): in the page the
//! browser's own `CompressionStream` and `DecompressionStream`, natively (the
//! tests) `miniz_oxide`.
//!
//! Why: a deflate in Rust was ~16.8 KB of the page's ~400 KB gzipped first
//! load, and every browser the page runs in has one built in. The browser's
//! is asynchronous, so both sides are `async fn`s (natively they finish at
//! once). Both read and write the same raw format, so a link made by either
//! opens with the other.

/// `data` deflated. `Err` says why the browser could not (it has no
/// `CompressionStream("deflate-raw")`).
#[cfg(not(target_arch = "wasm32"))]
pub async fn deflate(data: &[u8]) -> Result<Vec<u8>, String> {
    Ok(miniz_oxide::deflate::compress_to_vec(data, 9))
}

/// `data` inflated; `None` if it is not raw DEFLATE, is cut off, or inflates
/// to more than `limit` bytes.
#[cfg(not(target_arch = "wasm32"))]
pub async fn inflate(data: &[u8], limit: usize) -> Option<Vec<u8>> {
    miniz_oxide::inflate::decompress_to_vec_with_limit(data, limit).ok()
}

#[cfg(target_arch = "wasm32")]
pub use browser::{deflate, inflate};

#[cfg(target_arch = "wasm32")]
mod browser {
    use js_sys::{Array, Reflect, Uint8Array};
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    use web_sys::Blob;

    // web-sys has the two streams behind `--cfg=web_sys_unstable_apis`; the
    // page needs only their constructors and these few methods.
    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_name = CompressionStream)]
        type Compression;
        #[wasm_bindgen(constructor, js_class = "CompressionStream", catch)]
        fn new(format: &str) -> Result<Compression, JsValue>;

        #[wasm_bindgen(js_name = DecompressionStream)]
        type Decompression;
        #[wasm_bindgen(constructor, js_class = "DecompressionStream", catch)]
        fn new(format: &str) -> Result<Decompression, JsValue>;

        /// A `ReadableStream`.
        type Stream;
        #[wasm_bindgen(method, js_name = pipeThrough)]
        fn pipe_through(this: &Stream, transform: &JsValue) -> Stream;
        #[wasm_bindgen(method, js_name = getReader)]
        fn get_reader(this: &Stream) -> Reader;

        /// A `ReadableStreamDefaultReader`.
        type Reader;
        #[wasm_bindgen(method)]
        fn read(this: &Reader) -> js_sys::Promise;
        #[wasm_bindgen(method)]
        fn cancel(this: &Reader) -> js_sys::Promise;
    }

    /// Pipes `input` through `transform` and collects what comes out, at
    /// most `limit` bytes (`Err` beyond, or when the stream fails).
    async fn transform(
        input: &[u8],
        transform: &JsValue,
        limit: usize,
    ) -> Result<Vec<u8>, JsValue> {
        let blob = Blob::new_with_u8_array_sequence(&Array::of1(&Uint8Array::from(input)))?;
        let reader = blob
            .stream()
            .unchecked_into::<Stream>()
            .pipe_through(transform)
            .get_reader();
        let mut out = Vec::new();
        loop {
            let chunk = JsFuture::from(reader.read()).await?;
            if Reflect::get(&chunk, &"done".into())?.is_truthy() {
                return Ok(out);
            }
            let bytes: Uint8Array = Reflect::get(&chunk, &"value".into())?.unchecked_into();
            let at = out.len();
            let len = bytes.length() as usize;
            if at + len > limit {
                let _ = reader.cancel();
                return Err(JsValue::NULL);
            }
            out.resize(at + len, 0);
            bytes.copy_to(&mut out[at..]);
        }
    }

    pub async fn deflate(data: &[u8]) -> Result<Vec<u8>, String> {
        let why = |_| "this browser cannot compress a link (no CompressionStream)".to_string();
        let stream = Compression::new("deflate-raw").map_err(why)?;
        transform(data, &stream, usize::MAX).await.map_err(why)
    }

    pub async fn inflate(data: &[u8], limit: usize) -> Option<Vec<u8>> {
        let stream = Decompression::new("deflate-raw").ok()?;
        transform(data, &stream, limit).await.ok()
    }
}

/// The value of a future that is ready at once (the native side), for tests.
#[cfg(test)]
pub(crate) fn now<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(f).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a native deflate never waits"),
    }
}

//! [`ShortString`]: an exchange name, routing key or consumer tag, kept
//! inline when it is short.
//!
//! Why: every publish names an exchange and a routing key, and every
//! delivery repeats them with the consumer's tag. As `String`s they cost two
//! heap blocks per publish, made by the client and freed by the broker as
//! soon as it has looked them up; as shared `Arc<str>`s every delivery
//! touches three reference counts, each an atomic update when it is made and
//! another when the client drops it (in the direct benchmark `perf` put about
//! a sixth of the time on those six updates). In AMQP these are short strings (at most 255
//! bytes) and in practice much shorter, so up to [`INLINE`] (16) bytes live
//! in the value itself, which is as large as a `String`, and a copy is a plain
//! copy of three words. Longer ones take one shared heap block: a copy is a
//! reference count.
//!
//! It reads as a `str` (`Deref`), compares and hashes as one, and on the wire
//! and to serde it is a plain string: the JSON does not change.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes kept inline: with the length word, 24 bytes, as large as a
/// `String`.
pub const INLINE: usize = 16;

/// A string that needs no heap block up to [`INLINE`] bytes.
#[derive(Clone)]
pub struct ShortString(Repr);

// Why 16 bytes inline and a whole word for the length: every delivery copies
// three `ShortString`s, and a copy should be a copy of whole words. With 22
// bytes and a length byte the variant tag needed a byte of its own, the
// text's first or last seven bytes shared a word with it, and the compiler
// copied those seven bytes as two overlapping 4-byte pieces through the
// stack: a read of bytes just written in other pieces, which the store buffer
// cannot forward (`perf` put about half of `deliver`'s time there). A
// never-zero length word leaves zero free to mark `Heap`, so there is no tag
// byte, and the compiler reads and copies the length as the word it is.
// Names of 17 to 22 bytes now take the heap block, as longer ones always did.
#[derive(Clone)]
enum Repr {
    Inline(Inline),
    Heap(Arc<str>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Inline {
    /// The text, then zeros.
    bytes: [u8; INLINE],
    /// The length plus one.
    len_plus_one: NonZeroU64,
}

impl Inline {
    #[inline]
    fn len(&self) -> usize {
        (self.len_plus_one.get() - 1) as usize
    }
}

const _: () = assert!(std::mem::size_of::<ShortString>() == 24);

impl ShortString {
    pub fn new(s: &str) -> ShortString {
        match NonZeroU64::new(s.len() as u64 + 1) {
            Some(len_plus_one) if s.len() <= INLINE => ShortString(Repr::Inline(Inline {
                bytes: inline_bytes(s.as_bytes()),
                len_plus_one,
            })),
            _ => ShortString(Repr::Heap(s.into())),
        }
    }

    /// The length in bytes, without reading the text.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline(i) => i.len(),
            Repr::Heap(s) => s.len(),
        }
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text as bytes, without checking it again.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline(i) => &i.bytes[..i.len()],
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Copied from a `str` whole, so always valid UTF-8; checking it
            // again costs a few instructions for a short name and keeps
            // this free of `unsafe`.
            Repr::Inline(i) => std::str::from_utf8(&i.bytes[..i.len()]).unwrap_or_default(),
            Repr::Heap(s) => s,
        }
    }
}

/// `src` (at most [`INLINE`] bytes) zero-padded to [`INLINE`] bytes, put
/// together in registers: whole 8-byte words read as words, the last few
/// bytes shifted in one at a time.
///
/// Why not `bytes[..len].copy_from_slice(src)`: that is a call to `memcpy`
/// into a zeroed array that is then read back as 16-byte words, and a wide
/// read of bytes just written in narrower pieces cannot be forwarded from
/// the store buffer: it waits for the stores to reach the cache. `perf` put
/// 4-5 % of the direct benchmark there (building two names per publish).
#[inline]
fn inline_bytes(src: &[u8]) -> [u8; INLINE] {
    // Two named words, not an array: an array indexed by position would
    // live in memory and be read back as a whole, the very stall to avoid.
    let (w0, w1) = (word(src, 0), word(src, 8));
    let mut bytes = [0; INLINE];
    bytes[..8].copy_from_slice(&w0.to_le_bytes());
    bytes[8..].copy_from_slice(&w1.to_le_bytes());
    bytes
}

/// Bytes `at..at + 8` of `src` as a little-endian word, zero past its end.
#[inline]
fn word(src: &[u8], at: usize) -> u64 {
    match src.get(at..at + 8) {
        Some(whole) => u64::from_le_bytes(whole.try_into().unwrap_or_default()),
        None => src
            .get(at..)
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(0, |w, &b| (w << 8) | u64::from(b)),
    }
}

impl Default for ShortString {
    fn default() -> Self {
        ShortString::new("")
    }
}

impl Deref for ShortString {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for ShortString {
    fn as_ref(&self) -> &str {
        self
    }
}

impl Borrow<str> for ShortString {
    fn borrow(&self) -> &str {
        self
    }
}

impl From<&str> for ShortString {
    fn from(s: &str) -> Self {
        ShortString::new(s)
    }
}

impl From<&String> for ShortString {
    fn from(s: &String) -> Self {
        ShortString::new(s)
    }
}

impl From<String> for ShortString {
    fn from(s: String) -> Self {
        ShortString::new(&s)
    }
}

/// A long text shares the block (a reference count), a short one is copied.
impl From<&Arc<str>> for ShortString {
    fn from(s: &Arc<str>) -> Self {
        if s.len() <= INLINE {
            ShortString::new(s)
        } else {
            ShortString(Repr::Heap(s.clone()))
        }
    }
}

impl From<ShortString> for String {
    fn from(s: ShortString) -> Self {
        s.as_str().to_string()
    }
}

// Compared as bytes: the same answers as comparing the `str`s (whose order
// is their bytes' order), without reading the inline text as a `str` first.
impl PartialEq for ShortString {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            // Unused inline bytes are always zero, so two inline texts are
            // equal exactly when their lengths and whole arrays are: a
            // fixed-size comparison, no call to `memcmp`.
            (Repr::Inline(x), Repr::Inline(y)) => x == y,
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}

impl Eq for ShortString {}

impl PartialEq<str> for ShortString {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ShortString {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for ShortString {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialOrd for ShortString {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ShortString {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for ShortString {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Debug for ShortString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ShortString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for ShortString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for ShortString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(ShortString::new(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_large_as_a_string() {
        assert_eq!(
            std::mem::size_of::<ShortString>(),
            std::mem::size_of::<String>()
        );
    }

    #[test]
    fn short_and_long_read_back_as_given() {
        for s in [
            "",
            "k",
            "amq.direct",
            &"x".repeat(INLINE),
            &"é".repeat(12),
            &"y".repeat(255),
        ] {
            let short = ShortString::new(s);
            assert_eq!(&*short, s);
            assert_eq!(ShortString::from(s.to_string()), short);
            assert_eq!(String::from(short.clone()), s);
            assert_eq!(format!("{short}"), s);
            let json = serde_json::to_string(&short).expect("serializes");
            assert_eq!(json, serde_json::to_string(s).expect("serializes"));
            let back: ShortString = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, short);
        }
        assert!(matches!(ShortString::new("k").0, Repr::Inline(_)));
        assert!(matches!(
            ShortString::new(&"y".repeat(INLINE + 1)).0,
            Repr::Heap(_)
        ));
    }

    #[test]
    fn every_inline_length_reads_back() {
        let text: String = ('a'..='z').collect();
        for len in 0..=INLINE {
            let short = ShortString::new(&text[..len]);
            assert_eq!(short.as_str(), &text[..len]);
            // Unused inline bytes stay zero (equality compares whole arrays).
            assert!(matches!(short.0, Repr::Inline(i) if i.bytes[len..].iter().all(|&b| b == 0)));
        }
    }

    #[test]
    fn a_long_text_is_shared_a_short_one_copied() {
        let long: Arc<str> = "y".repeat(INLINE + 1).into();
        let s = ShortString::from(&long);
        let copy = s.clone();
        assert!(
            matches!((&s.0, &copy.0), (Repr::Heap(a), Repr::Heap(b)) if Arc::ptr_eq(a, &long) && Arc::ptr_eq(b, &long))
        );
        let short: Arc<str> = "k".into();
        assert!(matches!(ShortString::from(&short).0, Repr::Inline(_)));
        assert_eq!(ShortString::from(&short), ShortString::new("k"));
    }

    #[test]
    fn orders_and_hashes_as_its_text() {
        use std::collections::hash_map::DefaultHasher;
        let hash = |v: &dyn Fn(&mut DefaultHasher)| {
            let mut h = DefaultHasher::new();
            v(&mut h);
            h.finish()
        };
        let (a, b) = (ShortString::new("a"), ShortString::new(&"b".repeat(40)));
        assert!(a < b);
        assert_eq!(hash(&|h| a.hash(h)), hash(&|h| "a".hash(h)));
        // Compared as bytes, inline and on the heap alike, as `str` compares.
        let texts = [
            "",
            "a",
            "ab",
            "b",
            "é",
            "z",
            &"a".repeat(INLINE),
            &"a".repeat(INLINE + 1),
            &"é".repeat(30),
        ];
        for x in texts {
            for y in texts {
                let (sx, sy) = (ShortString::new(x), ShortString::new(y));
                assert_eq!(sx.cmp(&sy), x.cmp(y), "{x:?} vs {y:?}");
                assert_eq!(sx == sy, x == y, "{x:?} vs {y:?}");
            }
        }
    }
}

//! Where a message's label goes on a picture.
//!
//! A picture cannot measure text before it is drawn, and every token is
//! redrawn many times a second, so labels are placed by estimate: a box a
//! little wider than the page's fonts draw it, tried above, below, right and
//! left of the token, kept clear of the nodes' names, the bindings' keys and
//! the labels already placed. A label that fits nowhere is not drawn: a
//! smear of `#15#14#13` over a binding key teaches nothing. Every picture of
//! the page (the scene, the Build page, a lesson) places labels this way.

/// A box on the picture: left, top, right, bottom.
pub type Rect = [f64; 4];

/// Size of a message's label, px (the page's `.token-label`).
pub const LABEL_PX: f64 = 16.0;

/// The box of a line of bold text of `size` px centred at `x` on baseline
/// `y` (an estimate a little wider than the page's fonts draw it).
pub fn text_box(x: f64, y: f64, size: f64, text: &str) -> Rect {
    let half = text.chars().count() as f64 * size * 0.36 + 2.0;
    [x - half, y - size * 0.85, x + half, y + size * 0.3]
}

/// Where the label of a message drawn as a circle of radius `r` at `(x, y)`
/// goes: above it, else below, right or left of it, whichever first keeps
/// clear of every box in `avoid`; `None` (no label) if none does. Returns
/// the label's anchor point and its `text-anchor`.
pub fn label_spot(
    x: f64,
    y: f64,
    r: f64,
    label: &str,
    avoid: &[Rect],
) -> Option<(f64, f64, &'static str)> {
    [
        (x, y - r - 6.0, "middle"),
        (x, y + r + 18.0, "middle"),
        (x + r + 4.0, y + 6.0, "start"),
        (x - r - 4.0, y + 6.0, "end"),
    ]
    .into_iter()
    .find(|&(lx, ly, anchor)| {
        let b = label_box(lx, ly, anchor, label);
        !avoid.iter().any(|a| overlap(&b, a))
    })
}

/// [`label_spot`], and the box of the label placed there added to `avoid`,
/// so that the next message's label keeps clear of this one.
pub fn place_label(
    x: f64,
    y: f64,
    r: f64,
    label: &str,
    avoid: &mut Vec<Rect>,
) -> Option<(f64, f64, &'static str)> {
    let spot = label_spot(x, y, r, label, avoid)?;
    avoid.push(label_box(spot.0, spot.1, spot.2, label));
    Some(spot)
}

/// The box a message's label covers when drawn at `(lx, ly)` with `anchor`.
pub fn label_box(lx: f64, ly: f64, anchor: &str, label: &str) -> Rect {
    let w = label.chars().count() as f64 * LABEL_PX * 0.75 + 6.0;
    let h = LABEL_PX;
    let left = match anchor {
        "start" => lx,
        "end" => lx - w,
        _ => lx - w / 2.0,
    };
    [left, ly - h * 0.85, left + w, ly + h * 0.3]
}

/// Whether two boxes share any area.
pub fn overlap(a: &Rect, b: &Rect) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_label_keeps_clear_of_node_names() {
        let name = text_box(0.0, -10.0, 21.0, "a-long-consumer…");
        // Clear above: above.
        assert_eq!(
            label_spot(0.0, -60.0, 11.0, "#4", &[name]),
            Some((0.0, -77.0, "middle"))
        );
        // A token at the consumer's left edge: its label above would cover
        // the name, so it goes below.
        assert_eq!(
            label_spot(-78.0, 0.0, 11.0, "#4", &[name]),
            Some((-78.0, 29.0, "middle"))
        );
        // Above, below and right taken: left.
        let taken = [
            [-100.0, -40.0, -50.0, -20.0],
            [-100.0, 15.0, -50.0, 40.0],
            [-70.0, -5.0, 0.0, 5.0],
        ];
        assert_eq!(
            label_spot(-78.0, 0.0, 11.0, "#4", &taken),
            Some((-93.0, 6.0, "end"))
        );
        // Boxed in: no label rather than one on a name.
        let wall = [-1000.0, -1000.0, 1000.0, 1000.0];
        assert_eq!(label_spot(0.0, 0.0, 11.0, "#4", &[wall]), None);
    }

    #[test]
    fn a_bigger_token_pushes_its_label_further_out() {
        assert_eq!(
            label_spot(0.0, 0.0, 14.0, "#1", &[]),
            Some((0.0, -20.0, "middle"))
        );
        let [_, _, _, bottom] = label_box(0.0, -20.0, "middle", "#1");
        assert!(bottom < -14.0 + 1.0, "the label clears the circle's top");
    }

    #[test]
    fn labels_of_tokens_queued_close_together_never_overlap() {
        // Four tokens queued on a short edge, 30 px apart: no two labels
        // overlap, and the first one has its label above.
        let mut avoid = Vec::new();
        let placed: Vec<Rect> = (0..4)
            .filter_map(|i| {
                let x = 30.0 * f64::from(i);
                let label = format!("#{}", 15 - i);
                let (lx, ly, anchor) = place_label(x, 0.0, 11.0, &label, &mut avoid)?;
                if i == 0 {
                    assert_eq!((lx, ly, anchor), (0.0, -17.0, "middle"));
                }
                Some(label_box(lx, ly, anchor, &label))
            })
            .collect();
        assert!(placed.len() >= 2, "{placed:?}");
        assert_eq!(placed, avoid, "every placed label is kept clear of");
        for (i, a) in placed.iter().enumerate() {
            for b in &placed[i + 1..] {
                assert!(!overlap(a, b), "{a:?} overlaps {b:?}");
            }
        }
    }
}

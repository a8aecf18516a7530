//! Edge geometry, pure: the path of an edge between two node boxes that goes
//! *around* the nodes in between rather than through them, and the point a
//! fraction of the way along it (where a moving message is drawn).
//!
//! A forward edge is a chain of S-shaped cubic segments: wherever the
//! straight line would cross a node, it passes that node's column through the
//! free gap nearest to it. A backward edge (dead-lettering, forwarding) is a
//! loop below everything it passes.

/// A node's box: centre and half sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeBox {
    pub x: f64,
    pub y: f64,
    pub hw: f64,
    pub hh: f64,
}

type P = (f64, f64);

/// An edge as cubic Bézier segments `[start, control, control, end]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub segs: Vec<[P; 4]>,
    /// Where the edge's label goes: half way along the last segment (in the
    /// gap before the destination), or mid-way along a loop's bottom.
    pub label: P,
}

/// Space kept between an edge and a node it passes.
const PAD: f64 = 14.0;

/// Space a loop keeps below a node it passes under: the captions written
/// under a node (a queue's counts, then its arguments) are not in its box.
const BELOW: f64 = 50.0;

fn cubic(s: &[P; 4], t: f64) -> P {
    let u = 1.0 - t;
    let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
    (
        a * s[0].0 + b * s[1].0 + c * s[2].0 + d * s[3].0,
        a * s[0].1 + b * s[1].1 + c * s[2].1 + d * s[3].1,
    )
}

fn s_curve(a: P, b: P) -> [P; 4] {
    let mx = (a.0 + b.0) / 2.0;
    [a, (mx, a.1), (mx, b.1), b]
}

impl Path {
    /// The SVG `d` attribute.
    pub fn d(&self) -> String {
        let mut s = String::new();
        for (i, g) in self.segs.iter().enumerate() {
            if i == 0 {
                s.push_str(&format!("M {:.1} {:.1}", g[0].0, g[0].1));
            }
            s.push_str(&format!(
                " C {:.1} {:.1}, {:.1} {:.1}, {:.1} {:.1}",
                g[1].0, g[1].1, g[2].0, g[2].1, g[3].0, g[3].1
            ));
        }
        s
    }

    /// The point `f` (0..=1) of the way along (segments weighted by chord length).
    pub fn at(&self, f: f64) -> P {
        let f = if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let lens: Vec<f64> = self
            .segs
            .iter()
            .map(|g| ((g[3].0 - g[0].0).powi(2) + (g[3].1 - g[0].1).powi(2)).sqrt() + 1e-9)
            .collect();
        let total: f64 = lens.iter().sum();
        let mut left = f * total;
        for (g, len) in self.segs.iter().zip(&lens) {
            if left <= *len {
                return cubic(g, left / len);
            }
            left -= len;
        }
        self.segs.last().map_or((0.0, 0.0), |g| g[3])
    }
}

/// Insertion sort by an `f64` key: the lists are a handful of nodes, and the
/// standard sorts would add kilobytes to the bundle for each element type.
fn sort_by_f64<T>(v: &mut [T], key: impl Fn(&T) -> f64) {
    for i in 1..v.len() {
        let mut j = i;
        while j > 0 && key(&v[j - 1]) > key(&v[j]) {
            v.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// The y, nearest to `want`, at which a line can pass the column of `boxes`
/// (which all overlap in x) without touching any of them.
fn free_y(boxes: &[NodeBox], want: f64) -> f64 {
    let mut spans: Vec<(f64, f64)> = boxes
        .iter()
        .map(|b| (b.y - b.hh - PAD, b.y + b.hh + PAD))
        .collect();
    sort_by_f64(&mut spans, |s| s.0);
    if spans.iter().all(|(top, bot)| want <= *top || want >= *bot) {
        return want;
    }
    // The gaps: above the first, between neighbours, below the last.
    let mut best = f64::NAN;
    let mut consider = |y: f64| {
        if best.is_nan() || (y - want).abs() < (best - want).abs() {
            best = y;
        }
    };
    let mut reach = f64::NEG_INFINITY;
    for (top, bot) in &spans {
        if *top > reach && reach.is_finite() {
            consider(want.clamp(reach, *top));
        } else if !reach.is_finite() {
            consider(*top);
        }
        reach = reach.max(*bot);
    }
    consider(reach);
    best
}

/// The path from box `a` to box `b`, around `others` (boxes of every other node).
pub fn route(a: NodeBox, b: NodeBox, others: &[NodeBox]) -> Path {
    if b.x - b.hw > a.x + a.hw {
        let start = (a.x + a.hw, a.y);
        let end = (b.x - b.hw - 4.0, b.y);
        // The nodes strictly between the two, grouped into columns of
        // x-overlapping boxes, left to right.
        let mut between: Vec<NodeBox> = others
            .iter()
            .copied()
            .filter(|o| o.x - o.hw > start.0 && o.x + o.hw < end.0)
            .collect();
        sort_by_f64(&mut between, |b| b.x);
        let mut columns: Vec<Vec<NodeBox>> = Vec::new();
        for o in between {
            match columns.last_mut() {
                Some(col) if col.iter().any(|c| (c.x - o.x).abs() < c.hw + o.hw) => col.push(o),
                _ => columns.push(vec![o]),
            }
        }
        let mut points = vec![start];
        for col in &columns {
            let left = col.iter().map(|c| c.x - c.hw).fold(f64::MAX, f64::min) - PAD;
            let right = col.iter().map(|c| c.x + c.hw).fold(f64::MIN, f64::max) + PAD;
            let from = *points.last().unwrap_or(&start);
            // Where the rest of the line would be at this column.
            let t = ((left + right) / 2.0 - from.0) / (end.0 - from.0).max(1.0);
            let want = from.1 + (end.1 - from.1) * t.clamp(0.0, 1.0);
            let y = free_y(col, want);
            if (y - want).abs() < 0.5 {
                continue;
            }
            points.push((left, y));
            points.push((right, y));
        }
        points.push(end);
        let segs: Vec<[P; 4]> = points.windows(2).map(|w| s_curve(w[0], w[1])).collect();
        let label = segs.last().map_or(start, |g| cubic(g, 0.5));
        Path { segs, label }
    } else {
        // Backward: out of the source's left side into the gap beside it,
        // down below everything in between, along, and up into the
        // destination's right side. Without room for that (the same
        // column), a loop out of the bottom of one and into the other.
        let gap = 30.0;
        let (out_x, in_x) = (a.x - a.hw - gap, b.x + b.hw + gap);
        let side = out_x > in_x;
        let (x1, x2) = if side { (out_x, in_x) } else { (a.x, b.x) };
        let (lo, hi) = (x1.min(x2), x1.max(x2));
        let low = others
            .iter()
            .filter(|o| o.x + o.hw >= lo && o.x - o.hw <= hi)
            .map(|o| o.y + o.hh + BELOW)
            .fold(a.y.max(b.y) + a.hh.max(b.hh) + 40.0, f64::max)
            + 16.0;
        // Out of the lower left of the source, into the lower right of the
        // destination (a hexagon's lower facet): clear of the forward edges,
        // which meet nodes at the middle of their sides.
        let (out_y, in_y) = (a.y + a.hh * 0.5, b.y + b.hh * 0.6);
        let points = if side {
            vec![
                (a.x - a.hw, out_y),
                (x1, out_y),
                (x1, low),
                (x2, low),
                (x2, in_y),
                (b.x + b.hw * 0.7 + 3.0, in_y),
            ]
        } else {
            vec![
                (x1, a.y + a.hh),
                (x1, low),
                (x2, low),
                (x2, b.y + b.hh + 4.0),
            ]
        };
        Path {
            segs: rounded(&points, 20.0),
            label: ((x1 + x2) / 2.0, low - 10.0),
        }
    }
}

/// Straight runs through `points` (horizontal and vertical), joined by
/// rounded corners of radius up to `r`.
fn rounded(points: &[P], r: f64) -> Vec<[P; 4]> {
    let toward = |from: P, to: P, d: f64| {
        let len = ((to.0 - from.0).powi(2) + (to.1 - from.1).powi(2)).sqrt();
        if len <= 1e-9 {
            from
        } else {
            let k = d.min(len / 2.0) / len;
            (from.0 + (to.0 - from.0) * k, from.1 + (to.1 - from.1) * k)
        }
    };
    let mut segs = Vec::new();
    let mut at = match points.first() {
        Some(p) => *p,
        None => return segs,
    };
    for i in 1..points.len() {
        let p = points[i];
        match points.get(i + 1) {
            Some(&next) => {
                let (before, after) = (toward(p, at, r), toward(p, next, r));
                segs.push([at, at, before, before]);
                segs.push([before, p, p, after]);
                at = after;
            }
            None => segs.push([at, at, p, p]),
        }
    }
    segs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(x: f64, y: f64) -> NodeBox {
        NodeBox {
            x,
            y,
            hw: 60.0,
            hh: 40.0,
        }
    }

    fn hits(p: &Path, o: &NodeBox) -> bool {
        (0..=400).any(|i| {
            let (x, y) = p.at(i as f64 / 400.0);
            (x - o.x).abs() < o.hw && (y - o.y).abs() < o.hh
        })
    }

    #[test]
    fn a_neighbour_edge_is_one_s_curve() {
        let p = route(node(100.0, 100.0), node(350.0, 260.0), &[]);
        assert_eq!(p.segs.len(), 1);
        assert_eq!(p.at(0.0), (160.0, 100.0));
        assert_eq!(p.at(1.0), (286.0, 260.0));
        assert!(p.d().starts_with("M 160.0 100.0 C"));
    }

    #[test]
    fn an_edge_skipping_a_column_goes_around_the_node_there() {
        let (a, mid, b) = (node(100.0, 200.0), node(350.0, 200.0), node(600.0, 200.0));
        let straight = route(a, b, &[]);
        assert!(
            hits(&straight, &mid),
            "the straight line crosses the middle node"
        );
        let p = route(a, b, &[mid]);
        assert!(!hits(&p, &mid), "{p:?}");
        let (x, y) = p.at(1.0);
        assert!((x - 536.0).abs() < 1e-6 && (y - 200.0).abs() < 1e-6);
        // A stacked column: it takes the gap between the nodes.
        let (up, down) = (node(350.0, 100.0), node(350.0, 300.0));
        let p = route(node(100.0, 190.0), node(600.0, 210.0), &[up, down]);
        assert!(!hits(&p, &up) && !hits(&p, &down), "{p:?}");
        // A node off the line is left alone.
        let p = route(a, b, &[node(350.0, 500.0)]);
        assert_eq!(p.segs.len(), 1);
    }

    #[test]
    fn a_backward_edge_loops_below_what_it_passes() {
        let (q, x) = (node(700.0, 200.0), node(250.0, 200.0));
        let low_node = node(450.0, 420.0);
        // A queue below the source, in its column: the loop leaves sideways.
        let below = node(700.0, 360.0);
        let p = route(q, x, &[low_node, below]);
        assert!(!hits(&p, &below), "{p:?}");
        assert_eq!(p.at(0.0), (640.0, 220.0));
        let (ex, ey) = p.at(1.0);
        assert!((ex - 295.0).abs() < 1e-9 && (ey - 224.0).abs() < 1e-9);
        // In one column: out of the bottom.
        let p = route(node(300.0, 100.0), node(300.0, 400.0), &[]);
        assert_eq!(p.at(0.0), (300.0, 140.0));
        let p = route(q, x, &[low_node]);
        assert!(!hits(&p, &low_node), "{p:?}");
        assert!(!hits(&p, &node(450.0, 200.0)), "it passes below the row");
        let (lx, ly) = p.label;
        assert!(lx > 350.0 && lx < 600.0 && ly > 400.0);
    }

    #[test]
    fn at_copes_with_odd_input() {
        let p = route(node(0.0, 0.0), node(300.0, 0.0), &[]);
        assert_eq!(p.at(f64::NAN), p.at(0.0));
        assert_eq!(p.at(7.0), p.at(1.0));
        assert_eq!(
            Path {
                segs: vec![],
                label: (0.0, 0.0)
            }
            .at(0.5),
            (0.0, 0.0)
        );
    }
}

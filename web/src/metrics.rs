//! The metrics strip's data: queue depth and cumulative publish, deliver and
//! ack counts sampled on a run's own clock, and the rates between samples.
//!
//! A lesson and the Build page sample the same way, so the strip under a
//! lesson and the one under a user's own topology read alike (the
//! 1-vs-N-consumers experiment can be rebuilt by hand and compared). Samples
//! are taken on the run's clock, not the wall's: paused, the strip stops; at
//! 10×, a second of the run is still a second on the chart.

/// One point of the metrics strip.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// The run's time, ms.
    pub t: u64,
    /// Ready messages in all queues.
    pub depth: i64,
    /// Cumulative counts.
    pub published: u64,
    pub delivered: u64,
    pub acked: u64,
}

/// How often the metrics strip samples (the run's time).
pub const SAMPLE_MS: u64 = 250;
/// At most this many samples are kept (older ones are thinned out).
pub const MAX_SAMPLES: usize = 480;

/// Adds `s` to `samples` if one is due (`SAMPLE_MS` after the last, or
/// `force`: the run's end). A full strip keeps every other sample first, so
/// it always covers the whole run, at less detail the longer it gets.
pub fn record(samples: &mut Vec<Sample>, s: Sample, force: bool) {
    let due = samples.last().map_or(0, |l| l.t + SAMPLE_MS);
    if s.t < due && !force {
        return;
    }
    if samples.last().is_some_and(|l| s.t <= l.t) {
        return;
    }
    if samples.len() >= MAX_SAMPLES {
        let mut keep = false;
        samples.retain(|_| {
            keep = !keep;
            keep
        });
    }
    samples.push(s);
}

/// Per-second rates between samples `window` apart: `(t, publish/s,
/// deliver/s, ack/s)`. A count that went down (its producer or consumer was
/// deleted) reads as a rate of 0, never a negative one.
pub fn rates(samples: &[Sample], window: usize) -> Vec<(u64, f64, f64, f64)> {
    let w = window.max(1);
    samples
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, s)| {
            let a = &samples[i.saturating_sub(w)];
            let dt = (s.t.saturating_sub(a.t)).max(1) as f64 / 1000.0;
            (
                s.t,
                s.published.saturating_sub(a.published) as f64 / dt,
                s.delivered.saturating_sub(a.delivered) as f64 / dt,
                s.acked.saturating_sub(a.acked) as f64 / dt,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: u64, published: u64) -> Sample {
        Sample {
            t,
            published,
            ..Sample::default()
        }
    }

    #[test]
    fn samples_are_taken_every_sample_ms_and_at_the_end() {
        let mut s = Vec::new();
        for t in (0..1000).step_by(50) {
            record(&mut s, at(t, t / 10), false);
        }
        assert_eq!(
            s.iter().map(|x| x.t).collect::<Vec<_>>(),
            [0, 250, 500, 750]
        );
        record(&mut s, at(900, 90), true);
        assert_eq!(s.last().map(|x| x.t), Some(900));
        // Time that does not move adds nothing, forced or not.
        record(&mut s, at(900, 95), true);
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn a_long_run_keeps_covering_all_of_it() {
        let mut s = Vec::new();
        for i in 0..(MAX_SAMPLES as u64 * 3) {
            record(&mut s, at(i * SAMPLE_MS, i), false);
        }
        assert!(s.len() <= MAX_SAMPLES);
        assert_eq!(s[0].t, 0, "the start stays");
        assert!(s.windows(2).all(|w| w[0].t < w[1].t));
        assert_eq!(
            s.last().map(|x| x.t),
            Some((MAX_SAMPLES as u64 * 3 - 1) * SAMPLE_MS)
        );
    }

    #[test]
    fn rates_are_per_second_and_never_negative() {
        let s = [at(0, 0), at(500, 5), at(1000, 10), at(1500, 2)];
        let r = rates(&s, 1);
        assert_eq!(r[0], (500, 10.0, 0.0, 0.0));
        assert_eq!(r[1], (1000, 10.0, 0.0, 0.0));
        assert_eq!(r[2], (1500, 0.0, 0.0, 0.0), "a count that fell is no rate");
    }
}

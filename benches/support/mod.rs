//! What the criterion benches share: one measurement configuration, so their figures in
//! BENCHMARKS.md are taken the same way.

use criterion::Criterion;
use std::time::Duration;

/// Half a second of warm-up, two seconds of measurement, 30 samples.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

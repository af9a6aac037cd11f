//! What the operator sees: the per-second progress line (TTY) or log line, the HdrHistogram interval log,
//! the JSON report file, and the SVG plot (drawn by `plot.rs`).

use crate::error::RunError;
use crate::flags::ProgressMode;
use crate::recorder::{Point, Recorder};
use crate::run_config::RunConfig;
use crate::schedule::Profile;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use iotex_shared::report::Report;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

fn line(r: &crate::recorder::Interval, elapsed: f64, in_flight: i64) -> String {
    let (scheduled, accepted, included, late) = r.totals;
    let errors: Vec<String> = r.errors.iter().map(|(k, n)| format!("{k}={n}")).collect();
    format!(
        "{elapsed:>6.0}s offered {:>8.1}/s achieved {:>8.1}/s in-flight {in_flight:>5} scheduled {scheduled} accepted {accepted} included {included} late {late} submit p50/p99 {:.1}/{:.1} ms inclusion p50/p99 {:.0}/{:.0} ms errors [{}]",
        r.point.offered,
        r.point.accepted,
        r.point.submit_p50,
        r.point.submit_p99,
        r.point.inclusion_p50,
        r.point.inclusion_p99,
        errors.join(" ")
    )
}

/// What the progress task kept of the run, second by second.
#[derive(Debug, Default)]
pub struct Series {
    /// The per-second points, for the plot.
    pub points: Vec<Point>,
    /// The same intervals with their histograms, for the report (and so for `merge`).
    pub intervals: Vec<iotex_shared::report::IntervalHistograms>,
}

/// The report keeps at most this many intervals (a day; the plot's points go on for a week).
const MAX_INTERVALS: usize = 24 * 3600;

/// Runs until `stop` flips: one interval per second; returns the per-second series for the plot and the
/// report.
///
/// Just over 80 lines: the histogram-log writer borrows the file and the serializer created here, so the
/// set-up cannot move into a helper without boxing them; the loop body is one interval, top to bottom.
pub async fn progress(
    cfg: RunConfig,
    rec: Arc<Recorder>,
    profile: Profile,
    start: Instant,
    started_at_unix: f64,
    mut stop: watch::Receiver<bool>,
) -> Series {
    let bar = match cfg.progress {
        ProgressMode::Bar => true,
        ProgressMode::Auto => std::io::stderr().is_terminal(),
        ProgressMode::Log | ProgressMode::Off => false,
    };
    let pb = bar.then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb
    });
    let mut file = cfg.histogram_log.as_ref().and_then(|p| match std::fs::File::create(p) {
        Ok(f) => Some(std::io::BufWriter::new(f)),
        Err(e) => {
            tracing::error!(path = %p.display(), error = %e, "cannot create the histogram log; continuing without it");
            None
        }
    });
    let mut serializer = V2DeflateSerializer::new();
    let base = std::time::UNIX_EPOCH + Duration::from_secs_f64(started_at_unix.max(0.0));
    let mut writer = file.as_mut().and_then(|f| {
        IntervalLogWriterBuilder::new()
            .add_comment("iotex-injector interval log; tags: submit, inclusion; values in microseconds")
            .with_start_time(base)
            .with_base_time(base)
            .with_max_value_divisor(1000.0)
            .begin_log_with(f, &mut serializer)
            .ok()
    });
    let mut last = start;
    let mut intervals = Vec::new();
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        let now = Instant::now();
        let (from, secs) = (last.saturating_duration_since(start), now.saturating_duration_since(last).as_secs_f64());
        let elapsed = now.saturating_duration_since(start);
        last = now;
        // The rate offered over this interval, read at its midpoint (a step or ramp changes within it).
        let mid = elapsed.saturating_sub(Duration::from_secs_f64(secs / 2.0));
        let offered = if mid < profile.duration() { profile.rate_at(mid) } else { 0.0 };
        let iv = rec.interval(elapsed.as_secs_f64(), secs, offered, profile.step_at(mid));
        if let Some(w) = writer.as_mut() {
            let d = Duration::from_secs_f64(secs);
            if !iv.submit.is_empty() {
                let _ = w.write_histogram(&iv.submit, from, d, Tag::new("submit"));
            }
            if !iv.inclusion.is_empty() {
                let _ = w.write_histogram(&iv.inclusion, from, d, Tag::new("inclusion"));
            }
        }
        if intervals.len() < MAX_INTERVALS {
            intervals.push(crate::histograms::interval(&iv, secs));
        }
        let in_flight = rec.metrics.in_flight.get();
        let text = line(&iv, elapsed.as_secs_f64(), in_flight);
        match (&pb, cfg.progress) {
            (Some(pb), _) => pb.set_message(text),
            (None, ProgressMode::Off) => {}
            (None, _) => tracing::info!(target: "iotex_injector::progress", "{text}"),
        }
        if stopping {
            break;
        }
    }
    drop(writer);
    if let Some(mut f) = file {
        let _ = f.flush();
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Series { points: rec.lock().points.clone(), intervals }
}

fn out_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> RunError + '_ {
    move |source| RunError::Output { path: path.display().to_string(), source }
}

/// Writes the report and the plot (the histogram log is written while running).
pub fn write_all(cfg: &RunConfig, report: &Report, points: &[Point]) -> Result<(), RunError> {
    if let Some(p) = &cfg.report {
        let json = serde_json::to_vec_pretty(report).map_err(|e| out_err(p)(std::io::Error::other(e)))?;
        std::fs::write(p, json).map_err(out_err(p))?;
    }
    if let Some(p) = &cfg.plot {
        crate::plot::plot(p, points).map_err(|e| out_err(p)(std::io::Error::other(e)))?;
    }
    Ok(())
}

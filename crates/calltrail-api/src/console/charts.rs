//! Charts as server-rendered SVG: no chart library, no script, nothing to download (0 bytes of
//! JavaScript; each chart is a few hundred bytes of markup). Colours come from the stylesheet
//! (classes, not inline styles, so the strict CSP holds); every mark has a `<title>` tooltip,
//! and each chart sits beside a table with the same numbers for screen readers.

use calltrail_projections::kpis::{DayCounts, KpisView};
use calltrail_projections::leads::ScorePoint;
use maud::{html, Markup};

const WIDTH: f64 = 640.0;
const LEFT: f64 = 40.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// Counts as coordinates (counts stay far below 2^52, so the conversion is exact).
#[allow(clippy::as_conversions)]
fn num(n: i64) -> f64 {
    n as f64
}

/// One decimal is plenty for a pixel coordinate.
fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// Calls per day as stacked bars: connected, missed, and the rest.
pub fn calls_per_day(days: &[DayCounts]) -> Markup {
    let height = 200.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = height - TOP - BOTTOM;
    let max = days.iter().map(|d| d.total_calls).max().unwrap_or(0).max(1);
    let slot = plot_w / num(i64::try_from(days.len()).unwrap_or(1).max(1));
    let bar = (slot * 0.8).max(1.0);
    let y = |count: i64| TOP + plot_h - plot_h * num(count) / num(max);
    let last = days.len().saturating_sub(1);
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-labelledby="per-day-title" {
            title id="per-day-title" { "Calls per day: connected, missed and other calls" }
            line.axis x1=(px(LEFT)) y1=(px(y(0))) x2=(px(WIDTH - RIGHT)) y2=(px(y(0))) {}
            line.grid x1=(px(LEFT)) y1=(px(y(max))) x2=(px(WIDTH - RIGHT)) y2=(px(y(max))) {}
            text.label x=(px(LEFT - 6.0)) y=(px(y(max) + 4.0)) text-anchor="end" { (max) }
            text.label x=(px(LEFT - 6.0)) y=(px(y(0) + 4.0)) text-anchor="end" { "0" }
            @for (i, day) in days.iter().enumerate() {
                @let x = LEFT + slot * num(i64::try_from(i).unwrap_or(0)) + (slot - bar) / 2.0;
                @let connected = day.connected_calls.min(day.total_calls);
                @let missed = day.missed_calls.min(day.total_calls - connected);
                @let other = day.total_calls - connected - missed;
                g {
                    title {
                        (day.date) ": " (day.total_calls) " calls, " (connected) " connected, "
                        (missed) " missed"
                    }
                    @for (class, from, count) in [
                        ("connected", 0, connected),
                        ("missed", connected, missed),
                        ("other", connected + missed, other),
                    ] {
                        @if count > 0 {
                            rect class=(class) x=(px(x)) y=(px(y(from + count))) width=(px(bar))
                                height=(px(y(from) - y(from + count))) {}
                        }
                    }
                }
                @if i == 0 || i == last || (days.len() > 10 && i == last / 2) {
                    text.label x=(px(x + bar / 2.0)) y=(px(height - 6.0)) text-anchor="middle" {
                        (day.date.format("%m-%d"))
                    }
                }
            }
        }
    }
}

/// Connected vs missed vs other calls as one proportional bar.
pub fn connected_vs_missed(kpis: &KpisView) -> Markup {
    let height = 36.0;
    let total = kpis.total_calls.max(1);
    let connected = kpis.connected_calls.min(kpis.total_calls);
    let missed = kpis.missed_calls.min(kpis.total_calls - connected);
    let other = kpis.total_calls - connected - missed;
    let w = |n: i64| WIDTH * num(n) / num(total);
    html! {
        svg.chart.bar viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-labelledby="split-title" {
            title id="split-title" {
                "Connected " (connected) ", missed " (missed) ", other " (other) " of " (kpis.total_calls) " calls"
            }
            @if kpis.total_calls == 0 {
                rect.empty x="0" y="0" width=(px(WIDTH)) height=(px(height)) {}
            }
            @for (class, label, x, n) in [
                ("connected", "Connected", 0.0, connected),
                ("missed", "Missed", w(connected), missed),
                ("other", "Other", w(connected + missed), other),
            ] {
                @if n > 0 {
                    rect class=(class) x=(px(x)) y="0" width=(px(w(n))) height=(px(height)) {
                        title { (label) ": " (n) }
                    }
                }
            }
        }
    }
}

/// A contact's score history (0–100) as a line with a dot per analysed call.
pub fn score_history(points: &[ScorePoint]) -> Markup {
    let height = 160.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = height - TOP - BOTTOM;
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            LEFT + plot_w / 2.0
        } else {
            let i = num(i64::try_from(i).unwrap_or(0));
            LEFT + plot_w * i / num(i64::try_from(n - 1).unwrap_or(1))
        }
    };
    let y = |score: i32| TOP + plot_h - plot_h * f64::from(score.clamp(0, 100)) / 100.0;
    let line = points
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{},{}", px(x(i)), px(y(p.total_score))))
        .collect::<Vec<_>>()
        .join(" ");
    html! {
        svg.chart viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-labelledby="score-title" {
            title id="score-title" { "Lead score per analysed call, oldest first" }
            @for score in [0, 50, 100] {
                line.grid x1=(px(LEFT)) y1=(px(y(score))) x2=(px(WIDTH - RIGHT)) y2=(px(y(score))) {}
                text.label x=(px(LEFT - 6.0)) y=(px(y(score) + 4.0)) text-anchor="end" { (score) }
            }
            @if n > 1 {
                polyline.score points=(line) {}
            }
            @for (i, point) in points.iter().enumerate() {
                circle class=(format!("dot {}", point.lead_status_tag.to_ascii_lowercase()))
                    cx=(px(x(i))) cy=(px(y(point.total_score))) r="4" {
                    title {
                        (point.analysis_timestamp.format("%Y-%m-%d %H:%M UTC")) ": "
                        (point.total_score) " (" (point.lead_status_tag) ")"
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn day(d: u32, total: i64, connected: i64, missed: i64) -> DayCounts {
        DayCounts {
            date: NaiveDate::from_ymd_opt(2025, 10, d).unwrap_or_default(),
            total_calls: total,
            connected_calls: connected,
            missed_calls: missed,
        }
    }

    #[test]
    fn bars_are_as_tall_as_their_counts() {
        let svg = calls_per_day(&[day(1, 4, 2, 1), day(2, 0, 0, 0)]).into_string();
        // Two slots of 296 px, bars of 80%; plot height 168 for a maximum of 4: 2 connected
        // = 84 px, 1 missed and 1 other = 42 px each.
        assert!(
            svg.contains(r#"class="connected" x="69.6" y="94.0" width="236.8" height="84.0""#),
            "{svg}"
        );
        assert!(svg.contains(r#"class="missed""#) && svg.contains(r#"height="42.0""#));
        assert!(svg.contains("2025-10-01: 4 calls, 2 connected, 1 missed"));
        assert!(!svg.contains("style="), "no inline styles under the CSP");
    }

    #[test]
    fn an_empty_range_draws_an_empty_chart() {
        let svg = calls_per_day(&[]).into_string();
        assert!(svg.starts_with("<svg") && !svg.contains("<rect"));
    }
}

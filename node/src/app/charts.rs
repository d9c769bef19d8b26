//! The dashboard's charts: horizontal bar charts drawn as SVG by the server (no script),
//! each followed by a table of the same numbers for screen readers and for copying.
//!
//! Colours and sizes come from the app's CSS file through classes; the SVG carries only
//! geometry, so the Content-Security-Policy needs no inline style.

use maud::{html, Markup};

/// One bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bar {
    /// What the bar stands for (a month, a proposal's title, a member bucket).
    pub(crate) label: String,
    /// Its value, in the chart's unit.
    pub(crate) value: i64,
    /// How the value reads ("1 h 30 min", "12.50 EUR").
    pub(crate) shown: String,
    /// Marked bars are drawn in the accent colour (a prioritized proposal, say).
    pub(crate) marked: bool,
}

impl Bar {
    pub(crate) fn new(label: impl Into<String>, value: i64, shown: impl Into<String>) -> Bar {
        Bar {
            label: label.into(),
            value,
            shown: shown.into(),
            marked: false,
        }
    }
}

const WIDTH: i64 = 700;
const LABEL: i64 = 200;
const ROW: i64 = 28;

/// A titled bar chart with its table; `id` names it for tests and for `aria-labelledby`.
pub(crate) fn bar_chart(id: &str, title: &str, unit: &str, bars: &[Bar]) -> Markup {
    let max = bars
        .iter()
        .map(|b| b.value.max(0))
        .max()
        .unwrap_or(0)
        .max(1);
    let height = (bars.len() as i64).max(1) * ROW + 8;
    let span = WIDTH - LABEL - 190;
    html! {
        section.chart id=(id) aria-labelledby={(id) "-title"} {
            h2 id={(id) "-title"} { (title) }
            @if bars.is_empty() {
                p.empty { "Nothing to show yet." }
            } @else {
                svg.bars role="img" aria-labelledby={(id) "-title"} viewBox={"0 0 " (WIDTH) " " (height)}
                    width="100%" preserveAspectRatio="xMinYMin meet" {
                    @for (i, b) in bars.iter().enumerate() {
                        @let y = i as i64 * ROW + 4;
                        @let w = if b.value > 0 { (b.value * span / max).max(2) } else { 0 };
                        text.label x=(LABEL - 8) y=(y + 18) text-anchor="end" { (clip(&b.label)) }
                        rect class=(if b.marked { "bar marked" } else { "bar" }) x=(LABEL) y=(y) width=(w) height=(ROW - 8)
                            data-label=(b.label) data-value=(b.value) {
                            title { (b.label) ": " (b.shown) }
                        }
                        text.value x=(LABEL + w + 6) y=(y + 18) { (b.shown) }
                    }
                }
                table.numbers {
                    caption { (title) }
                    thead { tr { th scope="col" { "What" } th scope="col" { (unit) } } }
                    tbody {
                        @for b in bars {
                            tr { th scope="row" { (b.label) } td { (b.shown) } }
                        }
                    }
                }
            }
        }
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 26 {
        s.to_string()
    } else {
        s.chars().take(25).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_keep_their_numbers() {
        let m = bar_chart(
            "h",
            "Hours",
            "minutes",
            &[
                Bar::new("2026-10", 60, "1 h"),
                Bar::new("2026-11", 120, "2 h"),
            ],
        )
        .into_string();
        assert!(
            m.contains(r#"data-label="2026-11" data-value="120""#),
            "{m}"
        );
        assert!(
            m.contains(r#"width="310""#),
            "the largest bar spans the chart: {m}"
        );
        assert!(m.contains(r#"width="155""#), "half of it: {m}");
        assert!(m.contains("<td>2 h</td>"));
        assert!(!m.contains("style="));
        let empty = bar_chart("e", "Empty", "x", &[]).into_string();
        assert!(empty.contains("Nothing to show yet."));
    }
}

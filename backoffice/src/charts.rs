//! Bar charts drawn on the server as inline SVG, for the back office's report pages: no script, no
//! inline style (the stylesheet's `chart`, `bar-a`/`bar-b`/`bar-c` and `axis` classes colour them),
//! and every chart followed by the table of its numbers, so a screen reader (or anyone) reads the
//! figures themselves rather than the picture.
//!
//! Values are whole non-negative numbers of any size — counts, minor units, wei as the decimal
//! strings the database sums to — scaled with integer arithmetic only: a bar's height is its
//! value's share of the largest value, the largest filling the plot. The figures shown as text
//! are the caller's, formatted from the exact amounts.

use std::cmp::Ordering;

use maud::{Markup, html};

use crate::pages::{Column, figures};

/// The SVG's coordinate system (it is scaled to the page's width by the stylesheet).
const WIDTH: u32 = 640;
const HEIGHT: u32 = 260;
/// The plot inside it: room above for the scale's text, below for the categories' labels.
const LEFT: u32 = 8;
const RIGHT: u32 = 8;
const TOP: u32 = 28;
const BOTTOM: u32 = 36;
const PLOT_HEIGHT: u32 = HEIGHT - TOP - BOTTOM;
/// Positions are computed in hundredths of a unit, and written as decimals.
const CENTI: u32 = 100;
/// The most category labels under the axis (every n-th is written when there are more).
const MAX_TICKS: usize = 8;
/// The longest category label under the axis, in characters (the table has the whole label).
const MAX_TICK_CHARS: usize = 12;
/// The fills (`bar-a`, …) and legend entries (`li.a`, …) of the series, in order.
const FILLS: [&str; 3] = ["a", "b", "c"];

/// A whole non-negative number of any size, kept as its decimal digits (no leading zeros; empty
/// for zero) so that no amount a database can sum overflows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Magnitude(String);

impl Magnitude {
    /// A count or minor units; a negative number (a refund) draws as zero.
    pub(crate) fn count(n: i64) -> Self {
        Self(if n > 0 { n.to_string() } else { String::new() })
    }

    /// A decimal string of base units (wei). Anything but digits draws as zero.
    pub(crate) fn decimal(digits: &str) -> Self {
        match digits.bytes().all(|b| b.is_ascii_digit()) {
            true => Self(digits.trim_start_matches('0').to_owned()),
            false => Self::default(),
        }
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    /// The number with its last `cut` digits dropped, if it fits a `u128` (it always does for the
    /// cut [`scaled`] makes).
    fn leading(&self, cut: usize) -> u128 {
        let digits = self.0.get(..self.0.len().saturating_sub(cut)).unwrap_or_default();
        if digits.is_empty() { 0 } else { digits.parse().unwrap_or(u128::MAX) }
    }
}

impl Ord for Magnitude {
    fn cmp(&self, other: &Self) -> Ordering {
        // No leading zeros: more digits is larger, then digit by digit.
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Magnitude {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// `value`'s share of `span` as `max` is to `span`, rounded to the nearest; a value above zero is
/// never drawn as nothing. Both are first cut to the same 28 leading digits of `max`, so the
/// product stays far below `u128::MAX` whatever their size.
pub(crate) fn scaled(value: &Magnitude, max: &Magnitude, span: u16) -> u32 {
    let cut = max.0.len().saturating_sub(28);
    let (value_lead, max_lead) = (value.leading(cut), max.leading(cut));
    if max_lead == 0 || value.is_zero() {
        return 0;
    }
    let share = (value_lead.min(max_lead) * u128::from(span) + max_lead / 2) / max_lead;
    u32::try_from(share).unwrap_or(u32::from(span)).max(1)
}

/// One bar: its value and the figure shown for it.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    pub(crate) value: Magnitude,
    pub(crate) text: String,
}

impl Bar {
    /// A count, shown as it is.
    pub(crate) fn count(n: i64) -> Self {
        Self { value: Magnitude::count(n), text: n.to_string() }
    }

    /// An amount, shown as `text` (formatted by the caller from the exact amount).
    pub(crate) fn amount(value: Magnitude, text: String) -> Self {
        Self { value, text }
    }
}

/// One category (a day, a marketplace, a reward): a bar of each series.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The category in the table and in the bars' tooltips.
    pub(crate) label: String,
    /// The category under the axis (shorter, e.g. a day without its year).
    pub(crate) tick: String,
    pub(crate) bars: Vec<Bar>,
}

impl Group {
    pub(crate) fn new(label: impl Into<String>, bars: Vec<Bar>) -> Self {
        let label = label.into();
        Self { tick: label.clone(), label, bars }
    }

    /// With a shorter label under the axis.
    pub(crate) fn tick(mut self, tick: impl Into<String>) -> Self {
        self.tick = tick.into();
        self
    }
}

/// A bar chart of one or more series (grouped bars) over categories.
#[derive(Debug)]
pub(crate) struct BarChart<'a> {
    /// Unique on the page: the prefix of the chart's element ids.
    pub(crate) id: &'a str,
    /// The SVG's title and the table's caption.
    pub(crate) title: &'a str,
    /// The heading of the table's first column (`Day`, `Marketplace`).
    pub(crate) category: &'a str,
    /// The series' names, at most three (one bar of each per group).
    pub(crate) series: &'a [&'a str],
    pub(crate) groups: Vec<Group>,
    /// What is said instead of an empty chart ("No sales in this period.").
    pub(crate) empty: &'a str,
}

impl BarChart<'_> {
    /// The largest value, and the figure shown for it.
    fn max(&self) -> Option<&Bar> {
        self.groups.iter().flat_map(|g| &g.bars).max_by(|a, b| a.value.cmp(&b.value)).filter(|b| !b.value.is_zero())
    }

    /// The chart, its legend and the table of its numbers; or the `empty` sentence when every
    /// value is zero.
    pub(crate) fn render(&self) -> Markup {
        let Some(max) = self.max() else {
            return html! { p.muted { (self.empty) } };
        };
        let (title, desc) = (format!("{}-title", self.id), format!("{}-desc", self.id));
        let series = self.series.len().max(1);
        let groups = self.groups.len();
        let plot_width = (WIDTH - LEFT - RIGHT) * CENTI;
        let baseline = TOP + PLOT_HEIGHT;
        let span = u16::try_from(PLOT_HEIGHT * CENTI).unwrap_or(u16::MAX);
        let step = groups.div_ceil(MAX_TICKS).max(1);
        // Group `g` spans [start, end) (hundredths), a tenth of it empty on each side.
        let bounds = |g: usize| {
            let at = |g: usize| u32::try_from(u64::from(plot_width) * g as u64 / groups.max(1) as u64).unwrap_or(0);
            (LEFT * CENTI + at(g), LEFT * CENTI + at(g + 1))
        };
        html! {
            div.chart {
                svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-labelledby=(format!("{title} {desc}")) {
                    title id=(title) { (self.title) }
                    desc id=(desc) {
                        (self.series.join(", ")) " by " (self.category.to_lowercase()) ", "
                        (groups) " in all; the largest is " (max.text) ". The table below has every figure."
                    }
                    line.axis x1=(LEFT) y1=(TOP) x2=(WIDTH - RIGHT) y2=(TOP) stroke-dasharray="4 4" {}
                    text x=(LEFT) y=(TOP - 8) { (max.text) }
                    @for (g, group) in self.groups.iter().enumerate() {
                        @let (start, end) = bounds(g);
                        @let pad = (end - start) / 10;
                        @let width = (end - start - 2 * pad) / u32::try_from(series).unwrap_or(1);
                        @for (s, bar) in group.bars.iter().enumerate().take(series) {
                            @let height = scaled(&bar.value, &max.value, span);
                            @let x = start + pad + width * u32::try_from(s).unwrap_or(0);
                            @if height > 0 {
                            rect class=(format!("bar-{}", FILLS[s % FILLS.len()]))
                                x=(centi(x)) y=(centi(baseline * CENTI - height)) width=(centi(width)) height=(centi(height)) {
                                title {
                                    (group.label) " · " (self.series.get(s).copied().unwrap_or_default()) ": " (bar.text)
                                }
                            }
                            }
                        }
                        @if g % step == 0 {
                            text x=(centi(start + (end - start) / 2)) y=(baseline + 16) text-anchor="middle" {
                                (short(&group.tick))
                            }
                        }
                    }
                    line.axis x1=(LEFT) y1=(baseline) x2=(WIDTH - RIGHT) y2=(baseline) {}
                }
                @if self.series.len() > 1 {
                    ul.legend {
                        @for (s, name) in self.series.iter().enumerate() { li class=(FILLS[s % FILLS.len()]) { (name) } }
                    }
                }
                details {
                    summary { "The figures: " (self.title) }
                    (self.table())
                }
            }
        }
    }

    /// The chart's numbers as a table.
    pub(crate) fn table(&self) -> Markup {
        let columns: Vec<Column<'_>> = std::iter::once(Column::Words(self.category))
            .chain(self.series.iter().map(|name| Column::Numbers(name)))
            .collect();
        figures(
            self.title,
            &columns,
            html! {
                @for group in &self.groups {
                    tr {
                        th scope="row" { (group.label) }
                        @for bar in &group.bars { td.num { (bar.text) } }
                    }
                }
            },
        )
    }
}

/// Hundredths of a unit as an SVG number (`1234` → `12.34`).
fn centi(hundredths: u32) -> String {
    format!("{}.{:02}", hundredths / CENTI, hundredths % CENTI)
}

/// A label cut to what fits under the axis.
fn short(label: &str) -> String {
    match label.char_indices().nth(MAX_TICK_CHARS) {
        Some((end, _)) => format!("{}…", label.get(..end).unwrap_or(label).trim_end()),
        None => label.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(values: &[i64]) -> Vec<Group> {
        values.iter().enumerate().map(|(n, v)| Group::new(format!("day {n}"), vec![Bar::count(*v)])).collect()
    }

    fn chart(groups: Vec<Group>) -> String {
        BarChart {
            id: "t",
            title: "Sales",
            category: "Day",
            series: &["Orders"],
            groups,
            empty: "No sales in this period.",
        }
        .render()
        .into_string()
    }

    /// The heights of the bars drawn, in hundredths.
    fn heights(svg: &str) -> Vec<u32> {
        svg.split("<rect ")
            .skip(1)
            .filter_map(|rect| rect.split("height=\"").nth(1)?.split('"').next()?.replace('.', "").parse().ok())
            .collect()
    }

    #[test]
    fn bar_heights_are_proportional_and_the_largest_fills_the_plot() {
        let max = Magnitude::count(4);
        let heights: Vec<u32> = (0..=4).map(|n| scaled(&Magnitude::count(n), &max, 200)).collect();
        assert_eq!(heights, [0, 50, 100, 150, 200]);
        let drawn = heights_of(&[1, 2, 4]);
        assert_eq!(drawn, [PLOT_HEIGHT * CENTI / 4, PLOT_HEIGHT * CENTI / 2, PLOT_HEIGHT * CENTI]);
    }

    fn heights_of(values: &[i64]) -> Vec<u32> {
        heights(&chart(counts(values)))
    }

    #[test]
    fn a_small_value_is_still_seen_and_rounding_is_to_the_nearest() {
        let max = Magnitude::count(1_000_000);
        assert_eq!(scaled(&Magnitude::count(1), &max, 200), 1, "never drawn as nothing");
        assert_eq!(scaled(&Magnitude::count(2_499), &max, 200), 1);
        assert_eq!(scaled(&Magnitude::count(7_500), &max, 200), 2, "1.5 rounds up");
        assert_eq!(scaled(&Magnitude::count(-5), &max, 200), 0, "a negative value draws as zero");
    }

    #[test]
    fn no_data_says_so_instead_of_drawing_empty_axes() {
        for groups in [Vec::new(), counts(&[0, 0, 0])] {
            let html = chart(groups);
            assert!(html.contains("No sales in this period."), "{html}");
            assert!(!html.contains("<svg"), "{html}");
            assert!(!html.contains("<table"), "{html}");
        }
    }

    #[test]
    fn huge_amounts_neither_overflow_nor_panic() {
        let huge = format!("1{}", "0".repeat(30));
        let half = format!("5{}", "0".repeat(29));
        let max = Magnitude::decimal(&huge);
        assert_eq!(scaled(&Magnitude::decimal(&half), &max, 200), 100);
        assert_eq!(scaled(&max, &max, u16::MAX), u32::from(u16::MAX));
        // Beyond u128 and beyond U256: NUMERIC(78, 0) sums.
        let enormous = Magnitude::decimal(&"9".repeat(90));
        assert_eq!(scaled(&enormous, &enormous, 200), 200);
        assert_eq!(scaled(&max, &enormous, 200), 1, "tiny beside it, but not nothing");
        assert!(Magnitude::decimal(&huge) < enormous);
        assert!(Magnitude::decimal("0009") < Magnitude::decimal("10"));
        assert!(Magnitude::decimal("-1").is_zero() && Magnitude::decimal("1e30").is_zero());
        let groups = vec![
            Group::new("opensea", vec![Bar::amount(Magnitude::decimal(&huge), "huge".into())]),
            Group::new("blur", vec![Bar::amount(Magnitude::decimal(&half), "half".into())]),
        ];
        assert_eq!(heights(&chart(groups)), [PLOT_HEIGHT * CENTI, PLOT_HEIGHT * CENTI / 2]);
    }

    #[test]
    fn a_chart_is_an_image_with_a_title_and_its_figures_in_a_table() {
        let groups = vec![
            Group::new("2024-05-01", vec![Bar::count(3), Bar::count(1)]).tick("05-01"),
            Group::new("2024-05-02", vec![Bar::count(0), Bar::count(0)]).tick("05-02"),
        ];
        let html = BarChart {
            id: "sales",
            title: "Daily sales",
            category: "Day",
            series: &["Orders", "Fulfilled"],
            groups,
            empty: "",
        }
        .render()
        .into_string();
        assert!(html.contains(r#"role="img" aria-labelledby="sales-title sales-desc""#), "{html}");
        assert!(html.contains(r#"<title id="sales-title">Daily sales</title>"#), "{html}");
        assert!(html.contains("<caption>Daily sales</caption>"), "{html}");
        assert!(
            html.contains(r#"<th scope="row">2024-05-01</th><td class="num">3</td><td class="num">1</td>"#),
            "{html}"
        );
        assert!(html.contains(r#"<li class="b">Fulfilled</li>"#), "{html}");
        assert!(html.contains(">05-01</text>"), "{html}");
        assert!(!html.contains("style="), "the CSP allows no inline style");
        // Every rect is closed: in HTML, a `<rect>` left open would swallow the next ones.
        assert_eq!(html.matches("<rect ").count(), html.matches("</rect>").count());
        let third = (PLOT_HEIGHT * CENTI * 10 / 3 + 5) / 10;
        assert_eq!(heights(&html), [PLOT_HEIGHT * CENTI, third], "a third, to the nearest; bars of zero not drawn");
    }

    #[test]
    fn long_labels_are_cut_under_the_axis_only() {
        assert_eq!(short("05-01"), "05-01");
        assert_eq!(short("A very long reward name"), "A very long…");
        assert_eq!(short("ÉÉÉÉÉÉÉÉÉÉÉÉÉÉ"), "ÉÉÉÉÉÉÉÉÉÉÉÉ…");
    }
}

//! A line chart drawn on the server as SVG (no JavaScript): series of counts over labelled
//! points (days), with axes, a scale of round numbers, the labels, a legend, and what assistive
//! technology needs (`role="img"`, `aria-label`, `<title>`, `<desc>`, a `<title>` per point).
//!
//! A pure function of its input: every text comes from the caller (already translated) and is
//! escaped here; numbers are formatted here. Each point carries `data-label` and `data-value`
//! and each series `data-total`, so what is drawn can be read back (tests, scripts).

use std::fmt::Write as _;

/// The drawing area, in SVG user units (the picture scales to its container).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 64.0;
/// At most this many point labels under the axis (every n-th one beyond that).
const MAX_LABELS: usize = 10;

/// One line of the chart.
pub struct Series<'a> {
    /// Its name (legend, titles).
    pub name: &'a str,
    /// A CSS class (`[a-z-]` only) to style it; its colour is also set here.
    pub class: &'a str,
    pub color: &'a str,
    /// One value per label.
    pub values: &'a [i64],
}

pub struct Chart<'a> {
    /// The `id` of the `<svg>` element.
    pub id: &'a str,
    /// Its accessible name (`<title>` and `aria-label`).
    pub title: &'a str,
    /// A longer description (`<desc>`).
    pub description: &'a str,
    /// What is shown when there are no points.
    pub empty: &'a str,
    /// One label per point (e.g. days).
    pub labels: &'a [String],
    pub series: &'a [Series<'a>],
}

/// The smallest round number (1, 2 or 5 times a power of ten, times the tick count) that holds
/// `max`, and the step between ticks: (top of the scale, step).
pub fn scale(max: i64) -> (i64, i64) {
    let max = max.max(1);
    let mut magnitude = 1i64;
    loop {
        for m in [1, 2, 5] {
            let step = m * magnitude;
            let top = step.saturating_mul(((max + step - 1) / step).max(1));
            if top / step <= 5 {
                return (top, step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// The y of `value` on a scale whose top is `top`.
pub fn y_of(value: i64, top: i64) -> f64 {
    let plot = HEIGHT - TOP - BOTTOM;
    HEIGHT - BOTTOM - plot * (value.max(0) as f64) / (top.max(1) as f64)
}

/// The x of point `i` of `n` (a single point in the middle).
pub fn x_of(i: usize, n: usize) -> f64 {
    let plot = WIDTH - LEFT - RIGHT;
    if n <= 1 {
        LEFT + plot / 2.0
    } else {
        LEFT + plot * (i as f64) / ((n - 1) as f64)
    }
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A class or colour value: only characters that cannot leave the attribute.
fn token(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '#')).collect()
}

/// The chart as an `<svg>` element.
pub fn line_chart(c: &Chart<'_>) -> String {
    let n = c.labels.len();
    let max = c.series.iter().flat_map(|s| s.values.iter().copied()).max().unwrap_or(0);
    let (top, step) = scale(max);
    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg id="{id}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" aria-label="{title}" aria-labelledby="{id}-title {id}-desc" data-points="{n}" data-scale-top="{top}">"#,
        id = esc(c.id),
        title = esc(c.title),
    );
    let _ = write!(
        o,
        r#"<title id="{id}-title">{}</title><desc id="{id}-desc">{}</desc>"#,
        esc(c.title),
        esc(c.description),
        id = esc(c.id)
    );
    // The scale: horizontal rules and their values.
    let base = HEIGHT - BOTTOM;
    o.push_str(r##"<g class="grid" stroke="#d0d4da" stroke-width="1" font-size="11" fill="#555" text-anchor="end">"##);
    let mut v = 0;
    while v <= top {
        let y = y_of(v, top);
        let _ = write!(
            o,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{x2}" y2="{y:.1}"/><text x="{tx}" y="{ty:.1}" stroke="none">{v}</text>"#,
            x2 = WIDTH - RIGHT,
            tx = LEFT - 6.0,
            ty = y + 4.0,
        );
        v += step;
    }
    o.push_str("</g>");
    // The axes.
    let _ = write!(
        o,
        r##"<g class="axes" stroke="#333" stroke-width="1.5"><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/><line x1="{LEFT}" y1="{base}" x2="{x2}" y2="{base}"/></g>"##,
        x2 = WIDTH - RIGHT,
    );
    if n == 0 {
        let _ = write!(
            o,
            r##"<text class="empty" x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="14" fill="#555">{}</text>"##,
            esc(c.empty),
            x = LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            y = TOP + (base - TOP) / 2.0,
        );
    }
    // The labels under the axis: every one, or every n-th one counted back from the last
    // (today) when there are many.
    let every = n.div_ceil(MAX_LABELS).max(1);
    o.push_str(r##"<g class="labels" font-size="11" fill="#333" text-anchor="middle">"##);
    for (i, label) in c.labels.iter().enumerate() {
        if (n - 1 - i).is_multiple_of(every) {
            let _ = write!(o, r#"<text x="{x:.1}" y="{y}">{}</text>"#, esc(label), x = x_of(i, n), y = base + 18.0);
        }
    }
    o.push_str("</g>");
    // The series: a line and a point per value.
    for s in c.series {
        let values: Vec<i64> = (0..n).map(|i| s.values.get(i).copied().unwrap_or(0)).collect();
        let total: i64 = values.iter().sum();
        let (class, color) = (token(s.class), token(s.color));
        let _ = write!(
            o,
            r#"<g class="series {class}" data-series="{class}" data-total="{total}" stroke="{color}" fill="{color}">"#
        );
        if n > 1 {
            let points: Vec<String> =
                values.iter().enumerate().map(|(i, v)| format!("{:.1},{:.1}", x_of(i, n), y_of(*v, top))).collect();
            let _ = write!(o, r#"<polyline fill="none" stroke-width="2" points="{}"/>"#, points.join(" "));
        }
        for (i, v) in values.iter().enumerate() {
            let label = c.labels.get(i).map(String::as_str).unwrap_or("");
            let _ = write!(
                o,
                r#"<circle class="point" cx="{x:.1}" cy="{y:.1}" r="3" data-label="{l}" data-value="{v}"><title>{name} — {l}: {v}</title></circle>"#,
                x = x_of(i, n),
                y = y_of(*v, top),
                l = esc(label),
                name = esc(s.name),
            );
        }
        o.push_str("</g>");
    }
    // The legend.
    let mut x = LEFT;
    let y = HEIGHT - 16.0;
    o.push_str(r##"<g class="legend" font-size="12" fill="#333">"##);
    for s in c.series {
        let color = token(s.color);
        let _ = write!(
            o,
            r#"<rect x="{x}" y="{ry}" width="12" height="12" fill="{color}"/><text x="{tx}" y="{y}">{}</text>"#,
            esc(s.name),
            ry = y - 10.0,
            tx = x + 18.0,
        );
        x += 18.0 + 8.0 * s.name.chars().count() as f64 + 24.0;
    }
    o.push_str("</g></svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Well-formed XML, or the parser's complaint.
    fn well_formed(svg: &str) -> Result<usize, String> {
        let mut r = quick_xml::Reader::from_str(svg);
        let mut elements = 0;
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) => return Ok(elements),
                Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => elements += 1,
                Ok(_) => {}
                Err(e) => return Err(format!("{e} at {}", r.buffer_position())),
            }
        }
    }

    fn days(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("05-{:02}", i + 1)).collect()
    }

    fn chart<'a>(labels: &'a [String], series: &'a [Series<'a>]) -> String {
        line_chart(&Chart {
            id: "c",
            title: "Sign-ins <& failures>",
            description: "Per day \"UTC\"",
            empty: "No data",
            labels,
            series,
        })
    }

    #[test]
    fn draws_valid_accessible_svg() {
        let labels = days(30);
        let ok: Vec<i64> = (0..30).map(|i| i % 7).collect();
        let ko: Vec<i64> = (0..30).map(|i| i64::from(i % 3 == 0)).collect();
        let series = [
            Series { name: "Sign-ins", class: "succeeded", color: "#1a7f37", values: &ok },
            Series { name: "Failures", class: "failed", color: "#c62828", values: &ko },
        ];
        let svg = chart(&labels, &series);
        assert!(well_formed(&svg).unwrap() > 60, "{svg}");
        assert!(svg.starts_with("<svg id=\"c\""));
        assert!(svg.contains("role=\"img\"") && svg.contains("aria-label=\"Sign-ins &lt;&amp; failures&gt;\""));
        assert!(svg.contains("<title id=\"c-title\">Sign-ins &lt;&amp; failures&gt;</title>"));
        assert!(svg.contains("<desc id=\"c-desc\">Per day &quot;UTC&quot;</desc>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("class=\"point\"").count(), 60);
        assert!(svg.contains(&format!("data-total=\"{}\"", ok.iter().sum::<i64>())));
        assert!(svg.contains(&format!("data-total=\"{}\"", ko.iter().sum::<i64>())));
        // 30 labels: every third one back from the last one under the axis.
        let labels_drawn = svg.split("<g class=\"labels\"").nth(1).unwrap().split("</g>").next().unwrap();
        assert_eq!(labels_drawn.matches("<text").count(), 10);
        assert!(labels_drawn.contains(">05-03<") && labels_drawn.contains(">05-30<"));
        assert!(!labels_drawn.contains(">05-01<") && !labels_drawn.contains(">05-29<"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn scales_to_round_numbers() {
        assert_eq!(scale(0), (1, 1));
        assert_eq!(scale(1), (1, 1));
        assert_eq!(scale(4), (4, 1));
        assert_eq!(scale(6), (6, 2));
        assert_eq!(scale(7), (8, 2));
        assert_eq!(scale(23), (25, 5));
        assert_eq!(scale(1234), (1500, 500));
        for max in 0..2000 {
            let (top, step) = scale(max);
            assert!(top >= max && top % step == 0 && top / step <= 5, "{max}: {top} {step}");
        }
        // The top of the scale at the top of the plot, zero on the axis.
        assert!((y_of(0, 10) - (HEIGHT - BOTTOM)).abs() < 1e-9);
        assert!((y_of(10, 10) - TOP).abs() < 1e-9);
        assert!((y_of(5, 10) - (TOP + (HEIGHT - BOTTOM - TOP) / 2.0)).abs() < 1e-9);
        assert!((x_of(0, 30) - LEFT).abs() < 1e-9 && (x_of(29, 30) - (WIDTH - RIGHT)).abs() < 1e-9);
    }

    #[test]
    fn the_highest_value_touches_the_top_of_the_scale() {
        let labels = days(3);
        let series = [Series { name: "S", class: "s", color: "#000", values: &[0, 4, 2] }];
        let svg = chart(&labels, &series);
        assert!(svg.contains("data-scale-top=\"4\""));
        assert!(svg.contains(&format!("cy=\"{TOP:.1}\" r=\"3\" data-label=\"05-02\" data-value=\"4\"")));
    }

    #[test]
    fn empty_data_draws_axes_and_says_so() {
        let svg = chart(&[], &[Series { name: "S", class: "s", color: "#000", values: &[] }]);
        well_formed(&svg).unwrap();
        assert!(svg.contains("class=\"empty\"") && svg.contains(">No data<"));
        assert!(svg.contains("class=\"axes\"") && !svg.contains("<polyline") && !svg.contains("class=\"point\""));
        assert!(svg.contains("data-total=\"0\""));
    }

    #[test]
    fn one_point_sits_in_the_middle_without_a_line() {
        let labels = days(1);
        let svg = chart(&labels, &[Series { name: "S", class: "s", color: "#000", values: &[3] }]);
        well_formed(&svg).unwrap();
        assert!(!svg.contains("<polyline"));
        assert_eq!(svg.matches("class=\"point\"").count(), 1);
        assert!(svg.contains(&format!("cx=\"{:.1}\"", LEFT + (WIDTH - LEFT - RIGHT) / 2.0)));
        assert!(svg.contains("data-value=\"3\"") && svg.contains("data-total=\"3\""));
    }

    #[test]
    fn hostile_names_stay_inside_their_attributes() {
        let labels = vec!["\"><script>".to_owned()];
        let svg =
            chart(&labels, &[Series { name: "<b>", class: "x\" onload=\"y", color: "red\"><script>", values: &[1] }]);
        well_formed(&svg).unwrap();
        assert!(!svg.contains("<script") && !svg.contains("<b>") && !svg.contains("onload=\""));
    }
}

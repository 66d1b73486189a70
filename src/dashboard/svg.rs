//! Charts as inline SVG, drawn in Rust (pure): line charts with axes, ticks and labels,
//! histograms with a threshold line, and horizontal bars. Every chart has a `<title>` and a
//! `<desc>` (what a screen reader says), and every series states its point count
//! (`data-points`), which is what the browser tests count.

use std::fmt::Write;

use super::html::esc;

const W: f64 = 420.0;
const H: f64 = 300.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;

/// One line of a chart.
pub struct Series<'a> {
    pub name: &'a str,
    /// A CSS class (colour and dash), e.g. `s0`, `s1`.
    pub class: &'a str,
    pub points: &'a [(f64, f64)],
}

fn scale(v: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
    if hi > lo {
        a + (v - lo) / (hi - lo) * (b - a)
    } else {
        a
    }
}

fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    (0..=4).map(|k| lo + (hi - lo) * k as f64 / 4.0).collect()
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn frame(out: &mut String, id: &str, title: &str, desc: &str, x_label: &str, y_label: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc><text class="chart-title" x="{}" y="16" text-anchor="middle">{}</text><text class="axis-label x-label" x="{}" y="{}" text-anchor="middle">{}</text><text class="axis-label y-label" x="14" y="{}" text-anchor="middle" transform="rotate(-90 14 {})">{}</text>"#,
        esc(title),
        esc(desc),
        W / 2.0,
        esc(title),
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0,
        esc(x_label),
        TOP + (H - TOP - BOTTOM) / 2.0,
        TOP + (H - TOP - BOTTOM) / 2.0,
        esc(y_label),
    );
}

fn axes(out: &mut String, x: (f64, f64), y: (f64, f64)) {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let _ = write!(
        out,
        r#"<g class="axes"><line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>"#
    );
    for t in ticks(x.0, x.1) {
        let px = scale(t, x.0, x.1, x0, x1);
        let _ = write!(
            out,
            r#"<line class="tick" x1="{px:.1}" y1="{y0}" x2="{px:.1}" y2="{}"/><text class="tick-label" x="{px:.1}" y="{}" text-anchor="middle">{}</text>"#,
            y0 + 4.0,
            y0 + 16.0,
            fmt_tick(t)
        );
    }
    for t in ticks(y.0, y.1) {
        let py = scale(t, y.0, y.1, y0, y1);
        let _ = write!(
            out,
            r#"<line class="tick" x1="{}" y1="{py:.1}" x2="{x0}" y2="{py:.1}"/><text class="tick-label" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 4.0,
            x0 - 6.0,
            py + 4.0,
            fmt_tick(t)
        );
    }
    out.push_str("</g>");
}

fn legend(out: &mut String, names: &[(&str, &str)]) {
    for (i, (name, class)) in names.iter().enumerate() {
        let y = TOP + 10.0 + 14.0 * i as f64;
        let _ = write!(
            out,
            r#"<g class="legend"><line class="{class}" x1="{}" y1="{y}" x2="{}" y2="{y}"/><text x="{}" y="{}">{}</text></g>"#,
            W - RIGHT - 120.0,
            W - RIGHT - 104.0,
            W - RIGHT - 100.0,
            y + 4.0,
            esc(name)
        );
    }
}

/// A line chart of `series` over fixed axis ranges.
#[allow(clippy::too_many_arguments)]
pub fn line_chart(
    id: &str,
    title: &str,
    desc: &str,
    x_label: &str,
    y_label: &str,
    x: (f64, f64),
    y: (f64, f64),
    series: &[Series],
) -> String {
    let mut out = String::with_capacity(4096);
    frame(&mut out, id, title, desc, x_label, y_label);
    axes(&mut out, x, y);
    for s in series {
        let _ = write!(
            out,
            r#"<polyline class="series {}" data-series="{}" data-points="{}" fill="none" points=""#,
            s.class,
            esc(s.name),
            s.points.len()
        );
        for (i, (px, py)) in s.points.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            let _ = write!(
                out,
                "{:.1},{:.1}",
                scale(*px, x.0, x.1, LEFT, W - RIGHT),
                scale(*py, y.0, y.1, H - BOTTOM, TOP)
            );
        }
        out.push_str("\"/>");
    }
    let names: Vec<(&str, &str)> = series.iter().map(|s| (s.name, s.class)).collect();
    legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

/// A histogram of two classes over shared bins, with a vertical threshold line.
pub fn histogram(
    id: &str,
    title: &str,
    desc: &str,
    edges: &[f64],
    classes: &[(&str, &str, &[u64])],
    threshold: f64,
) -> String {
    let mut out = String::with_capacity(8192);
    frame(
        &mut out,
        id,
        title,
        desc,
        "score",
        "share of the class's records",
    );
    let lo = edges.first().copied().unwrap_or(0.0);
    let hi = edges.last().copied().unwrap_or(1.0).max(threshold);
    let shares: Vec<Vec<f64>> = classes
        .iter()
        .map(|(_, _, c)| {
            let n: u64 = c.iter().sum();
            c.iter().map(|v| *v as f64 / n.max(1) as f64).collect()
        })
        .collect();
    let top = shares
        .iter()
        .flatten()
        .fold(0.0f64, |m, v| m.max(*v))
        .max(0.01);
    axes(&mut out, (lo, hi), (0.0, top));
    for ((name, class, _), share) in classes.iter().zip(&shares) {
        let _ = write!(
            out,
            r#"<g class="bars {class}" data-series="{}" data-points="{}">"#,
            esc(name),
            share.len()
        );
        for (k, v) in share.iter().enumerate() {
            let (a, b) = (edges[k], edges[k + 1]);
            let x0 = scale(a, lo, hi, LEFT, W - RIGHT);
            let x1 = scale(b, lo, hi, LEFT, W - RIGHT);
            let y = scale(*v, 0.0, top, H - BOTTOM, TOP);
            let _ = write!(
                out,
                r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"/>"#,
                (x1 - x0).max(0.5),
                (H - BOTTOM - y).max(0.0)
            );
        }
        out.push_str("</g>");
    }
    let tx = scale(threshold, lo, hi, LEFT, W - RIGHT);
    let _ = write!(
        out,
        r#"<line class="threshold" x1="{tx:.1}" y1="{}" x2="{tx:.1}" y2="{}"/><text class="threshold-label" x="{:.1}" y="{}">threshold {}</text>"#,
        H - BOTTOM,
        TOP,
        tx + 3.0,
        TOP + 10.0,
        fmt_tick(threshold)
    );
    let names: Vec<(&str, &str)> = classes.iter().map(|(n, c, _)| (*n, *c)).collect();
    legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

/// Horizontal bars: `(label, start, length)` on a shared axis (a run's steps over time).
pub fn bars(
    id: &str,
    title: &str,
    desc: &str,
    x_label: &str,
    rows: &[(String, f64, f64)],
) -> String {
    let h = TOP + BOTTOM + 22.0 * rows.len().max(1) as f64;
    let mut out = String::with_capacity(2048);
    let _ = write!(
        out,
        r#"<svg class="chart bars-chart" id="{id}" viewBox="0 0 {W} {h}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc><text class="chart-title" x="{}" y="16" text-anchor="middle">{}</text>"#,
        esc(title),
        esc(desc),
        W / 2.0,
        esc(title)
    );
    let end = rows
        .iter()
        .map(|(_, s, l)| s + l)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let left = 110.0;
    let _ = write!(out, r#"<g class="bars s0" data-points="{}">"#, rows.len());
    for (i, (label, start, len)) in rows.iter().enumerate() {
        let y = TOP + 22.0 * i as f64;
        let x0 = scale(*start, 0.0, end, left, W - RIGHT);
        let x1 = scale(start + len, 0.0, end, left, W - RIGHT);
        let _ = write!(
            out,
            r#"<text class="tick-label" x="{}" y="{}" text-anchor="end">{}</text><rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="16"><title>{}: {} ms</title></rect>"#,
            left - 6.0,
            y + 12.0,
            esc(label),
            (x1 - x0).max(1.0),
            esc(label),
            fmt_tick(*len)
        );
    }
    let _ = write!(
        out,
        r#"</g><text class="axis-label x-label" x="{}" y="{}" text-anchor="middle">{}</text></svg>"#,
        (left + W - RIGHT) / 2.0,
        h - 8.0,
        esc(x_label)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_chart_has_its_points_labels_and_text_equivalent() {
        let pts = [(0.0, 0.0), (0.2, 0.7), (1.0, 1.0)];
        let svg = line_chart(
            "roc",
            "ROC <v7>",
            "ROC-AUC 0.93",
            "false-positive rate",
            "true-positive rate",
            (0.0, 1.0),
            (0.0, 1.0),
            &[Series {
                name: "v7",
                class: "s0",
                points: &pts,
            }],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title id=\"roc-t\">ROC &lt;v7&gt;</title>"));
        assert!(svg.contains("data-points=\"3\""));
        assert!(
            svg.contains(">false-positive rate</text>")
                && svg.contains(">true-positive rate</text>")
        );
        let points = svg
            .split(" fill=\"none\" points=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(points.split(' ').count(), 3);
        assert!(points.starts_with("52.0,256.0"), "{points}");
    }

    #[test]
    fn a_histogram_draws_each_bin_and_the_threshold() {
        let svg = histogram(
            "h",
            "scores",
            "d",
            &[0.0, 1.0, 2.0],
            &[("normal", "s0", &[3, 1]), ("fraud", "s1", &[0, 2])],
            1.5,
        );
        assert_eq!(svg.matches("<rect").count(), 4);
        assert!(svg.contains("class=\"threshold\"") && svg.contains("threshold 1.50"));
    }
}

//! The `arca bench --svg` plot, drawn with plotters: bits per byte against compression speed,
//! one labelled point per method over all files together. Only in builds with the `plot`
//! feature (a default one).

use anyhow::Result;

use super::results::Total;

/// The plot: bits per byte against compression speed (log scale), one labelled point per
/// method over all files together. Methods with no data (empty inputs) are left out.
pub(super) fn plot(totals: &[Total], title: &str) -> Result<String> {
    use plotters::prelude::*;

    let points: Vec<(String, f64, f64, bool)> = totals
        .iter()
        .filter_map(|t| {
            let bpb = t.bits_per_byte()?;
            Some((
                t.method.label(),
                t.compress_speed(),
                bpb,
                t.method.is_arca(),
            ))
        })
        .collect();
    let (mut lo, mut hi, mut top) = (f64::INFINITY, 0.0f64, 0.0f64);
    for (_, speed, bpb, _) in &points {
        lo = lo.min(*speed);
        hi = hi.max(*speed);
        top = top.max(*bpb);
    }
    if points.is_empty() {
        (lo, hi, top) = (1.0, 10.0, 8.0);
    }
    // The axis starts at a power of ten, so its first tick is labelled, and leaves room for
    // the labels right of the fastest point.
    let (x0, x1) = (10f64.powf((lo / 1.5).log10().floor()), hi * 4.0);
    let y1 = (top * 1.15).max(0.5);

    let arca = RGBColor(200, 40, 40);
    let tool = RGBColor(40, 80, 200);
    let font = ("sans-serif", LABEL_HEIGHT).into_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d((x0..x1).log_scale(), 0.0..y1)?;
        chart
            .configure_mesh()
            .x_desc("compress speed, KB/s (log scale)")
            .y_desc("bits per byte (lower is better)")
            .x_label_formatter(&|v| format_axis(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .draw()?;
        let anchors: Vec<(i32, i32, usize)> = points
            .iter()
            .map(|(label, x, y, _)| {
                let (px, py) = chart.backend_coord(&(*x, *y));
                (px, py, label.chars().count())
            })
            .collect();
        let label_ys = place_labels(&anchors);
        for ((label, _, _, is_arca), (&(px, py, _), &ly)) in
            points.iter().zip(anchors.iter().zip(&label_ys))
        {
            let color = if *is_arca { arca } else { tool };
            let lx = px + LABEL_GAP;
            if ly != py {
                // The label had to move away from its point: a thin leader line joins them.
                root.draw(&PathElement::new(
                    vec![(px, py), (lx - 2, ly)],
                    color.mix(0.5).stroke_width(1),
                ))?;
            }
            root.draw(&Circle::new((px, py), 5, color.filled()))?;
            root.draw(&Text::new(
                label.clone(),
                (lx, ly - LABEL_HEIGHT / 2),
                font.clone(),
            ))?;
        }
        // Legend, bottom left, below the axis.
        let (_, h) = root.dim_in_pixel();
        let y = h as i32 - 18;
        let mut x = 20;
        for (text, color) in [("arca", arca), ("classic tools", tool)] {
            root.draw(&Circle::new((x, y), 5, color.filled()))?;
            root.draw(&Text::new(
                text,
                (x + 10, y - LABEL_HEIGHT / 2),
                font.clone(),
            ))?;
            x += 30 + text.len() as i32 * LABEL_HEIGHT * 6 / 10;
        }
        root.present()?;
    }
    Ok(svg)
}

/// Label font size in pixels; one label line is this tall.
const LABEL_HEIGHT: i32 = 14;
/// Pixels between a point and its label.
const LABEL_GAP: i32 = 9;

/// Places a label right of each point `(x, y, characters)` (pixels): returns the label's
/// vertical centre, the point's own height where that is free, else the nearest height, in
/// steps of a line, that overlaps no label placed before it (points are taken top to bottom).
fn place_labels(points: &[(i32, i32, usize)]) -> Vec<i32> {
    // A generous estimate of a sans-serif character's width at this size.
    let char_width = LABEL_HEIGHT * 6 / 10;
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by_key(|&i| (points[i].1, points[i].0));
    let mut placed: Vec<(i32, i32, i32)> = Vec::new(); // (x0, x1, centre y)
    let mut ys = vec![0; points.len()];
    for i in order {
        let (x, y, chars) = points[i];
        let x0 = x + LABEL_GAP;
        let x1 = x0 + char_width * chars as i32;
        let free = |cy: i32| {
            placed
                .iter()
                .all(|&(a0, a1, ay)| x1 < a0 || a1 < x0 || (cy - ay).abs() >= LABEL_HEIGHT + 2)
        };
        let step = LABEL_HEIGHT + 2;
        let cy = (0..)
            .flat_map(|k| [y + k * step, y - k * step])
            .find(|&cy| free(cy))
            .unwrap_or(y);
        placed.push((x0, x1, cy));
        ys[i] = cy;
    }
    ys
}

/// An axis label for a speed: no decimals from 10 up.
fn format_axis(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_do_not_overlap() {
        // Two points at nearly the same place, and one far away.
        let ys = place_labels(&[(100, 200, 10), (102, 203, 12), (600, 200, 5)]);
        assert_eq!(ys[0], 200);
        assert!((ys[1] - ys[0]).abs() > LABEL_HEIGHT, "{ys:?}");
        assert_eq!(ys[2], 200);
    }
}

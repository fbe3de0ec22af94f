//! The storyboard renderer: real PNG frames drawn from a structured [`Composition`].
//!
//! A location is drawn as the kind of place it is ([`scenery`]: a room with a window, water to
//! the horizon, a forest, a skyline...), at its time of day, in its weather, in its palette, with
//! details laid out from its name; the camera decides the framing (the angle moves the horizon,
//! a close-up comes in on the background and draws the figures large). Characters are labelled
//! figures placed by blocking and turned by the view the camera angle chose; props are labelled
//! shapes; a caption runs along the bottom. A composite iteration draws only its new layer on top of the previous image, so
//! each iteration visibly adds what it adds. Every frame is stored with a manifest (the
//! composition as drawn) that the local vision check reads.
//!
//! (Over 600 lines on purpose: the canvas, the framing and the figures share the geometry the
//! local vision check reads back (`figure_anchor`, `prop_anchor`, `figure_scale`); the scenery
//! already has its own file.)

use std::io::Cursor;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{ImageFormat, Rgb, RgbImage};

use crate::error::{ActivityError, Result};
use crate::model::{Composition, FigureSpec, PropSpec};

mod scenery;

pub use scenery::{Setting, default_palette, setting_of};

/// Frame size (16:9).
pub const WIDTH: u32 = 640;
/// Frame size (16:9).
pub const HEIGHT: u32 = 360;
/// Height of the caption bar.
const CAPTION_H: u32 = 34;

static FONT_BYTES: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("the bundled font is valid")
}

/// `#rrggbb` to a colour (grey when it does not parse).
pub fn parse_color(s: &str) -> Rgb<u8> {
    let h = s.trim().trim_start_matches('#');
    if h.len() == 6
        && let Ok(v) = u32::from_str_radix(h, 16)
    {
        return Rgb([(v >> 16) as u8, (v >> 8) as u8, v as u8]);
    }
    Rgb([128, 128, 128])
}

/// A stable 64-bit hash (FNV-1a): the same name always draws the same skyline.
pub fn stable_hash(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A colour derived from a name, for things the gather data gave no colour.
pub fn color_for(name: &str) -> String {
    let h = stable_hash(name);
    // Keep colours saturated and mid-bright so labels stay legible.
    let hue = (h % 360) as f32;
    let (r, g, b) = hsl_to_rgb(hue, 0.55, 0.5);
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn hsl_to_rgb(h: f32, s: f32, l: f32) -> (u8, u8, u8) {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match h as u32 {
        0..=59 => (c, x, 0.0),
        60..=119 => (x, c, 0.0),
        120..=179 => (0.0, c, x),
        180..=239 => (0.0, x, c),
        240..=299 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    (
        ((r + m) * 255.0) as u8,
        ((g + m) * 255.0) as u8,
        ((b + m) * 255.0) as u8,
    )
}

fn mix(a: Rgb<u8>, b: Rgb<u8>, t: f32) -> Rgb<u8> {
    let t = t.clamp(0.0, 1.0);
    Rgb([
        (a[0] as f32 * (1.0 - t) + b[0] as f32 * t) as u8,
        (a[1] as f32 * (1.0 - t) + b[1] as f32 * t) as u8,
        (a[2] as f32 * (1.0 - t) + b[2] as f32 * t) as u8,
    ])
}

/// A drawing surface.
pub struct Canvas {
    img: RgbImage,
}

impl Canvas {
    /// A blank frame.
    pub fn new(bg: Rgb<u8>) -> Self {
        Canvas {
            img: RgbImage::from_pixel(WIDTH, HEIGHT, bg),
        }
    }

    /// Start from an existing PNG (a previous iteration).
    pub fn from_png(bytes: &[u8]) -> Result<Self> {
        let img = image::load_from_memory_with_format(bytes, ImageFormat::Png)
            .map_err(|e| ActivityError::tool(format!("cannot read the base image: {e}")))?
            .to_rgb8();
        let img = if img.dimensions() == (WIDTH, HEIGHT) {
            img
        } else {
            image::imageops::resize(&img, WIDTH, HEIGHT, image::imageops::FilterType::Triangle)
        };
        Ok(Canvas { img })
    }

    /// Encode as PNG.
    pub fn png(&self) -> Result<Vec<u8>> {
        let mut out = Cursor::new(Vec::new());
        self.img
            .write_to(&mut out, ImageFormat::Png)
            .map_err(|e| ActivityError::tool(format!("cannot encode PNG: {e}")))?;
        Ok(out.into_inner())
    }

    /// The pixels.
    pub fn image(&self) -> &RgbImage {
        &self.img
    }

    fn put(&mut self, x: i32, y: i32, c: Rgb<u8>, alpha: f32) {
        if x < 0 || y < 0 || x >= WIDTH as i32 || y >= HEIGHT as i32 {
            return;
        }
        let p = self.img.get_pixel_mut(x as u32, y as u32);
        *p = mix(*p, c, alpha);
    }

    fn rect(&mut self, x0: i32, y0: i32, w: i32, h: i32, c: Rgb<u8>) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.put(x, y, c, 1.0);
            }
        }
    }

    fn ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, c: Rgb<u8>) {
        let (x0, x1) = ((cx - rx).floor() as i32, (cx + rx).ceil() as i32);
        let (y0, y1) = ((cy - ry).floor() as i32, (cy + ry).ceil() as i32);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let dy = (y as f32 + 0.5 - cy) / ry;
                let d = dx * dx + dy * dy;
                if d <= 1.0 {
                    // A soft edge over the outer 8 % keeps figures from looking jagged.
                    let a = ((1.0 - d) / 0.08).clamp(0.0, 1.0);
                    self.put(x, y, c, a.max(0.35));
                }
            }
        }
    }

    /// The part of an ellipse above the line `cut_y` (hair over a head).
    fn ellipse_above(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, cut_y: f32, c: Rgb<u8>) {
        let (x0, x1) = ((cx - rx).floor() as i32, (cx + rx).ceil() as i32);
        let (y0, y1) = ((cy - ry).floor() as i32, cut_y.ceil() as i32);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let dx = (x as f32 + 0.5 - cx) / rx;
                let dy = (y as f32 + 0.5 - cy) / ry;
                if dx * dx + dy * dy <= 1.0 && (y as f32) < cut_y {
                    self.put(x, y, c, 1.0);
                }
            }
        }
    }

    /// A circle's outline `t` thick (a lens of a pair of glasses).
    fn ring(&mut self, cx: f32, cy: f32, r: f32, t: f32, c: Rgb<u8>) {
        let reach = (r + t).ceil() as i32;
        for y in -reach..=reach {
            for x in -reach..=reach {
                let d = ((x as f32 + 0.5).powi(2) + (y as f32 + 0.5).powi(2)).sqrt();
                if (d - r).abs() <= t / 2.0 {
                    self.put(cx as i32 + x, cy as i32 + y, c, 1.0);
                }
            }
        }
    }

    /// An upright triangle: apex at (cx, top), base `w` wide, `h` tall.
    fn triangle(&mut self, cx: i32, top: i32, w: i32, h: i32, c: Rgb<u8>) {
        for dy in 0..h.max(1) {
            let half = (w as f32 / 2.0 * dy as f32 / h.max(1) as f32) as i32;
            self.rect(cx - half, top + dy, half * 2 + 1, 1, c);
        }
    }

    /// A soft pool of light fading from its centre.
    fn glow(&mut self, cx: f32, cy: f32, r: f32, c: Rgb<u8>, strength: f32) {
        let (x0, x1) = ((cx - r) as i32, (cx + r) as i32);
        let (y0, y1) = ((cy - r) as i32, (cy + r) as i32);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt() / r;
                if d < 1.0 {
                    self.put(x, y, c, strength * (1.0 - d));
                }
            }
        }
    }

    fn vgradient(&mut self, y0: u32, y1: u32, top: Rgb<u8>, bottom: Rgb<u8>) {
        for y in y0..y1.min(HEIGHT) {
            let t = (y - y0) as f32 / (y1 - y0).max(1) as f32;
            let c = mix(top, bottom, t);
            for x in 0..WIDTH {
                self.img.put_pixel(x, y, c);
            }
        }
    }

    /// Draw text with its top-left at (x, y); returns its width.
    pub fn text(&mut self, x: f32, y: f32, size: f32, color: Rgb<u8>, text: &str) -> f32 {
        let font = font();
        let scaled = font.as_scaled(PxScale::from(size));
        let mut caret = x;
        let baseline = y + scaled.ascent();
        let mut last = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(prev) = last {
                caret += scaled.kern(prev, id);
            }
            let glyph =
                id.with_scale_and_position(PxScale::from(size), ab_glyph::point(caret, baseline));
            caret += scaled.h_advance(id);
            last = Some(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                let (ox, oy) = (b.min.x as i32, b.min.y as i32);
                let mut pixels = vec![];
                outline.draw(|gx, gy, cov| pixels.push((ox + gx as i32, oy + gy as i32, cov)));
                for (px, py, cov) in pixels {
                    self.put(px, py, color, cov);
                }
            }
        }
        caret - x
    }

    fn text_width(size: f32, text: &str) -> f32 {
        let font = font();
        let scaled = font.as_scaled(PxScale::from(size));
        text.chars()
            .map(|c| scaled.h_advance(font.glyph_id(c)))
            .sum()
    }

    /// Text centred on `cx` with a dark backing so it reads on any background.
    fn label(&mut self, cx: f32, y: f32, size: f32, text: &str) {
        let w = Self::text_width(size, text);
        let x = cx - w / 2.0;
        for yy in (y as i32 - 2)..(y as i32 + size as i32 + 3) {
            for xx in (x as i32 - 4)..(x as i32 + w as i32 + 4) {
                self.put(xx, yy, Rgb([0, 0, 0]), 0.55);
            }
        }
        self.text(x, y, size, Rgb([255, 255, 255]), text);
    }
}

/// How the camera frames a composition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// Where the horizon (or an interior's floor line) sits, pixels from the top.
    pub horizon: u32,
    /// How large figures are drawn (1 at a medium shot).
    pub scale: f32,
    /// How far the background is magnified (1: not at all).
    pub zoom: f32,
}

/// The framing a composition's camera asks for: the angle moves the horizon (a high angle looks
/// down on more ground, a low one up at more sky), the shot sets figure size and background zoom.
pub fn frame(comp: &Composition) -> Frame {
    let horizon = match comp.camera_angle.as_deref() {
        Some("birds_eye") => 0.22,
        Some("high_angle") => 0.40,
        Some("low_angle") => 0.80,
        Some("worms_eye") => 0.88,
        _ => 0.62,
    };
    let (scale, zoom) = match comp.camera_shot.as_deref() {
        Some("extreme_wide") => (0.55, 1.0),
        Some("wide") => (0.75, 1.0),
        Some("close_up") => (1.8, 1.6),
        Some("extreme_close_up") => (2.4, 2.1),
        _ => (1.0, 1.0),
    };
    Frame {
        horizon: (HEIGHT as f32 * horizon) as u32,
        scale,
        zoom,
    }
}

/// Where a figure's body centre is drawn (the vision check samples it). A figure shorter or
/// taller than an adult ([`crate::model::Looks::height`]) keeps its feet on the same ground line.
pub fn figure_anchor(comp: &Composition, f: &FigureSpec) -> (u32, u32) {
    if comp.layers.first().map(String::as_str) == Some("character-view") {
        return character_view_anchor(f);
    }
    let fr = frame(comp);
    let cx = (f.x.clamp(0.05, 0.95) * WIDTH as f32) as u32;
    // Feet on the ground line, body centre above the props' row, whatever the framing.
    let cy = (fr.horizon as f32 + 8.0 * fr.scale + (fr.scale - 1.0) * 40.0)
        .clamp(70.0 * fr.scale.min(1.2), 280.0);
    (cx, (cy + FEET * fr.scale * (1.0 - height_of(f))) as u32)
}

/// How large a figure is drawn: the framing's scale times the figure's height (a head is `16 ×`
/// this tall, its centre `48 ×` this above [`figure_anchor`]).
pub fn figure_scale(comp: &Composition, f: &FigureSpec) -> f32 {
    if comp.layers.first().map(String::as_str) == Some("character-view") {
        return 1.3 * height_of(f);
    }
    frame(comp).scale * height_of(f)
}

/// Height of a figure against an adult's, kept to what reads in a frame.
fn height_of(f: &FigureSpec) -> f32 {
    f.looks
        .as_ref()
        .and_then(|l| l.height)
        .unwrap_or(1.0)
        .clamp(0.45, 1.3)
}

/// How far below its body centre a figure's feet are, at scale 1.
const FEET: f32 = 56.0;

/// Where a prop is drawn.
pub fn prop_anchor(_comp: &Composition, p: &PropSpec) -> (u32, u32) {
    let cx = (p.x.clamp(0.05, 0.95) * WIDTH as f32) as u32;
    let cy = HEIGHT - CAPTION_H - 24;
    (cx, cy)
}

fn draw_location(c: &mut Canvas, comp: &Composition) {
    let fr = frame(comp);
    let ground = comp
        .palette
        .first()
        .map(|s| parse_color(s))
        .unwrap_or(Rgb([90, 80, 70]));
    let ground_far =
        comp.palette
            .get(1)
            .map(|s| parse_color(s))
            .unwrap_or(mix(ground, Rgb([0, 0, 0]), 0.3));
    let name = comp.location.as_deref().unwrap_or("");
    let about = format!("{name} {}", comp.setting.as_deref().unwrap_or(""));
    let setting = setting_of(name, comp.setting.as_deref().unwrap_or(""));
    // A close-up sees a smaller piece of the background: draw the scene with its horizon where
    // the magnified crop will put it back, then magnify the middle.
    let centre = HEIGHT as f32 / 2.0;
    let pre_horizon = (centre + (fr.horizon as f32 - centre) / fr.zoom) as u32;
    scenery::draw(
        c,
        &scenery::Scene {
            setting,
            name,
            time: comp.time_of_day.as_deref().unwrap_or(""),
            weather: comp.weather.as_deref().unwrap_or("clear"),
            ground: (ground, ground_far),
            horizon: pre_horizon,
            waterfront: scenery::by_water(&about),
            stairs: scenery::has_stairs(&about),
        },
    );
    if fr.zoom > 1.01 {
        let (w, h) = (
            (WIDTH as f32 / fr.zoom) as u32,
            (HEIGHT as f32 / fr.zoom) as u32,
        );
        let crop =
            image::imageops::crop_imm(&c.img, (WIDTH - w) / 2, (HEIGHT - h) / 2, w, h).to_image();
        c.img =
            image::imageops::resize(&crop, WIDTH, HEIGHT, image::imageops::FilterType::Triangle);
    }
    match comp.lighting.as_deref() {
        Some("dramatic") | Some("silhouette") => {
            // Vignette.
            let (cx, cy) = (WIDTH as f32 / 2.0, HEIGHT as f32 / 2.0);
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    let dx = (x as f32 - cx) / cx;
                    let dy = (y as f32 - cy) / cy;
                    let d = (dx * dx + dy * dy).sqrt();
                    if d > 0.6 {
                        let p = c.img.get_pixel_mut(x, y);
                        *p = mix(*p, Rgb([0, 0, 0]), ((d - 0.6) * 0.9).min(0.7));
                    }
                }
            }
        }
        Some("backlit") => {
            c.ellipse(
                WIDTH as f32 * 0.5,
                fr.horizon as f32,
                160.0,
                40.0,
                Rgb([255, 240, 200]),
            );
        }
        _ => {}
    }
    if let Some(n) = &comp.location {
        c.label(
            80.0_f32.max(Canvas::text_width(14.0, n) / 2.0 + 10.0),
            8.0,
            14.0,
            n,
        );
    }
}

fn draw_figure(c: &mut Canvas, comp: &Composition, f: &FigureSpec, silhouette: bool) {
    let (cx, cy) = figure_anchor(comp, f);
    draw_figure_at(
        c,
        f,
        silhouette,
        cx as f32,
        cy as f32,
        figure_scale(comp, f),
    );
}

/// A figure: legs, body in the character's colour, head turned by the view; then what their
/// looks say: trousers, shoes, hair, a hat, glasses.
fn draw_figure_at(c: &mut Canvas, f: &FigureSpec, silhouette: bool, cx: f32, cy: f32, k: f32) {
    let dark = Rgb([15, 15, 20]);
    let looks = if silhouette { None } else { f.looks.as_ref() };
    let paint = |o: &Option<String>| o.as_deref().map(parse_color);
    let body = if silhouette {
        dark
    } else {
        parse_color(&f.color)
    };
    let skin = if silhouette {
        dark
    } else {
        Rgb([235, 200, 170])
    };
    let z = |v: f32| v * k;
    // Legs, shoes, body, head.
    let leg = looks
        .and_then(|l| paint(&l.legs))
        .unwrap_or(mix(body, Rgb([0, 0, 0]), 0.4));
    for x in [-12.0, 3.0] {
        c.rect(
            (cx + z(x)) as i32,
            (cy + z(20.0)) as i32,
            z(9.0).max(1.0) as i32,
            z(36.0) as i32,
            leg,
        );
    }
    if let Some(feet) = looks.and_then(|l| paint(&l.feet)) {
        // Boots come up the shin, so they show at any size.
        for x in [-14.0, 1.0] {
            c.rect(
                (cx + z(x)) as i32,
                (cy + z(42.0)) as i32,
                z(13.0).max(2.0) as i32,
                z(FEET - 42.0).max(2.0) as i32,
                feet,
            );
        }
    }
    c.ellipse(cx, cy, z(22.0), z(34.0), body);
    let hy = cy - z(48.0);
    c.ellipse(cx, hy, z(15.0), z(16.0), skin);
    let hair = looks.and_then(|l| paint(&l.hair));
    if let Some(h) = hair
        && f.view != "back"
    {
        // The top of the head, above the brow.
        c.ellipse_above(cx, hy - z(1.0), z(16.5), z(17.5), hy - z(7.0), h);
    }
    // Facing: the view decides where the eyes are, so a turned character looks turned.
    let eye = Rgb([20, 20, 30]);
    let mut eyes: Vec<f32> = vec![];
    if !silhouette {
        let e = |c: &mut Canvas, dx: f32, dy: f32, rx: f32, ry: f32, col: Rgb<u8>| {
            c.ellipse(cx + z(dx), hy + z(dy), z(rx), z(ry), col)
        };
        eyes = match f.view.as_str() {
            "front" => vec![-5.0, 5.0],
            "back" => vec![],
            "left_side" => vec![-9.0],
            "right_side" => vec![9.0],
            "three_quarter_left" => vec![-8.0, 1.0],
            _ => vec![-1.0, 8.0],
        };
        match f.view.as_str() {
            "back" => e(
                c,
                0.0,
                -3.0,
                15.0,
                12.0,
                hair.unwrap_or(mix(body, Rgb([0, 0, 0]), 0.6)),
            ),
            "left_side" => e(c, -16.0, 2.0, 3.0, 2.0, skin),
            "right_side" => e(c, 16.0, 2.0, 3.0, 2.0, skin),
            _ => {}
        }
        for &dx in &eyes {
            e(c, dx, -2.0, 2.0, 2.5, eye);
        }
    }
    if looks.is_some_and(|l| l.glasses) && !eyes.is_empty() {
        let frame_col = Rgb([25, 22, 20]);
        for &dx in &eyes {
            c.ring(cx + z(dx), hy - z(2.0), z(4.6), z(1.3).max(1.0), frame_col);
        }
        if eyes.len() == 2 {
            // The bridge between the lenses.
            let (a, b) = (eyes[0].min(eyes[1]) + 4.6, eyes[0].max(eyes[1]) - 4.6);
            c.rect(
                (cx + z(a)) as i32,
                (hy - z(2.6)) as i32,
                (z(b - a)).max(1.0) as i32,
                z(1.4).max(1.0) as i32,
                frame_col,
            );
        }
    }
    if let Some(h) = looks.and_then(|l| paint(&l.hat)) {
        // Brim, then crown.
        c.rect(
            (cx - z(19.0)) as i32,
            (hy - z(15.0)) as i32,
            z(38.0) as i32,
            z(4.0).max(2.0) as i32,
            h,
        );
        c.rect(
            (cx - z(12.0)) as i32,
            (hy - z(27.0)) as i32,
            z(24.0) as i32,
            z(12.0) as i32,
            h,
        );
    }
    let label_y = (cy + z(60.0)).min(HEIGHT as f32 - CAPTION_H as f32 - 16.0);
    c.label(cx, label_y, 12.0, &f.name);
}

fn draw_prop(c: &mut Canvas, comp: &Composition, p: &PropSpec) {
    let (cx, cy) = prop_anchor(comp, p);
    let col = parse_color(&p.color);
    // A diamond.
    for dy in -12i32..=12 {
        let half = 12 - dy.abs();
        for dx in -half..=half {
            c.put(cx as i32 + dx, cy as i32 + dy, col, 1.0);
        }
    }
    c.label(cx as f32, cy as f32 + 14.0, 11.0, &p.name);
}

fn draw_caption(c: &mut Canvas, caption: &str, layers: &[String]) {
    let y0 = HEIGHT - CAPTION_H;
    for y in y0..HEIGHT {
        for x in 0..WIDTH {
            let p = c.img.get_pixel_mut(x, y);
            *p = mix(*p, Rgb([0, 0, 0]), 0.8);
        }
    }
    let max = WIDTH as f32 - 16.0;
    let mut text = caption.replace('\n', " ");
    if Canvas::text_width(12.0, &text) > max {
        let mut chars: Vec<char> = text.chars().collect();
        while !chars.is_empty()
            && Canvas::text_width(12.0, &format!("{}…", chars.iter().collect::<String>())) > max
        {
            chars.pop();
        }
        text = format!("{}…", chars.into_iter().collect::<String>().trim_end());
    }
    c.text(8.0, y0 as f32 + 10.0, 12.0, Rgb([240, 240, 240]), &text);
    if !layers.is_empty() {
        let tag = layers
            .iter()
            .enumerate()
            .map(|(i, l)| format!("L{} {l}", i + 1))
            .collect::<Vec<_>>()
            .join(" · ");
        let w = Canvas::text_width(10.0, &tag);
        c.label(WIDTH as f32 - w / 2.0 - 10.0, 8.0, 10.0, &tag);
    }
}

/// Draw a whole composition on a fresh frame.
pub fn render(comp: &Composition) -> Canvas {
    if comp.layers.first().map(String::as_str) == Some("character-view")
        && let Some(f) = comp.characters.first()
    {
        return render_character_view(f, &comp.caption);
    }
    let mut c = Canvas::new(Rgb([30, 30, 36]));
    if comp.location.is_some() {
        draw_location(&mut c, comp);
    } else {
        c.vgradient(0, HEIGHT, Rgb([215, 215, 222]), Rgb([160, 160, 170]));
    }
    let silhouette = comp.lighting.as_deref() == Some("silhouette");
    for f in &comp.characters {
        draw_figure(&mut c, comp, f, silhouette);
    }
    for p in &comp.props {
        draw_prop(&mut c, comp, p);
    }
    draw_caption(&mut c, &comp.caption, &comp.layers);
    c
}

/// Draw only what `after` adds to `before`, on top of the previous frame.
pub fn render_layer(base: Canvas, before: &Composition, after: &Composition) -> Canvas {
    let mut c = base;
    if before.location.is_none() && after.location.is_some() {
        return render(after);
    }
    let silhouette = after.lighting.as_deref() == Some("silhouette");
    for f in after
        .characters
        .iter()
        .filter(|f| !before.characters.iter().any(|b| b.id == f.id))
    {
        draw_figure(&mut c, after, f, silhouette);
    }
    for p in after
        .props
        .iter()
        .filter(|p| !before.props.iter().any(|b| b.name == p.name))
    {
        draw_prop(&mut c, after, p);
    }
    draw_caption(&mut c, &after.caption, &after.layers);
    c
}

/// Where a character sheet draws its figure's body centre.
pub fn character_view_anchor(f: &FigureSpec) -> (u32, u32) {
    (
        WIDTH / 2,
        (223.0 + FEET * 1.3 * (1.0 - height_of(f))) as u32,
    )
}

/// A character sheet view: one figure, centred, on a neutral backdrop, drawn larger than in a
/// scene so the looks read.
pub fn render_character_view(f: &FigureSpec, note: &str) -> Canvas {
    let mut c = Canvas::new(Rgb([200, 200, 206]));
    c.vgradient(0, HEIGHT, Rgb([215, 215, 222]), Rgb([160, 160, 170]));
    let (cx, cy) = character_view_anchor(f);
    let k = 1.3 * height_of(f);
    draw_figure_at(&mut c, f, false, cx as f32, cy as f32, k);
    c.label(
        WIDTH as f32 / 2.0,
        12.0,
        16.0,
        &format!("{} — {}", f.name, f.view.replace('_', " ")),
    );
    draw_caption(&mut c, note, &[]);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp() -> Composition {
        Composition {
            location: Some("Harbor Market".into()),
            time_of_day: Some("evening".into()),
            lighting: Some("dramatic".into()),
            palette: vec!["#6b4f3a".into(), "#3a2f28".into()],
            characters: vec![FigureSpec {
                id: "mira".into(),
                name: "Mira".into(),
                x: 0.3,
                view: "front".into(),
                color: "#2a9d8f".into(),
                looks: None,
            }],
            props: vec![PropSpec {
                name: "Lantern".into(),
                x: 0.7,
                color: "#e9c46a".into(),
            }],
            caption: "Mira finds the lantern".into(),
            layers: vec!["location".into(), "characters".into(), "props".into()],
            ..Default::default()
        }
    }

    #[test]
    fn figures_are_where_the_manifest_says() {
        let c = render(&comp());
        let (x, y) = figure_anchor(&comp(), &comp().characters[0]);
        let p = c.image().get_pixel(x, y);
        let want = parse_color("#2a9d8f");
        let d: i32 = (0..3).map(|i| (p[i] as i32 - want[i] as i32).abs()).sum();
        assert!(d < 30, "{p:?} vs {want:?}");
        assert!(!c.png().unwrap().is_empty());
    }

    #[test]
    fn a_layer_changes_only_what_it_adds() {
        let mut before = comp();
        before.props.clear();
        let base = render(&before);
        let base_png = base.png().unwrap();
        let after = comp();
        let layered = render_layer(Canvas::from_png(&base_png).unwrap(), &before, &after);
        let (px, py) = prop_anchor(&after, &after.props[0]);
        assert_ne!(
            base.image().get_pixel(px, py),
            layered.image().get_pixel(px, py)
        );
        let (fx, fy) = figure_anchor(&after, &after.characters[0]);
        assert_eq!(
            base.image().get_pixel(fx, fy),
            layered.image().get_pixel(fx, fy)
        );
    }

    #[test]
    fn colors() {
        assert_eq!(parse_color("#ff0080"), Rgb([255, 0, 128]));
        assert_eq!(parse_color("nonsense"), Rgb([128, 128, 128]));
        assert_eq!(color_for("Mira"), color_for("Mira"));
        assert!(color_for("Mira").starts_with('#'));
    }
}

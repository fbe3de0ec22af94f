//! Backgrounds: what kind of place a location is, and how it looks at a time of day, in a
//! weather, from a camera.
//!
//! The kind of place comes from the location's name, then its description ("Lantern Room" is a
//! room; "a spiral of worn stone steps inside the tower" is inside). Each kind has its own
//! drawing; within a kind, the name's hash lays out the details, so two places never share a
//! picture. Weather is drawn on the background only, never over the figures, so the vision check
//! still finds every character in its own colour.
//!
//! (Over 600 lines on purpose: each kind of place is a drawing routine over the same `Scene`
//! description; splitting them would scatter the shared palette and horizon logic.)

use image::Rgb;

use super::{Canvas, HEIGHT, WIDTH, mix, stable_hash};
use crate::local::reader::{first_of, words};

/// The kind of place a location is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// A room, hall, cellar, cave: walls, a floor, a window on the sky.
    Interior,
    /// Shore, sea, harbour, lake, river: water to the horizon.
    Water,
    /// Forest, woods, jungle: trees.
    Forest,
    /// Field, meadow, farm, garden, park: rolling ground.
    Field,
    /// Desert, dunes, canyon: sand.
    Desert,
    /// Mountains, cliffs, peaks.
    Mountain,
    /// Street, town, market, square, rooftop: a skyline.
    Street,
    /// Anything else: open ground under the sky.
    Open,
}

#[rustfmt::skip]
const INTERIOR: &[&str] = &[
    "inside", "interior", "indoors", "kitchen", "room", "bedroom", "hall", "hallway", "corridor",
    "cellar", "basement", "attic", "library", "office", "study", "tavern", "inn", "pub", "shop",
    "store", "chapel", "church", "temple", "stair", "stairs", "staircase", "stairwell", "cave",
    "cavern", "tunnel", "mine", "classroom", "cell", "prison", "lab", "laboratory", "factory",
    "warehouse", "workshop", "studio", "theatre", "theater", "throne", "crypt", "vault", "cockpit",
    "bunker", "barn", "stable", "cabin", "cottage", "hut", "house", "home", "apartment", "flat",
    "loft", "parlour", "parlor", "ballroom", "chamber", "dungeon", "garage", "bathroom", "lounge",
    "bar", "restaurant", "cafe", "diner", "hospital", "ward", "station",
];
#[rustfmt::skip]
const WATER: &[&str] = &[
    "sea", "ocean", "shore", "beach", "coast", "harbor", "harbour", "port", "dock", "docks",
    "pier", "quay", "wharf", "bay", "lake", "river", "waterfront", "seaside", "lagoon", "cove",
    "boat", "ship", "deck", "waves", "estuary", "marina", "seafront", "canal",
];
#[rustfmt::skip]
const FOREST: &[&str] = &[
    "forest", "woods", "wood", "woodland", "grove", "jungle", "orchard", "trees", "thicket",
];
#[rustfmt::skip]
const DESERT: &[&str] = &[
    "desert", "dune", "dunes", "sand", "sands", "wasteland", "canyon", "mesa",
];
#[rustfmt::skip]
const MOUNTAIN: &[&str] = &[
    "mountain", "mountains", "peak", "peaks", "cliff", "cliffs", "ridge", "summit", "pass",
    "glacier", "crag", "volcano", "alps",
];
#[rustfmt::skip]
const FIELD: &[&str] = &[
    "field", "fields", "meadow", "farm", "farmland", "garden", "park", "hill", "hills", "valley",
    "pasture", "prairie", "plain", "plains", "moor", "heath", "countryside", "vineyard",
];
#[rustfmt::skip]
const STREET: &[&str] = &[
    "street", "streets", "road", "alley", "square", "market", "marketplace", "city", "town",
    "village", "rooftop", "roof", "plaza", "courtyard", "bridge", "avenue", "downtown",
    "boulevard", "lane", "crossroads", "skyline", "district",
];
/// Words that put a named building outside ("outside the lighthouse").
#[rustfmt::skip]
const OUTSIDE: &[&str] = &[
    "outside", "exterior", "outdoors", "in front of", "beneath the sky",
];

fn setting_in(text: &str) -> Option<Setting> {
    if first_of(text, OUTSIDE).is_some() {
        return None;
    }
    // The word that comes first in the text decides ("harbour office" is an office? No: the
    // head noun comes last in English names, so the last recognised word wins).
    let ws = words(text);
    let mut found: Option<(usize, Setting)> = None;
    for (set, kind) in [
        (INTERIOR, Setting::Interior),
        (WATER, Setting::Water),
        (FOREST, Setting::Forest),
        (DESERT, Setting::Desert),
        (MOUNTAIN, Setting::Mountain),
        (FIELD, Setting::Field),
        (STREET, Setting::Street),
    ] {
        if let Some(at) = ws.iter().rposition(|w| set.contains(&w.as_str()))
            && found.is_none_or(|(f, _)| at > f)
        {
            found = Some((at, kind));
        }
    }
    found.map(|(_, k)| k)
}

/// The kind of place: from the name first, then from the description.
pub fn setting_of(name: &str, description: &str) -> Setting {
    if first_of(description, OUTSIDE).is_some() && setting_in(name) == Some(Setting::Interior) {
        // "Lighthouse" named, "outside the lighthouse" described: an exterior.
        return Setting::Open;
    }
    setting_in(name)
        .or_else(|| setting_in(description))
        .unwrap_or(Setting::Open)
}

impl Setting {
    /// Whether it is indoors.
    pub fn is_interior(self) -> bool {
        self == Setting::Interior
    }

    /// The colours a place of this kind is drawn in when the gather data gave none.
    fn base(self) -> [(u8, u8, u8); 2] {
        match self {
            Setting::Interior => [(120, 92, 70), (70, 52, 40)],
            Setting::Water => [(40, 90, 130), (20, 50, 80)],
            Setting::Forest => [(50, 90, 45), (25, 50, 30)],
            Setting::Field => [(110, 150, 70), (70, 110, 50)],
            Setting::Desert => [(215, 180, 120), (180, 140, 90)],
            Setting::Mountain => [(110, 110, 120), (70, 72, 85)],
            Setting::Street => [(95, 90, 88), (60, 58, 60)],
            Setting::Open => [(120, 115, 85), (85, 80, 60)],
        }
    }
}

/// A palette for a place the gather data gave no colours: its kind's colours, shifted by its
/// name so that two places of one kind still differ.
pub fn default_palette(name: &str, description: &str) -> Vec<String> {
    let h = stable_hash(&name.to_lowercase());
    setting_of(name, description)
        .base()
        .iter()
        .enumerate()
        .map(|(i, (r, g, b))| {
            let j = |v: u8, s: u32| {
                let d = ((h >> (s + i as u32 * 3)) % 41) as i32 - 20;
                (v as i32 + d).clamp(0, 255) as u8
            };
            format!("#{:02x}{:02x}{:02x}", j(*r, 0), j(*g, 8), j(*b, 16))
        })
        .collect()
}

/// Sky colours (top, horizon) for a time of day.
pub(super) fn sky_colors(time_of_day: &str) -> (Rgb<u8>, Rgb<u8>) {
    match time_of_day {
        "dawn" => (Rgb([70, 60, 120]), Rgb([250, 170, 140])),
        "morning" => (Rgb([110, 170, 230]), Rgb([220, 235, 250])),
        "afternoon" => (Rgb([60, 130, 220]), Rgb([170, 210, 245])),
        "evening" => (Rgb([90, 50, 110]), Rgb([250, 140, 70])),
        "night" => (Rgb([10, 14, 40]), Rgb([35, 45, 90])),
        "twilight" => (Rgb([40, 30, 80]), Rgb([150, 90, 150])),
        _ => (Rgb([120, 120, 130]), Rgb([190, 190, 200])),
    }
}

fn weathered_sky(time: &str, weather: &str) -> (Rgb<u8>, Rgb<u8>) {
    let (top, bottom) = sky_colors(time);
    let grey = Rgb([120, 124, 132]);
    match weather {
        "cloudy" => (mix(top, grey, 0.45), mix(bottom, grey, 0.45)),
        "rainy" => (mix(top, Rgb([70, 75, 85]), 0.6), mix(bottom, grey, 0.6)),
        "stormy" => (
            mix(top, Rgb([25, 25, 35]), 0.7),
            mix(bottom, Rgb([60, 60, 75]), 0.7),
        ),
        "snowy" => (
            mix(top, mix(fog_colour(time), Rgb([200, 205, 215]), 0.3), 0.5),
            mix(
                bottom,
                mix(fog_colour(time), Rgb([230, 232, 238]), 0.3),
                0.5,
            ),
        ),
        "foggy" => (
            mix(top, fog_colour(time), 0.6),
            mix(bottom, fog_colour(time), 0.6),
        ),
        _ => (top, bottom),
    }
}

/// The colour of mist at a time of day: pale by day, dark blue-grey at night (a foggy night is
/// still a night).
fn fog_colour(time: &str) -> Rgb<u8> {
    match time {
        "night" => Rgb([48, 54, 72]),
        "twilight" => Rgb([92, 86, 112]),
        "evening" | "dawn" => Rgb([176, 160, 164]),
        _ => Rgb([215, 215, 220]),
    }
}

/// What a background needs to know.
pub(super) struct Scene<'a> {
    /// Kind of place.
    pub setting: Setting,
    /// Location name (its hash lays out the details).
    pub name: &'a str,
    /// Time of day.
    pub time: &'a str,
    /// Weather.
    pub weather: &'a str,
    /// Ground colours (near, far).
    pub ground: (Rgb<u8>, Rgb<u8>),
    /// The horizon, pixels from the top.
    pub horizon: u32,
    /// The place is by the water (a harbour market, a seaside town): water shows behind it.
    pub waterfront: bool,
    /// The place has stairs (drawn in interiors).
    pub stairs: bool,
}

/// Whether a location's name or description puts it by the water.
pub(super) fn by_water(text: &str) -> bool {
    words(text).iter().any(|w| WATER.contains(&w.as_str()))
}

/// Whether a location's name or description has stairs in it.
pub(super) fn has_stairs(text: &str) -> bool {
    words(text)
        .iter()
        .any(|w| ["stair", "stairs", "staircase", "stairwell", "steps"].contains(&w.as_str()))
}

/// Draw the background of a scene.
pub(super) fn draw(c: &mut Canvas, s: &Scene<'_>) {
    match s.setting {
        Setting::Interior => interior(c, s),
        _ => exterior(c, s),
    }
}

fn exterior(c: &mut Canvas, s: &Scene<'_>) {
    let gy = s.horizon.clamp(20, HEIGHT - 20);
    let (top, bottom) = weathered_sky(s.time, s.weather);
    c.vgradient(0, gy, top, bottom);
    sun_or_moon(c, s, gy);
    let (near, far) = s.ground;
    let mut h = stable_hash(s.name);
    match s.setting {
        Setting::Water => {
            // Water from the horizon, a strip of shore at the front, waves as lighter lines.
            let sea_far = mix(Rgb([30, 70, 110]), bottom, 0.35);
            let sea_near = Rgb([20, 45, 80]);
            let shore_y = gy + (HEIGHT - gy) * 3 / 4;
            c.vgradient(gy, shore_y, sea_far, sea_near);
            c.vgradient(shore_y, HEIGHT, far, near);
            let wave = mix(sea_far, Rgb([235, 240, 245]), 0.45);
            let mut y = gy + 6;
            while y < shore_y {
                let off = (h % 40) as i32;
                let mut x = -off;
                while x < WIDTH as i32 {
                    c.rect(x, y as i32, 18 + (y - gy) as i32 / 4, 2, wave);
                    x += 46 + (y - gy) as i32 / 2;
                }
                h = h.rotate_left(7);
                y += 9 + (y - gy) / 6;
            }
        }
        Setting::Forest => {
            c.vgradient(gy, HEIGHT, far, near);
            let trunk = Rgb([60, 42, 30]);
            let leaves = mix(far, Rgb([20, 60, 25]), 0.6);
            let mut x = -((h % 30) as i32);
            while x < WIDTH as i32 {
                let th = 60 + (h % 70) as i32;
                let base = gy as i32 + 4 + ((h >> 9) % 14) as i32;
                c.rect(x + 10, base - th / 3, 6, th / 3, trunk);
                c.triangle(x + 13, base - th, 24 + (h % 10) as i32, th * 2 / 3, leaves);
                h = h.rotate_left(11) ^ 0x9e3779b97f4a7c15;
                x += 26 + (h % 22) as i32;
            }
        }
        Setting::Field => {
            c.vgradient(gy, HEIGHT, far, near);
            // Rolling hills on the horizon.
            let hill = mix(far, Rgb([40, 70, 40]), 0.3);
            let (a, f) = (10.0 + (h % 14) as f32, 0.008 + (h % 9) as f32 * 0.002);
            for x in 0..WIDTH {
                let top = gy as f32 - a * (1.0 + (x as f32 * f + (h % 7) as f32).sin());
                c.rect(x as i32, top as i32, 1, gy as i32 - top as i32 + 1, hill);
            }
            // Furrows.
            let line = mix(near, Rgb([0, 0, 0]), 0.15);
            let mut y = gy + 10;
            while y < HEIGHT {
                c.rect(0, y as i32, WIDTH as i32, 1, line);
                y += 8 + (y - gy) / 5;
            }
        }
        Setting::Desert => {
            c.vgradient(gy, HEIGHT, far, near);
            let dune = mix(near, Rgb([255, 230, 180]), 0.25);
            for k in 0..3u32 {
                let a = 12.0 + ((h >> (k * 5)) % 16) as f32;
                let base = gy + 18 + k * 30;
                let ph = ((h >> (k * 7)) % 100) as f32 / 10.0;
                let shade = mix(dune, Rgb([150, 110, 70]), k as f32 * 0.15);
                for x in 0..WIDTH {
                    let top = base as f32 - a * (x as f32 * 0.012 + ph).sin().abs();
                    c.rect(x as i32, top as i32, 1, 3 + k as i32 * 2, shade);
                }
            }
        }
        Setting::Mountain => {
            c.vgradient(gy, HEIGHT, far, near);
            let rock = mix(far, Rgb([60, 60, 75]), 0.5);
            let snow = Rgb([240, 242, 248]);
            let mut x = -((h % 60) as i32);
            while x < WIDTH as i32 {
                let w = 120 + (h % 90) as i32;
                let ht = 90 + ((h >> 8) % 80) as i32;
                c.triangle(x + w / 2, gy as i32 - ht, w, ht, rock);
                c.triangle(x + w / 2, gy as i32 - ht, w / 4, ht / 4, snow);
                h = h.rotate_left(13) ^ 0x51_7cc1_b727_220a;
                x += w * 2 / 3;
            }
        }
        Setting::Street => {
            c.vgradient(gy, HEIGHT, far, near);
            if s.waterfront {
                water_band(c, gy, bottom);
            }
            skyline(c, s, gy, far);
        }
        _ => {
            c.vgradient(gy, HEIGHT, far, near);
            if s.waterfront {
                water_band(c, gy, bottom);
            }
            // A few distant shapes (rocks, posts) so open ground is not empty.
            let shade = mix(far, Rgb([0, 0, 0]), 0.35);
            for _ in 0..4 {
                let x = (h % WIDTH as u64) as i32;
                c.ellipse(
                    x as f32,
                    gy as f32,
                    14.0 + (h >> 9) as f32 % 20.0,
                    6.0,
                    shade,
                );
                h = h.rotate_left(17) ^ 0x9e3779b97f4a7c15;
            }
        }
    }
    weather_over(c, s, 0, HEIGHT);
}

/// A band of sea along the horizon, for places by the water.
fn water_band(c: &mut Canvas, gy: u32, sky: Rgb<u8>) {
    let band = (HEIGHT - gy) / 3;
    c.vgradient(
        gy,
        gy + band,
        mix(Rgb([30, 80, 120]), sky, 0.3),
        Rgb([20, 55, 90]),
    );
    let wave = Rgb([200, 220, 235]);
    let mut y = gy + 4;
    while y < gy + band {
        let mut x = (y * 7 % 23) as i32;
        while x < WIDTH as i32 {
            c.rect(x, y as i32, 14, 1, wave);
            x += 40;
        }
        y += 6;
    }
}

fn skyline(c: &mut Canvas, s: &Scene<'_>, gy: u32, far: Rgb<u8>) {
    let mut h = stable_hash(s.name);
    let shade = mix(far, Rgb([0, 0, 0]), 0.45);
    let lit_hours = matches!(s.time, "night" | "evening" | "twilight");
    let mut x = 0i32;
    while x < WIDTH as i32 {
        let w = 30 + (h % 60) as i32;
        let bh = 20 + ((h >> 8) % 90) as i32;
        c.rect(x, gy as i32 - bh, w - 4, bh, shade);
        if lit_hours {
            let lit = Rgb([250, 220, 120]);
            let mut wy = gy as i32 - bh + 6;
            while wy < gy as i32 - 6 {
                if (h >> (wy % 17)) & 1 == 1 {
                    c.rect(x + 6, wy, 5, 5, lit);
                }
                wy += 12;
            }
        }
        h = h.rotate_left(13) ^ 0x9e3779b97f4a7c15;
        x += w;
    }
}

fn sun_or_moon(c: &mut Canvas, s: &Scene<'_>, gy: u32) {
    if matches!(s.weather, "rainy" | "stormy" | "foggy" | "snowy") {
        return;
    }
    let h = stable_hash(s.name);
    let x = 80.0 + (h % (WIDTH as u64 - 160)) as f32;
    let (y, r, col) = match s.time {
        "dawn" => (gy as f32 - 6.0, 22.0, Rgb([255, 200, 150])),
        "morning" => (gy as f32 * 0.45, 18.0, Rgb([255, 245, 210])),
        "afternoon" => (gy as f32 * 0.22, 16.0, Rgb([255, 250, 225])),
        "evening" => (gy as f32 - 12.0, 24.0, Rgb([255, 150, 80])),
        "night" | "twilight" => (gy as f32 * 0.25, 12.0, Rgb([235, 235, 220])),
        _ => return,
    };
    if y > 8.0 {
        c.ellipse(x, y, r, r, col);
    }
    if s.time == "night" && s.weather == "clear" {
        let mut k = h;
        for _ in 0..40 {
            let (sx, sy) = (
                (k % WIDTH as u64) as i32,
                ((k >> 12) % gy.max(1) as u64) as i32,
            );
            c.rect(sx, sy, 2, 2, Rgb([230, 230, 240]));
            k = k.rotate_left(19) ^ 0x2545_f491_4f6c_dd1d;
        }
    }
}

/// Rain, snow, fog and lightning over rows `y0..y1` (background only).
fn weather_over(c: &mut Canvas, s: &Scene<'_>, y0: u32, y1: u32) {
    let mut h = stable_hash(s.name) ^ 0xdead_beef;
    match s.weather {
        "rainy" | "stormy" => {
            let streak = Rgb([190, 200, 215]);
            let n = if s.weather == "stormy" { 420 } else { 260 };
            for _ in 0..n {
                let x = (h % WIDTH as u64) as i32;
                let y = y0 as i32 + ((h >> 16) % (y1 - y0).max(1) as u64) as i32;
                for k in 0..10 {
                    c.put(x - k / 3, y + k, streak, 0.55);
                }
                h = h.rotate_left(21) ^ 0x9e3779b97f4a7c15;
            }
            if s.weather == "stormy" {
                // A bolt of lightning.
                let mut x = 100 + (h % (WIDTH as u64 - 200)) as i32;
                let mut y = y0 as i32;
                let bolt = Rgb([250, 250, 255]);
                while y < (y0 as i32 + (y1 - y0) as i32 / 2) {
                    c.rect(x, y, 3, 12, bolt);
                    y += 12;
                    x += if (h >> (y % 13)) & 1 == 1 { 6 } else { -6 };
                }
            }
        }
        "snowy" => {
            for _ in 0..320 {
                let x = (h % WIDTH as u64) as f32;
                let y = y0 as f32 + ((h >> 16) % (y1 - y0).max(1) as u64) as f32;
                c.ellipse(x, y, 1.8, 1.8, Rgb([250, 250, 252]));
                h = h.rotate_left(23) ^ 0x9e3779b97f4a7c15;
            }
        }
        "foggy" => {
            for y in y0..y1 {
                let t = 0.35 + 0.3 * ((y as f32 / HEIGHT as f32) - 0.3).abs();
                for x in 0..WIDTH {
                    c.put(x as i32, y as i32, fog_colour(s.time), t);
                }
            }
        }
        _ => {}
    }
}

fn interior(c: &mut Canvas, s: &Scene<'_>) {
    let (near, far) = s.ground;
    // How much light the room has: daylight through the window, lamps at night.
    let light = match s.time {
        "night" => 0.45,
        "evening" | "twilight" => 0.65,
        "dawn" => 0.75,
        _ => 0.95,
    };
    let r = Room {
        h: stable_hash(s.name),
        wall: mix(Rgb([0, 0, 0]), mix(far, Rgb([230, 220, 200]), 0.2), light),
        floor_y: s.horizon.clamp(60, HEIGHT - 30),
        light,
        near,
        far,
    };
    c.vgradient(0, r.floor_y, mix(r.wall, Rgb([0, 0, 0]), 0.25), r.wall);
    room_walls(c, &r);
    room_floor(c, &r);
    let (wx, wy, ww) = room_window(c, s, &r);
    room_furniture(c, s, &r, wx, wy, ww);
}

/// A room as `interior` draws it: a hash of its name (its finish, window, furniture), its wall
/// colour, where the floor meets the back wall, how much light it has, its ground colours.
struct Room {
    h: u64,
    wall: Rgb<u8>,
    floor_y: u32,
    light: f32,
    near: Rgb<u8>,
    far: Rgb<u8>,
}

/// The back wall's finish, from the name: plaster, stripes, bricks or planks.
fn room_walls(c: &mut Canvas, r: &Room) {
    let (wall, floor_y) = (r.wall, r.floor_y);
    let line = mix(wall, Rgb([0, 0, 0]), 0.3);
    match r.h % 4 {
        1 => {
            let mut x = 0;
            while x < WIDTH as i32 {
                c.rect(
                    x,
                    0,
                    10,
                    floor_y as i32,
                    mix(wall, Rgb([255, 255, 255]), 0.08),
                );
                x += 28;
            }
        }
        2 => {
            let mut y = 0;
            while y < floor_y as i32 {
                c.rect(0, y, WIDTH as i32, 1, line);
                let off = if (y / 14) % 2 == 0 { 0 } else { 22 };
                let mut x = off;
                while x < WIDTH as i32 {
                    c.rect(x, y, 1, 14, line);
                    x += 44;
                }
                y += 14;
            }
        }
        3 => {
            let mut x = 0;
            while x < WIDTH as i32 {
                c.rect(x, 0, 2, floor_y as i32, line);
                x += 36;
            }
        }
        _ => {}
    }
}

/// The floor in perspective: boards converging on the back wall; then the side walls.
fn room_floor(c: &mut Canvas, r: &Room) {
    let floor_y = r.floor_y;
    let floor = mix(Rgb([0, 0, 0]), r.near, r.light.max(0.55));
    c.vgradient(floor_y, HEIGHT, mix(floor, Rgb([0, 0, 0]), 0.2), floor);
    let seam = mix(floor, Rgb([0, 0, 0]), 0.35);
    for k in -6i32..=6 {
        let x_far = WIDTH as f32 / 2.0 + k as f32 * 40.0;
        let x_near = WIDTH as f32 / 2.0 + k as f32 * 120.0;
        for y in floor_y..HEIGHT {
            let t = (y - floor_y) as f32 / (HEIGHT - floor_y).max(1) as f32;
            c.put((x_far + (x_near - x_far) * t) as i32, y as i32, seam, 1.0);
        }
    }
    // Side walls as darker wedges.
    let side = mix(r.wall, Rgb([0, 0, 0]), 0.35);
    for y in 0..HEIGHT {
        let w = if y < floor_y {
            50
        } else {
            50 + ((y - floor_y) as f32 * 0.9) as i32
        };
        c.rect(0, y as i32, w, 1, side);
        c.rect(WIDTH as i32 - w, y as i32, w, 1, side);
    }
}

/// A window on the sky (time of day and weather show through it), placed by the name; returns
/// its left, top and width.
fn room_window(c: &mut Canvas, s: &Scene<'_>, r: &Room) -> (i32, i32, i32) {
    let (h, wall, floor_y) = (r.h, r.wall, r.floor_y);
    let (ww, wh) = (110 + (h % 50) as i32, 80 + ((h >> 6) % 30) as i32);
    let wx = 90 + ((h >> 12) % (WIDTH as u64 - 180 - ww as u64)) as i32;
    let wy = (floor_y as i32 - wh - 40).max(12);
    let frame = mix(wall, Rgb([40, 28, 20]), 0.7);
    c.rect(wx - 5, wy - 5, ww + 10, wh + 10, frame);
    let (top, bottom) = weathered_sky(s.time, s.weather);
    let mut inner = Canvas::new(top);
    inner.vgradient(0, wh as u32, top, bottom);
    for y in 0..wh {
        for x in 0..ww {
            let p = *inner.img.get_pixel(x as u32, y as u32);
            c.put(wx + x, wy + y, p, 1.0);
        }
    }
    let sub = Scene {
        horizon: (wy + wh) as u32,
        ..*s
    };
    if matches!(s.weather, "rainy" | "stormy" | "snowy" | "foggy") {
        // Weather in the window only.
        let mut pane = Canvas::new(top);
        pane.vgradient(0, HEIGHT, top, bottom);
        weather_over(&mut pane, &sub, 0, HEIGHT);
        for y in 0..wh {
            for x in 0..ww {
                let p = *pane
                    .img
                    .get_pixel((x * 3) as u32 % WIDTH, (y * 3) as u32 % HEIGHT);
                c.put(wx + x, wy + y, p, 1.0);
            }
        }
    }
    c.rect(wx + ww / 2 - 2, wy, 4, wh, frame);
    c.rect(wx, wy + wh / 2 - 2, ww, 4, frame);
    (wx, wy, ww)
}

/// Furniture from the name: a door, a shelf or a picture, steps, a lamp at night.
fn room_furniture(c: &mut Canvas, s: &Scene<'_>, r: &Room, wx: i32, wy: i32, ww: i32) {
    let (h, wall, floor_y, near, far) = (r.h, r.wall, r.floor_y, r.near, r.far);
    let dark = mix(wall, Rgb([0, 0, 0]), 0.5);
    let door_x = if wx > WIDTH as i32 / 2 {
        70
    } else {
        WIDTH as i32 - 130
    };
    c.rect(
        door_x,
        floor_y as i32 - 120,
        56,
        120,
        mix(far, Rgb([50, 30, 20]), 0.6),
    );
    c.rect(door_x + 44, floor_y as i32 - 62, 5, 5, Rgb([210, 180, 90]));
    // The free stretch of wall between the window and the door gets a shelf or a picture.
    let free_x = if wx > WIDTH as i32 / 2 {
        wx - 150
    } else {
        wx + ww + 40
    };
    let free_x = free_x.clamp(130, WIDTH as i32 - 240);
    if h & 1 == 1 {
        for k in 0..3 {
            c.rect(free_x, wy + 10 + k * 22, 100, 4, dark);
        }
    } else {
        c.rect(free_x, wy, 80, 56, dark);
        c.rect(
            free_x + 6,
            wy + 6,
            68,
            44,
            mix(far, Rgb([200, 170, 120]), 0.5),
        );
    }
    if s.stairs {
        // A flight of steps climbing across the room.
        let step = mix(near, Rgb([200, 200, 200]), 0.15);
        let edge = mix(step, Rgb([0, 0, 0]), 0.45);
        let rising_left = h & 2 == 2;
        for k in 0..9i32 {
            let x = if rising_left {
                WIDTH as i32 - 120 - k * 46
            } else {
                60 + k * 46
            };
            let top = floor_y as i32 - k * 22;
            c.rect(x, top, 60, floor_y as i32 - top + 30, step);
            c.rect(x, top, 60, 3, edge);
        }
    }
    if matches!(s.time, "night" | "evening" | "twilight") {
        // A lamp's warm pool.
        let lx = WIDTH as f32 * (0.25 + ((h >> 30) % 50) as f32 / 100.0);
        c.ellipse(lx, floor_y as f32 - 100.0, 10.0, 10.0, Rgb([255, 220, 140]));
        c.glow(
            lx,
            floor_y as f32 - 100.0,
            120.0,
            Rgb([255, 200, 120]),
            0.35,
        );
    }
}

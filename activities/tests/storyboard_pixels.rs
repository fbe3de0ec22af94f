//! The storyboard draws what the words say: pixel tests on real rendered frames.
//!
//! Differences are measured as the mean absolute difference per channel (0-255) over the
//! background: rows below the location label and above the caption bar. Thresholds:
//! - an interior and an exterior at the same time of day: at least 25 levels;
//! - two places of the same kind with different names: at least 12 levels;
//! - a close-up and a wide shot of the same scene: at least 15 levels;
//! - weather and time of day against the same place in clear afternoon light: at least 10.
//!
//! Every frame is also saved under the target directory (`storyboard-pixels/`) to look at.

use image::RgbImage;
use slate_activities::local::render::{self, HEIGHT, Setting, WIDTH, default_palette, setting_of};
use slate_activities::model::{Composition, FigureSpec};

fn comp(location: &str, setting: &str, time: &str, weather: &str) -> Composition {
    Composition {
        location: Some(location.into()),
        time_of_day: Some(time.into()),
        lighting: Some("natural".into()),
        palette: default_palette(location, setting),
        caption: format!("{location}, {time}, {weather}"),
        layers: vec!["location".into()],
        setting: Some(setting.into()),
        weather: Some(weather.into()),
        ..Default::default()
    }
}

fn save(name: &str, img: &RgbImage) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("storyboard-pixels");
    std::fs::create_dir_all(&dir).unwrap();
    img.save(dir.join(format!("{name}.png"))).unwrap();
}

/// Mean absolute difference per channel over the background rows.
fn background_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let (y0, y1) = (30, HEIGHT - 40);
    let mut sum = 0u64;
    for y in y0..y1 {
        for x in 0..WIDTH {
            let (p, q) = (a.get_pixel(x, y), b.get_pixel(x, y));
            for c in 0..3 {
                sum += (p[c] as i32 - q[c] as i32).unsigned_abs() as u64;
            }
        }
    }
    sum as f64 / ((y1 - y0) * WIDTH * 3) as f64
}

fn draw(name: &str, c: &Composition) -> RgbImage {
    let img = render::render(c).image().clone();
    save(name, &img);
    img
}

#[test]
fn settings_are_read_from_names_then_descriptions() {
    assert_eq!(setting_of("Maren's Kitchen", ""), Setting::Interior);
    assert_eq!(
        setting_of(
            "Lighthouse Stair",
            "a spiral of worn stone steps inside the tower"
        ),
        Setting::Interior
    );
    assert_eq!(
        setting_of("The Point", "a grey shore where the sea breaks"),
        Setting::Water
    );
    assert_eq!(setting_of("Harbour", ""), Setting::Water);
    assert_eq!(
        setting_of("Blackwood", "a dark forest of pines"),
        Setting::Forest
    );
    assert_eq!(setting_of("Red Dunes", ""), Setting::Desert);
    assert_eq!(setting_of("High Street", ""), Setting::Street);
    assert_eq!(
        setting_of("Harbor Market", "stalls on the quay"),
        Setting::Street
    );
    assert_eq!(
        setting_of("Lighthouse", "outside the lighthouse, on the rocks"),
        Setting::Open
    );
    assert!(Setting::Interior.is_interior() && !Setting::Water.is_interior());
}

#[test]
fn an_interior_is_not_an_exterior() {
    for time in ["morning", "night"] {
        let room = draw(
            &format!("kitchen-{time}"),
            &comp("Kitchen", "a warm farmhouse kitchen", time, "clear"),
        );
        let shore = draw(
            &format!("shore-{time}"),
            &comp("The Shore", "pebbles and breaking waves", time, "clear"),
        );
        let street = draw(
            &format!("street-{time}"),
            &comp("Harbor Market", "stalls on the quay", time, "clear"),
        );
        let d1 = background_diff(&room, &shore);
        let d2 = background_diff(&room, &street);
        assert!(d1 >= 25.0, "kitchen vs shore at {time}: {d1:.1}");
        assert!(d2 >= 25.0, "kitchen vs market at {time}: {d2:.1}");
    }
}

#[test]
fn each_kind_of_place_and_each_place_looks_its_own() {
    let places = [
        ("Kitchen", "a farmhouse kitchen"),
        ("Cellar", "a damp stone cellar"),
        (
            "Lighthouse Stair",
            "a spiral of worn stone steps inside the tower",
        ),
        ("The Shore", "pebbles and waves"),
        ("Blackwood", "a forest of pines"),
        ("North Field", "a wheat field"),
        ("Red Dunes", "a desert of dunes"),
        ("The Ridge", "a mountain ridge"),
        ("High Street", "a busy street"),
        ("Harbor Market", "stalls on the quay"),
        ("Moor", ""),
    ];
    let frames: Vec<(String, RgbImage)> = places
        .iter()
        .map(|(n, d)| {
            (
                n.to_string(),
                draw(
                    &format!("place-{}", n.replace(' ', "-")),
                    &comp(n, d, "afternoon", "clear"),
                ),
            )
        })
        .collect();
    for i in 0..frames.len() {
        for j in i + 1..frames.len() {
            let d = background_diff(&frames[i].1, &frames[j].1);
            assert!(
                d >= 12.0,
                "{} and {} look alike: {d:.1}",
                frames[i].0,
                frames[j].0
            );
        }
    }
}

#[test]
fn weather_and_time_of_day_are_visible() {
    for (name, setting) in [("The Shore", "waves"), ("Kitchen", "a kitchen")] {
        let clear = draw(
            &format!("{name}-clear"),
            &comp(name, setting, "afternoon", "clear"),
        );
        for weather in ["rainy", "stormy", "snowy", "foggy"] {
            let w = draw(
                &format!("{name}-{weather}"),
                &comp(name, setting, "afternoon", weather),
            );
            let d = background_diff(&clear, &w);
            // Indoors the weather shows through the window only.
            let min = if setting_of(name, setting).is_interior() {
                1.0
            } else {
                10.0
            };
            assert!(d >= min, "{name} {weather}: {d:.1}");
        }
        for time in ["dawn", "evening", "night"] {
            let t = draw(
                &format!("{name}-{time}"),
                &comp(name, setting, time, "clear"),
            );
            let d = background_diff(&clear, &t);
            assert!(d >= 10.0, "{name} at {time}: {d:.1}");
        }
    }
}

#[test]
fn the_camera_changes_the_framing() {
    let mut c = comp("Blackwood", "a forest of pines", "evening", "clear");
    c.characters = vec![
        FigureSpec {
            id: "maren".into(),
            name: "Maren".into(),
            x: 0.35,
            view: "front".into(),
            color: "#d9a520".into(),
        },
        FigureSpec {
            id: "tom".into(),
            name: "Tom".into(),
            x: 0.65,
            view: "three_quarter_left".into(),
            color: "#2a6f97".into(),
        },
    ];
    c.layers = vec!["location".into(), "characters".into()];
    let shot = |s: &str, a: &str| {
        let mut x = c.clone();
        x.camera_shot = Some(s.into());
        x.camera_angle = Some(a.into());
        draw(&format!("camera-{s}-{a}"), &x)
    };
    let wide = shot("wide", "eye_level");
    let close = shot("close_up", "eye_level");
    let high = shot("wide", "high_angle");
    let low = shot("wide", "low_angle");
    let d = background_diff(&wide, &close);
    assert!(d >= 15.0, "close-up vs wide: {d:.1}");
    let d = background_diff(&high, &low);
    assert!(d >= 15.0, "high vs low angle: {d:.1}");
    // The figures are where the manifest says in every framing (the vision check relies on it).
    for (img, s, a) in [
        (&wide, "wide", "eye_level"),
        (&close, "close_up", "eye_level"),
        (&high, "wide", "high_angle"),
        (&low, "wide", "low_angle"),
    ] {
        let mut x = c.clone();
        x.camera_shot = Some(s.into());
        x.camera_angle = Some(a.into());
        for f in &x.characters {
            let (px, py) = render::figure_anchor(&x, f);
            let want = render::parse_color(&f.color);
            let p = img.get_pixel(px, py);
            let dist: i32 = (0..3).map(|i| (p[i] as i32 - want[i] as i32).abs()).sum();
            assert!(dist < 40, "{} at {s}/{a}: {p:?} vs {want:?}", f.name);
        }
    }
}

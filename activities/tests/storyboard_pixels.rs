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
    // Weather does not turn night into day: a foggy or snowy night is as dark as a clear one,
    // give or take, and far darker than a foggy afternoon.
    let brightness = |img: &RgbImage| {
        let (y0, y1) = (30, HEIGHT - 40);
        let mut sum = 0u64;
        for y in y0..y1 {
            for x in 0..WIDTH {
                sum += img.get_pixel(x, y).0.iter().map(|&v| v as u64).sum::<u64>();
            }
        }
        sum as f64 / ((y1 - y0) * WIDTH * 3) as f64
    };
    let night = brightness(&draw(
        "moor-night",
        &comp("The Moor", "open moorland", "night", "clear"),
    ));
    for weather in ["foggy", "snowy"] {
        let n = brightness(&draw(
            &format!("moor-night-{weather}"),
            &comp("The Moor", "open moorland", "night", weather),
        ));
        let day = brightness(&draw(
            &format!("moor-afternoon-{weather}"),
            &comp("The Moor", "open moorland", "afternoon", weather),
        ));
        assert!(
            n < night + 40.0 && n < day - 60.0,
            "{weather}: night {n:.0}, clear night {night:.0}, day {day:.0}"
        );
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
            looks: None,
        },
        FigureSpec {
            id: "tom".into(),
            name: "Tom".into(),
            x: 0.65,
            view: "three_quarter_left".into(),
            color: "#2a6f97".into(),
            looks: None,
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

/// Colour distance (sum over channels).
fn dist(p: &image::Rgb<u8>, want: image::Rgb<u8>) -> i32 {
    (0..3).map(|i| (p[i] as i32 - want[i] as i32).abs()).sum()
}

/// Whether some pixel within `r` of (x, y) is within 40 of `want`.
fn near(img: &RgbImage, (x, y): (f32, f32), r: i32, want: image::Rgb<u8>) -> bool {
    (-r..=r).any(|dy| {
        (-r..=r).any(|dx| {
            let (px, py) = (x as i32 + dx, y as i32 + dy);
            px >= 0
                && py >= 0
                && (px as u32) < WIDTH
                && (py as u32) < HEIGHT
                && dist(img.get_pixel(px as u32, py as u32), want) < 40
        })
    })
}

/// Rows of column `x` whose colour is within 40 of `want`.
fn rows_of(img: &RgbImage, x: u32, want: image::Rgb<u8>) -> Vec<u32> {
    (0..HEIGHT)
        .filter(|&y| dist(img.get_pixel(x, y), want) < 40)
        .collect()
}

#[test]
fn looks_are_drawn_hair_glasses_clothes_and_height() {
    use slate_activities::local::reader::looks_of;
    let ada = looks_of("9, green wellies, red hair, round glasses, a blue skirt");
    let tom = looks_of("tall, in a yellow raincoat");
    let mut c = comp(
        "Harrow Moor",
        "open moorland of heather",
        "afternoon",
        "clear",
    );
    c.layers = vec!["location".into(), "characters".into()];
    c.camera_shot = Some("medium".into());
    let figure =
        |id: &str, x: f32, color: &str, looks: Option<slate_activities::model::Looks>| FigureSpec {
            id: id.into(),
            name: id.into(),
            x,
            view: "front".into(),
            color: color.into(),
            looks,
        };
    // Ada in her own colour (what she wears on top is not given), Tom in his raincoat's.
    let ada_color = "#8a5cc0";
    let tom_color = tom.top.clone().unwrap();
    c.characters = vec![
        figure("Ada", 0.3, ada_color, Some(ada.clone())),
        figure("Tom", 0.7, &tom_color, Some(tom.clone())),
    ];
    let img = draw("looks", &c);
    let mut plain = c.clone();
    for f in plain.characters.iter_mut() {
        f.looks = None;
    }
    let plain_img = draw("looks-plain", &plain);
    let px = |hex: &str| render::parse_color(hex);

    let (ax, ay) = render::figure_anchor(&c, &c.characters[0]);
    let (ax, ay) = (ax as f32, ay as f32);
    let k = 0.72; // a nine-year-old at a medium shot
    let head = ay - 48.0 * k;
    // Red hair on top of the head, where the plain figure shows skin or background.
    let hair = px(ada.hair.as_deref().unwrap());
    assert!(near(&img, (ax, head - 11.0 * k), 1, hair), "red hair");
    assert!(!near(&plain_img, (ax, head - 11.0 * k), 1, hair));
    // Glasses: the lens rims beside each eye, dark on skin.
    let rim = image::Rgb([25, 22, 20]);
    assert!(
        near(&img, (ax - 9.6 * k, head - 2.0 * k), 1, rim),
        "glasses"
    );
    assert!(!near(&plain_img, (ax - 9.6 * k, head - 2.0 * k), 1, rim));
    // A blue skirt on the legs, green wellies on the feet.
    let leg_x = ax - 7.5 * k;
    assert!(
        near(
            &img,
            (leg_x, ay + 30.0 * k),
            1,
            px(ada.legs.as_deref().unwrap())
        ),
        "skirt"
    );
    assert!(
        near(
            &img,
            (leg_x, ay + 50.0 * k),
            1,
            px(ada.feet.as_deref().unwrap())
        ),
        "wellies"
    );
    assert!(!near(
        &plain_img,
        (leg_x, ay + 50.0 * k),
        1,
        px(ada.feet.as_deref().unwrap())
    ));
    // The vision check still finds each body where the manifest says.
    for f in &c.characters {
        let (x, y) = render::figure_anchor(&c, f);
        assert!(dist(img.get_pixel(x, y), px(&f.color)) < 40, "{}", f.name);
    }

    // Height: Tom (tall) stands taller than an adult drawn plain, Ada (9) shorter; all three
    // stand on one ground line.
    let body_rows = |img: &RgbImage, f: &FigureSpec| {
        let (x, _) = render::figure_anchor(&c, f);
        rows_of(img, x, px(&f.color))
    };
    let tall = body_rows(&img, &c.characters[1]);
    let plain_tom = body_rows(&plain_img, &plain.characters[1]);
    let small = body_rows(&img, &c.characters[0]);
    let plain_ada = body_rows(&plain_img, &plain.characters[0]);
    let span = |r: &[u32]| r.last().unwrap() - r.first().unwrap();
    assert!(
        span(&tall) > span(&plain_tom) + 5,
        "Tom is tall: {} vs {}",
        span(&tall),
        span(&plain_tom)
    );
    assert!(
        span(&small) * 10 < span(&plain_ada) * 8,
        "Ada is nine: {} vs {}",
        span(&small),
        span(&plain_ada)
    );
    // Body bottoms sit at the same fraction of the legs: the feet share one ground line.
    let feet = |f: &FigureSpec, h: f32| {
        let (_, y) = render::figure_anchor(&c, f);
        y as f32 + 56.0 * h
    };
    let (fa, ft) = (feet(&c.characters[0], 0.72), feet(&c.characters[1], 1.12));
    assert!((fa - ft).abs() <= 1.5, "feet at {fa} and {ft}");

    // A character sheet view draws the same looks.
    let sheet = c.characters[0].clone();
    let view = Composition {
        characters: vec![sheet.clone()],
        caption: "Ada".into(),
        layers: vec!["character-view".into()],
        ..Default::default()
    };
    let sheet_img = draw("looks-sheet", &view);
    let (sx, sy) = render::figure_anchor(&view, &sheet);
    let sk = 1.3 * 0.72;
    assert!(dist(sheet_img.get_pixel(sx, sy), px(ada_color)) < 40);
    assert!(near(
        &sheet_img,
        (sx as f32, sy as f32 - 48.0 * sk - 11.0 * sk),
        1,
        hair
    ));
}

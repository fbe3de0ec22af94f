//! What Slate knows of fal's video models: the lengths each family makes, how a length is
//! written, the modes and input fields it takes. Vocabulary, read by the settings (default
//! lengths), the prices (billed seconds) and the fal client alike.

use crate::model::VideoMode;

/// How a video model's length is written in its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationFormat {
    /// `"5"` (Kling, Hailuo).
    Seconds,
    /// `"8s"` (Veo).
    SecondsSuffix,
}

/// What Slate knows of a fal video model's request: the lengths it makes, how a length is
/// written, which modes it takes, the field names of its inputs, and fields it needs set.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoModel {
    /// Clip lengths it makes, seconds.
    pub durations: &'static [f64],
    /// How the length is written.
    pub format: DurationFormat,
    /// The modes it takes.
    pub modes: &'static [VideoMode],
    /// The start image's field (image-to-video).
    pub image_field: &'static str,
    /// Fixed fields added to every request (Veo: no generated audio; our voices are mixed in,
    /// and audio off is the price in the table).
    pub fixed: &'static [(&'static str, &'static str)],
}

/// Image-to-video only.
pub const I2V: &[VideoMode] = &[VideoMode::ImageToVideo];
/// Text-to-video only.
pub const T2V: &[VideoMode] = &[VideoMode::TextToVideo];
/// Video-to-video only.
pub const V2V: &[VideoMode] = &[VideoMode::VideoToVideo];

impl VideoModel {
    /// The request template of a model path, if Slate knows its family.
    pub fn of(model: &str) -> Option<VideoModel> {
        let m = model.trim_matches('/');
        let modes = if m.ends_with("/text-to-video") {
            T2V
        } else if m.ends_with("/video-to-video") || m.contains("/extend") {
            V2V
        } else if m.ends_with("/image-to-video") {
            I2V
        } else {
            return None;
        };
        let base = VideoModel {
            durations: &[5.0, 10.0],
            format: DurationFormat::Seconds,
            modes,
            image_field: "image_url",
            fixed: &[],
        };
        if m.starts_with("fal-ai/kling-video/") {
            Some(base)
        } else if m.starts_with("fal-ai/veo3") {
            Some(VideoModel {
                durations: &[4.0, 6.0, 8.0],
                format: DurationFormat::SecondsSuffix,
                fixed: &[("generate_audio", "false"), ("resolution", "720p")],
                ..base
            })
        } else if m.starts_with("fal-ai/minimax/hailuo-02/") {
            Some(VideoModel {
                durations: &[6.0, 10.0],
                ..base
            })
        } else {
            None
        }
    }

    /// `d` seconds as the model writes it.
    pub fn duration(&self, d: f64) -> String {
        match self.format {
            DurationFormat::Seconds => format!("{}", d.round() as u32),
            DurationFormat::SecondsSuffix => format!("{}s", d.round() as u32),
        }
    }
}

/// The nearest allowed length at or above `seconds` (the clip is trimmed to the scene after).
pub fn pick_duration(allowed: &[f64], seconds: f64) -> f64 {
    let mut a: Vec<f64> = allowed.to_vec();
    a.sort_by(|x, y| x.total_cmp(y));
    a.iter()
        .copied()
        .find(|d| *d + 1e-9 >= seconds)
        .or_else(|| a.last().copied())
        .unwrap_or(seconds)
}

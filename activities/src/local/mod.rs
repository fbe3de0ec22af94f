//! The local studio: does the whole job offline, with no keys.
//!
//! Not a mock: the planner writes a real screenplay from the gather data, the renderer draws
//! real frames, the vision check inspects real pixels, knowledge is searched with the database's
//! full-text index, and ffmpeg makes a real animatic with camera moves, transitions and voices.

use async_trait::async_trait;

use crate::blob::{BlobRef, Blobs};
use crate::error::{ActivityError, ErrorKind, Result};
use crate::model::*;
use crate::traits::{ImageGen, Paid, Vision};

pub mod knowledge;
pub mod media;
pub mod mixdown;
/// The offline music and foley live in their own crate (built optimized even in tests).
pub use slate_sound::{foley, music};
pub mod mp4;
pub mod planner;
pub mod reader;
pub mod render;
mod stitch;
mod tool;

pub use knowledge::{Db, LocalKnowledge};
pub use media::{LocalMedia, LocalVideo, LocalVoice};
pub use planner::LocalPlanner;

/// The manifest key of an image key: `a/b.png` -> `a/b.manifest.json`.
pub fn manifest_key(image_key: &str) -> String {
    match image_key.rsplit_once('.') {
        Some((stem, _)) => format!("{stem}.manifest.json"),
        None => format!("{image_key}.manifest.json"),
    }
}

/// What the renderer records next to each frame.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Manifest {
    /// The prompt it was asked.
    pub prompt: String,
    /// The composition drawn.
    pub composition: Composition,
    /// The references it was given.
    pub references: Vec<String>,
    /// The image it built on.
    pub base: Option<String>,
}

/// The storyboard renderer as an image provider.
#[derive(Debug, Clone)]
pub struct Storyboard {
    blobs: Blobs,
}

impl Storyboard {
    /// A renderer storing into these blobs.
    pub fn new(blobs: Blobs) -> Self {
        Storyboard { blobs }
    }

    async fn manifest_of(&self, image: &BlobRef) -> Result<Option<Manifest>> {
        let key = BlobRef::new(manifest_key(image.key()))?;
        if !self.blobs.exists(&key).await? {
            return Ok(None);
        }
        let bytes = self.blobs.get(&key).await?;
        Ok(serde_json::from_slice(&bytes).ok())
    }
}

#[async_trait]
impl ImageGen for Storyboard {
    fn name(&self) -> &'static str {
        "local storyboard renderer"
    }

    async fn submit(&self, req: &ImageRequest) -> Result<Job> {
        req.validate()
            .map_err(|m| ActivityError::bad_request("local", m))?;
        for r in &req.references {
            if !self.blobs.exists(&r.blob).await? {
                return Err(ActivityError::bad_request(
                    "local",
                    format!("reference {} does not exist", r.blob),
                ));
            }
        }
        // A character sheet view is drawn whole: the base (the master) is only a reference.
        let sheet = req.composition.layers.first().map(String::as_str) == Some("character-view");
        let base = match &req.base {
            Some(base) if !sheet => {
                let before = self
                    .manifest_of(base)
                    .await?
                    .map(|m| m.composition)
                    .unwrap_or_default();
                Some((self.blobs.get(base).await?, before))
            }
            _ => None,
        };
        // Drawing is CPU work: off the async threads, so parallel branches keep running.
        let comp = req.composition.clone();
        let png = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
            let canvas = match base {
                Some((bytes, before)) => {
                    render::render_layer(render::Canvas::from_png(&bytes)?, &before, &comp)
                }
                None => render::render(&comp),
            };
            canvas.png()
        })
        .await
        .map_err(|e| ActivityError::tool(format!("the renderer stopped: {e}")))??;
        let manifest = Manifest {
            prompt: req.prompt.clone(),
            composition: req.composition.clone(),
            references: req
                .references
                .iter()
                .map(|r| r.blob.key().to_string())
                .collect(),
            base: req.base.as_ref().map(|b| b.key().to_string()),
        };
        // The manifest first: an image never exists without the record of what it shows.
        self.blobs
            .put(
                &manifest_key(&req.output_key),
                serde_json::to_vec_pretty(&manifest)
                    .map_err(|e| ActivityError::tool(e.to_string()))?,
            )
            .await?;
        self.blobs.put(&req.output_key, png).await?;
        Ok(Job {
            provider: "local".into(),
            id: req.output_key.clone(),
            model: "storyboard".into(),
            status_url: None,
            response_url: None,
            cancel_url: None,
        })
    }

    async fn poll(&self, job: &Job, _req: &ImageRequest) -> Result<Paid<JobState<ImageOutput>>> {
        let image = BlobRef::new(&job.id)?;
        if !self.blobs.exists(&image).await? {
            return Err(ActivityError::new(
                "local",
                ErrorKind::NotFound,
                format!("local image job {} has no result; submit it again", job.id),
            )
            .retryable(false));
        }
        let manifest = BlobRef::new(manifest_key(&job.id))?;
        Ok(Paid::free(JobState::Completed {
            output: ImageOutput {
                description: format!("storyboard frame {}", image.key()),
                manifest: Some(manifest),
                image,
            },
        }))
    }

    async fn cancel(&self, _job: &Job) -> Result<()> {
        Ok(())
    }
}

/// The local vision check: reads the frame's manifest and checks the pixels where it says each
/// figure and prop is. It can be told to reject a share of frames, so that retry paths are
/// exercised on purpose.
#[derive(Debug, Clone)]
pub struct LocalVision {
    blobs: Blobs,
    fail_rate: f64,
}

impl LocalVision {
    /// A check over these blobs rejecting `fail_rate` (0-1) of frames regardless of content.
    pub fn new(blobs: Blobs, fail_rate: f64) -> Self {
        LocalVision {
            blobs,
            fail_rate: fail_rate.clamp(0.0, 1.0),
        }
    }

    async fn load(
        &self,
        image: &BlobRef,
        manifest: Option<&BlobRef>,
    ) -> Result<(image::RgbImage, Option<Manifest>)> {
        let bytes = self.blobs.get(image).await?;
        let img = image::load_from_memory(&bytes)
            .map_err(|e| {
                ActivityError::new(
                    "local",
                    ErrorKind::Malformed,
                    format!("{image} is not an image: {e}"),
                )
                .retryable(false)
            })?
            .to_rgb8();
        let mkey = match manifest {
            Some(m) => m.clone(),
            None => BlobRef::new(manifest_key(image.key()))?,
        };
        let m = if self.blobs.exists(&mkey).await? {
            serde_json::from_slice(&self.blobs.get(&mkey).await?).ok()
        } else {
            None
        };
        Ok((img, m))
    }
}

fn close(a: image::Rgb<u8>, b: image::Rgb<u8>, tol: i32) -> bool {
    (0..3).all(|i| (a[i] as i32 - b[i] as i32).abs() <= tol)
}

/// Look at the pixels around an anchor for a colour (a small window, as the label may cover
/// the exact point).
fn seen(img: &image::RgbImage, (x, y): (u32, u32), want: image::Rgb<u8>) -> bool {
    for dy in -6i32..=6 {
        for dx in -6i32..=6 {
            let (px, py) = (x as i32 + dx, y as i32 + dy);
            if px >= 0
                && py >= 0
                && (px as u32) < img.width()
                && (py as u32) < img.height()
                && close(*img.get_pixel(px as u32, py as u32), want, 24)
            {
                return true;
            }
        }
    }
    false
}

/// What a frame shows according to its manifest and its pixels; `Err` lists what is missing.
pub fn check_frame(
    img: &image::RgbImage,
    m: &Manifest,
    expect: &Expectation,
) -> std::result::Result<String, Vec<String>> {
    let mut missing = vec![];
    let c = &m.composition;
    if (img.width(), img.height()) != (render::WIDTH, render::HEIGHT) {
        missing.push(format!(
            "frame is {}x{}, not {}x{}",
            img.width(),
            img.height(),
            render::WIDTH,
            render::HEIGHT
        ));
    }
    if let Some(loc) = &expect.location
        && !c
            .location
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case(loc))
    {
        missing.push(format!("location {loc}"));
    }
    let silhouette = c.lighting.as_deref() == Some("silhouette");
    for name in &expect.characters {
        match c
            .characters
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        {
            None => missing.push(format!("character {name}")),
            Some(f)
                if !silhouette
                    && !seen(
                        img,
                        render::figure_anchor(c, f),
                        render::parse_color(&f.color),
                    ) =>
            {
                missing.push(format!(
                    "character {name} is in the manifest but not in the picture"
                ))
            }
            Some(_) => {}
        }
    }
    for name in &expect.props {
        match c.props.iter().find(|p| p.name.eq_ignore_ascii_case(name)) {
            None => missing.push(format!("prop {name}")),
            Some(p)
                if !seen(
                    img,
                    render::prop_anchor(c, p),
                    render::parse_color(&p.color),
                ) =>
            {
                missing.push(format!(
                    "prop {name} is in the manifest but not in the picture"
                ))
            }
            Some(_) => {}
        }
    }
    if missing.is_empty() {
        let mut seen_list = vec![];
        if let Some(l) = &c.location {
            seen_list.push(l.clone());
        }
        seen_list.extend(
            c.characters
                .iter()
                .map(|f| format!("{} ({} view)", f.name, f.view.replace('_', " "))),
        );
        seen_list.extend(c.props.iter().map(|p| p.name.clone()));
        Ok(seen_list.join(", "))
    } else {
        Err(missing)
    }
}

#[async_trait]
impl Vision for LocalVision {
    fn name(&self) -> &'static str {
        "local manifest check"
    }

    async fn ask(&self, q: &VisionQuery) -> Result<Paid<VisionAnswer>> {
        let (img, m) = self.load(&q.image, q.manifest.as_ref()).await?;
        let Some(m) = m else {
            return Ok(Paid::free(VisionAnswer {
                answer: "NO: this frame has no composition manifest, so the local check cannot verify it".into(),
                passed: false,
                confidence: 0.0,
            }));
        };
        // Deterministic per frame: the same frame always gets the same verdict, a new frame
        // (the next attempt) gets a fresh draw.
        let draw = (render::stable_hash(q.image.key()) % 10_000) as f64 / 10_000.0;
        if draw < self.fail_rate {
            return Ok(Paid::free(VisionAnswer {
                answer: format!(
                    "NO: rejected by the configured failure rate ({:.0} %) to exercise retries",
                    self.fail_rate * 100.0
                ),
                passed: false,
                confidence: 0.9,
            }));
        }
        Ok(Paid::free(match check_frame(&img, &m, &q.expect) {
            Ok(seen) => VisionAnswer {
                answer: format!("YES: {seen}"),
                passed: true,
                confidence: 0.95,
            },
            Err(missing) => VisionAnswer {
                answer: format!("NO: missing {}", missing.join("; ")),
                passed: false,
                confidence: 0.95,
            },
        }))
    }

    async fn describe(
        &self,
        image: &BlobRef,
        manifest: Option<&BlobRef>,
        prompt: &str,
    ) -> Result<Paid<String>> {
        let (img, m) = self.load(image, manifest).await?;
        let Some(m) = m else {
            return Ok(Paid::free(format!(
                "An image of {}x{} pixels.",
                img.width(),
                img.height()
            )));
        };
        let c = &m.composition;
        let mut parts = vec![];
        for f in &c.characters {
            parts.push(format!(
                "{} seen from the {} view, dressed in {}",
                f.name,
                f.view.replace('_', " "),
                f.color
            ));
        }
        if let Some(l) = &c.location {
            parts.push(format!(
                "at {l}{}",
                c.time_of_day
                    .as_deref()
                    .map(|t| format!(" in the {t}"))
                    .unwrap_or_default()
            ));
        }
        for p in &c.props {
            parts.push(format!("with {}", p.name));
        }
        let _ = prompt;
        Ok(Paid::free(format!("{}.", parts.join(", "))))
    }
}

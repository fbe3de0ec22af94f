//! The continuity agent: the scene's composite against the previous scene's last frame
//! (lighting when the time of day holds, palette when the place does, who carries over).

use chrono::Utc;
use slate_activities::BlobRef;

use super::composite::Composite;
use super::{PreviousScene, Take};
use crate::error::IntoStep;
use crate::model::{ContinuityCheck, Scene};
use slate_engine::WfError;

impl Take<'_> {
    /// Check the composite against the previous scene and record the checks on the scene.
    pub(super) async fn continuity(
        &self,
        scene: &Scene,
        current: &Composite,
    ) -> Result<(), WfError> {
        let (f, id, prev) = (self.film, self.id, self.previous.cloned());
        let (cur, sc) = (current.image.image.clone(), scene.clone());
        self.ctx
            .step("continuity", |_| async move {
                let now = Some(Utc::now());
                let checks = match prev {
                    None => vec![ContinuityCheck {
                        check_type: "first_scene".into(),
                        passed: true,
                        notes: "the first scene has nothing to continue from".into(),
                        timestamp: now,
                    }],
                    Some(p) => {
                        let a = f.studio.blobs.get(&cur).await.step()?;
                        let b = f
                            .studio
                            .blobs
                            .get(&BlobRef::new(&p.last_frame).step()?)
                            .await
                            .step()?;
                        // Image analysis is CPU work: off the async threads.
                        tokio::task::spawn_blocking(move || continuity_checks(&a, &b, &p, &sc, now))
                            .await
                            .map_err(|e| {
                                slate_engine::StepError::retryable("continuity", e.to_string())
                            })?
                    }
                };
                f.repo
                    .modify_scene(id, |s| s.continuity_checks = checks.clone())
                    .await
                    .step()
                    .map(|_| ())
            })
            .await
    }
}

fn mean_luma(img: &image::RgbImage) -> f64 {
    img.pixels()
        .map(|p| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64)
        .sum::<f64>()
        / (img.width() * img.height()).max(1) as f64
}

fn histogram(img: &image::RgbImage) -> Vec<f64> {
    let mut h = vec![0f64; 64];
    for p in img.pixels() {
        let i = ((p[0] >> 6) as usize) << 4 | ((p[1] >> 6) as usize) << 2 | (p[2] >> 6) as usize;
        h[i] += 1.0;
    }
    let n: f64 = h.iter().sum();
    h.iter().map(|x| x / n.max(1.0)).collect()
}

/// The continuity agent's checks of a scene's start against the previous scene's last frame.
fn continuity_checks(
    current: &[u8],
    previous: &[u8],
    p: &PreviousScene,
    scene: &Scene,
    now: Option<chrono::DateTime<Utc>>,
) -> Vec<ContinuityCheck> {
    let (Ok(a), Ok(b)) = (
        image::load_from_memory(current),
        image::load_from_memory(previous),
    ) else {
        return vec![ContinuityCheck {
            check_type: "frames".into(),
            passed: false,
            notes: "a frame could not be read".into(),
            timestamp: now,
        }];
    };
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let same_place = p.location == scene.location;
    let same_time = p.time_of_day == scene.time_of_day;
    let (la, lb) = (mean_luma(&a), mean_luma(&b));
    let (ha, hb) = (histogram(&a), histogram(&b));
    let overlap: f64 = ha.iter().zip(&hb).map(|(x, y)| x.min(*y)).sum();
    let shared: Vec<&String> = scene
        .characters_present
        .iter()
        .filter(|c| p.characters.contains(c))
        .collect();
    vec![
        ContinuityCheck {
            check_type: "lighting".into(),
            passed: !same_time || (la - lb).abs() < 40.0,
            notes: format!(
                "mean brightness {la:.0} now, {lb:.0} at the end of the previous scene{}",
                if same_time {
                    ""
                } else {
                    " (the time of day changes)"
                }
            ),
            timestamp: now,
        },
        ContinuityCheck {
            check_type: "palette".into(),
            passed: !same_place || overlap > 0.35,
            notes: format!(
                "colour overlap {:.0} %{}",
                overlap * 100.0,
                if same_place {
                    ""
                } else {
                    " (the location changes)"
                }
            ),
            timestamp: now,
        },
        ContinuityCheck {
            check_type: "characters".into(),
            passed: true,
            notes: if shared.is_empty() {
                "no character carries over".into()
            } else {
                format!(
                    "{} carry over, drawn from the same reference sheets",
                    shared
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            timestamp: now,
        },
    ]
}

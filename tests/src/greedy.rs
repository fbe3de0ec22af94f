//! A shot agent that wants too many layers.

use std::sync::Arc;

use slate_activities::model::*;
use slate_activities::traits::{Paid, Planner, ShotContext};

/// A shot agent that asks for `.1` more prop layers than a scene needs: what makes the
/// composite loop run into its 20-iteration limit.
pub struct GreedyPlanner(pub Arc<dyn Planner>, pub usize);

#[async_trait::async_trait]
impl Planner for GreedyPlanner {
    fn name(&self) -> &'static str {
        "greedy"
    }
    async fn readiness(
        &self,
        g: &GatherSnapshot,
    ) -> slate_activities::Result<Paid<Vec<DepartmentReadiness>>> {
        self.0.readiness(g).await
    }
    async fn characters(
        &self,
        g: &GatherSnapshot,
    ) -> slate_activities::Result<Paid<Vec<CharacterProfile>>> {
        self.0.characters(g).await
    }
    async fn story_bible(
        &self,
        g: &GatherSnapshot,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<StoryBible>> {
        self.0.story_bible(g, c).await
    }
    async fn style_guide(&self, g: &GatherSnapshot) -> slate_activities::Result<Paid<StyleGuide>> {
        self.0.style_guide(g).await
    }
    async fn screenplay(
        &self,
        g: &GatherSnapshot,
        b: &StoryBible,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Screenplay>> {
        self.0.screenplay(g, b, c).await
    }
    async fn breakdown(
        &self,
        s: &Screenplay,
        b: &StoryBible,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Vec<SceneBreakdown>>> {
        self.0.breakdown(s, b, c).await
    }
    async fn locations(
        &self,
        g: &GatherSnapshot,
        b: &StoryBible,
    ) -> slate_activities::Result<Paid<Vec<LocationDetail>>> {
        self.0.locations(g, b).await
    }
    async fn props(
        &self,
        g: &GatherSnapshot,
        s: &Screenplay,
    ) -> slate_activities::Result<Paid<Vec<PropItem>>> {
        self.0.props(g, s).await
    }
    async fn voices(
        &self,
        c: &[CharacterProfile],
    ) -> slate_activities::Result<Paid<Vec<VoiceCasting>>> {
        self.0.voices(c).await
    }
    async fn shot_plan(
        &self,
        s: &SceneBreakdown,
        c: &ShotContext,
    ) -> slate_activities::Result<Paid<ShotPlan>> {
        let mut p = self.0.shot_plan(s, c).await?;
        // More prop layers (of the project's qualified props) after the real ones.
        for i in 0..self.1 {
            p.value.composite_steps.push(CompositeStep {
                kind: "props".into(),
                description: format!("rearrange the props, pass {i}"),
                subjects: vec!["Lantern".into(), "Ledger".into(), "Key".into()],
            });
        }
        Ok(p)
    }
}

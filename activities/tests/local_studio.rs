//! The local studio's renderer, vision check and knowledge store, on real databases.

use serde_json::json;
use slate_activities::local::{Db, LocalKnowledge, LocalVision, Storyboard, manifest_key};
use slate_activities::model::*;
use slate_activities::{BlobRef, Blobs, ImageGen, Knowledge, Vision};
use slate_engine::store::SqlPools;
use slate_engine::testing::{fresh_postgres_url, fresh_sqlite_path, test_config};

fn blobs() -> Blobs {
    let dir = std::env::temp_dir().join(format!(
        "slate-studio-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    Blobs::local(dir, None).unwrap()
}

fn mira(x: f32) -> FigureSpec {
    FigureSpec {
        id: "mira".into(),
        name: "Mira".into(),
        x,
        view: "three_quarter_left".into(),
        color: "#2a9d8f".into(),
        looks: None,
    }
}

fn location_only() -> Composition {
    Composition {
        location: Some("Harbor Market".into()),
        time_of_day: Some("night".into()),
        lighting: Some("dramatic".into()),
        palette: vec!["#6b4f3a".into()],
        caption: "The market at night".into(),
        layers: vec!["location".into()],
        ..Default::default()
    }
}

async fn render(
    images: &Storyboard,
    comp: Composition,
    base: Option<BlobRef>,
    key: &str,
) -> ImageOutput {
    let req = ImageRequest {
        prompt: comp.caption.clone(),
        base,
        references: vec![],
        composition: comp,
        output_key: key.into(),
        aspect_ratio: "16:9".into(),
        seed: None,
    };
    let job = images.submit(&req).await.unwrap();
    match images.poll(&job, &req).await.unwrap().value {
        JobState::Completed { output } => output,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn each_iteration_adds_its_layer_and_the_vision_check_sees_it() {
    let blobs = blobs();
    let images = Storyboard::new(blobs.clone());
    let first = render(&images, location_only(), None, "s/1/composite-1.png").await;
    let mut with_mira = location_only();
    with_mira.characters.push(mira(0.4));
    with_mira.layers.push("characters".into());
    let second = render(
        &images,
        with_mira,
        Some(first.image.clone()),
        "s/1/composite-2.png",
    )
    .await;
    assert_eq!(
        second.manifest.as_ref().unwrap().key(),
        manifest_key("s/1/composite-2.png")
    );

    let a = image::load_from_memory(&blobs.get(&first.image).await.unwrap())
        .unwrap()
        .to_rgb8();
    let b = image::load_from_memory(&blobs.get(&second.image).await.unwrap())
        .unwrap()
        .to_rgb8();
    let changed = a.pixels().zip(b.pixels()).filter(|(x, y)| x != y).count();
    let total = (a.width() * a.height()) as usize;
    assert!(
        changed > 500,
        "the figure was drawn ({changed} pixels changed)"
    );
    assert!(
        changed < total / 4,
        "only the layer changed ({changed} of {total})"
    );

    let vision = LocalVision::new(blobs.clone(), 0.0);
    let ask = |image: BlobRef, chars: Vec<&str>| VisionQuery {
        image,
        manifest: None,
        question: "Does the frame show the market with its characters?".into(),
        expect: Expectation {
            location: Some("Harbor Market".into()),
            characters: chars.into_iter().map(String::from).collect(),
            props: vec![],
        },
    };
    let yes = vision
        .ask(&ask(second.image.clone(), vec!["Mira"]))
        .await
        .unwrap()
        .value;
    assert!(yes.passed, "{}", yes.answer);
    let no = vision
        .ask(&ask(first.image.clone(), vec!["Mira"]))
        .await
        .unwrap()
        .value;
    assert!(!no.passed);
    assert!(no.answer.contains("character Mira"), "{}", no.answer);

    // A manifest that lies about a figure is caught by the pixels.
    let mkey = BlobRef::new(manifest_key(first.image.key())).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&blobs.get(&mkey).await.unwrap()).unwrap();
    m["composition"]["characters"] = json!([mira(0.4)]);
    blobs
        .put(mkey.key(), serde_json::to_vec(&m).unwrap())
        .await
        .unwrap();
    let caught = vision
        .ask(&ask(first.image.clone(), vec!["Mira"]))
        .await
        .unwrap()
        .value;
    assert!(!caught.passed);
    assert!(
        caught.answer.contains("not in the picture"),
        "{}",
        caught.answer
    );

    // Told to reject everything, it does; the reason says why.
    let strict = LocalVision::new(blobs.clone(), 1.0);
    let r = strict
        .ask(&ask(second.image.clone(), vec!["Mira"]))
        .await
        .unwrap()
        .value;
    assert!(!r.passed && r.answer.contains("failure rate"));
    let d = vision
        .describe(&second.image, None, "describe")
        .await
        .unwrap()
        .value;
    assert!(
        d.contains("Mira") && d.contains("three quarter left"),
        "{d}"
    );
}

async fn knowledge_on(pools: SqlPools) {
    let db = match pools {
        SqlPools::Postgres(p) => Db::Postgres(p),
        SqlPools::Sqlite { writer, reader } => Db::Sqlite { writer, reader },
    };
    let blobs = blobs();
    let k = LocalKnowledge::new(db, blobs.clone());
    assert!(k.health().await.unwrap());
    let doc = |kind: &str, key: &str, title: &str, text: &str| KnowledgeDoc {
        project: "lantern".into(),
        kind: kind.into(),
        key: key.into(),
        title: title.into(),
        text: text.into(),
        metadata: json!({"source": "test"}),
    };
    k.store(&[
        doc(
            "character",
            "mira",
            "Mira",
            "A curious courier with a red scarf.",
        ),
        doc(
            "location",
            "harbor-market",
            "Harbor Market",
            "Stalls under canvas by the water.",
        ),
        doc(
            "prop",
            "lantern",
            "Lantern",
            "A brass lantern that never cools.",
        ),
    ])
    .await
    .unwrap();
    // Replacing by key keeps one document.
    k.store(&[doc(
        "character",
        "mira",
        "Mira",
        "A curious courier; scarf is red.",
    )])
    .await
    .unwrap();
    let ctx = k.context("lantern").await.unwrap();
    assert_eq!(ctx.len(), 3);
    assert!(ctx.iter().any(|d| d.text.contains("scarf is red")));
    assert!(k.context("other-project").await.unwrap().is_empty());

    let q = |chars: Vec<&str>| KnowledgeQuery {
        project: "lantern".into(),
        query: "consistent?".into(),
        image: None,
        manifest: None,
        expect: Expectation {
            location: Some("Harbor Market".into()),
            characters: chars.into_iter().map(String::from).collect(),
            props: vec!["Lantern".into()],
        },
    };
    let known = k.query(&q(vec!["Mira"])).await.unwrap().value;
    assert_eq!(known.confidence, 1.0, "{}", known.answer);
    assert_eq!(known.sources.len(), 3);
    let stranger = k.query(&q(vec!["Mira", "Zorbulon"])).await.unwrap().value;
    assert!((stranger.confidence - 0.75).abs() < 1e-9);
    assert!(stranger.answer.contains("Zorbulon"));
    // Free text, including FTS syntax and quotes, is searched, never parsed as a query language.
    for text in [
        "brass lantern",
        "\"unbalanced",
        "lantern OR NEAR(x",
        "'; DROP TABLE knowledge; --",
    ] {
        let a = k
            .query(&KnowledgeQuery {
                project: "lantern".into(),
                query: text.into(),
                image: None,
                manifest: None,
                expect: Expectation::default(),
            })
            .await
            .unwrap();
        assert!(a.value.confidence > 0.0);
    }
    let hit = k
        .query(&KnowledgeQuery {
            project: "lantern".into(),
            query: "brass lantern".into(),
            image: None,
            manifest: None,
            expect: Expectation::default(),
        })
        .await
        .unwrap()
        .value;
    assert_eq!(hit.sources, vec!["lantern".to_string()]);
    let e = k
        .embeddings(&["a lantern".into(), "a scarf".into()])
        .await
        .unwrap();
    assert_eq!(e.len(), 2);
    assert_ne!(e[0], e[1]);
}

#[tokio::test]
async fn knowledge_on_postgres() {
    let engine = slate_engine::Engine::connect(&fresh_postgres_url().await.unwrap(), test_config())
        .await
        .unwrap();
    knowledge_on(engine.store().pools()).await;
}

#[tokio::test]
async fn knowledge_on_sqlite() {
    let url = format!("sqlite://{}", fresh_sqlite_path().display());
    let engine = slate_engine::Engine::connect(&url, test_config())
        .await
        .unwrap();
    knowledge_on(engine.store().pools()).await;
}

//! The HTTP API against a real server on port 0 and a fresh database: auth, bad input, every
//! route, the OpenAPI document, webhooks, a film made over HTTP.
//!
//! (One suite over 600 lines on purpose: it shares one server harness and walks the API by
//! resource.)

mod common;

use std::time::Duration;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slate_activities::ProviderSettings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_bad_input_get_clear_json_errors_and_lose_nothing() {
    let s = TestServer::start(
        Db::Sqlite,
        ProviderSettings::default(),
        &[("SLATE_BODY_LIMIT_BYTES", "4096")],
    )
    .await;

    keys_open_what_they_should(&s).await;
    bad_bodies_and_hostile_slugs_are_refused(&s).await;
    unknown_ids_are_not_found(&s).await;
    webhooks_need_their_secret_and_a_sensible_body(&s).await;
    // No answer carries a key.
    for path in ["/api/projects", "/metrics", "/openapi.json"] {
        let (_, v) = s.call(Method::GET, path, None).await;
        let text = v.to_string();
        for secret in [API_KEY, ADMIN_KEY, WEBHOOK_SECRET] {
            assert!(!text.contains(secret), "{path} leaks a secret");
        }
    }
    s.stop().await;
}

/// Health is public; everything else needs the key; the admin key opens admin, the API key does not.
async fn keys_open_what_they_should(s: &TestServer) {
    // Health is public; everything else needs the key.
    let (st, v) = s.call_as(None, Method::GET, "/health", None).await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, v) = s.call_as(None, Method::GET, "/api/projects", None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(is_error(&v) && v["error"]["message"].as_str().unwrap().contains("Bearer"));
    let (st, v) = s
        .call_as(Some("wrong"), Method::GET, "/api/projects", None)
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(is_error(&v));
    let res = s
        .http
        .get(s.url("/api/projects"))
        .header("X-API-Key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "X-API-Key works too");
    // The admin key opens the API; the API key does not open admin.
    let (st, _) = s
        .call_as(Some(ADMIN_KEY), Method::GET, "/api/projects", None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let ghost = uuid::Uuid::new_v4();
    let path = format!("/api/admin/runs/{ghost}/cancel");
    let (st, v) = s.call(Method::POST, &path, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin key")
    );
    let (st, _) = s.call_as(None, Method::POST, &path, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = s.admin(Method::POST, &path, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

/// Bodies too large, not JSON, not declared JSON, with unknown fields; hostile slugs never reach a namespace or a query; a good project survives the bad requests around it.
async fn bad_bodies_and_hostile_slugs_are_refused(s: &TestServer) {
    // Bodies: too large, not JSON, not declared JSON, unknown fields.
    let big = json!({"slug": "big", "title": "x".repeat(10_000)});
    let (st, v) = s.post("/api/projects", big).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(
        is_error(&v)
            && v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("SLATE_BODY_LIMIT_BYTES")
    );
    let res = s
        .http
        .post(s.url("/api/projects"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body("{\"slug\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(is_error(&res.json().await.unwrap()));
    let res = s
        .http
        .post(s.url("/api/projects"))
        .bearer_auth(API_KEY)
        .body("{\"slug\": \"a\", \"title\": \"b\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (st, v) = s
        .post(
            "/api/projects",
            json!({"slug": "ok", "title": "t", "owner": "me"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("owner"));

    // Hostile slugs never reach a namespace or a query.
    for slug in [
        "../../etc/passwd",
        "x'); DROP TABLE projects; --",
        "UPPER",
        "under_score",
        "",
        &"a".repeat(49),
        "gather_x",
        "名前",
        "../x",
        "a;drop",
        &"a".repeat(200),
        "-lead",
    ] {
        let (st, v) = s
            .post("/api/projects", json!({"slug": slug, "title": "t"}))
            .await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "slug {slug:?}: {v}");
        assert!(is_error(&v), "{v}");
    }
    for path in [
        "/api/projects/..%2F..%2Fetc",
        "/api/projects/a%20b/scenes",
        "/api/projects/x';--/readiness",
        "/api/projects/Robert/story-bible",
    ] {
        let (st, v) = s.call(Method::GET, path, None).await;
        assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
    }
    let v = s.get("/api/projects").await;
    assert_eq!(
        v["projects"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
    // A good project survives the bad requests around it.
    let (st, _) = s
        .post("/api/projects", json!({"slug": "fine", "title": "Fine"}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .post("/api/projects", json!({"slug": "fine", "title": "Again"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert_eq!(
        s.get("/api/projects/fine").await["project"]["title"],
        "Fine"
    );
}

/// Unknown ids, methods and workflows get a JSON error.
async fn unknown_ids_are_not_found(s: &TestServer) {
    let ghost = uuid::Uuid::new_v4();
    // Unknown ids.
    for path in [
        format!("/api/runs/{ghost}"),
        format!("/api/runs/{ghost}/events"),
        "/api/projects/ghost".to_string(),
        "/api/projects/ghost/scenes".to_string(),
        "/api/projects/ghost/story-bible".to_string(),
        "/api/scenes/ghost-s001".to_string(),
        "/api/templates/No Such Template".to_string(),
        "/media/projects/ghost/film.mp4".to_string(),
        "/api/nothing-here".to_string(),
    ] {
        let (st, v) = s.call(Method::GET, &path, None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {v}");
        assert!(is_error(&v), "{path}: {v}");
    }
    let (st, v) = s
        .call(Method::POST, &format!("/api/errors/{ghost}/dismiss"), None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = s.call(Method::GET, "/api/runs/not-a-uuid", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s.call(Method::GET, "/api/runs?status=sideways", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = s.call(Method::GET, "/api/runs?limit=0", None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = s.call(Method::DELETE, "/api/projects", None).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert!(is_error(&v));
    let (st, v) = s
        .call(Method::GET, "/media/..%2F..%2Fetc%2Fpasswd", None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = s
        .post("/api/runs", json!({"workflow": "no.such", "input": {}}))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/workflows")
    );
}

/// Webhooks: the secret or the path's token, then a body that makes sense.
async fn webhooks_need_their_secret_and_a_sensible_body(s: &TestServer) {
    // Webhooks: the secret or the path's token, then a body that makes sense.
    let hook = "/api/webhooks/video-complete";
    let body = json!({"task_id": "t-1", "status": "completed"});
    let (st, v) = s
        .call_as(None, Method::POST, hook, Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
    let res = s
        .http
        .post(s.url(hook))
        .header("X-Webhook-Secret", "guess")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let other = slate_activities::config::webhook_token(
        &slate_activities::Secret::new(WEBHOOK_SECRET),
        "/api/webhooks/fal",
    );
    let res = s
        .http
        .post(s.url(&format!("{hook}?token={other}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "a token opens only its own path"
    );
    let send = |b: reqwest::Body| {
        s.http
            .post(s.url(hook))
            .header("X-Webhook-Secret", WEBHOOK_SECRET)
            .body(b)
            .send()
    };
    let res = send("not json".into()).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Neither a task in the body nor a run in the URL: no job to wake.
    let res = send(json!({"status": "completed"}).to_string().into())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // The server answers 413 before reading the whole body and closes the connection; on its
    // own connection, so the next request does not race that close on a pooled one.
    let res = s
        .http
        .post(s.url(hook))
        .header("X-Webhook-Secret", WEBHOOK_SECRET)
        .header("connection", "close")
        .body(vec![b' '; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let res = send(body.to_string().into()).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (st, v) = s
        .call_as(
            None,
            Method::POST,
            "/api/webhooks/fal",
            Some(json!({"request_id": "r"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_validates_and_lists_every_served_route() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    // The document and its reference page are public: tools read them without a key.
    let (st, doc) = s.call_as(None, Method::GET, "/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK, "{doc}");
    assert_eq!(doc["openapi"], "3.1.0");
    let page = s.http.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/openapi.json") && !html.contains("https://"),
        "assets embedded, no CDN"
    );

    every_ref_resolves(&doc);
    // A schema "with properties": an object (or a choice of objects) that says what is in it.
    let resolve = |v: &Value| -> Value {
        let mut v = v.clone();
        while let Some(r) = v.get("$ref").and_then(|r| r.as_str()) {
            v = doc.pointer(r.strip_prefix('#').unwrap()).unwrap().clone();
        }
        v
    };
    let described = |schema: &Value| -> bool {
        let sc = resolve(schema);
        let variants: Vec<Value> = match sc.get("oneOf").or(sc.get("anyOf")) {
            Some(Value::Array(v)) => v
                .iter()
                .map(&resolve)
                .filter(|v| v.get("type") != Some(&json!("null")))
                .collect(),
            _ => vec![sc.clone()],
        };
        variants.iter().all(|v| {
            v.get("properties")
                .and_then(|p| p.as_object())
                .is_some_and(|p| !p.is_empty())
                || v.get("allOf").is_some()
                || v.get("type") == Some(&json!("string"))
        })
    };

    let routes = slate_server::app::route_table();
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let what = format!("{} {path}", method.to_uppercase());
            // Every path parameter is declared.
            for seg in path.split('/').filter(|p| p.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    op["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path")),
                    "{what} declares `{name}`"
                );
            }
            // Every request body and every JSON response says what is in it.
            if let Some(body) = op.get("requestBody") {
                // JSON, or (a file import) the text it takes.
                let content = body["content"].as_object().unwrap();
                let sc = content
                    .get("application/json")
                    .or_else(|| content.get("text/plain"))
                    .map(|c| c["schema"].clone())
                    .unwrap_or(Value::Null);
                assert!(described(&sc), "{what}: request body {sc}");
            }
            for (code, res) in op["responses"].as_object().unwrap() {
                let res = resolve(res);
                if let Some(sc) = res.pointer("/content/application~1json/schema")
                    && path != "/openapi.json"
                {
                    assert!(described(sc), "{what} {code}: {sc}");
                }
            }
            // Errors are documented where they can happen.
            let codes: Vec<&str> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            let route = routes
                .iter()
                .find(|r| r.path == *path && r.method == *method)
                .unwrap_or_else(|| panic!("{what} is a route"));
            match route.access {
                slate_server::app::Access::Api | slate_server::app::Access::Admin => {
                    assert!(
                        codes.contains(&"401") && codes.contains(&"403"),
                        "{what}: {codes:?}"
                    )
                }
                slate_server::app::Access::Webhook => assert!(codes.contains(&"401"), "{what}"),
                slate_server::app::Access::Public => {
                    assert!(op["security"] == json!([{}]), "{what} is public")
                }
            }
            if op.get("requestBody").is_some() {
                assert!(
                    ["400", "413", "415", "422"]
                        .iter()
                        .all(|c| codes.contains(c)),
                    "{what}: {codes:?}"
                );
            }
        }
    }
    assert_eq!(operations, routes.len(), "one operation per route");
    every_route_is_served(&s, &routes).await;
    // What is not documented is not served.
    let (st, v) = s.call(Method::GET, "/api/not-a-route", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no such route")
    );
    s.stop().await;
}

/// Every $ref of the OpenAPI document points at something.
fn every_ref_resolves(doc: &Value) {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = vec![];
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let pointer = r.strip_prefix('#').expect("local refs");
        assert!(doc.pointer(pointer).is_some(), "{r} resolves");
    }
}

/// The router serves every route of the table: a request with made-up parameters reaches a
/// handler (its answer is not the router's "no such route" nor "method not allowed").
async fn every_route_is_served(s: &TestServer, routes: &[slate_server::app::RouteInfo]) {
    let ghost = uuid::Uuid::new_v4().to_string();
    for r in routes {
        let method = Method::from_bytes(r.method.to_uppercase().as_bytes()).unwrap();
        // And the router serves it: a request with made-up parameters reaches a handler (its
        // answer is not the router's "no such route" nor "method not allowed").
        let concrete = r
            .path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    if seg.contains("id") {
                        ghost.as_str()
                    } else {
                        "ghost"
                    }
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let (st, v) = s
            .call_as(Some(ADMIN_KEY), method.clone(), &concrete, None)
            .await;
        assert_ne!(
            st,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {concrete}: {v}"
        );
        let unrouted = v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no such route"));
        assert!(!unrouted, "{method} {concrete} is served");
    }
}

/// A PUT with the version just read succeeds; the same PUT again carries a stale version and
/// is refused with 409. Returns the first answer.
async fn put_then_stale(s: &Api, path: &str, body: Value) -> Value {
    let (st, v) = s.call(Method::PUT, path, Some(body.clone())).await;
    assert_eq!(st, StatusCode::OK, "PUT {path}: {v}");
    let (st, stale) = s.call(Method::PUT, path, Some(body)).await;
    assert_eq!(st, StatusCode::CONFLICT, "PUT {path} again: {stale}");
    assert!(is_error(&stale));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_film_over_http_on_postgres() {
    let s = TestServer::start(Db::Postgres, ProviderSettings::default(), &[]).await;
    let slug = "lantern-mini";
    let gather = mini_gather(1);
    create_project(&s, slug, &gather).await;

    let v = s.get(&format!("/api/projects/{slug}/gather")).await;
    assert_eq!(v["locked"], false);
    assert_eq!(v["collections"]["raw_characters"], 3);
    assert_eq!(v["namespace"], format!("gather_{slug}"));
    let docs = s
        .get(&format!("/api/projects/{slug}/gather/raw_scenes"))
        .await;
    assert_eq!(docs["documents"].as_array().unwrap().len(), 1);
    let r = s.get(&format!("/api/projects/{slug}/readiness")).await;
    let depts = r["departments"].as_array().unwrap();
    assert!(depts.len() >= 5, "{r}");
    for d in depts {
        let score = d["score"].as_u64().unwrap();
        assert!(score <= 100 && d["missing_items"].is_array(), "{d}");
        assert_eq!(d["ready"].as_bool(), Some(score >= 75), "{d}");
    }
    assert_eq!(
        r["overall_ready"].as_bool(),
        Some(depts.iter().all(|d| d["ready"] == true))
    );
    assert_eq!(r["threshold"], 75);
    let (st, v) = s.post("/api/projects/ghost/qualify", json!({})).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    let (qid, run) = qualification_waits_in_its_window_then_continues(&s, slug).await;
    the_run_shows_its_steps_history_and_cost(&s, slug, &qid, &run).await;
    let sid = qualified_data_is_read_and_edited(&s, slug).await;
    prompt_templates_are_listed_made_and_changed(&s).await;
    the_film_is_made_and_served(&s, slug, &sid).await;
    // Metrics reflect the runs.
    let res = s
        .http
        .get(s.url("/metrics"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(
        text.contains("slate_runs{workflow=\"film.generate\",status=\"completed\"} 1"),
        "{text}"
    );
    assert!(text.contains("slate_cost_usd_total"));
    assert!(
        text.contains("slate_step_duration_seconds_bucket"),
        "step latency"
    );
    assert!(text.contains("slate_step_retries_total"), "retries");
    let succeeded: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("slate_steps_succeeded_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        succeeded > 50.0,
        "the film's steps are counted: {succeeded}"
    );
    s.stop().await;
}

/// Qualification waits in its edit window until told to continue; gather is locked once it started. Returns its run id and its run.
async fn qualification_waits_in_its_window_then_continues(
    s: &TestServer,
    slug: &str,
) -> (String, Value) {
    // Qualification waits in its edit window until told to continue.
    let (st, q) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"edit_window_secs": 600, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{q}");
    let qid = q["run_id"].as_str().unwrap().to_string();
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    // Wait until the run is in its window, then continue it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = s.get(&format!("/api/runs/{qid}")).await;
        if v["run"]["status"] == "waiting" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (st, v) = s
        .post(&format!("/api/projects/{slug}/qualify/continue"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let run = s.wait_run(&qid, Duration::from_secs(300)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let (st, v) = s
        .post(&format!("/api/projects/{slug}/qualify/stop"), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "no window is open now: {v}");
    // Gather is locked once qualification started.
    let (st, v) = s
        .post(
            &format!("/api/projects/{slug}/gather/raw_notes"),
            json!({"text": "late"}),
        )
        .await;
    assert_eq!(st, StatusCode::LOCKED, "{v}");
    assert!(is_error(&v));

    (qid, run)
}

/// The run over HTTP: steps with attempts, history, cost.
async fn the_run_shows_its_steps_history_and_cost(
    s: &TestServer,
    slug: &str,
    qid: &str,
    run: &Value,
) {
    // The run over HTTP: steps with attempts, history, cost.
    let steps = run["steps"].as_array().unwrap();
    assert!(steps.len() > 10);
    assert_eq!(steps[0]["kind"], "wait", "the edit window comes first");
    assert_eq!(
        steps[0]["status"], "received",
        "and was ended by `continue`"
    );
    let lock = steps.iter().find(|s| s["name"] == "lock-gather").unwrap();
    assert_eq!(
        (lock["status"].as_str(), lock["attempts"].as_u64()),
        (Some("succeeded"), Some(1))
    );
    assert!(lock["duration_ms"].is_u64() && lock["cost"].is_object());
    let events = s.get(&format!("/api/runs/{qid}/events")).await;
    assert!(events["events"].as_array().unwrap().len() > 10);
    let listed = s
        .get(&format!("/api/runs?workflow=film.qualify&project={slug}"))
        .await;
    assert_eq!(listed["runs"][0]["id"], qid);
}

/// Qualified data, scenes, story bible, characters: read, edited, stale edits refused. Returns the first scene's id.
async fn qualified_data_is_read_and_edited(s: &TestServer, slug: &str) -> String {
    // Qualified data, scenes, story bible, characters.
    let profiles = s
        .get(&format!(
            "/api/projects/{slug}/qualified/character_profiles"
        ))
        .await;
    assert_eq!(profiles["documents"].as_array().unwrap().len(), 3);
    let scenes = s.get(&format!("/api/projects/{slug}/scenes")).await["scenes"].clone();
    let scenes = scenes.as_array().unwrap().clone();
    assert!(!scenes.is_empty());
    let first = scenes[0].clone();
    let sid = first["id"].as_str().unwrap();
    let one = s.get(&format!("/api/scenes/{sid}")).await;
    assert_eq!(one["id"], sid);
    let version = one["version"].as_i64().unwrap();
    let path = format!("/api/scenes/{sid}");
    let (st, edited) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"version": version, "changes": {"dramatic_effect": "quiet wonder"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{edited}");
    assert_eq!(edited["dramatic_effect"], "quiet wonder");
    let (st, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"version": version, "changes": {"dramatic_effect": "lost"}})),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "a stale version: {v}");
    let (st, v) = s
        .call(
            Method::PATCH,
            &path,
            Some(json!({"version": edited["version"], "changes": {"expected_duration": 9.0}})),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "scenes last 3-7 s: {v}"
    );
    assert_eq!(
        s.get(&path).await["dramatic_effect"],
        "quiet wonder",
        "the bad edit lost nothing"
    );

    let bible = s.get(&format!("/api/projects/{slug}/story-bible")).await;
    let bpath = format!("/api/projects/{slug}/story-bible");
    let mut b = bible.clone();
    b.as_object_mut().unwrap().remove("version");
    b["logline"] = json!("A girl and a lantern that will not cool.");
    let v = put_then_stale(s, &bpath, json!({"version": bible["version"], "bible": b})).await;
    assert_eq!(v["logline"], "A girl and a lantern that will not cool.");
    let chars = s.get(&format!("/api/projects/{slug}/characters")).await;
    assert_eq!(chars["characters"].as_array().unwrap().len(), 3);
    let c = chars["characters"][0].clone();
    assert_eq!(
        c["references_360"].as_object().unwrap().len(),
        6,
        "six views: {c}"
    );
    let cid = c["character_id"].as_str().unwrap();
    let mut reference = c.clone();
    reference.as_object_mut().unwrap().remove("version");
    let cpath = format!("/api/projects/{slug}/characters/{cid}");
    put_then_stale(
        s,
        &cpath,
        json!({"version": c["version"], "reference": reference}),
    )
    .await;
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/characters/tam"),
            Some(json!({"version": c["version"], "reference": reference})),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an id in the body that is not the path's: {v}"
    );
    let mut nobody = reference.clone();
    nobody["character_id"] = json!("nobody");
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/api/projects/{slug}/characters/nobody"),
            Some(json!({"version": 1, "reference": nobody})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");

    sid.to_string()
}

/// Prompt templates: listed, made, refused twice, changed.
async fn prompt_templates_are_listed_made_and_changed(s: &TestServer) {
    // Prompt templates.
    let ts = s.get("/api/templates").await;
    assert!(ts["templates"].as_array().unwrap().len() >= 3);
    let (st, v) = s
        .post(
            "/api/templates/Scene Video/render",
            json!({"variables": {"text_prompt": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("camera_angle"),
        "names what is missing: {v}"
    );
    let var = |n: &str| json!({"variable_name": n, "variable_description": n, "required": true});
    let t = json!({"name": "Close Up", "description": "a close shot", "prompt": "Close up of [who], [mood].",
                   "category": "video", "variables": [var("who"), var("mood")]});
    let (st, created) = s.post("/api/templates", t.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let (st, _) = s.post("/api/templates", t.clone()).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = s
        .post("/api/templates", json!({"name": "Bad", "description": "", "prompt": "[a]", "category": "video", "variables": [var("b")]}))
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "variables must match the prompt: {v}"
    );
    let (st, v) = s
        .post(
            "/api/templates/Close Up/render",
            json!({"variables": {"who": "Mira", "mood": "calm"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["prompt"], "Close up of Mira, calm.");
    let got = s.get("/api/templates/Close Up").await;
    let mut t2 = t.clone();
    t2["description"] = json!("closer");
    t2["prompt"] = json!("Closer on [who], [mood].");
    put_then_stale(
        s,
        "/api/templates/Close Up",
        json!({"version": got["version"], "template": t2}),
    )
    .await;
    let (_, v) = s
        .post(
            "/api/templates/Close Up/render",
            json!({"variables": {"who": "Tam", "mood": "wary"}}),
        )
        .await;
    assert_eq!(
        v["prompt"], "Closer on Tam, wary.",
        "the edit is what renders"
    );
}

/// The film: generated, downloaded whole and in ranges; a scene's last frame served.
async fn the_film_is_made_and_served(s: &TestServer, slug: &str, sid: &str) {
    // The film.
    let (st, g) = s
        .post(&format!("/api/projects/{slug}/generate"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{g}");
    let gid = g["run_id"].as_str().unwrap().to_string();
    let (st, v) = s
        .post(&format!("/api/projects/{slug}/generate"), json!({}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    let run = s.wait_run(&gid, Duration::from_secs(600)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    let p = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(p["project"]["status"], "completed", "{p}");
    let film = p["project"]["final_video"]
        .as_str()
        .expect("a final video")
        .to_string();
    let res = s
        .http
        .get(s.url(&format!("/media/{film}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "video/mp4");
    let whole = res.bytes().await.unwrap();
    assert!(whole.len() > 10_000);
    let res = s
        .http
        .get(s.url(&format!("/media/{film}")))
        .bearer_auth(API_KEY)
        .header("Range", "bytes=100-199")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 100-199/{}", whole.len())
    );
    assert_eq!(res.bytes().await.unwrap(), whole.slice(100..200));
    let res = s
        .http
        .get(s.url(&format!("/media/{film}")))
        .bearer_auth(API_KEY)
        .header("Range", format!("bytes={}-", whole.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let frame = s.get(&format!("/api/scenes/{sid}")).await["last_frame_url"]
        .as_str()
        .unwrap()
        .to_string();
    let res = s
        .http
        .get(s.url(&format!("/media/{frame}")))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "image/png");
}

/// A workflow of this test: `prepare` (counted), then either a signal wait or `check`, which
/// fails for good while its gate file is missing.
#[derive(Clone)]
struct Gate {
    dir: std::path::PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct GateInput {
    gate: String,
    #[serde(default)]
    wait: bool,
}

fn effect(dir: &std::path::Path, what: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("effects"))
        .unwrap();
    writeln!(f, "{what}").unwrap();
}

fn effects(dir: &std::path::Path, what: &str) -> usize {
    std::fs::read_to_string(dir.join("effects"))
        .unwrap_or_default()
        .lines()
        .filter(|l| *l == what)
        .count()
}

impl slate_engine::Workflow for Gate {
    const NAME: &'static str = "test.gate";
    type Input = GateInput;
    type Output = Value;

    async fn run(
        &self,
        ctx: slate_engine::Ctx,
        i: GateInput,
    ) -> Result<Value, slate_engine::WfError> {
        let (d, g) = (self.dir.clone(), i.gate.clone());
        ctx.step("prepare", move |_| async move {
            effect(&d, &format!("prepare:{g}"));
            Ok(())
        })
        .await?;
        if i.wait {
            let v: Option<Value> = ctx.wait_signal("approval", "approve", None).await?;
            return Ok(json!({"approved": v}));
        }
        let (d, g) = (self.dir.clone(), i.gate.clone());
        ctx.step("check", move |_| async move {
            if d.join(&g).exists() {
                effect(&d, &format!("check:{g}"));
                Ok(())
            } else {
                Err(slate_engine::StepError::fatal(
                    "gate_closed",
                    format!("gate {g} is closed"),
                ))
            }
        })
        .await?;
        Ok(json!({"gate": i.gate}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_admin_operations_over_http() {
    let dir = temp_dir("gate");
    let gate = Gate { dir: dir.clone() };
    let s = TestServer::start_with(Db::Sqlite, ProviderSettings::default(), &[], |st| {
        st.engine.register(gate);
    })
    .await;
    let wf = s.get("/api/workflows").await;
    let names: Vec<&str> = wf["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    for w in [
        "test.gate",
        "film.qualify",
        "film.scene",
        "film.generate",
        "film.produce",
    ] {
        assert!(names.contains(&w), "{w} in {names:?}");
    }

    a_run_starts_once_fails_is_retried_and_reset(&s, &dir).await;
    failed_runs_are_redriven(&s, &dir).await;
    signals_cancels_budgets_and_limits(&s).await;
    runs_page_without_gaps_or_repeats(&s).await;
    // Global errors: newest first, dismissed once.
    let slug = slate_workflows::Slug::parse("errs").unwrap();
    for (i, m) in ["first", "second"].iter().enumerate() {
        s.state
            .film
            .repo
            .record_error(Some(&slug), "video", m, &json!({}), &format!("k{i}"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let errs = s.get("/api/errors").await["errors"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        errs.iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["second", "first"]
    );
    let eid = errs[0]["id"].as_str().unwrap();
    let (st, _) = s
        .post(&format!("/api/errors/{eid}/dismiss"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        s.get("/api/errors").await["errors"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.get("/api/errors?all=true").await["errors"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    s.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Start, idempotently; it fails at `check` and says where and why; retried while the gate is closed it fails again, opened it succeeds with `prepare` run once; reset to `check` runs `check` again.
async fn a_run_starts_once_fails_is_retried_and_reset(s: &TestServer, dir: &std::path::Path) {
    // Start, idempotently.
    let start =
        json!({"workflow": "test.gate", "input": {"gate": "g1"}, "idempotency_key": "order-1"});
    let (st, first) = s.post("/api/runs", start.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let (st, again) = s.post("/api/runs", start).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    let id = first["run"]["id"].as_str().unwrap().to_string();
    // The run records its workflow's version and this build, and is found by version.
    assert_eq!(first["run"]["workflow_version"], 1, "{first}");
    assert_eq!(first["run"]["build"], slate_server::BUILD, "{first}");
    let on = |v: u32| format!("/api/runs?workflow=test.gate&version={v}");
    assert_eq!(s.get(&on(1)).await["runs"][0]["id"], id.as_str());
    assert_eq!(s.get(&on(2)).await["runs"].as_array().unwrap().len(), 0);
    for bad in ["0", "-1", "2147483648", "x"] {
        let (st, v) = s
            .call(
                Method::GET,
                &format!("/api/runs?workflow=test.gate&version={bad}"),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "version={bad}: {v}");
    }
    assert_eq!(
        again["run"]["id"],
        id.as_str(),
        "the same key is the same run"
    );
    let (st, v) = s
        .post(
            "/api/runs",
            json!({"workflow": "test.gate", "input": {"nope": 1}}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::UNPROCESSABLE_ENTITY,
        "input that does not fit is refused at the door: {v}"
    );
    assert!(
        v["error"]["message"].as_str().unwrap().contains("gate"),
        "{v}"
    );

    // It fails at `check`; the run says where and why.
    let run = s.wait_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["run"]["status"], "failed", "{run}");
    let check = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "check")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "failed");
    assert!(
        check["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed")
    );
    let failed = s.get("/api/runs?status=failed&workflow=test.gate").await;
    assert!(
        failed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str())
    );

    // Retry while the gate is still closed: it fails again. Open it: the retry succeeds, and
    // `prepare` ran once through all of it.
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/runs/{id}/retry"),
            Some(json!({"step": "check"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let run = s.wait_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["run"]["status"], "failed");
    std::fs::write(dir.join("g1"), "open").unwrap();
    let (st, v) = s
        .admin(Method::POST, &format!("/api/admin/runs/{id}/retry"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let run = s.wait_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");
    assert_eq!(effects(dir, "prepare:g1"), 1);
    assert_eq!(effects(dir, "check:g1"), 1);
    let (st, v) = s
        .admin(Method::POST, &format!("/api/admin/runs/{id}/retry"), None)
        .await;
    assert_eq!(
        st,
        StatusCode::CONFLICT,
        "a completed run is not retried: {v}"
    );

    // Reset to `check`: it runs again, `prepare` does not.
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/runs/{id}/reset"),
            Some(json!({"step": "check"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let run = s.wait_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["run"]["status"], "completed");
    assert_eq!(
        (effects(dir, "prepare:g1"), effects(dir, "check:g1")),
        (1, 2)
    );
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/runs/{id}/reset"),
            Some(json!({"step": "nowhere"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

/// Re-drive every failed run of a workflow.
async fn failed_runs_are_redriven(s: &TestServer, dir: &std::path::Path) {
    // Re-drive every failed run of a workflow.
    let mut ids = vec![];
    for g in ["g2", "g3"] {
        let (_, v) = s
            .post(
                "/api/runs",
                json!({"workflow": "test.gate", "input": {"gate": g}}),
            )
            .await;
        ids.push(v["run"]["id"].as_str().unwrap().to_string());
    }
    for i in &ids {
        assert_eq!(
            s.wait_run(i, Duration::from_secs(30)).await["run"]["status"],
            "failed"
        );
    }
    std::fs::write(dir.join("g2"), "open").unwrap();
    std::fs::write(dir.join("g3"), "open").unwrap();
    let (st, v) = s
        .admin(Method::POST, "/api/admin/workflows/test.gate/redrive", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["redriven"].as_array().unwrap().len() >= 2, "{v}");
    for i in &ids {
        assert_eq!(
            s.wait_run(i, Duration::from_secs(30)).await["run"]["status"],
            "completed"
        );
    }
    let (st, _) = s
        .admin(Method::POST, "/api/admin/workflows/no.such/redrive", None)
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

/// Signals and cancellation of waiting runs; budgets; concurrency limits.
async fn signals_cancels_budgets_and_limits(s: &TestServer) {
    // Signals and cancellation of waiting runs; budgets; concurrency limits.
    let (_, w1) = s
        .post(
            "/api/runs",
            json!({"workflow": "test.gate", "input": {"gate": "w1", "wait": true}}),
        )
        .await;
    let (_, w2) = s
        .post(
            "/api/runs",
            json!({"workflow": "test.gate", "input": {"gate": "w2", "wait": true}}),
        )
        .await;
    let (w1, w2) = (
        w1["run"]["id"].as_str().unwrap().to_string(),
        w2["run"]["id"].as_str().unwrap().to_string(),
    );
    for w in [&w1, &w2] {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while s.get(&format!("/api/runs/{w}")).await["run"]["status"] != "waiting" {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let detail = s.get(&format!("/api/runs/{w1}")).await;
    assert_eq!(detail["current_step"], "approval", "{detail}");
    let (st, v) = s
        .post(
            &format!("/api/runs/{w1}/signals/approve"),
            json!({"event_key": "a-1", "payload": {"by": "Ana"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = s
        .post(
            &format!("/api/runs/{w1}/signals/approve"),
            json!({"event_key": "a-1", "payload": {"by": "Bo"}}),
        )
        .await;
    assert_eq!(v["duplicate"], true, "{v}");
    let done = s.wait_run(&w1, Duration::from_secs(30)).await;
    assert_eq!(done["run"]["output"]["approved"]["by"], "Ana", "{done}");
    let (st, v) = s
        .admin(
            Method::PUT,
            &format!("/api/admin/runs/{w2}/budget"),
            Some(json!({"usd": 2.5})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(s.get(&format!("/api/runs/{w2}")).await["budget_usd"], 2.5);
    let (st, v) = s
        .admin(
            Method::PUT,
            &format!("/api/admin/runs/{w2}/budget"),
            Some(json!({"usd": -1})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (st, v) = s
        .admin(
            Method::POST,
            &format!("/api/admin/runs/{w2}/cancel"),
            Some(json!({"reason": "not needed"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let c = s.wait_run(&w2, Duration::from_secs(30)).await;
    assert_eq!(c["run"]["status"], "cancelled");
    let (st, v) = s
        .admin(
            Method::PUT,
            "/api/admin/concurrency/video",
            Some(json!({"max": 2})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["max"], 2);
    let (st, _) = s
        .admin(
            Method::PUT,
            "/api/admin/concurrency/video",
            Some(json!({"max": "two"})),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
}

/// Listing pages through runs, newest first, without gaps or repeats.
async fn runs_page_without_gaps_or_repeats(s: &TestServer) {
    // Listing pages through runs, newest first, without gaps or repeats.
    let all = s.get("/api/runs?workflow=test.gate&limit=500").await["runs"]
        .as_array()
        .unwrap()
        .len();
    let mut seen = std::collections::BTreeSet::new();
    let mut next: Option<String> = None;
    loop {
        let q = match &next {
            Some(b) => format!("/api/runs?workflow=test.gate&limit=2&before={b}"),
            None => "/api/runs?workflow=test.gate&limit=2".to_string(),
        };
        let page = s.get(&q).await;
        for r in page["runs"].as_array().unwrap() {
            assert!(
                seen.insert(r["id"].as_str().unwrap().to_string()),
                "no repeats"
            );
        }
        match page["next_before"].as_str() {
            Some(b) => next = Some(b.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), all);
}

fn tasks_settings(fake: &slate_tests::fake_tasks::FakeTasks) -> ProviderSettings {
    ProviderSettings {
        tasks: Some(slate_activities::config::ServiceSettings {
            url: fake.url().to_string(),
            key: slate_activities::Secret::new("tasks-key"),
            timeout: Duration::from_secs(10),
        }),
        ..Default::default()
    }
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_webhook_delivered_twice_and_out_of_order_has_one_effect() {
    let fake = slate_tests::fake_tasks::FakeTasks::start("tasks-key", 5.0).await;
    fake.hold_videos(true);
    let s = TestServer::start(Db::Sqlite, tasks_settings(&fake), &[]).await;
    let slug = "hooks";
    create_project(&s, slug, &mini_gather(1)).await;
    let (st, p) = s
        .post(
            &format!("/api/projects/{slug}/produce"),
            json!({"edit_window_secs": 0, "force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{p}");
    let pid = p["run_id"].as_str().unwrap().to_string();

    // The first scene's video is submitted, with our callback URL, and its run waits.
    wait_until("a video submission", Duration::from_secs(180), || async {
        !fake.video_submissions().is_empty()
    })
    .await;
    let sub = fake.video_submissions()[0].clone();
    let callback = sub.body["callback_url"]
        .as_str()
        .expect("a callback URL")
        .to_string();
    // The callback URL carries the run (the spec's callback body names no task of ours) and
    // a token over path and query.
    assert!(
        callback.starts_with(&format!("{}/api/webhooks/video-complete?run=", s.base)),
        "{callback}"
    );
    assert!(callback.contains("&token="), "{callback}");
    assert!(!callback.contains(WEBHOOK_SECRET), "the secret stays home");
    let scene_run = || async {
        s.get(&format!("/api/runs?workflow=film.scene&project={slug}"))
            .await["runs"]
            .as_array()
            .unwrap()
            .iter()
            // The chain's first scene; the ones after it wait for its last frame.
            .find(|r| r["status"] == "waiting" && r["input"]["previous_by_signal"] != true)
            .map(|r| r["id"].as_str().unwrap().to_string())
    };
    wait_until(
        "the scene to wait for its video",
        Duration::from_secs(60),
        || async { scene_run().await.is_some() },
    )
    .await;
    let sid = scene_run().await.unwrap();
    assert!(callback.contains(&format!("run={sid}")), "{callback}");
    assert_eq!(
        s.get(&format!("/api/runs/{sid}")).await["current_step"],
        "video/wait/0"
    );

    // The provider finishes and calls back with the spec's body (no task id): that wakes the
    // run. Then the same delivery again, and a stale "processing" late: no effect.
    fake.complete(&sub.task_id);
    let (_, spec_body) = fake
        .callbacks()
        .into_iter()
        .find(|(u, _)| u == &callback)
        .expect("the service called back");
    assert!(spec_body.get("task_id").is_none(), "{spec_body}");
    assert_eq!(spec_body["scene_id"], sub.body["task_data"]["scene_id"]);
    let woken = || async {
        s.get(&format!("/api/runs/{sid}")).await["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "video/wait/0" && x["status"] == "received")
    };
    wait_until(
        "the callback to wake the run",
        Duration::from_secs(30),
        || async { woken().await },
    )
    .await;
    let hook = |body: Value| {
        let (http, url) = (s.http.clone(), callback.clone());
        async move {
            let res = http.post(url).json(&body).send().await.unwrap();
            let st = res.status();
            (st, res.json::<Value>().await.unwrap())
        }
    };
    let (st, again) = hook(spec_body.clone()).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    assert_eq!(
        (again["duplicate"].as_bool(), again["woken"].as_u64()),
        (Some(true), Some(0)),
        "{again}"
    );
    let (st, late) = hook(json!({"task_id": sub.task_id, "status": "processing"})).await;
    assert_eq!(st, StatusCode::OK, "{late}");
    assert_eq!(late["woken"], 0, "nothing waits for it any more: {late}");
    // The callback URL cannot be pointed at another run: the token covers the query.
    let other = callback.replace(&sid, &uuid::Uuid::new_v4().to_string());
    let res = s.http.post(other).json(&spec_body).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    fake.hold_videos(false);
    let run = s.wait_run(&pid, Duration::from_secs(300)).await;
    assert_eq!(run["run"]["status"], "completed", "{run}");

    // One effect: the wait ended by the webhook (not its timeout), once; one submission per
    // scene; the clip on the scene.
    let detail = s.get(&format!("/api/runs/{sid}")).await;
    let wait = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "video/wait/0")
        .unwrap()
        .clone();
    assert_eq!(wait["status"], "received", "{wait}");
    assert!(
        !detail["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "video/wait/1"),
        "woken once, done"
    );
    let scenes = s.get(&format!("/api/projects/{slug}/scenes")).await["scenes"]
        .as_array()
        .unwrap()
        .clone();
    let subs = fake.video_submissions();
    assert_eq!(subs.len(), scenes.len(), "one video job per scene");
    for sc in &scenes {
        let id = sc["id"].as_str().unwrap();
        assert_eq!(
            subs.iter()
                .filter(|x| x.body["task_data"]["scene_id"] == id)
                .count(),
            1,
            "{id}"
        );
        assert_eq!(sc["status"], "completed");
        assert!(sc["generated_video_url"].is_string() && sc["last_frame_url"].is_string());
    }
    assert_eq!(
        s.get(&format!("/api/projects/{slug}")).await["project"]["status"],
        "completed"
    );
    s.stop().await;
}

/// However a qualification is started (its own route or `POST /api/runs`), a project has one at
/// a time; the second is refused with 409 naming the first, and the key frees up when it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_qualification_per_project_however_it_is_started() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let slug = "only-once";
    // Ready in every department: POST /api/runs meets the same readiness gate as /qualify.
    create_project(&s, slug, &mini_gather(4)).await;
    let start =
        json!({"workflow": "film.qualify", "input": {"project": slug, "edit_window_secs": 3600}});
    let (st, first) = s.post("/api/runs", start.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{first}");
    let id = first["run"]["id"].as_str().unwrap().to_string();
    let (st, second) = s.post("/api/runs", start.clone()).await;
    assert_eq!(st, StatusCode::CONFLICT, "{second}");
    assert!(
        second["error"]["message"].as_str().unwrap().contains(&id),
        "{second}"
    );
    let (st, by_route) = s
        .post(
            &format!("/api/projects/{slug}/qualify"),
            json!({"force": true}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{by_route}");
    let runs = s.get("/api/runs?workflow=film.qualify").await;
    let active: Vec<_> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !["completed", "failed", "cancelled"].contains(&r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(active.len(), 1, "{runs}");
    // Cancelled, it frees the project for the next one.
    let (st, v) = s
        .admin(Method::POST, &format!("/api/admin/runs/{id}/cancel"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    wait_until("the cancellation", Duration::from_secs(30), || async {
        s.get(&format!("/api/runs/{id}")).await["run"]["status"] == "cancelled"
    })
    .await;
    let (st, v) = s.post("/api/runs", start).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    s.stop().await;
}

/// `POST /api/runs` is one more door to the same use cases: a project workflow it starts meets
/// the checks of the project's own route (a completed project is not qualified again; an
/// unready one is refused; a missing one is 404), and its runs belong to their project.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_workflows_started_through_post_runs_meet_the_projects_checks() {
    let s = TestServer::start(Db::Sqlite, ProviderSettings::default(), &[]).await;
    let slug = "one-door";
    create_project(&s, slug, &mini_gather(4)).await;
    let qualify =
        json!({"workflow": "film.qualify", "input": {"project": slug, "edit_window_secs": 0}});

    // Not ready: the gather of a second project holds one scene idea.
    create_project(&s, "not-ready", &mini_gather(1)).await;
    let (st, v) = s
        .post(
            "/api/runs",
            json!({"workflow": "film.qualify", "input": {"project": "not-ready"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not ready"),
        "{v}"
    );
    // No such project.
    let (st, v) = s
        .post(
            "/api/runs",
            json!({"workflow": "film.produce", "input": {"project": "no-such-film"}}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    // A scene is started by its film or its own route, which the refusal names.
    let (st, v) = s
        .post(
            "/api/runs",
            json!({"workflow": "film.scene", "input": {"project": slug, "scene_id": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/scenes/"),
        "{v}"
    );
    // Scoped to another project: refused.
    let mut elsewhere = qualify.clone();
    elsewhere["scope"] = json!("another");
    let (st, v) = s.post("/api/runs", elsewhere).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Qualified through the generic door: recorded on the project, listed under it.
    let (st, v) = s.post("/api/runs", qualify.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["run"]["scope"], slug);
    wait_until("the qualification", Duration::from_secs(120), || async {
        s.get(&format!("/api/runs/{id}")).await["run"]["status"] == "completed"
    })
    .await;
    let project = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(project["project"]["status"], "qualified", "{project}");
    assert_eq!(project["project"]["qualification_run"], id.as_str());
    let listed = s.get(&format!("/api/runs?project={slug}")).await;
    assert!(
        listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()),
        "{listed}"
    );
    // Qualifying it again is refused, as /qualify refuses it, and changes nothing.
    let (st, v) = s.post("/api/runs", qualify).await;
    assert_eq!(st, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gathering"),
        "{v}"
    );
    let again = s.get(&format!("/api/projects/{slug}")).await;
    assert_eq!(again["project"]["status"], "qualified");
    assert_eq!(again["project"]["qualification_run"], id.as_str());
    // Its film through the generic door is the project's production run.
    let (st, v) = s
        .post(
            "/api/runs",
            json!({"workflow": "film.generate", "input": {"project": slug}, "idempotency_key": "film-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let film = v["run"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(&format!("/api/projects/{slug}")).await["project"]["production_run"],
        film.as_str()
    );
    // The same key again is that run, not a conflict and not a second film.
    let (st, v) = s
        .post(
            "/api/runs",
            json!({"workflow": "film.generate", "input": {"project": slug}, "idempotency_key": "film-1"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["run"]["id"], film.as_str());
    s.stop().await;
}

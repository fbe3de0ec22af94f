//! `GET /ui/live`: the live stream of [`crate::live::Feed`] as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::broadcast;

use crate::state::AppState;

/// `GET /ui/live`: what moved, as server-sent events (`event: moved`, data: JSON).
pub async fn stream(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut rx = s.live.subscribe(&s.engine);
    let feed = s.live.clone();
    let stream = async_stream(move |tx| async move {
        let hello = Event::default()
            .event("hello")
            .data(feed.generation().to_string());
        if tx.send(hello).await.is_err() {
            return;
        }
        loop {
            match rx.recv().await {
                Ok(text) => {
                    if tx
                        .send(Event::default().event("moved").data(&*text))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                // A slow page missed messages: tell it to refresh everything it shows.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if tx
                        .send(Event::default().event("resync").data("{}"))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A stream fed by a task through a small channel (no extra crate for generators).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

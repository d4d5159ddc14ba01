//! Fills a server with the search corpus through the chat protocol: one
//! connection per author, each saying `hello` (as its author), joining
//! every room, then pipelining its `say`s and waiting for every answer.

use super::corpus::{AUTHORS, Corpus};
use crate::{client, process::ServerProc};
use anyhow::{Context, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use shared::{Frame, Name, chat::Say, event};
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio_tungstenite::tungstenite::Message;

/// `say`s one connection keeps unanswered at most.
const WINDOW: usize = 256;
/// A connection that hears nothing for this long has failed.
const STALL: Duration = Duration::from_secs(30);
/// The first `say`'s request id (lower ones are `hello` and `join`).
const FIRST_SAY: u32 = 100;

/// Sends every message of `corpus` to `server`; the seconds it took.
pub(super) async fn fill(server: &ServerProc, corpus: Corpus) -> anyhow::Result<f64> {
    let start = Instant::now();
    let fillers = (0..AUTHORS.len()).map(|a| fill_as(server.addr, corpus, a));
    futures_util::future::try_join_all(fillers).await?;
    Ok(start.elapsed().as_secs_f64())
}

/// The `say` frame of message `i` of room `r` (request `id`).
fn say(id: u32, r: usize, i: usize) -> anyhow::Result<Message> {
    let body = Say {
        room: Corpus::room(r),
        text: Corpus::text(r, i),
        cid: format!("f{r}-{i}"),
        reply: None,
    };
    let frame = Frame::request(
        id,
        Name::from_static(event::SAY),
        serde_json::to_vec(&body)?,
    );
    Ok(Message::Binary(frame.encode()))
}

/// Author `a`'s messages: `i ≡ a (mod authors)` of every room, the rooms
/// taking turns.
async fn fill_as(addr: SocketAddr, corpus: Corpus, a: usize) -> anyhow::Result<()> {
    let nick = AUTHORS[a];
    let mut ws = client::connect(addr, false).await?;
    let welcome = client::call(&mut ws, 1, event::HELLO, &json!({"v": 1, "nick": nick})).await?;
    ensure!(
        welcome["nick"] == nick,
        "asked for nick {nick}, got {welcome}"
    );
    for r in 0..corpus.rooms {
        client::call(&mut ws, 2, event::JOIN, &json!({"room": Corpus::room(r)})).await?;
    }
    let says: Vec<(usize, usize)> = (a..corpus.per_room)
        .step_by(AUTHORS.len())
        .flat_map(|i| (0..corpus.rooms).map(move |r| (r, i)))
        .collect();
    let (mut sent, mut answered) = (0usize, 0usize);
    while answered < says.len() {
        // Refill the window once half of it is answered: one write for many.
        if sent - answered <= WINDOW / 2 && sent < says.len() {
            while sent < says.len() && sent - answered < WINDOW {
                let (r, i) = says[sent];
                ws.feed(say(FIRST_SAY + u32::try_from(sent)?, r, i)?)
                    .await?;
                sent += 1;
            }
            ws.flush().await?;
        }
        let next = tokio::time::timeout(STALL, ws.next())
            .await
            .with_context(|| format!("{nick}: no answer for {} s", STALL.as_secs()))?
            .with_context(|| format!("{nick}: connection closed"))??;
        let Message::Binary(data) = next else {
            continue;
        };
        if let Ok(Frame::Response { id, payload }) = Frame::decode(&data)
            && id >= FIRST_SAY
        {
            if !payload.starts_with(b"{\"ok\"") {
                bail!("{nick}: say refused: {}", String::from_utf8_lossy(&payload));
            }
            answered += 1;
        }
    }
    let _ = ws.close(None).await;
    Ok(())
}

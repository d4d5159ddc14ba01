//! Clients of the two profiles, speaking through the `shared` codec.

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shared::{Frame, Name, SUBPROTOCOL};
use std::{net::SocketAddr, sync::LazyLock, time::Instant};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

/// A client socket.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How clients talk to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The original example: `broadcast` out, `message` in, raw bytes; every
    /// connection is in the one room.
    Seed,
    /// The chat layer: `hello`, `join`, `say` (acknowledged) out, `msg`
    /// (JSON) in.
    Rich,
}

impl Profile {
    /// Short name used in results.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Seed => "seed",
            Profile::Rich => "rich",
        }
    }
}

/// The room the rich profile uses.
pub const ROOM: &str = "bench";

/// A connected client, ready to send and receive in the bench room.
pub struct Joined {
    /// The socket.
    pub ws: Ws,
    /// Rich: the session token (to resume).
    pub session: Option<String>,
    /// Rich: the room's epoch and last seq when joined.
    pub cursor: Option<(String, u64)>,
}

/// Opens a WebSocket with the protocol's subprotocol. A `small_buffer`
/// socket takes little into its kernel receive buffer (for clients that
/// stop reading: they should look stuck to the server soon).
pub async fn connect(addr: SocketAddr, small_buffer: bool) -> anyhow::Result<Ws> {
    let mut req = format!("ws://{addr}/socket").into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    if !small_buffer {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
        return Ok(ws);
    }
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(
        req,
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
        None,
    )
    .await?;
    Ok(ws)
}

/// Sends request `id` and waits for its answer, skipping other frames;
/// returns the `ok` value.
pub async fn call(
    ws: &mut Ws,
    id: u32,
    event: &'static str,
    body: &Value,
) -> anyhow::Result<Value> {
    let frame = Frame::request(id, Name::from_static(event), serde_json::to_vec(body)?);
    ws.send(Message::Binary(frame.encode())).await?;
    loop {
        let msg = ws.next().await.context("connection closed")??;
        let Message::Binary(b) = msg else { continue };
        if let Ok(Frame::Response { id: got, payload }) = Frame::decode(&b)
            && got == id
        {
            let answer: Value = serde_json::from_slice(&payload)?;
            return match answer.get("ok") {
                Some(ok) => Ok(ok.clone()),
                None => bail!("{event} refused: {answer}"),
            };
        }
    }
}

/// Connects; with the rich profile also says `hello` (resuming `resume`, a
/// session token and cursor) and joins [`ROOM`] (unless `join` is false).
pub async fn open(
    addr: SocketAddr,
    profile: Profile,
    join: bool,
    resume: Option<(&str, &(String, u64))>,
) -> anyhow::Result<(Joined, bool)> {
    open_with(addr, profile, join, resume, false).await
}

/// [`open`], with a small receive buffer if asked (see [`connect`]).
pub async fn open_with(
    addr: SocketAddr,
    profile: Profile,
    join: bool,
    resume: Option<(&str, &(String, u64))>,
    small_buffer: bool,
) -> anyhow::Result<(Joined, bool)> {
    let mut ws = connect(addr, small_buffer).await?;
    if profile == Profile::Seed {
        return Ok((
            Joined {
                ws,
                session: None,
                cursor: None,
            },
            false,
        ));
    }
    let hello = match resume {
        Some((session, (epoch, seq))) => json!({
            "v": 1,
            "session": session,
            "resume": [{"room": ROOM, "epoch": epoch, "seq": seq}],
        }),
        None => json!({"v": 1}),
    };
    let welcome = call(&mut ws, 1, "hello", &hello).await?;
    let session = welcome["session"].as_str().map(str::to_owned);
    let mut recovered = false;
    let mut cursor = None;
    if let Some(room) = welcome["rooms"]
        .as_array()
        .and_then(|rooms| rooms.iter().find(|r| r["room"] == ROOM))
    {
        recovered = room["recovered"] == true;
        cursor = Some((
            room["epoch"].as_str().unwrap_or_default().to_owned(),
            room["seq"].as_u64().unwrap_or(0),
        ));
    } else if join {
        let state = call(&mut ws, 2, "join", &json!({"room": ROOM})).await?;
        cursor = Some((
            state["epoch"].as_str().unwrap_or_default().to_owned(),
            state["seq"].as_u64().unwrap_or(0),
        ));
    }
    Ok((
        Joined {
            ws,
            session,
            cursor,
        },
        recovered,
    ))
}

/// The bench's clock: microseconds since the process started.
pub fn now_us() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A message body of `size` bytes (at least 30): its number and when it
/// was sent, then padding.
pub fn body(seq: u32, sent_us: u64, size: usize) -> String {
    let mut s = format!("{seq:010}{sent_us:020}");
    while s.len() < size {
        s.push('x');
    }
    s
}

/// The frame that sends `text` to everyone in the room.
pub fn send_frame(profile: Profile, id: u32, text: String) -> Bytes {
    match profile {
        Profile::Seed => Frame::notify(Name::from_static("broadcast"), text).encode(),
        Profile::Rich => {
            let cid = format!("c{id}");
            let body = json!({"room": ROOM, "text": text, "cid": cid});
            Frame::request(
                id,
                Name::from_static("say"),
                serde_json::to_vec(&body).unwrap_or_default(),
            )
            .encode()
        }
    }
}

/// What arrived.
pub enum Incoming {
    /// A room message: its number and send time.
    Message { seq: u32, sent_us: u64 },
    /// The answer to request `id` (rich `say` acknowledgements).
    Answer { id: u32, ok: bool },
    /// Anything else.
    Other,
}

fn digits(b: &[u8]) -> Option<u64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

fn parse_body(text: &[u8]) -> Option<(u32, u64)> {
    let seq = u32::try_from(digits(text.get(..10)?)?).ok()?;
    let sent = digits(text.get(10..30)?)?;
    Some((seq, sent))
}

/// Reads a frame the server sent.
pub fn classify(profile: Profile, data: &Bytes) -> Incoming {
    let Ok(frame) = Frame::decode(data) else {
        return Incoming::Other;
    };
    match frame {
        Frame::Notify { name, payload } => {
            let body = match (profile, name.as_str()) {
                (Profile::Seed, "message") => Some(&payload[..]),
                // Find the text without parsing the whole JSON: the bench
                // must not spend the CPU the server needs.
                (Profile::Rich, "msg") => {
                    const KEY: &[u8] = b"\"text\":\"";
                    payload
                        .windows(KEY.len())
                        .position(|w| w == KEY)
                        .map(|i| &payload[i + KEY.len()..])
                }
                _ => None,
            };
            match body.and_then(parse_body) {
                Some((seq, sent_us)) => Incoming::Message { seq, sent_us },
                None => Incoming::Other,
            }
        }
        Frame::Response { id, payload } => Incoming::Answer {
            id,
            ok: payload.starts_with(b"{\"ok\""),
        },
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_in_both_profiles() {
        let text = body(42, 123_456, 100);
        assert_eq!(text.len(), 100);
        let seed = Frame::notify(Name::from_static("message"), text.clone()).encode();
        assert!(matches!(
            classify(Profile::Seed, &seed),
            Incoming::Message {
                seq: 42,
                sent_us: 123_456
            }
        ));
        let msg = json!({"room": ROOM, "epoch": "e", "seq": 7, "from": "a", "text": text, "ts": 1});
        let rich = Frame::notify(
            Name::from_static("msg"),
            serde_json::to_vec(&msg).unwrap_or_default(),
        )
        .encode();
        assert!(matches!(
            classify(Profile::Rich, &rich),
            Incoming::Message { seq: 42, .. }
        ));
        let ack = Frame::response(9, &b"{\"ok\":{\"seq\":1}}"[..]).encode();
        assert!(matches!(
            classify(Profile::Rich, &ack),
            Incoming::Answer { id: 9, ok: true }
        ));
    }
}

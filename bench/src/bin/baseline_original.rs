//! Baseline (a): the original library's broadcasting example, on
//! `axum-socket-io` 0.1.0, with the room actor as the seed document writes
//! it (one actor, a 16-slot mailbox, each notify awaited in turn).
//!
//! `baseline-original --addr 127.0.0.1:0`; prints `listening on http://ADDR`.

use axum_socket_io::{Notifier, Procedure, SocketIo, SocketIoUpgrade};
use std::{collections::HashMap, net::SocketAddr, sync::LazyLock};
use tokio::sync::mpsc::{self, Sender};

enum Room {
    Join { id: u64, notifier: Notifier },
    Broadcast(&'static str, Box<[u8]>),
    Leave { id: u64 },
}

impl Room {
    async fn dispatch(self) {
        // The actor lives as long as the process.
        let _ = TASK.send(self).await;
    }
}

static TASK: LazyLock<Sender<Room>> = LazyLock::new(|| {
    let (tx, mut rx) = mpsc::channel::<Room>(16);
    tokio::spawn(async move {
        let mut main_room = HashMap::new();
        while let Some(action) = rx.recv().await {
            match action {
                Room::Join { id, notifier } => {
                    main_room.insert(id, notifier);
                }
                Room::Broadcast(ev, msg) => {
                    for user in main_room.values() {
                        // The seed unwraps here; a closed socket would
                        // bring the whole server down, so skip it instead.
                        let _ = user.notify(ev, &msg).await;
                    }
                }
                Room::Leave { id } => {
                    main_room.remove(&id);
                }
            }
        }
    });
    tx
});

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

async fn handle_socket(mut socket: SocketIo) {
    // The seed keys users by port; a counter is the same without collisions.
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let notifier = socket.notifier();
    Room::Join { id, notifier }.dispatch().await;
    while let Ok(ev) = socket.recv().await {
        match ev {
            Procedure::Notify(req) => match req.method() {
                "broadcast" => {
                    Room::Broadcast("message", req.data().into())
                        .dispatch()
                        .await
                }
                "ping" => {
                    let _ = socket.notify("pong", req.data()).await;
                }
                _ => {}
            },
            Procedure::Call(req, res, _) => {
                if req.method() == "uppercase" {
                    let text = String::from_utf8_lossy(req.data()).to_uppercase();
                    let _ = res.send(text).await;
                }
            }
        }
    }
    Room::Leave { id }.dispatch().await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = bench::arg_value("--addr")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()?;
    let app = axum07::Router::new().route(
        "/socket",
        axum07::routing::get(|ws: SocketIoUpgrade| async move { ws.on_upgrade(16, handle_socket) }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    bench::announce(listener.local_addr()?)?;
    axum07::serve(listener, app).await?;
    Ok(())
}

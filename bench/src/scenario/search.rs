//! Search: the same corpus in two servers (SQLite's FTS5 index, and
//! cluster mode reading the Redis streams), then each kind of query timed
//! through the socket from one client per server, one search at a time,
//! the servers taking turns (after one untimed search each). How many
//! results came back is kept to check both servers agree.

use super::{
    corpus::{AUTHORS, COMMON, Corpus, Probe, RARE},
    fill::fill,
    stats::percentile,
};
use crate::{
    client::{self, Ws},
    process::ServerProc,
};
use serde::Serialize;
use shared::{
    chat::{Msg, SearchQuery},
    event,
};
use std::time::Instant;

/// Results a search asks for (the server's cap).
pub(super) const LIMIT: usize = 50;

/// The kinds of query timed.
pub(super) fn probes() -> [Probe; 4] {
    let plain = Probe {
        label: "rare word",
        word: RARE,
        room: None,
        from: None,
    };
    [
        plain,
        Probe {
            label: "common word",
            word: COMMON,
            ..plain
        },
        Probe {
            label: "rare word, `in:` one room",
            room: Some(0),
            ..plain
        },
        Probe {
            label: "rare word, `from:` one author",
            from: Some(AUTHORS[0]),
            ..plain
        },
    ]
}

/// One server's answers to one kind of query.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timing {
    /// Searches timed (refused ones are not).
    pub samples: usize,
    /// Median round trip, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// Results of the first answer.
    pub results: Option<usize>,
    /// Results that do not match the query.
    pub wrong: usize,
    /// The first refusal, or an answer whose count differed from the first.
    pub error: Option<String>,
}

/// Both servers' answers to one kind of query.
#[derive(Debug, Clone, Serialize)]
pub struct Timed {
    /// What the table calls it.
    pub label: &'static str,
    /// The query sent.
    pub q: String,
    /// Messages of the corpus it matches.
    pub matching: usize,
    /// Results both should answer: `matching`, at most [`LIMIT`].
    pub expected: usize,
    /// The SQLite server.
    pub sqlite: Timing,
    /// The cluster-mode server.
    pub cluster: Timing,
    /// Cluster median ÷ SQLite median.
    pub ratio_p50: f64,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct Search {
    /// Rooms.
    pub rooms: usize,
    /// Messages per room.
    pub per_room: usize,
    /// Messages in all.
    pub messages: usize,
    /// Searches timed per kind and server.
    pub samples: usize,
    /// Seconds filling the SQLite server took.
    pub fill_secs_sqlite: f64,
    /// …and the cluster-mode one.
    pub fill_secs_cluster: f64,
    /// One row per kind of query.
    pub queries: Vec<Timed>,
}

/// What one server answered so far to one kind of query.
#[derive(Default)]
struct Tally {
    ms: Vec<f64>,
    results: Option<usize>,
    wrong: usize,
    error: Option<String>,
}

impl Tally {
    fn timing(mut self) -> Timing {
        self.ms.sort_by(f64::total_cmp);
        Timing {
            samples: self.ms.len(),
            p50_ms: percentile(&self.ms, 0.5),
            p95_ms: percentile(&self.ms, 0.95),
            results: self.results,
            wrong: self.wrong,
            error: self.error,
        }
    }
}

/// A client that has said `hello` (it searches every public room).
async fn searcher(server: &ServerProc) -> anyhow::Result<Ws> {
    let mut ws = client::connect(server.addr, false).await?;
    client::call(&mut ws, 1, event::HELLO, &serde_json::json!({"v": 1})).await?;
    Ok(ws)
}

/// One search on `ws`, kept in `tally` (timed unless `warm_up`).
async fn search_once(ws: &mut Ws, id: u32, probe: &Probe, tally: &mut Tally, warm_up: bool) {
    let body = SearchQuery {
        q: probe.q(),
        limit: Some(LIMIT as u16),
    };
    let Ok(body) = serde_json::to_value(&body) else {
        return;
    };
    let start = Instant::now();
    let answer = client::call(ws, id, event::SEARCH, &body).await;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let found = answer.and_then(|ok| Ok(serde_json::from_value::<Vec<Msg>>(ok)?));
    match found {
        Ok(found) => {
            if !warm_up {
                tally.ms.push(ms);
            }
            match tally.results {
                None => {
                    tally.results = Some(found.len());
                    tally.wrong = found
                        .iter()
                        .filter(|m| !probe.hits(&m.room, &m.from, &m.text))
                        .count();
                }
                Some(n) if n != found.len() && tally.error.is_none() => {
                    tally.error = Some(format!("answered {n} results, then {}", found.len()));
                }
                Some(_) => {}
            }
        }
        Err(e) => {
            tally.error.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}

/// Fills both servers with `corpus`, then times `samples` searches of
/// each kind on each.
pub async fn search(
    sqlite: &ServerProc,
    cluster: &ServerProc,
    corpus: Corpus,
    samples: usize,
) -> anyhow::Result<Search> {
    let fill_secs_sqlite = fill(sqlite, corpus).await?;
    let fill_secs_cluster = fill(cluster, corpus).await?;
    let mut clients = [searcher(sqlite).await?, searcher(cluster).await?];
    let mut queries = Vec::new();
    let mut id = 10;
    for probe in probes() {
        let mut tallies = [Tally::default(), Tally::default()];
        for round in 0..=samples {
            for (ws, tally) in clients.iter_mut().zip(&mut tallies) {
                id += 1;
                search_once(ws, id, &probe, tally, round == 0).await;
            }
        }
        let [s, c] = tallies.map(Tally::timing);
        let matching = corpus.matching(&probe);
        queries.push(Timed {
            label: probe.label,
            q: probe.q(),
            matching,
            expected: matching.min(LIMIT),
            ratio_p50: c.p50_ms / s.p50_ms.max(1e-9),
            sqlite: s,
            cluster: c,
        });
    }
    Ok(Search {
        rooms: corpus.rooms,
        per_room: corpus.per_room,
        messages: corpus.messages(),
        samples,
        fill_secs_sqlite,
        fill_secs_cluster,
        queries,
    })
}

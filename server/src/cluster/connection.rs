//! The connection to Redis: one Redis or a sharded Redis Cluster, plain or
//! TLS (`rediss://`, rustls), behind one type the rest of cluster mode
//! uses without asking which; and a URL fit for logs.
//!
//! The one difference the rest sees is [`Conn::batch`]: a pipeline may
//! only hold one hash slot's commands on a Redis Cluster, so a batch is
//! cut by hash tag there and sent as one pipeline per tag, side by side.
//! On one Redis the same batch goes as one pipeline.

use super::*;
use redis::{
    RedisFuture,
    cluster::{ClusterClient, ClusterClientBuilder},
    cluster_async::ClusterConnection,
};

/// The URL without its password, for logs.
pub(super) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority = rest.find('/').unwrap_or(rest.len());
    match rest[..authority].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Every URL of `redis`, without passwords, for logs.
pub(super) fn redacted_all(redis: &Redis) -> String {
    redis
        .urls()
        .iter()
        .map(|u| redacted(u))
        .collect::<Vec<_>>()
        .join(",")
}

/// TLS material for a `rediss://` URL, read from the configured files.
fn certificates(config: &ClusterConfig) -> Result<redis::TlsCertificates, StoreError> {
    let read = |flag: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|source| Error::ReadFile {
            flag,
            path: path.to_owned(),
            source,
        })
    };
    let root_cert = match &config.ca {
        Some(path) => Some(read("--redis-ca", path)?),
        None => None,
    };
    let client_tls = match &config.identity {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read("--redis-cert", cert)?,
            client_key: read("--redis-key", key)?,
        }),
        None => None,
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert,
    })
}

/// Whether the URLs ask for TLS (all of them or none).
fn tls(config: &ClusterConfig) -> Result<bool, StoreError> {
    let urls = config.redis.urls();
    let tls = urls.iter().filter(|u| u.starts_with("rediss://")).count();
    if tls != 0 && tls != urls.len() {
        return Err(Error::MixedSchemes.into());
    }
    if tls == 0 && (config.ca.is_some() || config.identity.is_some()) {
        return Err(Error::TlsWithoutRediss.into());
    }
    Ok(tls != 0)
}

/// A plain Redis client for `url` (one Redis, or one seed of a cluster:
/// pub/sub goes to a single node either way).
pub(super) fn client(config: &ClusterConfig, url: &str) -> Result<Client, StoreError> {
    if !tls(config)? {
        return Client::open(url).map_err(unavailable);
    }
    // One crypto provider for the process (a second install is a no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::build_with_tls(url, certificates(config)?).map_err(|e| Error::Tls(e).into())
}

/// The commands' connection: to one Redis, or to a Redis Cluster.
#[derive(Clone)]
pub(super) enum Conn {
    One(ConnectionManager),
    Sharded(Arc<Sharded>),
}

/// A Redis Cluster connection, made on first use (the server starts while
/// the cluster is down, as it does with one Redis) and made again if it
/// could not be.
pub(super) struct Sharded {
    client: ClusterClient,
    conn: tokio::sync::Mutex<Option<ClusterConnection>>,
}

impl Sharded {
    async fn get(&self) -> redis::RedisResult<ClusterConnection> {
        let mut conn = self.conn.lock().await;
        if let Some(conn) = &*conn {
            return Ok(conn.clone());
        }
        let made = self.client.get_async_connection().await?;
        *conn = Some(made.clone());
        Ok(made)
    }
}

impl Conn {
    /// The connection `config` asks for; nothing is dialled yet.
    pub(super) fn open(config: &ClusterConfig) -> Result<Self, StoreError> {
        match &config.redis {
            Redis::One(url) => {
                let manager = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_millis(500)))
                    .set_response_timeout(Some(CALL_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(200));
                let conn = ConnectionManager::new_lazy_with_config(client(config, url)?, manager)
                    .map_err(unavailable)?;
                Ok(Conn::One(conn))
            }
            Redis::Cluster(seeds) => {
                let mut builder = ClusterClientBuilder::new(seeds.clone())
                    .connection_timeout(Duration::from_millis(500))
                    .response_timeout(CALL_TIMEOUT)
                    .retries(1)
                    .max_retry_wait(200);
                if tls(config)? {
                    let _ = rustls::crypto::ring::default_provider().install_default();
                    builder = builder.certs(certificates(config)?);
                }
                let client = builder.build().map_err(Error::ClusterClient)?;
                Ok(Conn::Sharded(Arc::new(Sharded {
                    client,
                    conn: tokio::sync::Mutex::new(None),
                })))
            }
        }
    }

    /// Runs `cmds` pipelined, each with the hash tag its keys share
    /// (after loading `scripts`, whose `EVALSHA`s the commands may use: a
    /// restarted Redis has forgotten them). Each command's own answer, in
    /// order; a tag whose pipeline failed fails all its commands.
    pub(super) async fn batch(
        &mut self,
        scripts: &[&Script],
        cmds: Vec<(String, Cmd)>,
    ) -> Vec<Result<Value, StoreError>> {
        let pipeline = |cmds: &mut dyn Iterator<Item = Cmd>| {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for script in scripts {
                pipe.load_script(script);
            }
            for cmd in cmds {
                pipe.add_command(cmd);
            }
            pipe
        };
        let run = |mut conn: Conn, pipe: redis::Pipeline, n: usize| async move {
            let answer =
                tokio::time::timeout(CALL_TIMEOUT, pipe.query_async::<Vec<Value>>(&mut conn)).await;
            match answer {
                Ok(Ok(values)) => values
                    .into_iter()
                    .skip(scripts.len())
                    .map(|v| match v {
                        Value::ServerError(e) => Err(Error::Server(e).into()),
                        v => Ok(v),
                    })
                    .collect(),
                Ok(Err(e)) => vec![Err(unavailable(e)); n],
                Err(_) => vec![Err(Error::TimedOut.into()); n],
            }
        };
        if cmds.is_empty() {
            return Vec::new();
        }
        match self {
            Conn::One(_) => {
                let n = cmds.len();
                let pipe = pipeline(&mut cmds.into_iter().map(|(_, c)| c));
                run(self.clone(), pipe, n).await
            }
            Conn::Sharded(_) => {
                // One pipeline per tag, in the order each tag first came;
                // each keeps its commands' order.
                let mut tags: Vec<(String, Vec<usize>)> = Vec::new();
                for (i, (tag, _)) in cmds.iter().enumerate() {
                    match tags.iter_mut().find(|(t, _)| t == tag) {
                        Some((_, at)) => at.push(i),
                        None => tags.push((tag.clone(), vec![i])),
                    }
                }
                let mut cmds: Vec<Option<Cmd>> = cmds.into_iter().map(|(_, c)| Some(c)).collect();
                let runs = tags.iter().map(|(_, at)| {
                    let pipe = pipeline(&mut at.iter().filter_map(|&i| cmds[i].take()));
                    run(self.clone(), pipe, at.len())
                });
                let answers = futures_util::future::join_all(runs).await;
                let mut out: Vec<Option<Result<Value, StoreError>>> =
                    (0..cmds.len()).map(|_| None).collect();
                for ((_, at), answer) in tags.iter().zip(answers) {
                    for (&i, value) in at.iter().zip(answer) {
                        out[i] = Some(value);
                    }
                }
                out.into_iter()
                    .map(|v| v.unwrap_or_else(|| Err(Error::NoAnswer.into())))
                    .collect()
            }
        }
    }

    /// `CONFIG GET name` from every node holding data: one Redis, or every
    /// primary of a cluster (`(node, value)`; `None` where it is unset).
    pub(super) async fn config_get(
        &mut self,
        name: &str,
    ) -> redis::RedisResult<Vec<(String, Option<String>)>> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg(name);
        let parse = |v: Value| -> redis::RedisResult<Option<String>> {
            let map: HashMap<String, String> = redis::FromRedisValue::from_redis_value(v)?;
            Ok(map.get(name).cloned())
        };
        match self {
            Conn::One(conn) => {
                let v: Value = cmd.query_async(conn).await?;
                Ok(vec![("redis".into(), parse(v)?)])
            }
            Conn::Sharded(sharded) => {
                use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
                let mut conn = sharded.get().await?;
                let answer = conn
                    .route_command(
                        cmd,
                        RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None)),
                    )
                    .await?;
                let nodes: Vec<(String, Value)> = match answer {
                    Value::Map(nodes) => nodes
                        .into_iter()
                        .map(|(k, v)| Ok((redis::FromRedisValue::from_redis_value(k)?, v)))
                        .collect::<redis::RedisResult<_>>()?,
                    other => vec![("cluster".into(), other)],
                };
                nodes
                    .into_iter()
                    .map(|(node, v)| Ok((node, parse(v)?)))
                    .collect()
            }
        }
    }
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::One(conn) => conn.req_packed_command(cmd),
            Conn::Sharded(sharded) => Box::pin(async move {
                let mut conn = sharded.get().await?;
                conn.req_packed_command(cmd).await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::One(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Sharded(sharded) => Box::pin(async move {
                let mut conn = sharded.get().await?;
                conn.req_packed_commands(pipeline, offset, count).await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::One(conn) => conn.get_db(),
            Conn::Sharded(_) => 0,
        }
    }
}

pub(super) fn unavailable(e: redis::RedisError) -> StoreError {
    Error::Redis(e).into()
}

use super::*;

#[test]
fn durations_must_be_finite_and_positive() {
    for bad in ["inf", "NaN", "0", "-0.5", "x", "1e9"] {
        assert!(
            Config::try_parse_from(["server", "--node-ttl-secs", bad]).is_err(),
            "{bad} accepted"
        );
        assert!(Config::try_parse_from(["server", "--ping-interval-secs", bad]).is_err());
        assert!(Config::try_parse_from(["server", "--retention-days", bad]).is_err());
    }
    let aged = Config::try_parse_from(["server", "--retention-days", "0.5"]).expect("valid");
    assert_eq!(aged.max_age(), Some(Duration::from_secs(43_200)));
    assert_eq!(Config::default().max_age(), None, "no age limit by default");
    let ok = Config::try_parse_from([
        "server",
        "--redis",
        "redis://h:1/0",
        "--node-ttl-secs",
        "2.5",
    ])
    .expect("valid");
    let cluster = ok.cluster().expect("cluster mode");
    assert_eq!(cluster.node_ttl, Duration::from_millis(2_500));
    assert!(
        Config::default().cluster().is_none(),
        "one process by default"
    );
    let sharded = Config::try_parse_from([
        "server",
        "--redis-cluster",
        "redis://a:1,redis://b:2",
        "--redis-allow-lossy",
    ])
    .expect("valid");
    assert_eq!(
        sharded.cluster().expect("cluster mode").redis,
        Redis::Cluster(vec!["redis://a:1".into(), "redis://b:2".into()])
    );
    assert!(
        Config::try_parse_from([
            "server",
            "--redis",
            "redis://a:1",
            "--redis-cluster",
            "redis://b:2"
        ])
        .is_err(),
        "one Redis or a cluster, not both"
    );
    assert!(Config::try_parse_from(["server", "--redis-allow-lossy"]).is_err());
}

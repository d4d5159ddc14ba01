use super::*;

fn bounds(frames: usize, bytes: usize) -> Bounds {
    Bounds { frames, bytes }
}

#[test]
fn overflow_in_frames_fires_4008_and_first_ending_wins() {
    let kill = Kill::default();
    let (out, _rx) = Outbox::new(bounds(2, 1 << 20), kill.clone());
    assert!(out.push(Bytes::from_static(b"a")));
    assert!(out.push(Bytes::from_static(b"b")));
    assert!(!out.push(Bytes::from_static(b"c")));
    assert!(kill.is_fired());
    kill.close(1000, "later");
    assert!(matches!(
        kill.ending(),
        Some(Ending::Close {
            code: CLOSE_TOO_SLOW,
            flush: false,
            ..
        })
    ));
    assert!(!out.is_open());
}

#[test]
fn overflow_in_bytes_fires_4008() {
    let kill = Kill::default();
    let (out, _rx) = Outbox::new(bounds(1_000, 2_000), kill.clone());
    assert_eq!(out.send(Bytes::from(vec![0; 300])), Pushed::Queued);
    assert_eq!(out.send(Bytes::from(vec![0; 100])), Pushed::Queued);
    assert_eq!(
        out.queued_bytes(),
        300,
        "small frames go by the frame bound"
    );
    assert_eq!(
        out.send(Bytes::from(vec![0; 300])),
        Pushed::Slow,
        "past 500"
    );
    assert_eq!(out.send(Bytes::from(vec![0; 1_399])), Pushed::Slow);
    assert_eq!(out.queued_bytes(), 1_999);
    assert_eq!(out.send(Bytes::from(vec![0; 300])), Pushed::Gone);
    assert!(kill.is_fired());
    assert_eq!(
        out.queued_bytes(),
        1_999,
        "the refused frame is not counted"
    );
}

#[tokio::test]
async fn a_slow_outbox_holds_back_until_drained_or_stalled() {
    let (out, mut rx) = Outbox::new(bounds(1_000, 2_000), Kill::default());
    let stall = Duration::from_secs(60);
    assert_eq!(out.pressure(stall), Pressure::Clear);
    for _ in 0..3 {
        out.send(Bytes::from(vec![0; 300]));
    }
    assert!(matches!(out.pressure(stall), Pressure::Slow(_)));
    assert_eq!(out.pressure(Duration::ZERO), Pressure::Stalled);
    let waiter = {
        let out = out.clone();
        tokio::spawn(async move { out.drained().await })
    };
    tokio::task::yield_now().await;
    let mut batch = Vec::new();
    rx.rx.recv_many(&mut batch, 10).await;
    assert_eq!(metered(&batch), 900);
    rx.wrote(300);
    assert!(
        matches!(out.pressure(stall), Pressure::Slow(_)),
        "600 left: above the low-water mark (250)"
    );
    rx.wrote(600);
    assert_eq!(out.pressure(stall), Pressure::Clear);
    tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("woken")
        .expect("task");
}

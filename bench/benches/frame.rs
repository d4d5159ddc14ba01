//! Criterion microbenchmarks for the frame codec: encode and decode of each
//! frame kind at a few payload sizes.
//!
//! `cargo bench -p bench --bench frame`

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shared::{Frame, Name};
use std::hint::black_box;

fn frames(size: usize) -> Vec<(&'static str, Frame)> {
    let payload = Bytes::from(vec![b'x'; size]);
    vec![
        (
            "notify",
            Frame::notify(Name::from_static("message"), payload.clone()),
        ),
        (
            "request",
            Frame::request(7, Name::from_static("say"), payload.clone()),
        ),
        ("response", Frame::response(7, payload)),
    ]
}

fn codec(c: &mut Criterion) {
    for size in [16, 100, 1_024, 16_384] {
        let mut encode = c.benchmark_group(format!("encode/{size}B"));
        encode.throughput(Throughput::Bytes(size as u64));
        for (kind, frame) in frames(size) {
            encode.bench_with_input(BenchmarkId::from_parameter(kind), &frame, |b, f| {
                b.iter(|| black_box(f).encode());
            });
        }
        encode.finish();
        let mut decode = c.benchmark_group(format!("decode/{size}B"));
        decode.throughput(Throughput::Bytes(size as u64));
        for (kind, frame) in frames(size) {
            let wire = frame.encode();
            decode.bench_with_input(BenchmarkId::from_parameter(kind), &wire, |b, w| {
                b.iter(|| Frame::decode(black_box(w)));
            });
        }
        decode.finish();
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);

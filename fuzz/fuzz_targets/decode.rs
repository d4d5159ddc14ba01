//! Arbitrary bytes into the frame decoder: it must never panic, and what it
//! accepts must re-encode to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::Frame;

fuzz_target!(|data: &[u8]| {
    let msg = bytes::Bytes::copy_from_slice(data);
    if let Ok(frame) = Frame::decode(&msg) {
        assert_eq!(frame.encode(), msg);
        assert_eq!(frame.encoded_len(), msg.len());
    }
});

//! Arbitrary bytes as the JSON payload of every rich event the server
//! parses: parsing must never panic, and whatever parses must serialize and
//! parse back to the same value (what the server reads is what it meant).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{Serialize, de::DeserializeOwned};
use shared::chat::{
    Cursor, Hello, HistoryQuery, Join, Nick, RoomRef, Say, TypingIn, parse_envelope,
};
use std::fmt::Debug;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(data) {
        let again = serde_json::to_vec(&value).expect("a parsed value serializes");
        let back: T = serde_json::from_slice(&again).expect("and parses back");
        assert_eq!(back, value);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<Hello>(data);
    round_trip::<Join>(data);
    round_trip::<RoomRef>(data);
    round_trip::<Say>(data);
    round_trip::<HistoryQuery>(data);
    round_trip::<Nick>(data);
    round_trip::<TypingIn>(data);
    round_trip::<Cursor>(data);
    // What a client does with a server's answer: never panics either.
    let _ = parse_envelope::<serde_json::Value>(data);
});

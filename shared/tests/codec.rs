//! Frame codec: golden vectors from PROTOCOL.md, round trips, and hostile input.

use bytes::Bytes;
use proptest::prelude::*;
use shared::{DecodeError, Frame, Name};

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).expect("test vector is hex"))
        .collect()
}

fn name(s: &str) -> Name {
    Name::new(s).expect("short name")
}

#[test]
fn golden_notify_ping_hi() {
    let f = Frame::notify(name("ping"), &b"hi"[..]);
    let wire = hex("01 04 70 69 6e 67 68 69");
    assert_eq!(f.encode().as_ref(), wire.as_slice());
    assert_eq!(Frame::decode_slice(&wire), Ok(f));
}

#[test]
fn golden_request_myip() {
    let f = Frame::request(7, name("myip"), Bytes::new());
    let wire = hex("02 00 00 00 07 04 6d 79 69 70");
    assert_eq!(f.encode().as_ref(), wire.as_slice());
    assert_eq!(Frame::decode_slice(&wire), Ok(f));
}

#[test]
fn golden_reset() {
    let f = Frame::Reset { id: 7 };
    let wire = hex("03 00 00 00 07");
    assert_eq!(f.encode().as_ref(), wire.as_slice());
    assert_eq!(Frame::decode_slice(&wire), Ok(f));
}

#[test]
fn golden_response_ok() {
    let f = Frame::response(7, &b"ok"[..]);
    let wire = hex("04 00 00 00 07 6f 6b");
    assert_eq!(f.encode().as_ref(), wire.as_slice());
    assert_eq!(Frame::decode_slice(&wire), Ok(f));
}

#[test]
fn each_violation_has_its_error() {
    assert_eq!(Frame::decode_slice(&[]), Err(DecodeError::Empty));
    assert_eq!(
        Frame::decode_slice(&[9, 1, 2]),
        Err(DecodeError::UnknownOpcode(9))
    );
    assert_eq!(
        Frame::decode_slice(&[0]),
        Err(DecodeError::UnknownOpcode(0))
    );
    assert!(matches!(
        Frame::decode_slice(&[1]),
        Err(DecodeError::TruncatedHeader { opcode: 1, .. })
    ));
    assert!(matches!(
        Frame::decode_slice(&[2, 0, 0, 0]),
        Err(DecodeError::TruncatedHeader { opcode: 2, .. })
    ));
    assert!(matches!(
        Frame::decode_slice(&[3, 0, 0]),
        Err(DecodeError::TruncatedHeader { opcode: 3, .. })
    ));
    assert!(matches!(
        Frame::decode_slice(&[4, 0]),
        Err(DecodeError::TruncatedHeader { opcode: 4, .. })
    ));
    assert_eq!(
        Frame::decode_slice(&[1, 5, b'a', b'b']),
        Err(DecodeError::NamePastEnd { name_len: 5 })
    );
    assert_eq!(
        Frame::decode_slice(&[2, 0, 0, 0, 1, 200]),
        Err(DecodeError::NamePastEnd { name_len: 200 })
    );
    assert_eq!(
        Frame::decode_slice(&[1, 2, 0xff, 0xfe]),
        Err(DecodeError::InvalidUtf8Name)
    );
    assert_eq!(
        Frame::decode_slice(&[3, 0, 0, 0, 1, 9]),
        Err(DecodeError::TrailingBytes(1))
    );
}

#[test]
fn empty_name_and_empty_payload_are_valid() {
    let f = Frame::decode_slice(&[1, 0]).expect("valid");
    assert_eq!(f, Frame::notify(name(""), Bytes::new()));
    let f = Frame::decode_slice(&[4, 0, 0, 0, 0]).expect("valid");
    assert_eq!(f, Frame::response(0, Bytes::new()));
}

#[test]
fn name_limit_is_255_bytes() {
    assert!(Name::new("x".repeat(255)).is_ok());
    assert_eq!(
        Name::new("x".repeat(256)).map(|_| ()),
        Err(shared::NameTooLong(256))
    );
    let long = name(&"é".repeat(127)); // 254 bytes
    let f = Frame::notify(long, &b"p"[..]);
    assert_eq!(Frame::decode(&f.encode()), Ok(f));
}

#[test]
fn payload_shares_the_message_buffer() {
    let wire = Bytes::from(hex("01 04 70 69 6e 67 68 69"));
    let Ok(Frame::Notify { payload, .. }) = Frame::decode(&wire) else {
        panic!("not a notify");
    };
    assert_eq!(payload.as_ptr(), wire[6..].as_ptr());
}

fn arb_name() -> impl Strategy<Value = Name> {
    prop_oneof![
        "[a-z_]{0,16}",
        any::<String>().prop_map(|s| s.chars().take(60).collect::<String>()),
    ]
    .prop_filter_map("fits", |s| Name::new(s).ok())
}

fn arb_frame() -> impl Strategy<Value = Frame> {
    let payload = proptest::collection::vec(any::<u8>(), 0..512).prop_map(Bytes::from);
    prop_oneof![
        (arb_name(), payload.clone()).prop_map(|(n, p)| Frame::notify(n, p)),
        (any::<u32>(), arb_name(), payload.clone()).prop_map(|(i, n, p)| Frame::request(i, n, p)),
        any::<u32>().prop_map(|id| Frame::Reset { id }),
        (any::<u32>(), payload).prop_map(|(i, p)| Frame::response(i, p)),
    ]
}

proptest! {
    #[test]
    fn decode_inverts_encode(f in arb_frame()) {
        let wire = f.encode();
        prop_assert_eq!(wire.len(), f.encoded_len());
        prop_assert_eq!(Frame::decode(&wire), Ok(f));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(f) = Frame::decode_slice(&bytes) {
            // Whatever decodes re-encodes to the very same bytes.
            let again = f.encode();
            prop_assert_eq!(again.as_ref(), bytes.as_slice());
        }
    }

    #[test]
    fn truncating_a_frame_never_panics(f in arb_frame(), cut in 0usize..600) {
        let wire = f.encode();
        let cut = cut.min(wire.len());
        let _ = Frame::decode(&wire.slice(..cut));
    }
}

#[test]
fn names_are_equal_by_their_text_however_they_were_made() {
    use std::{
        collections::hash_map::DefaultHasher,
        hash::{Hash, Hasher},
    };
    let hash = |n: &Name| {
        let mut h = DefaultHasher::new();
        n.hash(&mut h);
        h.finish()
    };
    let made = Name::new("ping").expect("name");
    let constant = Name::from_static("ping");
    assert_eq!(made, constant);
    assert_eq!(hash(&made), hash(&constant));
    assert_eq!(made.cmp(&constant), std::cmp::Ordering::Equal);
    assert!(Name::from_static("a") < Name::new("b").expect("name"));
    assert_eq!(
        Frame::notify(constant, &b"x"[..]),
        Frame::notify(made, &b"x"[..]),
        "frames built either way compare equal"
    );
}

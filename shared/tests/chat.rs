//! Chat-layer payloads keep the wire spelling of PROTOCOL.md §2.

use serde_json::{Value, json};
use shared::chat::*;

#[test]
fn envelope_ok_and_err_spelling() {
    let ok: Envelope<Said> = Envelope::Ok(Said { seq: 3, ts: 10 });
    assert_eq!(
        serde_json::from_slice::<Value>(&ok.to_bytes()).expect("json"),
        json!({"ok": {"seq": 3, "ts": 10}})
    );
    let err: Envelope<Said> = Envelope::Err(ErrorBody::new(ErrorCode::NickTaken, "taken"));
    assert_eq!(
        serde_json::from_slice::<Value>(&err.to_bytes()).expect("json"),
        json!({"err": {"code": "nick_taken", "message": "taken"}})
    );
    let back: Result<Said, ErrorBody> = parse_envelope(&err.to_bytes()).expect("envelope");
    assert_eq!(back.map_err(|e| e.code), Err(ErrorCode::NickTaken));
}

#[test]
fn error_code_spelling_matches_as_str() {
    for code in [
        ErrorCode::BadRequest,
        ErrorCode::NotJoined,
        ErrorCode::NickTaken,
        ErrorCode::TooLong,
        ErrorCode::RateLimited,
        ErrorCode::UnknownEvent,
        ErrorCode::TooManyRooms,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ] {
        assert_eq!(
            serde_json::to_value(code).expect("json"),
            Value::String(code.as_str().into())
        );
    }
}

#[test]
fn hello_optional_fields() {
    let h: Hello = serde_json::from_str(r#"{"v":1}"#).expect("minimal hello");
    assert_eq!(h.nick, None);
    let h: Hello = serde_json::from_str(
        r#"{"v":1,"nick":"ann","session":"s","resume":[{"room":"a","epoch":"e","seq":4}]}"#,
    )
    .expect("full hello");
    assert_eq!(h.resume.expect("resume")[0].seq, 4);
}

#[test]
fn msg_omits_absent_cid_and_presence_uses_snake_case() {
    let m = Msg::new("r".into(), "e".into(), 1, "a".into(), "t".into(), 5);
    assert!(serde_json::to_value(&m).expect("json").get("cid").is_none());
    let p = Presence {
        room: "r".into(),
        nick: "b".into(),
        what: PresenceKind::Rename,
        old: Some("a".into()),
        members: 2,
    };
    assert_eq!(
        serde_json::to_value(&p).expect("json"),
        json!({"room":"r","nick":"b","what":"rename","old":"a","members":2})
    );
}

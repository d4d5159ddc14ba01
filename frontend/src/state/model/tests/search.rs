//! Search results in the model: the query's words (filters left out),
//! the word starts they mark, and results named by their rooms in the
//! server's order.

use super::*;

fn found(room: &str, seq: u64, text: &str) -> Msg {
    Msg::new(room.into(), "e".into(), seq, "bob".into(), text.into(), 10)
}

fn part(s: &str, hit: bool) -> (String, bool) {
    (s.into(), hit)
}

#[test]
fn filters_are_not_words_and_words_lose_their_punctuation() {
    assert_eq!(
        query_words("in:#ops from:ann Deplo #ops @bob before:2026-01-02 after:2025-01-01 \"fix,\""),
        ["deplo", "fix"]
    );
    assert!(query_words("in:ops").is_empty());
}

#[test]
fn only_word_starts_are_marked_in_any_case_longest_first() {
    let words = vec!["deplo".to_owned(), "de".to_owned()];
    assert_eq!(
        marks("Deployment undeployed, re-deploy DEPLOYED", &words),
        [
            part("Deplo", true),
            part("yment undeployed, re-", false),
            part("deplo", true),
            part("y ", false),
            part("DEPLO", true),
            part("YED", false),
        ]
    );
    assert_eq!(marks("nothing here", &words), [part("nothing here", false)]);
    assert_eq!(marks("", &words), []);
    assert_eq!(
        marks("édition", &["éd".to_owned()]),
        [part("éd", true), part("ition", false)]
    );
}

#[test]
fn results_keep_the_servers_order_and_name_their_rooms() {
    let mut m = welcomed();
    let mut private = state("p-1", Vec::new(), false);
    private.title = Some("Plans".into());
    m.apply(ChatEvent::Joined(private), 0);
    let hits = m.hits(
        "deplo in:ops",
        &[
            found("ops", 9, "deployed"),
            found("p-1", 4, "deploy plans"),
            found("lobby", 2, "we deploy"),
        ],
    );
    let shown: Vec<(&str, &str, u64)> = hits
        .iter()
        .map(|h| (h.room.as_str(), h.place.as_str(), h.seq))
        .collect();
    assert_eq!(
        shown,
        [
            ("ops", "#ops", 9),
            ("p-1", "🔒 Plans", 4),
            ("lobby", "#lobby", 2)
        ]
    );
    assert_eq!(hits[0].parts, [part("deplo", true), part("yed", false)]);
}

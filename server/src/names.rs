//! Names people can trust, and texts that cannot disguise themselves.
//!
//! - A **nickname** is NFKC-normalised (fullwidth `ａｌｉｃｅ` is `alice`),
//!   made only of letters and digits the Unicode identifier profile allows
//!   (UTS #39), spaces and ASCII punctuation, with no format characters
//!   (zero-width joiners, bidi controls), in one script (or the mixes the
//!   "highly restrictive" level allows, such as Latin with Japanese). Two
//!   nicknames are the same when their [`nick_key`]s are: case folded and
//!   compared by confusable skeleton, so Cyrillic `аlісе` is `alice`.
//! - A **room name** is NFKC-normalised and lower-cased, then must be
//!   `a-z 0-9 - _`; rooms are compared by [`room_key`] (skeleton), so
//!   `1obby` looks like `lobby`.
//! - A **text** keeps what it says but loses the characters that change
//!   how it displays without showing: bidi overrides and isolates, and
//!   control characters other than newline and tab (NUL, terminal escapes).

use crate::limits::MAX_NICK_CHARS;
use shared::chat::{ErrorBody, ErrorCode};
use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection};

fn bad(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, message)
}

/// A room name: NFKC, then the shared rule (trimmed and lower-cased, then
/// 1–32 of `a-z 0-9 - _`), which the app also checks at its input.
pub fn room(raw: &str) -> Result<String, ErrorBody> {
    use shared::room_name::{RoomNameError, room_name};
    room_name(&nfkc(raw)).map_err(|e| match e {
        RoomNameError::TooLong => ErrorBody::new(ErrorCode::TooLong, e.message()),
        RoomNameError::Invalid => bad(e.message()),
    })
}

/// What a room name looks like: rooms with equal keys are look-alikes.
pub fn room_key(name: &str) -> String {
    looks(name)
}

/// Characters a nickname may hold besides letters and digits.
fn nick_punctuation(c: char) -> bool {
    c == ' ' || (c.is_ascii_punctuation())
}

/// A nickname: NFKC, trimmed, 1–32 characters of allowed letters and
/// digits, single spaces and ASCII punctuation, at least one letter or
/// digit, in one script.
pub fn nick(raw: &str) -> Result<String, ErrorBody> {
    if raw.chars().any(is_invisible) {
        return Err(bad(
            "nicknames cannot hold invisible characters (zero-width, direction or control characters)",
        ));
    }
    let nick: String = nfkc(raw).trim().to_owned();
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(ErrorBody::new(
            ErrorCode::TooLong,
            format!("nicknames are at most {MAX_NICK_CHARS} characters"),
        ));
    }
    if nick.is_empty() {
        return Err(bad("nicknames are 1 to 32 characters"));
    }
    if nick.contains("  ") {
        return Err(bad("nicknames cannot hold two spaces in a row"));
    }
    if let Some(c) = nick
        .chars()
        .find(|c| !(nick_punctuation(*c) || c.identifier_allowed()))
    {
        return Err(bad(format!(
            "nicknames are letters, digits, spaces and ASCII punctuation; '{}' (U+{:04X}) is not allowed",
            c.escape_default(),
            u32::from(c)
        )));
    }
    if !nick.chars().any(char::is_alphanumeric) {
        return Err(bad("nicknames need at least one letter or digit"));
    }
    let letters: String = nick.chars().filter(|c| !nick_punctuation(*c)).collect();
    if !letters
        .as_str()
        .check_restriction_level(RestrictionLevel::HighlyRestrictive)
    {
        return Err(bad(
            "nicknames cannot mix scripts that look alike (such as Latin and Cyrillic letters)",
        ));
    }
    Ok(nick)
}

/// An account's name: a nickname that does not start with `guest-`
/// (those are the guests').
pub fn username(raw: &str) -> Result<String, ErrorBody> {
    let name = nick(raw)?;
    if name.to_ascii_lowercase().starts_with("guest-") {
        return Err(bad("names starting with 'guest-' are for guests"));
    }
    Ok(name)
}

/// What a nickname looks like: nicknames with equal keys are the same
/// person's (case and look-alike letters do not make another name).
pub fn nick_key(nick: &str) -> String {
    looks(&nfkc(nick).to_lowercase())
}

/// NFKC (ASCII is its own normal form: most names, at no cost).
fn nfkc(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.nfkc().collect())
    }
}

/// The confusable skeleton (UTS #39), lower-cased, with the look-alikes
/// the table keeps apart in lower case folded too (`I`/`l`: a capital I
/// lower-cases to `i`).
fn looks(s: &str) -> String {
    let lower: String = s.to_lowercase();
    unicode_security::skeleton(&lower)
        .collect::<String>()
        .to_lowercase()
        .chars()
        .map(|c| if c == 'i' { 'l' } else { c })
        .collect()
}

/// Characters that change how text displays without showing themselves:
/// control characters, bidi controls, zero-width and other format
/// characters, and the blanks that render as nothing.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || is_bidi_control(c)
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{206F}'
            | '\u{2800}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}')
}

/// Embeddings, overrides and isolates (and their terminators).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A chat text without bidi overrides and isolates, and without control
/// characters other than newline and tab. Everything else is kept as sent.
pub fn clean_text(raw: &str) -> String {
    if !raw
        .chars()
        .any(|c| is_bidi_control(c) || (c.is_control() && c != '\n' && c != '\t'))
    {
        return raw.to_owned();
    }
    raw.chars()
        .filter(|c| !is_bidi_control(*c) && (!c.is_control() || *c == '\n' || *c == '\t'))
        .collect()
}

/// A chat text: not blank, at most `max_chars` characters.
/// The text is cleaned first (see [`crate::names::clean_text`]).
pub fn text(raw: &str, max_chars: usize) -> Result<String, ErrorBody> {
    let raw = clean_text(raw);
    if raw.trim().is_empty() {
        return Err(bad("message text is empty"));
    }
    let chars = raw.chars().count();
    if chars > max_chars {
        return Err(ErrorBody::new(
            ErrorCode::TooLong,
            format!("message is {chars} characters; the limit is {max_chars}"),
        ));
    }
    Ok(raw)
}

/// `wanted-n`, cut so it stays within the nickname length limit.
pub fn suffixed(wanted: &str, n: u64) -> String {
    let suffix = format!("-{n}");
    let room = MAX_NICK_CHARS.saturating_sub(suffix.chars().count());
    wanted.chars().take(room).collect::<String>() + &suffix
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_fold_case_and_width_and_refuse_bad_characters() {
        assert_eq!(room(" General ").as_deref(), Ok("general"));
        assert_eq!(
            room("ｌｏｂｂｙ").as_deref(),
            Ok("lobby"),
            "fullwidth is NFKC'd"
        );
        assert_eq!(room("a b").map_err(|e| e.code), Err(ErrorCode::BadRequest));
        assert_eq!(room("").map_err(|e| e.code), Err(ErrorCode::BadRequest));
        assert_eq!(
            room("lоbby").map_err(|e| e.code),
            Err(ErrorCode::BadRequest),
            "Cyrillic о"
        );
        assert_eq!(
            room(&"x".repeat(33)).map_err(|e| e.code),
            Err(ErrorCode::TooLong)
        );
        assert_eq!(room_key("1obby"), room_key("lobby"));
        assert_eq!(room_key("rnain"), room_key("main"));
        assert_ne!(room_key("lobby"), room_key("hobby"));
    }

    #[test]
    fn nicks_are_trimmed_limited_and_visible() {
        assert_eq!(nick("  Ann ").as_deref(), Ok("Ann"));
        assert_eq!(nick("Dr. Who").as_deref(), Ok("Dr. Who"));
        assert_eq!(nick("José").as_deref(), Ok("José"));
        assert_eq!(nick("さくら").as_deref(), Ok("さくら"));
        assert_eq!(nick("Иван").as_deref(), Ok("Иван"), "one script is fine");
        assert_eq!(
            nick("a\u{7}b").map_err(|e| e.code),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            nick(&"é".repeat(33)).map_err(|e| e.code),
            Err(ErrorCode::TooLong)
        );
        for bad in ["\u{200b}", "\u{3164}", "   ", "...", "\u{2800}"] {
            assert!(nick(bad).is_err(), "{bad:?} accepted");
        }
    }

    /// The look-alikes of a connected `alice`: each is refused or is the
    /// same name.
    #[test]
    fn look_alikes_of_a_name_are_refused_or_the_same_name() {
        let alice = nick_key("alice");
        let look_alikes = [
            "аlice",          // Cyrillic а
            "alіce",          // Ukrainian і
            "аlісе",          // Cyrillic а, і, с, е
            "ａｌｉｃｅ",     // fullwidth
            "alice\u{200d}",  // zero-width joiner
            "al\u{200b}ice",  // zero-width space
            "\u{202e}ecila",  // right-to-left override
            "alice\u{2066}",  // left-to-right isolate
            "\u{feff}alice",  // byte order mark
            "alice\u{00ad}",  // soft hyphen
            "ALICE",          // case
            "Alice",          // case
            "aIice",          // capital I for l
            "a1ice",          // digit one for l
            "alice\u{0301}",  // combining accent is NFC'd into é? no: stays, differs
            "alic\u{0435}",   // Cyrillic е at the end
            "ɑlice",          // Latin alpha
            "alice\u{180e}",  // Mongolian vowel separator
            "alice\u{e0041}", // tag character
            "\u{3164}alice",  // Hangul filler
        ];
        let mut same = 0;
        let mut refused = 0;
        let mut distinct = Vec::new();
        for raw in look_alikes {
            match nick(raw) {
                Err(_) => refused += 1,
                Ok(n) if nick_key(&n) == alice => same += 1,
                Ok(n) => distinct.push(n),
            }
        }
        // The combining accent makes another name (alicé), which is
        // honestly different and visible.
        assert_eq!(distinct, vec!["alicé".to_owned()], "passed as someone else");
        assert_eq!(same + refused, look_alikes.len() - 1);
    }

    #[test]
    fn texts_lose_bidi_controls_and_control_characters_only() {
        assert_eq!(clean_text("plain\ttext\nline"), "plain\ttext\nline");
        assert_eq!(clean_text("a\u{202e}b\u{2066}c"), "abc");
        assert_eq!(clean_text("nul\0 esc\u{1b}[31m"), "nul esc[31m");
        assert_eq!(clean_text("émoji 🎉 ok"), "émoji 🎉 ok");
    }
}

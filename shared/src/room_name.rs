//! The room-name rule, one for the server (which applies it after NFKC
//! normalisation) and the app (which checks at the input, before sending).

/// The longest room name, in characters.
pub const MAX_ROOM_CHARS: usize = 32;

/// Why a room name is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomNameError {
    /// Longer than [`MAX_ROOM_CHARS`].
    TooLong,
    /// Empty, or a character outside `a-z 0-9 - _`.
    Invalid,
}

impl RoomNameError {
    /// What to tell people.
    pub fn message(self) -> &'static str {
        match self {
            RoomNameError::TooLong => "room names are at most 32 characters",
            RoomNameError::Invalid => "room names are 1 to 32 characters of a-z, 0-9, '-' and '_'",
        }
    }
}

impl std::fmt::Display for RoomNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

/// The room `raw` names: trimmed and lower-cased, then 1 to
/// [`MAX_ROOM_CHARS`] of `a-z 0-9 - _`.
pub fn room_name(raw: &str) -> Result<String, RoomNameError> {
    let name = raw.trim().to_lowercase();
    if name.chars().count() > MAX_ROOM_CHARS {
        return Err(RoomNameError::TooLong);
    }
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err(RoomNameError::Invalid);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert_eq!(room_name(" Rust-Lang_2 "), Ok("rust-lang_2".into()));
        assert_eq!(room_name("café"), Err(RoomNameError::Invalid));
        assert_eq!(room_name("two words"), Err(RoomNameError::Invalid));
        assert_eq!(room_name(""), Err(RoomNameError::Invalid));
        assert_eq!(room_name(&"a".repeat(32)), Ok("a".repeat(32)));
        assert_eq!(room_name(&"a".repeat(33)), Err(RoomNameError::TooLong));
    }
}

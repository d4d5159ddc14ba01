//! The frame layer: one binary WebSocket message is one [`Frame`].
//!
//! | opcode | frame    | layout after the opcode byte                 |
//! |--------|----------|----------------------------------------------|
//! | 1      | Notify   | `u8 name_len`, `name`, payload                |
//! | 2      | Request  | `u32 id`, `u8 name_len`, `name`, payload      |
//! | 3      | Reset    | `u32 id`                                      |
//! | 4      | Response | `u32 id`, payload                             |
//!
//! Integers are big-endian; the payload is the rest of the message.
//! Decoding is fallible and never panics; encoding is infallible because a
//! [`Name`] can only hold 0–255 bytes.

use bytes::{BufMut, Bytes, BytesMut};
use std::{fmt, ops::Deref};

/// Opcode of a Notify frame.
pub const OP_NOTIFY: u8 = 1;
/// Opcode of a Request frame.
pub const OP_REQUEST: u8 = 2;
/// Opcode of a Reset frame.
pub const OP_RESET: u8 = 3;
/// Opcode of a Response frame.
pub const OP_RESPONSE: u8 = 4;

/// An event name: valid UTF-8 of at most 255 bytes. Compared, hashed and
/// ordered by its text, however it was made.
#[derive(Clone)]
pub struct Name(NameRepr);

#[derive(Clone)]
enum NameRepr {
    Static(&'static str),
    Owned(Box<str>),
}

/// An event name longer than 255 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("event name is {0} bytes long; the limit is 255")]
pub struct NameTooLong(pub usize);

impl Name {
    /// The longest name, in bytes.
    pub const MAX_LEN: usize = 255;

    /// A name from a string constant. Checked at compile time when used in a
    /// `const`; a longer string is a programming error.
    pub const fn from_static(name: &'static str) -> Self {
        assert!(
            name.len() <= Self::MAX_LEN,
            "event name longer than 255 bytes"
        );
        Self(NameRepr::Static(name))
    }

    /// A name from any string, refused when longer than 255 bytes.
    pub fn new(name: impl Into<String>) -> Result<Self, NameTooLong> {
        let name: String = name.into();
        if name.len() > Self::MAX_LEN {
            return Err(NameTooLong(name.len()));
        }
        Ok(Self(NameRepr::Owned(name.into_boxed_str())))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            NameRepr::Static(s) => s,
            NameRepr::Owned(s) => s,
        }
    }

    fn len_u8(&self) -> u8 {
        // Both constructors keep the length within 0..=255.
        u8::try_from(self.as_str().len()).unwrap_or(u8::MAX)
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<&str> for Name {
    type Error = NameTooLong;
    fn try_from(s: &str) -> Result<Self, NameTooLong> {
        Name::new(s)
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Name {}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One protocol frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A one-way event, either direction.
    Notify {
        /// Event name.
        name: Name,
        /// Everything after the header.
        payload: Bytes,
    },
    /// A call that expects exactly one [`Frame::Response`] (client → server).
    Request {
        /// Chosen by the client.
        id: u32,
        /// Event name.
        name: Name,
        /// Everything after the header.
        payload: Bytes,
    },
    /// Cancels the Request with this id (client → server).
    Reset {
        /// The Request's id.
        id: u32,
    },
    /// The answer to a Request (server → client).
    Response {
        /// The Request's id.
        id: u32,
        /// Everything after the header.
        payload: Bytes,
    },
}

/// Why bytes are not a frame. One variant per violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message has no bytes at all.
    #[error("empty message")]
    Empty,
    /// The first byte is not 1, 2, 3 or 4.
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    /// The message ends inside the fixed header.
    #[error("truncated header: opcode {opcode} needs {needed} bytes, message has {len}")]
    TruncatedHeader {
        /// The frame's opcode.
        opcode: u8,
        /// Bytes the header needs.
        needed: usize,
        /// Bytes the message has.
        len: usize,
    },
    /// The name length points past the end of the message.
    #[error("event name of {name_len} bytes runs past the end of the message")]
    NamePastEnd {
        /// The declared name length.
        name_len: u8,
    },
    /// The name is not valid UTF-8.
    #[error("event name is not valid UTF-8")]
    InvalidUtf8Name,
    /// A Reset carries bytes after its id.
    #[error("reset frame has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl Frame {
    /// A Notify frame.
    pub fn notify(name: Name, payload: impl Into<Bytes>) -> Self {
        Frame::Notify {
            name,
            payload: payload.into(),
        }
    }

    /// A Request frame.
    pub fn request(id: u32, name: Name, payload: impl Into<Bytes>) -> Self {
        Frame::Request {
            id,
            name,
            payload: payload.into(),
        }
    }

    /// A Response frame.
    pub fn response(id: u32, payload: impl Into<Bytes>) -> Self {
        Frame::Response {
            id,
            payload: payload.into(),
        }
    }

    /// The opcode byte of this frame.
    pub fn opcode(&self) -> u8 {
        match self {
            Frame::Notify { .. } => OP_NOTIFY,
            Frame::Request { .. } => OP_REQUEST,
            Frame::Reset { .. } => OP_RESET,
            Frame::Response { .. } => OP_RESPONSE,
        }
    }

    /// The exact size of the encoded frame.
    pub fn encoded_len(&self) -> usize {
        match self {
            Frame::Notify { name, payload } => 2 + name.len() + payload.len(),
            Frame::Request { name, payload, .. } => 6 + name.len() + payload.len(),
            Frame::Reset { .. } => 5,
            Frame::Response { payload, .. } => 5 + payload.len(),
        }
    }

    /// Writes the frame's bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        out.put_u8(self.opcode());
        match self {
            Frame::Notify { name, payload } => {
                put_name(&mut out, name);
                out.put_slice(payload);
            }
            Frame::Request { id, name, payload } => {
                out.put_u32(*id);
                put_name(&mut out, name);
                out.put_slice(payload);
            }
            Frame::Reset { id } => out.put_u32(*id),
            Frame::Response { id, payload } => {
                out.put_u32(*id);
                out.put_slice(payload);
            }
        }
        out.freeze()
    }

    /// Reads one frame from a whole message. The payload shares `msg`'s
    /// memory; nothing is allocated for it.
    pub fn decode(msg: &Bytes) -> Result<Frame, DecodeError> {
        let (&opcode, rest) = msg.split_first().ok_or(DecodeError::Empty)?;
        let header = |needed: usize| {
            if msg.len() < needed {
                Err(DecodeError::TruncatedHeader {
                    opcode,
                    needed,
                    len: msg.len(),
                })
            } else {
                Ok(())
            }
        };
        match opcode {
            OP_NOTIFY => {
                header(2)?;
                let (name, start) = read_name(msg, 1)?;
                Ok(Frame::Notify {
                    name,
                    payload: msg.slice(start..),
                })
            }
            OP_REQUEST => {
                header(6)?;
                let id = read_u32(rest);
                let (name, start) = read_name(msg, 5)?;
                Ok(Frame::Request {
                    id,
                    name,
                    payload: msg.slice(start..),
                })
            }
            OP_RESET => {
                header(5)?;
                if msg.len() > 5 {
                    return Err(DecodeError::TrailingBytes(msg.len() - 5));
                }
                Ok(Frame::Reset { id: read_u32(rest) })
            }
            OP_RESPONSE => {
                header(5)?;
                Ok(Frame::Response {
                    id: read_u32(rest),
                    payload: msg.slice(5..),
                })
            }
            other => Err(DecodeError::UnknownOpcode(other)),
        }
    }

    /// Reads one frame from a byte slice (copies the payload).
    pub fn decode_slice(msg: &[u8]) -> Result<Frame, DecodeError> {
        Frame::decode(&Bytes::copy_from_slice(msg))
    }
}

fn put_name(out: &mut BytesMut, name: &Name) {
    out.put_u8(name.len_u8());
    out.put_slice(name.as_bytes());
}

/// The caller has checked that `b` holds at least 4 bytes.
fn read_u32(b: &[u8]) -> u32 {
    let mut id = [0u8; 4];
    for (dst, src) in id.iter_mut().zip(b) {
        *dst = *src;
    }
    u32::from_be_bytes(id)
}

/// Reads the length-prefixed name at `at`; returns it and where the payload starts.
fn read_name(msg: &Bytes, at: usize) -> Result<(Name, usize), DecodeError> {
    let name_len = *msg.get(at).ok_or(DecodeError::TruncatedHeader {
        opcode: msg.first().copied().unwrap_or(0),
        needed: at + 1,
        len: msg.len(),
    })?;
    let start = at + 1;
    let end = start + usize::from(name_len);
    let raw = msg
        .get(start..end)
        .ok_or(DecodeError::NamePastEnd { name_len })?;
    let text = std::str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8Name)?;
    let name = Name(NameRepr::Owned(text.into()));
    Ok((name, end))
}

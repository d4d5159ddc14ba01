//! Credentials: the rules a password follows, its hashing, and how sign-in
//! failures are throttled. (Usernames follow the nickname rules and
//! compare by [`crate::names::nick_key`].)

pub mod password;
pub mod throttle;

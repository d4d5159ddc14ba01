//! Credentials: the rules a password follows and its hashing. (Usernames
//! follow the nickname rules and compare by [`crate::names::nick_key`].)

pub mod password;

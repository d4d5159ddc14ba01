// Shared by `build.rs` (which decides what is cached forever) and `web.rs`
// (which exposes it to tests): included in both, so it uses nothing.

/// Whether trunk put a content hash in a file's name: `stem-<hash>.ext` or
/// `stem-<hash>_bg.wasm`, where `<hash>` is a 64-bit hash written in hex
/// without leading zeros (`{:x}`), so usually 16 digits but fewer for one
/// name in 16 (`frontend-cbe858a316c9d56.js`). Fewer than 8 digits is taken
/// for a word, not a hash (a hash that short comes once in 2^32 names).
pub fn is_hashed(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or_default();
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        (8..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

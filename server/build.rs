//! Embeds the browser bundle (`dist/`, built by trunk) into the server.
//!
//! For every file it writes an entry with its content type, a strong ETag,
//! its precompressed `.br`/`.gz` siblings when trunk's hook made them, and
//! whether its name carries a content hash (then it may be cached forever).
//! It also collects the SHA-256 of each inline `<script>` in `index.html`
//! for the Content-Security-Policy. Without a bundle it embeds nothing and
//! the server says how to build one.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::{
    env, fs,
    path::{Path, PathBuf},
};

fn main() {
    println!("cargo::rerun-if-env-changed=CHAT_DIST_DIR");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = env::var("CHAT_DIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("..").join("dist"));
    println!("cargo::rerun-if-changed={}", dist.display());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default()).join("assets.rs");
    let code = if dist.join("index.html").is_file() {
        generate(&dist)
    } else {
        println!(
            "cargo::warning=no browser bundle at {}: the server will serve a page that says how to build it",
            dist.display()
        );
        "pub(crate) static ASSETS: &[Asset] = &[];\npub(crate) static SCRIPT_HASHES: &[&str] = &[];\n"
            .to_owned()
    };
    if let Err(e) = fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "webmanifest" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

include!("src/hashed_name.rs");

fn sibling(path: &Path, ext: &str) -> String {
    let candidate = PathBuf::from(format!("{}.{ext}", path.display()));
    if candidate.is_file() {
        format!(
            "Some(include_bytes!({:?}))",
            candidate.display().to_string()
        )
    } else {
        "None".to_owned()
    }
}

/// SHA-256 (base64) of every inline script's text, as CSP source values.
fn inline_script_hashes(html: &str) -> Vec<String> {
    let mut hashes = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let after = &rest[start..];
        let Some(open_end) = after.find('>') else {
            break;
        };
        let tag = &after[..open_end];
        let body = &after[open_end + 1..];
        let Some(close) = body.find("</script>") else {
            break;
        };
        if !tag.contains(" src=") {
            let digest = Sha256::digest(&body.as_bytes()[..close]);
            hashes.push(format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            ));
        }
        rest = &body[close..];
    }
    hashes
}

fn generate(dist: &Path) -> String {
    let mut entries = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir(dist)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut script_hashes = Vec::new();
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if !path.is_file()
            || name.ends_with(".br")
            || name.ends_with(".gz")
            || name.starts_with('.')
        {
            continue;
        }
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        };
        if name == "index.html" {
            script_hashes = inline_script_hashes(&String::from_utf8_lossy(&bytes));
        }
        let digest = Sha256::digest(&bytes);
        let etag: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        entries.push(format!(
            "    Asset {{ path: {:?}, content_type: {:?}, etag: {:?}, immutable: {}, body: include_bytes!({:?}), gzip: {}, brotli: {} }},\n",
            format!("/{name}"),
            content_type(&name),
            format!("\"{etag}\""),
            is_hashed(&name),
            path.display().to_string(),
            sibling(&path, "gz"),
            sibling(&path, "br"),
        ));
    }
    format!(
        "pub(crate) static ASSETS: &[Asset] = &[\n{}];\npub(crate) static SCRIPT_HASHES: &[&str] = &{:?};\n",
        entries.concat(),
        script_hashes
    )
}

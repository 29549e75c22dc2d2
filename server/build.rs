//! Build script: the migrations are embedded by `sqlx::migrate!`; the browser UI (`web/`) is
//! built with npm (grpc-web clients generated from `proto/`, bundled by esbuild) into OUT_DIR
//! and embedded, so release and debug binaries both serve it.
//!
//! Without npm on the build machine the binary embeds a page saying how to get the UI
//! (`pressluft_server::ui::BUILT` is false, and the test suite fails on it); a UI that fails
//! to build fails the build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    let web = Path::new("../web");
    for input in [
        "src/main.tsx",
        "src/api.ts",
        "src/ui.tsx",
        "src/pages",
        "src/style.css",
        "index.html",
        "build.mjs",
        "buf.gen.yaml",
        "package.json",
        "package-lock.json",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed=../web/{input}");
    }
    println!("cargo:rerun-if-changed=../proto/pressluft");
    println!("cargo:rerun-if-env-changed=PRESSLUFT_NPM");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dist = out.join("web");
    let npm = std::env::var("PRESSLUFT_NPM").unwrap_or_else(|_| "npm".to_owned());
    let built = if Command::new(&npm)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        build_ui(web, &npm, &dist);
        true
    } else {
        println!(
            "cargo:warning=npm not found: the browser UI is not built (install Node.js 20+ and rebuild)"
        );
        placeholder(&dist);
        false
    };
    write_assets(&dist, built, &out.join("web_assets.rs"));
}

/// `npm ci` (when the installed packages are missing or older than the lock file) and
/// `npm run build`, one build at a time: cargo may run this script for two profiles at once,
/// and both write web/src/gen.
fn build_ui(web: &Path, npm: &str, dist: &Path) {
    let lock = std::fs::File::create(std::env::temp_dir().join("pressluft-web-build.lock"))
        .expect("the web build lock file");
    lock.lock().expect("the web build lock");
    let installed = web.join("node_modules/.package-lock.json");
    let stale = |a: &Path, b: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        match (modified(a), modified(b)) {
            (Some(a), Some(b)) => a < b,
            _ => true,
        }
    };
    if stale(&installed, &web.join("package-lock.json")) {
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(web),
            "npm ci",
        );
    }
    let _ = std::fs::remove_dir_all(dist);
    run(
        Command::new(npm)
            .args(["run", "build"])
            .env("PRESSLUFT_WEB_OUT", dist)
            .current_dir(web),
        "npm run build",
    );
    lock.unlock().expect("unlock the web build lock");
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The page served when the UI could not be built here.
fn placeholder(dist: &Path) {
    std::fs::create_dir_all(dist).expect("the placeholder directory");
    std::fs::write(
        dist.join("index.html"),
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Pressluft</title></head>\
         <body><h1>Pressluft</h1><p>This pressluft-server was compiled without npm, so its browser UI \
         was not built. Install Node.js 20+ (with npm) and rebuild; the API, the CLI and the TUI work \
         as they are.</p></body></html>\n",
    )
    .expect("the placeholder page");
}

/// `web_assets.rs`: every file under `dist` as (URL path, content type, bytes).
fn write_assets(dist: &Path, built: bool, target: &Path) {
    let mut files = Vec::new();
    collect(dist, dist, &mut files);
    files.sort();
    let mut code = format!(
        "/// Whether the real UI was built (npm was there).\npub const BUILT: bool = {built};\n"
    );
    code.push_str("/// The UI's files: (URL path, content type, bytes).\npub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for (url, path) in files {
        let mime = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            Some("png") => "image/png",
            _ => "application/octet-stream",
        };
        let _ = writeln!(
            code,
            "    ({url:?}, {mime:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    std::fs::write(target, code).expect("web_assets.rs");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let url = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
            files.push((url, path.canonicalize().unwrap_or(path)));
        }
    }
}

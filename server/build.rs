//! Build script: the migrations are embedded by `sqlx::migrate!`; the browser UI (`web/`) is
//! built with npm (grpc-web clients generated from `proto/`, bundled by esbuild) in a copy of
//! its sources under the target directory, into OUT_DIR, and embedded, so release and debug
//! binaries both serve it. Nothing is written into `web/`.
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
        "e2e",
    ] {
        println!("cargo:rerun-if-changed=../web/{input}");
    }
    println!("cargo:rerun-if-changed=../proto/pressluft");
    println!("cargo:rerun-if-env-changed=PRESSLUFT_NPM");

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dist = out.join("web");
    let staging = staging_dir(&out);
    println!(
        "cargo:rustc-env=PRESSLUFT_WEB_BUILD_DIR={}",
        staging.display()
    );
    let npm = std::env::var("PRESSLUFT_NPM").unwrap_or_else(|_| "npm".to_owned());
    let built = if Command::new(&npm)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        build_ui(web, &npm, &staging, &dist);
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

/// The UI is built in a copy of `web/`'s sources beside Cargo's output (`<target>/web-build`,
/// shared by the profiles and kept between builds for its `node_modules`), so a build never
/// writes into the source tree. Integration tests find it (the browser test runs its e2e
/// script there) through `PRESSLUFT_WEB_BUILD_DIR`.
fn staging_dir(out: &Path) -> PathBuf {
    // OUT_DIR is <target>[/<triple>]/<profile>/build/<package>-<hash>/out.
    out.ancestors()
        .nth(4)
        .expect("OUT_DIR lies four levels below the target directory")
        .join("web-build")
}

/// Copies the UI's sources (not its packages or generated code) into `staging`, replacing
/// what an earlier build copied.
fn stage_sources(web: &Path, staging: &Path) {
    for dir in ["src", "e2e"] {
        let _ = std::fs::remove_dir_all(staging.join(dir));
    }
    for file in [
        "index.html",
        "build.mjs",
        "buf.gen.yaml",
        "package.json",
        "package-lock.json",
        "tsconfig.json",
    ] {
        copy(&web.join(file), &staging.join(file));
    }
    copy_tree(&web.join("src"), &staging.join("src"), &["gen"]);
    copy_tree(&web.join("e2e"), &staging.join("e2e"), &[]);
}

fn copy(from: &Path, to: &Path) {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).expect("a staging directory");
    }
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to the UI build: {e}", from.display()));
}

fn copy_tree(from: &Path, to: &Path, skip: &[&str]) {
    for entry in std::fs::read_dir(from).expect("a UI source directory") {
        let entry = entry.expect("a directory entry");
        let name = entry.file_name();
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name), &[]);
        } else {
            copy(&path, &to.join(&name));
        }
    }
}

/// `npm ci` in the staging copy when its packages were installed from another lock file,
/// and `npm run build` (code generated from `proto/`, type check, bundle) into `dist`; one
/// build at a time: cargo may run this script for two profiles at once.
fn build_ui(web: &Path, npm: &str, staging: &Path, dist: &Path) {
    let lock = std::fs::File::create(std::env::temp_dir().join("pressluft-web-build.lock"))
        .expect("the web build lock file");
    lock.lock().expect("the web build lock");
    stage_sources(web, staging);
    let wanted = std::fs::read(staging.join("package-lock.json")).expect("package-lock.json");
    let marker = staging.join("node_modules/.pressluft-installed-lock");
    if std::fs::read(&marker).ok().as_deref() != Some(wanted.as_slice()) {
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(staging),
            "npm ci",
        );
        std::fs::write(&marker, &wanted).expect("the installed-packages marker");
    }
    let proto = std::fs::canonicalize("../proto").expect("the proto directory");
    let _ = std::fs::remove_dir_all(dist);
    run(
        Command::new(npm)
            .args(["run", "build"])
            .env("PRESSLUFT_WEB_OUT", dist)
            .env("PRESSLUFT_PROTO_DIR", proto)
            .current_dir(staging),
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

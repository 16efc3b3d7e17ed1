// `sqlx::migrate!` embeds the migrations at compile time, but on stable Rust it cannot tell
// cargo to rebuild when one is added: without this, a new migration file is silently left out
// of an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

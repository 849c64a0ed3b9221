//! `sqlx::migrate!` embeds the migrations at compile time, but a proc macro cannot ask cargo to
//! watch a directory: without this, a migration added to an already-built tree is silently left
//! out until something else in the crate changes.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

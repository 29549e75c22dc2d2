//! Linux user IDs for test servers that share the test node.
//!
//! Every test server creates site users on the same node (this machine, through the
//! loopback sshd), each from its own `linux_uid_base`. Bases drawn at random overlap
//! sooner or later (`groupadd: GID already exists`), so servers take blocks in turn from
//! one counter that all test processes share, and skip blocks an existing user or group
//! (from an earlier run) already occupies.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

/// The UIDs test servers may use: above the product's default base (20 000), below the
/// `linux_uid_base` maximum the configuration accepts (59 000).
pub const RANGE: Range<u32> = 30_000..59_000;
/// UIDs per test server: far more sites than any test creates.
pub const BLOCK: u32 = 100;

const COUNTER: &str = "/var/tmp/pressluft-test-uids";

/// The first UID of a block no other test server of this machine holds and no existing
/// user or group occupies.
///
/// # Panics
/// When the counter file cannot be used or every block is occupied: both mean the test
/// node is not what the suite expects, and a random base would only fail later.
pub fn block() -> u32 {
    block_from(Path::new(COUNTER))
}

/// [`block`] with the counter kept in `counter`.
fn block_from(counter: &Path) -> u32 {
    let shown = counter.display();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(counter)
        .unwrap_or_else(|e| panic!("cannot open {shown}: {e}"));
    file.lock()
        .unwrap_or_else(|e| panic!("cannot lock {shown}: {e}"));
    let next = read_counter(&mut file);
    let taken = ids_in(Path::new("/etc/passwd"), 2)
        .chain(ids_in(Path::new("/etc/group"), 2))
        .collect::<Vec<_>>();
    let blocks = (RANGE.end - RANGE.start) / BLOCK;
    let start = (0..blocks)
        .map(|i| RANGE.start + ((next + i) % blocks) * BLOCK)
        .find(|&start| !taken.iter().any(|id| (start..start + BLOCK).contains(id)))
        .unwrap_or_else(|| panic!("every UID block in {RANGE:?} is occupied on this machine"));
    let following = (start - RANGE.start) / BLOCK + 1;
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
        .and_then(|()| write!(file, "{following}"))
        .unwrap_or_else(|e| panic!("cannot write {shown}: {e}"));
    start
}

fn read_counter(file: &mut File) -> u32 {
    let mut text = String::new();
    file.read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("cannot read the UID counter: {e}"));
    text.trim().parse().unwrap_or(0)
}

/// The numeric field `field` of every line of a colon-separated database.
fn ids_in(path: &Path, field: usize) -> impl Iterator<Item = u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(':').nth(field)?.parse().ok())
        .collect::<Vec<_>>()
        .into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_taken_in_turn_never_overlap() {
        // A counter of its own: the machine's is root's, and this test needs no test bed.
        let counter = std::env::temp_dir().join(format!("pressluft-uids-{}", std::process::id()));
        let blocks: Vec<u32> = (0..5).map(|_| block_from(&counter)).collect();
        let _ = std::fs::remove_file(&counter);
        for (i, a) in blocks.iter().enumerate() {
            assert!(
                RANGE.contains(a) && a + BLOCK <= RANGE.end,
                "{a} outside {RANGE:?}"
            );
            for b in &blocks[i + 1..] {
                assert!(a.abs_diff(*b) >= BLOCK, "blocks {a} and {b} overlap");
            }
        }
    }
}

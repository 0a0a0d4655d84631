//! An idle agent gives its code pages back. A thousand idle agents map the
//! same executable; each process's RSS counts the pages of it that process
//! touched (about 4 MiB of text at start-up: the brain, serde, the loop),
//! although the page cache holds one copy for all of them. When the agent
//! settles into idle, `MADV_DONTNEED` on its executable mappings drops them
//! from its page tables; the pages stay cached, and the few the idle loop
//! runs (the heartbeat) are mapped again from the cache on their first use —
//! a minor fault, no I/O.

/// Drops this process's mappings of executable code from its page tables.
/// Best effort: anything unreadable is left as it is.
pub(crate) fn code_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, len) in maps.lines().filter_map(code_mapping) {
        drop_pages(start, len);
    }
}

/// `(start, length)` of a line of `/proc/self/maps` that maps a file's code
/// (`r-xp` with a path: never written, so its pages are the file's).
fn code_mapping(line: &str) -> Option<(usize, usize)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    // offset, device, inode, then the path.
    let path = fields.nth(3)?;
    if perms != "r-xp" || !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end - start))
}

#[allow(unsafe_code)]
fn drop_pages(start: usize, len: usize) {
    // SAFETY: the range is a private, read-only, executable mapping of a file
    // (checked above), never written: after MADV_DONTNEED the next access
    // maps the same bytes again from the file. Nothing is unmapped, and no
    // reference into the range is invalidated.
    let _ = unsafe {
        nix::libc::madvise(
            start as *mut nix::libc::c_void,
            len,
            nix::libc::MADV_DONTNEED,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_file_backed_code_is_dropped() {
        let text = "55d0c6a00000-55d0c6e00000 r-xp 00001000 fd:01 123 /usr/bin/society";
        assert_eq!(code_mapping(text), Some((0x55d0c6a00000, 0x400000)));
        for other in [
            "55d0c6e00000-55d0c6f00000 r--p 00401000 fd:01 123 /usr/bin/society",
            "55d0c6f00000-55d0c6f10000 rw-p 00501000 fd:01 123 /usr/bin/society",
            "7ffd1c5f0000-7ffd1c5f2000 r-xp 00000000 00:00 0 [vdso]",
            "7f0000000000-7f0000100000 r-xp 00000000 00:00 0",
        ] {
            assert_eq!(code_mapping(other), None, "{other}");
        }
    }

    #[test]
    fn the_process_keeps_running_after_its_code_is_dropped() {
        code_pages();
        // Code runs again, faulted back from the page cache.
        let v: Vec<u64> = (0..1000).map(|x| x * x).collect();
        assert_eq!(v.iter().sum::<u64>(), 332_833_500);
        assert!(serde_json::to_string(&v).is_ok());
    }
}

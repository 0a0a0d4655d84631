//! An idle agent gives its mapped file pages back. A thousand idle agents
//! map the same executable; each process's RSS counts the pages of it that
//! process touched (some 5 MiB of code and read-only data at start-up: the
//! brain, serde, the loop), although the page cache holds one copy for all
//! of them. When the agent has been idle for a while, `MADV_DONTNEED` on its
//! clean file mappings drops them from its page tables; the pages stay
//! cached, and the few the idle loop uses (the heartbeat) are mapped again
//! from the cache on their first use — a minor fault, no I/O.

/// Drops this process's clean mappings of its executable and libraries
/// from its page tables. Best effort: anything unreadable is left as it is.
pub(crate) fn code_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for (start, len) in clean_mappings(&smaps) {
        drop_pages(start, len);
    }
}

/// `(start, length)` of every mapping in `/proc/self/smaps` whose pages are
/// the file's own: a file's code (`r-xp`: never written), and a read-only
/// private mapping of a file none of whose pages were ever copied
/// (`r--p` with `Anonymous: 0 kB` — not the relocated `.data.rel.ro`,
/// which is read-only only after the loader wrote it).
fn clean_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut clean = Vec::new();
    let mut current: Option<(usize, usize, bool)> = None;
    for line in smaps.lines() {
        if let Some((start, len, code)) = mapping(line) {
            current = Some((start, len, code));
            if code {
                clean.push((start, len));
            }
            continue;
        }
        if let (Some((start, len, false)), Some(rest)) = (current, line.strip_prefix("Anonymous:"))
        {
            if rest.trim() == "0 kB" {
                clean.push((start, len));
            }
            current = None;
        }
    }
    clean
}

/// A mapping's header line of `/proc/self/smaps` (the `/proc/self/maps`
/// format): `(start, length, is code)` for a private read-only mapping of a
/// file, `None` for any other line.
fn mapping(line: &str) -> Option<(usize, usize, bool)> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let perms = fields.next()?;
    // offset, device, inode, then the path.
    let path = fields.nth(3)?;
    let code = match perms {
        "r-xp" => true,
        "r--p" => false,
        _ => return None,
    };
    if !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (end > start).then_some((start, end - start, code))
}

#[allow(unsafe_code)]
fn drop_pages(start: usize, len: usize) {
    // SAFETY: the range is a private, read-only mapping of a file none of
    // whose pages was ever written (checked above: code, or no anonymous
    // copy-on-write page): after MADV_DONTNEED the next access maps the
    // same bytes again from the file. Nothing is unmapped, and no
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
    fn only_clean_file_mappings_are_dropped() {
        let smaps = "\
55d0c6a00000-55d0c6e00000 r-xp 00001000 fd:01 123 /usr/bin/society
Rss:                 100 kB
Anonymous:             0 kB
55d0c6e00000-55d0c6f00000 r--p 00401000 fd:01 123 /usr/bin/society
Rss:                 100 kB
Anonymous:             0 kB
55d0c6f00000-55d0c6f10000 r--p 00501000 fd:01 123 /usr/bin/society
Rss:                  64 kB
Anonymous:            60 kB
55d0c6f10000-55d0c6f20000 rw-p 00511000 fd:01 123 /usr/bin/society
Anonymous:             0 kB
7ffd1c5f0000-7ffd1c5f2000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f0000000000-7f0000100000 r--p 00000000 00:00 0
Anonymous:             0 kB
";
        assert_eq!(
            clean_mappings(smaps),
            [(0x55d0c6a00000, 0x400000), (0x55d0c6e00000, 0x100000)],
            "code, and read-only file data never copied; not the relocated \
             data, a writable mapping, the vdso or anonymous memory"
        );
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

//! A small disk for the full-disk tests: a tmpfs mounted over a society's
//! state directory (root only; skipped with a note otherwise).

use society_testkit::Society;

/// A tmpfs of `size` mounted over the society's state directory (its files
/// moved onto it); unmounted (lazily: processes may still hold files) on drop.
pub struct SmallDisk {
    mount: std::path::PathBuf,
}

impl SmallDisk {
    /// `None` where mounting is not permitted (not root): said on stderr.
    pub fn over(s: &Society, size: &str) -> Option<SmallDisk> {
        let state = s.layout().state_dir().to_path_buf();
        let aside = state.with_extension("aside");
        std::fs::rename(&state, &aside).unwrap();
        std::fs::create_dir(&state).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&state)
            .status()
            .is_ok_and(|st| st.success());
        if !mounted {
            std::fs::remove_dir(&state).unwrap();
            std::fs::rename(&aside, &state).unwrap();
            eprintln!("SKIPPED: mounting a tmpfs needs root; this test proves nothing here");
            return None;
        }
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", aside.display()))
            .arg(&state)
            .status()
            .unwrap();
        assert!(copied.success());
        Some(SmallDisk { mount: state })
    }

    /// Fills the disk with a file until a write fails; returns its path.
    pub fn fill(&self) -> std::path::PathBuf {
        self.fill_into("filler")
    }

    /// Fills what writes since the last fill left free.
    pub fn fill_again(&self) -> std::path::PathBuf {
        self.fill_into("filler2")
    }

    fn fill_into(&self, name: &str) -> std::path::PathBuf {
        use std::io::Write;
        let filler = self.mount.join(name);
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let small = [0u8; 512];
        while f.write_all(&small).is_ok() {}
        while f.write_all(&small[..1]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
    }
}

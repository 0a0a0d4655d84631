//! File-watch events worth waking up for.
//!
//! notify's inotify backend also reports *opens* and *reads* of a watched
//! file. A watcher that re-reads its files on every event would then wake
//! itself forever — and the supervisor, which answers an inbox event by
//! waking the agent, would make every agent read wake that agent again. Only
//! events that mean "the data changed" may wake anyone.

/// Does this event mean a watched file's data (or existence) changed?
pub fn changes_data(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode};
    use notify::EventKind;
    matches!(
        kind,
        EventKind::Create(_)
            | EventKind::Modify(_)
            | EventKind::Remove(_)
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

#[cfg(test)]
mod tests {
    use super::changes_data;
    use notify::event::{AccessKind, AccessMode, DataChange, ModifyKind};
    use notify::EventKind;

    #[test]
    fn reads_and_opens_do_not_wake_anyone() {
        assert!(changes_data(&EventKind::Modify(ModifyKind::Data(
            DataChange::Any
        ))));
        assert!(changes_data(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(!changes_data(&EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!changes_data(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(!changes_data(&EventKind::Access(AccessKind::Read)));
    }
}

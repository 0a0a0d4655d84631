//! JSONL files: the append protocol and byte-cursor reading.
//!
//! Writers ([`Appender`]) follow the protocol from FORMAT.md: `O_APPEND`,
//! `flock(LOCK_EX)`, repair a torn tail with a lone `\n`, write the whole batch
//! with one `write(2)`, fsync by durability class, unlock. Readers ([`read_lines`])
//! keep a byte cursor and only ever return complete lines, so a reader racing a
//! writer, or reading after a writer died mid-line, never sees a partial record.

mod append;
mod reader;

pub use append::{append_one, Appender, Durability};
pub use reader::{
    check_cursor, read_lines, read_lines_bounded, read_lines_checked, read_objects, CursorCheck,
    Line, ReadBatch,
};

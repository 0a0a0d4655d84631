//! `society.toml` files more than one module starts from.

/// One echo agent, `echo`, that stays up (`keep_alive`) with a short heartbeat.
pub const ECHO_TOML: &str = r#"
[defaults]
heartbeat = "200ms"

[[agent]]
id = "echo"
role = "echo"
brain = "echo"
keep_alive = true
"#;

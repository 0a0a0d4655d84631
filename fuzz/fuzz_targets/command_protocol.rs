#![no_main]
// The check is society_testkit::fuzz::command_protocol (see there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| society_testkit::fuzz::command_protocol(data));

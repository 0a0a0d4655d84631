#![no_main]
// The check is society_testkit::fuzz::society_toml (see there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| society_testkit::fuzz::society_toml(data));

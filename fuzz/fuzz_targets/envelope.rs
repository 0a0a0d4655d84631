#![no_main]
// The check is society_testkit::fuzz::envelope (see there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| society_testkit::fuzz::envelope(data));

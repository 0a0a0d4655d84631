#![no_main]
// The check is society_testkit::fuzz::llm_stream (see there).
libfuzzer_sys::fuzz_target!(|data: &[u8]| society_testkit::fuzz::llm_stream(data));

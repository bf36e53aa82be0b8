#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| audit_server::fuzzing::admission_review(data));

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| guichet::fuzzing::saml_response(data));

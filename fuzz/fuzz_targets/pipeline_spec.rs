//! pipeline.toml, config.toml and approval files on arbitrary text: errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rcfops::approvals::ApprovalFile::parse(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rcfops::pipeline::spec::PipelineSpec::parse(text);
        let _ = rcfops::config::Config::parse(text, "config.toml", std::path::Path::new("/tmp"));
    }
});

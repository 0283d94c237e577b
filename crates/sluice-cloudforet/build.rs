//! Compiles Sluice's Cloudforet `.proto` files (pure Rust, no protoc) into one encoded
//! FileDescriptorSet that the crate embeds: it drives the dynamic gRPC/REST codecs and reflection.

use prost::Message;

const FILES: &[&str] = &[
    "spaceone/api/identity/v2/job.proto",
    "spaceone/api/identity/v2/provider.proto",
    "spaceone/api/identity/v2/trusted_account.proto",
    "spaceone/api/identity/v2/workspace.proto",
    "spaceone/api/identity/v2/project_group.proto",
    "spaceone/api/identity/v2/project.proto",
    "spaceone/api/identity/v2/service_account.proto",
    "spaceone/api/identity/plugin/account_collector.proto",
];

fn main() {
    println!("cargo:rerun-if-changed=proto");
    let set = protox::compile(FILES, ["proto"]).expect("the Cloudforet protos compile");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("cloudforet.bin"), set.encode_to_vec()).expect("write descriptor set");
}

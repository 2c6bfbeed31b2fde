//! Generates Rust types for the ONNX protobuf schema (`proto/onnx.proto`,
//! vendored from the `onnx` 1.23.2 Python package, Apache-2.0) so model
//! files can be edited in memory before a session is created.
//!
//! `protox` compiles the schema in pure Rust (no `protoc` binary needed) and
//! `prost-build` writes `$OUT_DIR/onnx.rs`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["proto/onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}

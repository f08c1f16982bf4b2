//! Compiles Envoy Gateway's extension-server protocol (`proto/proto/extension/*.proto`,
//! copied unchanged from Envoy Gateway) into tonic server code.
//!
//! The protocol's messages carry Envoy xDS types (Cluster, Listener, RouteConfiguration, …).
//! Those are not generated again: `extern_path` maps them to `envoy-types`, which the rest
//! of the workspace already uses. The compiler only needs their names to resolve the
//! imports, so each imported Envoy file is stood in for by a one-message declaration
//! written to `OUT_DIR`; the generated code refers to the real `envoy-types` structs.

use std::path::{Path, PathBuf};

/// The Envoy files `service.proto` imports, with the messages it uses from each.
const IMPORTS: &[(&str, &str, &[&str])] = &[
    (
        "envoy/config/cluster/v3/cluster.proto",
        "envoy.config.cluster.v3",
        &["Cluster"],
    ),
    (
        "envoy/config/endpoint/v3/endpoint.proto",
        "envoy.config.endpoint.v3",
        &["ClusterLoadAssignment"],
    ),
    (
        "envoy/config/listener/v3/listener.proto",
        "envoy.config.listener.v3",
        &["Listener"],
    ),
    (
        "envoy/config/route/v3/route_components.proto",
        "envoy.config.route.v3",
        &["Route", "VirtualHost"],
    ),
    (
        "envoy/config/route/v3/route.proto",
        "envoy.config.route.v3",
        &["RouteConfiguration"],
    ),
    (
        "envoy/extensions/transport_sockets/tls/v3/secret.proto",
        "envoy.extensions.transport_sockets.tls.v3",
        &["Secret"],
    ),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = manifest.join("proto");
    let stubs = out.join("envoy-import-names");
    for (file, package, messages) in IMPORTS {
        write_stub(&stubs, file, package, messages)?;
    }
    println!("cargo:rerun-if-changed={}", protos.display());
    println!("cargo:rerun-if-changed=build.rs");

    let mut compiler = protox::Compiler::new([&protos, &stubs])?;
    compiler.include_imports(true);
    compiler.open_files([
        "proto/extension/service.proto",
        "proto/extension/context.proto",
    ])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .extern_path(".envoy", "::envoy_types::pb::envoy")
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

fn write_stub(root: &Path, file: &str, package: &str, messages: &[&str]) -> std::io::Result<()> {
    let path = root.join(file);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut text = format!("syntax = \"proto3\";\npackage {package};\n");
    for message in messages {
        // The compiler decides which derives a message referring to these can have: a
        // string and a double keep it from assuming `Copy`, `Eq` and `Hash`, which the real
        // Envoy types lack.
        text.push_str(&format!(
            "message {message} {{ string s = 1; double d = 2; }}\n"
        ));
    }
    std::fs::write(path, text)
}

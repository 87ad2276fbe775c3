// swift-tools-version: 6.0
import PackageDescription

// The hot kernels use Swift SIMD types and C (the CKernels target, for the
// integer instructions of the quantized formats). Without AVX2 and FMA
// enabled, the compiler targets baseline x86-64 and lowers every fused
// multiply-add to a per-lane library call, which made decoding about 8x and
// prefill about 45x slower (bench/build-flags.sh, results in
// docs/BENCHMARKS.md). The manifest is compiled for the host, so this check
// enables the flags only when building on x86-64; other architectures get the
// compiler's defaults and CKernels' plain-C paths. Set LORA_MOE_PORTABLE=1 to
// build a binary for x86-64 machines without AVX2.
//
// NOTE: SwiftPM rejects unsafe flags in packages used as remote dependencies;
// depend on lora-moe through a local path or build with LORA_MOE_PORTABLE=1.
var kernelSettings: [SwiftSetting] = []
var cKernelSettings: [CSetting] = []
#if arch(x86_64)
if Context.environment["LORA_MOE_PORTABLE"] == nil {
    kernelSettings.append(.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma", "-Xcc", "-mf16c"]))
    cKernelSettings.append(.unsafeFlags(["-mavx2", "-mfma", "-mf16c"]))
}
#endif

let package = Package(
    name: "lora-moe",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "LoRAMoE", targets: ["LoRAMoE"]),
        .executable(name: "lora-moe", targets: ["lora-moe"]),
    ],
    targets: [
        .target(name: "JSON"),
        .target(name: "CKernels", cSettings: cKernelSettings),
        .target(name: "Tensor", dependencies: ["CKernels"], swiftSettings: kernelSettings),
        .target(name: "SafeTensors", dependencies: ["JSON", "Tensor"]),
        .target(name: "Tokenizers", dependencies: ["JSON"]),
        .target(name: "Models", dependencies: ["JSON", "Tensor", "SafeTensors"], swiftSettings: kernelSettings),
        .target(name: "Adapters", dependencies: ["Tensor", "SafeTensors", "Models"], swiftSettings: kernelSettings),
        .target(name: "Routing", dependencies: ["JSON", "Tensor", "SafeTensors", "Models", "Adapters"], swiftSettings: kernelSettings),
        .target(name: "Generation", dependencies: ["Tensor", "Models", "Adapters", "Routing", "Tokenizers"]),
        .target(name: "LoRAMoE", dependencies: ["JSON", "Tensor", "SafeTensors", "Tokenizers", "Models", "Adapters", "Routing", "Generation"]),
        // libmicrohttpd parses HTTP for the server; see README, "Serving".
        .systemLibrary(
            name: "CMicroHTTPD",
            pkgConfig: "libmicrohttpd",
            providers: [.apt(["libmicrohttpd-dev"]), .brew(["libmicrohttpd"])]),
        .target(name: "HTTP", dependencies: ["CMicroHTTPD"]),
        .target(name: "Server", dependencies: ["HTTP", "LoRAMoE"]),
        .executableTarget(name: "lora-moe", dependencies: ["LoRAMoE", "Server", "HTTP"]),
        .executableTarget(name: "kernel-bench", dependencies: ["Tensor", "CKernels"], path: "bench/kernel-bench",
                          swiftSettings: kernelSettings),

        .target(name: "TestSupport", dependencies: ["Models", "Adapters"], path: "Tests/TestSupport"),
        .testTarget(name: "JSONTests", dependencies: ["JSON"]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models"]),
        .testTarget(name: "AdaptersTests", dependencies: ["Adapters", "Tensor", "TestSupport"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "Generation", "TestSupport"]),
        .testTarget(name: "GenerationTests", dependencies: ["Generation"]),
        .testTarget(name: "ParityTests", dependencies: ["LoRAMoE"]),
        .testTarget(name: "CLITests", dependencies: ["LoRAMoE"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "HTTP", "LoRAMoE"]),
    ]
)

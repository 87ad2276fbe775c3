import Foundation
import SafeTensors

/// The 64-bit FNV-1a hash (Fowler–Noll–Vo, offset basis 0xcbf29ce484222325,
/// prime 0x100000001b3). Fast and stable across platforms, but not
/// cryptographic: it detects accidental mix-ups, not deliberate collisions.
public struct FNV1a64: Sendable {
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    public init() {}

    public mutating func combine(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        value = hash
    }

    public mutating func combine(_ data: Data) {
        data.withUnsafeBytes { combine($0) }
    }

    /// Hashes all bytes of the file at `path`.
    public mutating func combine(contentsOf path: String) throws {
        let file = try MappedFile(path: path)
        // The mapping is unmapped when `file` is released, so keep it alive
        // while its bytes are read.
        withExtendedLifetime(file) { combine(file.bytes) }
    }

    /// Hashes the UTF-8 bytes of `text` followed by a 0 byte, so that
    /// consecutive strings cannot run into each other.
    public mutating func combine(_ text: String) {
        combine(Data(text.utf8) + [0])
    }

    /// `fnv1a64:` followed by 16 lowercase hex digits.
    public var fingerprint: String {
        let hex = String(value, radix: 16)
        return "fnv1a64:" + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// Fingerprints that tie a router file to the model and the adapters it was
/// fitted with.
public enum RouterFingerprint {
    /// Bytes hashed from the start of every model tensor.
    public static let modelTensorSampleBytes = 4096

    /// Fingerprint of a model directory: the bytes of `config.json`, then for
    /// every tensor in name order its name, dtype, shape and first 4096 bytes.
    ///
    /// A sample rather than a hash of every weight, so that it costs a few
    /// milliseconds for any model size. A merged fine-tune changes the start of
    /// every tensor it touches, so the sample still distinguishes the models.
    /// NOTE: two models that differ only beyond the first 4096 bytes of every
    /// tensor get the same fingerprint.
    public static func model(directory: URL) throws -> String {
        var hash = FNV1a64()
        try hash.combine(contentsOf: directory.appendingPathComponent("config.json").path)
        let tensors = try ModelTensors(directory: directory)
        for name in tensors.tensorNames {
            hash.combine(name)
            let tensor: TensorView
            do {
                tensor = try tensors.tensor(named: name)
            } catch SafeTensorsError.unsupportedDType {
                // The model loader never reads such tensors (integer buffers),
                // so their name is enough.
                continue
            }
            hash.combine(tensor.dtype.rawValue)
            hash.combine(tensor.shape.map(String.init).joined(separator: ","))
            // `tensor.file` owns the mapping that `tensor.data` points into.
            withExtendedLifetime(tensor.file) {
                hash.combine(UnsafeRawBufferPointer(rebasing: tensor.data.prefix(modelTensorSampleBytes)))
            }
        }
        return hash.fingerprint
    }

    /// Fingerprint of a PEFT adapter directory: all bytes of
    /// `adapter_config.json`, then all bytes of `adapter_model.safetensors`.
    public static func adapter(directory: URL) throws -> String {
        var hash = FNV1a64()
        for name in ["adapter_config.json", "adapter_model.safetensors"] {
            try hash.combine(contentsOf: directory.appendingPathComponent(name).path)
        }
        return hash.fingerprint
    }

    /// Fingerprint of one file's bytes.
    public static func file(_ url: URL) throws -> String {
        var hash = FNV1a64()
        try hash.combine(contentsOf: url.path)
        return hash.fingerprint
    }
}

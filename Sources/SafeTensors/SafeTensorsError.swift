/// A safetensors file or shard index that cannot be read as stored.
public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(file: String, reason: String)
    case truncated(file: String, detail: String)
    case invalidHeader(file: String, detail: String)
    case invalidTensorEntry(file: String, tensor: String, detail: String)
    case tensorNotFound(file: String, tensor: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    case invalidIndex(file: String, detail: String)

    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            return "\(file): cannot open: \(reason)"
        case let .truncated(file, detail):
            return "\(file): file is truncated or corrupt: \(detail)"
        case let .invalidHeader(file, detail):
            return "\(file): invalid safetensors header: \(detail)"
        case let .invalidTensorEntry(file, tensor, detail):
            return "\(file): tensor '\(tensor)': \(detail)"
        case let .tensorNotFound(file, tensor):
            return "\(file): tensor '\(tensor)' not found"
        case let .unsupportedDType(file, tensor, dtype):
            return "\(file): tensor '\(tensor)' has dtype \(dtype); supported: F32, F16, BF16"
        case let .invalidIndex(file, detail):
            return "\(file): invalid shard index: \(detail)"
        }
    }
}

/// A parsed JSON value. Objects keep their members in file order, duplicates
/// included: Swift `String` keys compare by canonical equivalence, so a
/// dictionary would merge vocabulary entries that differ only in Unicode
/// normalization, and PEFT resolves `rank_pattern` keys in file order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.number(a), .number(b)): return a == b
        case let (.string(a), .string(b)): return a == b
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// The member `key` of an object (the last one when the key repeats, as
    /// Python's `json` and serde_json do); nil for a missing key or a non-object.
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.last { $0.key == key }?.value
    }

    /// True for null, false, 0, "", [] and {}: values that leave a feature off.
    public var isNeutral: Bool {
        switch self {
        case .null: return true
        case let .bool(value): return !value
        case let .number(value): return value == 0
        case let .string(text): return text.isEmpty
        case let .array(items): return items.isEmpty
        case let .object(members): return members.isEmpty
        }
    }

    /// A short rendering of the value for error messages.
    public var summary: String {
        switch self {
        case .null: return "null"
        case let .bool(value): return String(value)
        case let .number(value):
            if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
            return String(value)
        case let .string(value):
            let shown = value.count > 60 ? String(value.prefix(60)) + "…" : value
            return "\"\(shown)\""
        case let .array(items):
            return items.count <= 4 ? "[" + items.map(\.summary).joined(separator: ", ") + "]" : "an array of \(items.count) items"
        case let .object(members):
            return members.isEmpty ? "{}" : "an object with keys " + members.prefix(6).map { "\"\($0.key)\"" }.joined(separator: ", ")
        }
    }
}

extension JSONValue {
    /// `text` as a JSON string literal: quotes, backslashes and control
    /// characters escaped, everything else as is (UTF-8).
    public static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}

/// What each type means to each emitter: the one table of type traits.
/// Adding a type means adding it here once (and, when it needs a check of
/// its own, a letter to the C decoder's codes in xpio_glue.h); the glue,
/// docs, editor types, conformance tests and fuzz cases follow.
extension LuaType {
    /// The C type code the argument decoder reads (Sources/CLua/include/xpio_glue.h).
    /// `params` are the function's Lua parameters, self first (for `valueOf`).
    func code(_ spec: Spec, params: [Param]) -> String {
        switch self {
        case .string, .address: return "s"
        case .cstring: return "c"
        case .name: return "N"
        case .integer: return "i"
        case .size: return "u"
        case .number, .timeout: return "n"
        case .boolean, .trueValue: return "b"
        case .falseValue: return "F"
        case .table, .nilValue: return "t"
        case .task: return "k"
        case .any: return "a"
        case .object(let kind): return "o" + LuaType.indexCode(spec.kindIndex(kind))
        case .enumeration(let name): return "e" + LuaType.indexCode(spec.enumIndex(name))
        case .record(let name): return "r" + LuaType.indexCode(spec.recordIndex(name))
        case .array(let element): return "[" + element.code(spec, params: params)
        case .map(let key, let value): return "{" + key.code(spec, params: params) + value.code(spec, params: params)
        case .union(let members): return "|\(members.count)" + members.map { $0.code(spec, params: params) }.joined()
        case .valueOf(let param): return "v" + LuaType.indexCode(params.firstIndex { $0.name == param }!)
        }
    }

    /// '@' + index: how codes name kinds, enums, records and parameters.
    static func indexCode(_ index: Int) -> String { String(Character(Unicode.Scalar(UInt8(64 + index)))) }

    /// The type as LuaLS (lua-language-server) annotations spell it.
    func luaLS(_ spec: Spec) -> String {
        switch self {
        case .string, .cstring, .name, .address: return "string"
        case .integer, .size: return "integer"
        case .number, .timeout: return "number"
        case .boolean: return "boolean"
        case .falseValue: return "false"
        case .trueValue: return "true"
        case .nilValue: return "nil"
        case .table, .task: return "table"
        case .any: return "any"
        case .object(let kind): return spec.kind(named: kind)!.metatable
        case .enumeration(let name): return "xpio." + name
        case .record(let name): return "xpio." + name
        case .array(let element):
            let inner = element.luaLS(spec)
            return (element.isUnion ? "(\(inner))" : inner) + "[]"
        case .map(let key, let value): return "table<\(key.luaLS(spec)), \(value.luaLS(spec))>"
        case .union(let members): return LuaType.joinedUnique(members.map { $0.luaLS(spec) }, "|")
        case .valueOf: return "boolean|integer"
        }
    }

    /// The type in the API reference (Markdown).
    func docText(_ spec: Spec) -> String {
        switch self {
        case .string: return "string"
        case .cstring: return "string without NUL"
        case .name: return "name"
        case .size: return "non-negative integer"
        case .address: return "[address](#addresses)"
        case .timeout: return "seconds"
        case .enumeration(let name): return "[\(name)](#enum-\(name))"
        case .record(let name): return "[\(name)](#record-\(name))"
        case .object(let kind): return "[\(kind)](#object-\(spec.kind(named: kind)!.metatable.replacingOccurrences(of: ".", with: "")))"
        case .array(let element): return "array of " + element.docText(spec)
        case .map(let key, let value): return "table from \(key.docText(spec)) to \(value.docText(spec))"
        case .union(let members): return members.map { $0.docText(spec) }.joined(separator: " or ")
        case .valueOf(let param): return "the value type of `\(param)`"
        default: return luaLS(spec)
        }
    }

    var isUnion: Bool { if case .union = self { return true } else { return false } }

    static func joinedUnique(_ names: [String], _ separator: String) -> String {
        var seen: [String] = []
        for name in names where !seen.contains(name) { seen.append(name) }
        return seen.joined(separator: separator)
    }

    // MARK: Swift

    /// The Swift type of what `reader` gives.
    func swiftType(_ spec: Spec, optional: Bool) -> String {
        let base: String
        switch self {
        case .string, .cstring, .name: base = "LuaString"
        case .integer, .size: base = "Int64"
        case .number, .timeout: base = "Double"
        case .boolean, .falseValue, .trueValue: base = "Bool"
        case .address: base = "Endpoint"
        case .object(let kind): base = spec.kind(named: kind)!.swiftType
        case .enumeration(let name): base = spec.enumType(named: name)!.swiftType
        case .record(let name): return spec.record(named: name)!.swiftType
        case .array, .map: return "[Value]"
        case .valueOf: return "OptionValue"
        case .table, .task, .any, .union, .nilValue: return "Value"
        }
        return optional ? base + "?" : base
    }

    /// The Swift expression that reads `value` (a `Value`) as this type.
    func reader(_ value: String, _ spec: Spec, optional: Bool, defaultValue: String?) -> String {
        switch self {
        case .string, .cstring, .name: return optional ? "\(value).optionalString" : "\(value).string"
        case .integer, .size:
            if let defaultValue { return "\(value).integer(default: \(defaultValue))" }
            return optional ? "\(value).optionalInteger" : "\(value).integer"
        case .number, .timeout:
            if let defaultValue { return "(\(value).optionalNumber ?? \(defaultValue))" }
            return optional ? "\(value).optionalNumber" : "\(value).number"
        case .boolean, .falseValue, .trueValue:
            if let defaultValue { return "(\(value).optionalBoolean ?? \(defaultValue))" }
            return optional ? "\(value).optionalBoolean" : "\(value).boolean"
        case .address: return optional ? "(\(value).isAbsent ? nil : try \(value).endpoint)" : "try \(value).endpoint"
        case .object(let kind):
            let type = spec.kind(named: kind)!.swiftType
            return optional ? "\(value).optionalObject(\(type).self)" : "try \(value).object(\(type).self, \"\(kind)\")"
        case .enumeration(let name):
            let enumType = spec.enumType(named: name)!
            if let defaultValue, let chosen = enumType.cases.first(where: { $0.name == defaultValue }) {
                return "(\(value).optionalEnumCase(\(enumType.swiftType).self) ?? .\(chosen.swiftName))"
            }
            return optional ? "\(value).optionalEnumCase(\(enumType.swiftType).self)" : "\(value).enumCase(\(enumType.swiftType).self)"
        case .record(let name):
            let record = spec.record(named: name)!
            return (record.readerThrows(spec) ? "try " : "") + "\(record.swiftType)(\(value))"
        case .array, .map: return "\(value).list"
        case .valueOf: return "\(value).optionValue"
        case .table, .task, .any, .union, .nilValue: return value
        }
    }

    // MARK: tests

    /// A Lua expression of a value of this type, for the conformance tests.
    func sample(_ spec: Spec) -> String? {
        switch self {
        case .string, .cstring: return "\"x\""
        case .name: return "\"X\""
        case .address: return "\"127.0.0.1\""
        case .integer, .size, .number, .timeout: return "0"
        case .boolean, .trueValue: return "true"
        case .falseValue: return "false"
        case .table, .task, .record, .array, .map: return "{}"
        case .object(let kind): return "objects[\"\(kind)\"]"
        case .enumeration(let name): return "\"\(spec.enumType(named: name)!.cases[0].name)\""
        case .union(let members): return members.first?.sample(spec)
        case .any, .nilValue, .valueOf: return nil
        }
    }

    /// What the decoder's type-mismatch message says was expected.
    func expectedName(_ spec: Spec) -> String? {
        switch self {
        case .string, .cstring, .name, .address, .enumeration: return "string"
        case .integer, .size, .number, .timeout: return "number"
        case .boolean, .trueValue: return "boolean"
        case .falseValue: return "false"
        case .table, .task, .record, .array, .map: return "table"
        case .object(let kind): return spec.kind(named: kind)!.metatable
        case .union(let members):
            let names = members.compactMap { $0.expectedName(spec) }
            guard names.count == members.count else { return nil }
            return names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " or " + names.last!
        case .any, .nilValue, .valueOf: return nil
        }
    }

    /// A value of the wrong Lua type, and the type the message must expect.
    func wrong(_ spec: Spec) -> (value: String, expected: String)? {
        guard let expected = expectedName(spec) else { return nil }
        if acceptsTable { return acceptsString ? nil : ("\"x\"", expected) }
        return ("{}", expected)
    }

    var acceptsTable: Bool {
        switch self {
        case .table, .task, .record, .array, .map, .any: return true
        case .union(let members): return members.contains { $0.acceptsTable }
        default: return false
        }
    }

    var acceptsString: Bool {
        switch self {
        case .string, .cstring, .name, .address, .enumeration, .any, .integer, .size, .number, .timeout: return true
        case .union(let members): return members.contains { $0.acceptsString }
        default: return false
        }
    }

    /// The type as the fuzz driver reads it: a Lua table constructor.
    func fuzzDescriptor(_ spec: Spec) -> String {
        switch self {
        case .object(let kind): return "{ t = \"object\", name = \"\(kind)\" }"
        case .enumeration(let name): return "{ t = \"enum\", name = \"\(name)\" }"
        case .record(let name): return "{ t = \"record\", name = \"\(name)\" }"
        case .array(let element): return "{ t = \"array\", of = \(element.fuzzDescriptor(spec)) }"
        case .map(let key, let value): return "{ t = \"map\", key = \(key.fuzzDescriptor(spec)), value = \(value.fuzzDescriptor(spec)) }"
        case .union(let members): return "{ t = \"union\", of = { " + members.map { $0.fuzzDescriptor(spec) }.joined(separator: ", ") + " } }"
        case .valueOf(let param): return "{ t = \"valueOf\", param = \"\(param)\" }"
        default: return "{ t = \"\(fuzzName)\" }"
        }
    }

    var fuzzName: String {
        switch self {
        case .string: return "string"
        case .cstring: return "cstring"
        case .name: return "name"
        case .integer: return "integer"
        case .size: return "size"
        case .number: return "number"
        case .timeout: return "timeout"
        case .boolean: return "boolean"
        case .falseValue: return "false"
        case .trueValue: return "true"
        case .nilValue: return "nil"
        case .table: return "table"
        case .task: return "task"
        case .any: return "any"
        case .address: return "address"
        case .object: return "object"
        case .enumeration: return "enum"
        case .record: return "record"
        case .array: return "array"
        case .map: return "map"
        case .union: return "union"
        case .valueOf: return "valueOf"
        }
    }

    /// The type in a result shape, as the fuzz driver checks values.
    func shapeName(_ spec: Spec) -> String {
        switch self {
        case .string, .cstring, .name, .address, .enumeration: return "string"
        case .integer, .size: return "integer"
        case .number, .timeout: return "number"
        case .boolean, .falseValue: return "boolean"
        case .trueValue: return "true"
        case .nilValue: return "nil"
        case .table, .task, .record, .map: return "table"
        case .array(let element): return element == .task ? "task[]" : "table"
        case .any: return "any"
        case .object(let kind): return kind
        case .union(let members): return LuaType.joinedUnique(members.map { $0.shapeName(spec) }, "|")
        case .valueOf: return "boolean|integer"
        }
    }
}

extension RecordType {
    /// Whether reading one can fail (a field holds an address or an object).
    func readerThrows(_ spec: Spec) -> Bool {
        fields.contains { $0.type.reader("v", spec, optional: true, defaultValue: nil).contains("try ") }
    }
}

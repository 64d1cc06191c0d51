/// What each type means to each emitter: the one table of type traits.
/// Adding a type means adding it here once (and, when it needs a check of
/// its own, a named check in Sources/CLua/checks.c); the C and Swift glue,
/// docs, editor types, conformance tests and fuzz cases follow.
extension LuaType {
    // MARK: C

    /// The type's name in generated C and Swift identifiers: `array_cstring`,
    /// `union_socket_size`.
    var mangled: String {
        switch self {
        case .string, .address: return "string"
        case .cstring: return "cstring"
        case .name: return "name"
        case .integer: return "integer"
        case .size: return "size"
        case .number, .timeout: return "number"
        case .boolean, .trueValue: return "boolean"
        case .falseValue: return "false"
        case .table, .task, .nilValue: return "table"
        case .any, .valueOf: return "any"
        case .object(let kind): return "object_" + kind
        case .enumeration(let name): return "enum_" + name
        case .record(let name): return "record_" + name
        case .array(let element): return "array_" + element.mangled
        case .map(let key, let value): return "map_" + key.mangled + "_" + value.mangled
        case .union(let members): return "union_" + members.map(\.mangled).joined(separator: "_")
        }
    }

    /// The C expression checking the value at `index` into item `out` (the
    /// body of this type's `xpio_check` in Glue.c).
    func cCheck(_ spec: Spec) -> String {
        switch self {
        case .string, .address: return "xpio_check_string(c, index, XPIO_ANY_STRING, out)"
        case .cstring: return "xpio_check_string(c, index, XPIO_CSTRING, out)"
        case .name: return "xpio_check_string(c, index, XPIO_NAME, out)"
        case .integer: return "xpio_check_integer(c, index, 0, out)"
        case .size: return "xpio_check_integer(c, index, 1, out)"
        case .number, .timeout: return "xpio_check_number(c, index, out)"
        case .boolean, .trueValue: return "xpio_check_boolean(c, index, out)"
        case .falseValue: return "xpio_check_false(c, index, out)"
        case .table, .task, .nilValue: return "xpio_check_table(c, index, out)"
        case .any, .valueOf: return "xpio_check_any(c, index, out)"
        case .object(let kind): return "xpio_check_object(c, index, KIND_\(kind), out)"
        case .enumeration(let name): return "xpio_check_enum(c, index, &enum_\(name), out)"
        case .record(let name):
            let count = spec.record(named: name)!.fields.count
            return "xpio_check_record(c, index, \(count), fields_\(name), checks_\(name), out)"
        case .array(let element): return "xpio_check_array(c, index, check_\(element.mangled), out)"
        case .map(let key, let value): return "xpio_check_map(c, index, check_\(key.mangled), check_\(value.mangled), out)"
        case .union(let members):
            return "xpio_check_union(c, index, \(members.count), members_\(mangled), \"\(cExpected(spec))\", out)"
        }
    }

    /// What a type-mismatch message says was expected.
    func cExpected(_ spec: Spec) -> String {
        switch self {
        case .string, .cstring, .name, .address, .enumeration: return "string"
        case .integer, .size, .number, .timeout: return "number"
        case .boolean, .trueValue: return "boolean"
        case .falseValue: return "false"
        case .object(let kind): return spec.kind(named: kind)!.metatable
        case .union(let members):
            let names = members.map { $0.cExpected(spec) }
            return names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " or " + names.last!
        default: return "table"
        }
    }

    /// The checks this type's check calls: its elements, members, and a
    /// record's fields (each optional).
    func parts(_ spec: Spec) -> [(type: LuaType, optional: Bool)] {
        switch self {
        case .array(let element): return [(element, false)]
        case .map(let key, let value): return [(key, false), (value, false)]
        case .union(let members): return members.map { ($0, false) }
        case .record(let name): return spec.record(named: name)!.fields.map { ($0.type, true) }
        default: return []
        }
    }

    /// Where a check that may find the value left out also takes `false`.
    var takesFalse: Bool { self == .boolean || self == .trueValue }

    /// How an argument of this type travels from C to Swift: the field in
    /// the entry's argument struct and the Swift body's parameter. Scalars
    /// by value (an optional one by pointer, NULL when left out); strings
    /// as `xpio_bytes`; compound values as a checked `xpio_item`. Tables,
    /// tasks and any-values stay with C (`nil`).
    enum Passing { case object, integer, number, boolean, bytes, enumCase, item }

    var passing: Passing? {
        switch self {
        case .object: return .object
        case .integer, .size: return .integer
        case .number, .timeout: return .number
        case .boolean, .trueValue, .falseValue: return .boolean
        case .string, .cstring, .name, .address: return .bytes
        case .enumeration: return .enumCase
        case .record, .array, .map, .union, .valueOf: return .item
        case .table, .task, .any, .nilValue: return nil
        }
    }

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

    /// What a type-mismatch message says was expected (the conformance tests).
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

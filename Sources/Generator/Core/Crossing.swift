/// How one argument crosses from the C glue to the Swift body: the field
/// of the entry's argument struct (Glue.c) and the parameter of its Swift
/// body (Glue.swift), typed by the parameter's type (`LuaType.passing`).
/// Both emitters read it, so the C prototype and the Swift `@_cdecl`
/// signature cannot disagree.
struct Crossing {
    let param: Param
    let position: Int        // the Lua argument number (self is 1 in a method)
    let passing: LuaType.Passing

    /// An optional scalar without a default travels by pointer (NULL: left out).
    var byPointer: Bool {
        param.optional && param.defaultValue == nil && [.integer, .number, .boolean].contains(passing)
    }

    /// The field's name in C, and the Swift parameter's.
    var field: String { param.name }

    var cFieldType: String {
        switch passing {
        case .object: return "void *"
        case .integer: return "int64_t "
        case .number: return "double "
        case .boolean, .enumCase: return "int32_t "
        case .bytes: return "xpio_bytes "
        case .item: return "xpio_item "
        }
    }

    var cParamType: String {
        switch passing {
        case .item: return "const xpio_item *"
        case _ where byPointer: return "const " + cFieldType + "*"
        default: return cFieldType
        }
    }

    /// What the C glue passes, from its argument struct `a`.
    var cArgument: String {
        if passing == .item { return "&a->\(field)" }
        if byPointer { return "a->has_\(field) ? &a->\(field) : NULL" }
        return "a->\(field)"
    }

    var swiftType: String {
        switch passing {
        case .object: return "UnsafeMutableRawPointer?"
        case .integer: return byPointer ? "UnsafePointer<Int64>?" : "Int64"
        case .number: return byPointer ? "UnsafePointer<Double>?" : "Double"
        case .boolean: return byPointer ? "UnsafePointer<Int32>?" : "Int32"
        case .enumCase: return "Int32"
        case .bytes: return "xpio_bytes"
        case .item: return "UnsafePointer<xpio_item>?"
        }
    }

    /// The crossings of a function's parameters (self first), in order.
    static func of(_ function: Function) -> [Crossing] {
        function.luaParams.enumerated().compactMap { offset, param in
            param.type.passing.map { Crossing(param: param, position: offset + 1, passing: $0) }
        }
    }
}

extension Function {
    /// The entry's name in generated identifiers: `socket_try_read`, `xpio_socket`.
    var cName: String {
        (owner ?? entry.module?.replacingOccurrences(of: ".", with: "_") ?? "xpio") + "_" + luaName
    }

    /// The function whose Swift body this one runs: a blocking function
    /// runs its try_ partner's.
    var attemptFunction: Function {
        role == .blocking ? Function(entry: entry, luaName: "try_" + luaName, role: .attempt) : self
    }

    /// Whether this function has a Swift body of its own.
    var hasSwiftBody: Bool { role != .blocking && !entry.binding.isC && entry.binding != .pending }
}

/// The API as the spec describes it: what every emitter reads.
///
/// The model is flat: named types (object kinds, enums, records) and a list
/// of entries, each naming its owner (`nil` for the module table). Types
/// are `LuaType` values, whose traits (Traits.swift) say how each is checked,
/// read, documented, tested and fuzzed, so no emitter interprets a type by
/// its spelling. A `blocking` entry stands for two Lua functions (`read`,
/// `try_read`); `Entry.expanded` derives them.
public struct Spec {
    public var moduleName = "xpio"
    public var moduleDoc = ""
    /// Modules beside the main one whose functions XPIO's glue makes too,
    /// in a table of their own (`xpio.tls`: its table is made when
    /// `require "xpio.tls"` hands xpio.so the TLS engine).
    public var submodules: [Submodule] = []
    public var kinds: [ObjectKind] = []
    public var enums: [EnumType] = []
    public var records: [RecordType] = []
    public var entries: [Entry] = []

    public init() {}

    func kind(named name: String) -> ObjectKind? { kinds.first { $0.name == name } }
    func kindIndex(_ name: String) -> Int { kinds.firstIndex { $0.name == name }! }
    func enumType(named name: String) -> EnumType? { enums.first { $0.name == name } }
    func enumIndex(_ name: String) -> Int { enums.firstIndex { $0.name == name }! }
    func record(named name: String) -> RecordType? { records.first { $0.name == name } }
    func recordIndex(_ name: String) -> Int { records.firstIndex { $0.name == name }! }

    /// Entries of one owner (`nil`: the main module), in spec order, triads expanded.
    func functions(of owner: String?) -> [Function] {
        entries.filter { $0.owner == owner && $0.module == nil && $0.kind != .field }.flatMap { $0.expanded }
    }
    /// The functions of submodule `name`.
    func functions(inModule name: String) -> [Function] {
        entries.filter { $0.module == name && $0.kind != .field }.flatMap { $0.expanded }
    }
    var fields: [Entry] { entries.filter { $0.kind == .field } }
    /// A blocking entry's when_ partner: the when entry it names, of its
    /// own owner and module (the validator, which requires one, and the C
    /// glue's wait_ functions, which call its body, both look it up here).
    func whenPartner(of entry: Entry) -> Entry? {
        entries.first { $0.kind == .when && $0.owner == entry.owner && $0.module == entry.module && $0.name == entry.whenPartner }
    }
    var allFunctions: [Function] {
        functions(of: nil) + submodules.flatMap { functions(inModule: $0.name) } + kinds.flatMap { functions(of: $0.name) }
    }

    /// The kind whose objects keep tasks: `task._queue` must be one.
    static let queueKind = "tqueue"
}

/// A module beside the main one: `module xpio.tls` at the top of a spec
/// file makes that file's functions its own.
public struct Submodule {
    var name: String        // "xpio.tls": what `require` takes
    var doc: String
    /// `module xpio.sched = lua`: a module written in Lua (lua/xpio/sched.lua);
    /// the spec documents it (docs, types, conformance) and no glue is made.
    var inLua = false
    /// The table's name in docs and types: the last part ("tls").
    var localName: String { String(name.split(separator: ".").last!) }
}

/// An object kind: `object socket xpio.socket: Socket = xpio.socket("TCP")`.
public struct ObjectKind {
    var name: String        // "socket": the type name used in the spec
    var metatable: String   // "xpio.socket": the metatable's __name
    var swiftType: String   // "Socket": the runtime class its userdata holds
    var example: String     // a Lua expression making one, for generated tests
    var doc: String
    var holdsTasks: Bool { name == Spec.queueKind }
}

/// A fixed set of names, bound to a Swift enum: `enum family: AddressFamily`.
public struct EnumType {
    struct Case {
        var name: String         // the Lua name, "TCP_NODELAY"
        var swiftName: String    // the Swift case, "tcpNoDelay"
        var valueType: LuaType?  // setsockopt's value for this option
        var doc: String
    }
    var name: String
    var swiftType: String
    var prefix: String?          // also accepted before a name ("SIG")
    var unknown: String?         // an unknown name answers nil, unknown; nil: an argument error
    var cases: [Case]
    var doc: String
}

/// A table with typed fields, read raw: `record attrs`.
public struct RecordType {
    struct Field {
        var name: String
        var type: LuaType
        var doc: String
    }
    var name: String
    var fields: [Field]
    var doc: String
    /// The Swift struct the glue reads it into.
    var swiftType: String { "Record_" + name }
}

/// A parameter or result type.
public indirect enum LuaType: Equatable, Sendable {
    case string           // a string; numbers are converted
    case cstring          // a string without NUL bytes
    case name             // an environment name: non-empty, no '=' or NUL
    case integer
    case size             // a non-negative integer
    case number
    case timeout          // seconds; nil or false: no limit; negative: 0
    case boolean
    case falseValue       // the value false (SO_LINGER off)
    case trueValue        // results: true
    case nilValue         // results: a single nil
    case table
    case task             // a table with _queue
    case any
    case address          // an address or a name, in the address format
    case object(String)   // an object kind
    case enumeration(String)
    case record(String)
    case array(LuaType)
    case map(LuaType, LuaType)
    case union([LuaType])
    /// The value type of the enum case that parameter `name` chose.
    case valueOf(String)
}

extension LuaType {
    /// An object kind, or nil.
    var objectKind: String? { if case .object(let kind) = self { return kind } else { return nil } }
    /// An object or a list of objects: made by C for the call, not a plain value.
    var holdsObjects: Bool {
        if objectKind != nil { return true }
        if case .array(let element) = self { return element.objectKind != nil }
        return false
    }
}

public struct Param {
    var name: String
    var type: LuaType
    var optional: Bool
    var defaultValue: String?
}

/// What a function returns on success: values by position (each possibly
/// a union), or several such alternatives (`-> A or B, C`); unless `raw`,
/// it can also fail with `nil, message` (and a `try_` function with
/// `nil, "retry"`).
public struct Results {
    var alternatives: [[LuaType]]
    var raw: Bool

    init(positions: [LuaType], raw: Bool) {
        alternatives = [positions]
        self.raw = raw
    }

    init(alternatives: [[LuaType]], raw: Bool) {
        self.alternatives = alternatives
        self.raw = raw
    }

    /// The first (the main) alternative.
    var positions: [LuaType] { alternatives[0] }

    /// Every shape the results can take, each a list of types by position,
    /// for the fuzz driver: a union at a position that includes `nil` gives
    /// a shape with a single nil there.
    var shapes: [[LuaType]] {
        var list: [[LuaType]] = []
        for alternative in alternatives {
            if alternative.count == 1, case .union(let members) = alternative[0], members.contains(.nilValue) {
                list += [[.union(members.filter { $0 != .nilValue })], [.nilValue]]
            } else {
                list.append(alternative)
            }
        }
        if !raw { list.append([.nilValue, .string]) }
        return list
    }
}

public enum EntryKind: String { case function, method, blocking, when, field }

/// How an entry is implemented: a Swift expression (parameters are in
/// scope by name, `this` is self), a C function (`native`), a Lua module
/// that C loads on first use and calls with the checked arguments (`lua
/// xpio.run`), or nothing yet.
enum Binding: Equatable {
    case swift(String)
    case native
    case lua(String)
    case pending

    /// No Swift body: C does it all.
    var isC: Bool {
        switch self {
        case .native, .lua: return true
        case .swift, .pending: return false
        }
    }
}

public struct Entry {
    var kind: EntryKind
    var owner: String?      // nil: a module function or field
    var module: String? = nil   // a submodule's function ("xpio.tls"); nil: the main module
    var name: String
    var params: [Param]
    var results: Results
    /// blocking: the name of its `when_` partner (`[when_read]`), the when
    /// entry C waits with.
    var whenPartner: String?
    /// when: the readiness it waits for, "read" or "write" (`[read]`).
    var readiness: String? = nil
    /// blocking: the string parameter its blocking form writes whole, trying
    /// again with the rest after a partial write (`[when_write, whole data]`).
    var whole: String? = nil
    var binding: Binding
    var doc: String
    var location: String    // "Spec/socket.spec:12", for diagnostics

    /// The Lua functions this entry stands for.
    var expanded: [Function] {
        switch kind {
        case .blocking:
            return [Function(entry: self, luaName: name, role: .blocking),
                    Function(entry: self, luaName: "try_" + name, role: .attempt)]
        case .when: return [Function(entry: self, luaName: name, role: .when)]
        default: return [Function(entry: self, luaName: name, role: .plain)]
        }
    }
}

/// One Lua-visible function.
struct Function {
    enum Role { case plain, attempt, blocking, when }
    var entry: Entry
    var luaName: String
    var role: Role

    var owner: String? { entry.owner }
    var isMethod: Bool { entry.owner != nil }
    /// Every Lua argument, `self` first for methods.
    var luaParams: [Param] {
        (isMethod ? [Param(name: "self", type: .object(entry.owner!), optional: false, defaultValue: nil)] : []) + entry.params
    }
    var canRetry: Bool { role == .attempt || role == .blocking }
    /// What it returns: its entry's results, and for the blocking form of a
    /// `whole` entry also `nil, message, count` (a failure after part of it
    /// was moved: blocking.c adds the count).
    var results: Results {
        guard role == .blocking, entry.whole != nil else { return entry.results }
        var results = entry.results
        results.alternatives.append([.nilValue, .string, .integer])
        return results
    }
    /// "socket:read", "xpio.gettime": how docs and messages name it.
    var qualifiedName: String { (entry.owner.map { $0 + ":" } ?? (entry.module ?? "xpio") + ".") + luaName }
}

/// The API as the spec describes it: what every emitter reads.
///
/// The model is deliberately flat: a list of entries, each naming its owner
/// (`nil` for the module table). A `blocking` entry is one line of the spec
/// that stands for three Lua functions; `Entry.expanded` derives them so no
/// emitter has to know how a triad is spelled.

struct Spec {
    var moduleName = "xpio"
    var moduleDoc = ""
    var kinds: [ObjectKind] = []
    var entries: [Entry] = []

    func kind(named name: String) -> ObjectKind? { kinds.first { $0.name == name } }

    /// Entries of one owner (`nil`: the module), in spec order, triads expanded.
    func functions(of owner: String?) -> [Function] {
        entries.filter { $0.owner == owner && $0.kind != .field }.flatMap { $0.expanded }
    }
    var fields: [Entry] { entries.filter { $0.kind == .field } }
}

struct ObjectKind {
    var name: String        // "socket": the type name used in the spec
    var metatable: String   // "xpio.socket": the metatable's __name
    var example: String     // a Lua expression making one, for generated tests
    var doc: String
    /// The Swift enum that implements this kind's entries ("SocketAPI").
    var apiEnum: String { name.prefix(1).uppercased() + name.dropFirst() + "API" }
}

enum EntryKind: String { case function, method, blocking, when, field }

struct Param {
    var name: String
    var type: String        // string, integer, number, boolean, table, task, any, or a kind
    var optional: Bool
    var defaultValue: String?
}

enum Returns: Equatable {
    case ok                 // true | nil, message
    case value(String)      // T | nil, message
    case values([String])   // T, U | nil, message
    case read               // string | nil | nil, message
    case status             // "exit"|"signal", integer | nil, message
    case raw(String)        // whatever the implementation pushes: "A|B, C" lists its shapes

    /// Every shape the results can take, each a list of types by position:
    /// `.ok` is [["true"], ["nil", "string"]], and a raw "true|nil, string"
    /// is [["true"], ["nil", "string"]] too. The fuzz driver checks results
    /// against them; the type definitions merge them by position.
    var shapes: [[String]] {
        let failed = ["nil", "string"]
        switch self {
        case .ok: return [["true"], failed]
        case .value(let type): return [[type], failed]
        case .values(let types): return [types, failed]
        case .read: return [["string"], ["nil"], failed]
        case .status: return [["string", "integer"], failed]
        case .raw(let text):
            return text.split(separator: "|").map { alternative in
                alternative.split(separator: ",").map { String($0.filter { $0 != " " }) }
            }
        }
    }
}

struct Entry {
    var kind: EntryKind
    var owner: String?      // nil: a module function or field
    var name: String
    var params: [Param]
    var returns: Returns
    /// blocking: the `when_` partner; when: the readiness ("read"/"write").
    var partner: String?
    var doc: String
    var location: String    // "Spec/socket.spec:12", for diagnostics
    /// Declared but not implemented yet (`... -> true pending`): the glue
    /// raises "xpio: NAME is not implemented yet", and no Swift function is
    /// needed, so an entry can be added to the spec with no other edit.
    var pending = false

    /// The Lua functions this entry stands for.
    var expanded: [Function] {
        switch kind {
        case .blocking:
            return [
                Function(entry: self, luaName: name, role: .blocking),
                Function(entry: self, luaName: "try_" + name, role: .attempt),
            ]
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
        (isMethod ? [Param(name: "self", type: entry.owner!, optional: false, defaultValue: nil)] : []) + entry.params
    }
    var canRetry: Bool { role == .attempt || role == .blocking }
    /// "socket:read", "xpio.gettime": how docs and messages name it.
    var qualifiedName: String { (entry.owner.map { $0 + ":" } ?? "xpio.") + luaName }
}

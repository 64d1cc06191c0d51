import CLua

/// Builds the C description of the module (`xpio_module`, xpio_glue.h)
/// from the lists generated from the spec; used by generated code only.
/// Everything is allocated once per process and never freed: it lives as
/// long as the Lua functions that point at it.
enum Describe {
    static func entry(_ name: StaticString, types: [StaticString], params: [StaticString], role: Int32 = Int32(XPIO_PLAIN),
                      readiness: Int32 = Int32(XPIO_READABLE), method: Bool = false, body: xpio_body? = nil,
                      native: xpio_native? = nil, partner: StaticString? = nil, whole: Int32 = -1,
                      objects: StaticString? = nil, lua: StaticString? = nil) -> xpio_entry {
        xpio_entry(name: name.cString, types: strings(types), params: strings(params), nparams: Int32(types.count), role: role,
                   method: method ? 1 : 0, body: body, native: native, partner: partner?.cString, whole: whole, readiness: readiness,
                   objects: objects?.cString, lua: lua?.cString)
    }

    static func submodule(_ name: StaticString, functions: [xpio_entry]) -> xpio_submodule {
        xpio_submodule(name: name.cString, functions: array(functions), nfunctions: Int32(functions.count))
    }

    static func kind(_ name: StaticString, metatable: StaticString, holdsTasks: Bool, methods: [xpio_entry], close: xpio_body,
                     describe: xpio_body, release: @escaping @convention(c) (UnsafeMutableRawPointer?) -> Void) -> xpio_kind {
        xpio_kind(name: name.cString, metatable: metatable.cString, holds_tasks: holdsTasks ? 1 : 0, methods: array(methods),
                  nmethods: Int32(methods.count), close: close, describe: describe, release: release)
    }

    static func enumeration(_ name: StaticString, cases: [StaticString], values: [StaticString?], prefix: StaticString?,
                            unknown: StaticString?) -> xpio_enum {
        xpio_enum(name: name.cString, count: Int32(cases.count), cases: strings(cases), values: strings(values),
                  prefix: prefix?.cString, unknown: unknown?.cString)
    }

    static func record(_ name: StaticString, fields: [StaticString], types: [StaticString]) -> xpio_record {
        xpio_record(name: name.cString, count: Int32(fields.count), fields: strings(fields), types: strings(types))
    }

    static func module(functions: [xpio_entry], submodules: [xpio_submodule], kinds: [xpio_kind], enums: [xpio_enum],
                       records: [xpio_record]) -> UnsafeMutablePointer<xpio_module> {
        let module = UnsafeMutablePointer<xpio_module>.allocate(capacity: 1)
        module.initialize(to: xpio_module(functions: array(functions), nfunctions: Int32(functions.count),
                                          submodules: array(submodules), nsubmodules: Int32(submodules.count), kinds: array(kinds),
                                          nkinds: Int32(kinds.count), enums: array(enums), nenums: Int32(enums.count),
                                          records: array(records), nrecords: Int32(records.count)))
        return module
    }

    static func array<T>(_ list: [T]) -> UnsafePointer<T> {
        let storage = UnsafeMutablePointer<T>.allocate(capacity: max(list.count, 1))
        for (index, item) in list.enumerated() { (storage + index).initialize(to: item) }
        return UnsafePointer(storage)
    }

    static func strings(_ list: [StaticString?]) -> UnsafePointer<UnsafePointer<CChar>?> {
        array(list.map { $0?.cString })
    }

    static func strings(_ list: [StaticString]) -> UnsafePointer<UnsafePointer<CChar>?> {
        array(list.map { Optional($0.cString) })
    }
}

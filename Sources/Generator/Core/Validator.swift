/// The rules that span entries: names resolve, triads are complete, the C
/// glue's limits hold. Every error names the spec line.
enum Validator {
    static let maxArguments = 15  // a blocking call's continuation keeps the count in 4 bits (blocking.c)
    static let maxResults = 4     // XPIO_MAX_RESULTS

    static func validate(_ spec: Spec) throws {
        guard spec.kinds.filter({ $0.holdsTasks }).count == 1 else {
            throw SpecError(location: "Spec", message: "one object kind must be named `\(Spec.queueKind)`: the queue tasks are scheduled on")
        }
        for enumType in spec.enums {
            var seen: Set<String> = []
            for item in enumType.cases where !seen.insert(item.name).inserted {
                throw SpecError(location: "Spec", message: "enum `\(enumType.name)` has `\(item.name)` twice")
            }
        }
        var seen: Set<String> = []
        for entry in spec.entries {
            func fail(_ message: String) -> SpecError { SpecError(location: entry.location, message: message) }
            if let owner = entry.owner, spec.kind(named: owner) == nil { throw fail("unknown object kind `\(owner)`") }
            for function in entry.expanded where !seen.insert(function.qualifiedName).inserted {
                throw fail("`\(function.qualifiedName)` is declared twice")
            }
            var optionalSeen = false
            for param in entry.params {
                if param.optional { optionalSeen = true } else if optionalSeen { throw fail("a required parameter follows an optional one") }
                if case .valueOf(let name) = param.type {
                    guard let chooser = entry.params.first(where: { $0.name == name }), case .enumeration(let enumName) = chooser.type,
                          spec.enumType(named: enumName)!.cases.contains(where: { $0.valueType != nil }) else {
                        throw fail("`\(name).value` needs an earlier parameter `\(name)` of an enum whose cases have value types")
                    }
                }
            }
            for case .valueOf(let name) in entry.results.alternatives.joined() {
                guard entry.results.alternatives == [[.valueOf(name)]],
                      let chooser = entry.params.first(where: { $0.name == name }), case .enumeration(let enumName) = chooser.type,
                      spec.enumType(named: enumName)!.cases.contains(where: { $0.valueType != nil }) else {
                    throw fail("a `\(name).value` result is the only one, and needs a parameter `\(name)` of an enum whose cases have value types")
                }
            }
            let count = entry.params.count + (entry.owner == nil ? 0 : 1)
            if count > maxArguments { throw fail("more than \(maxArguments) parameters") }
            // the limit is the size of a Swift body's result array; an entry
            // made by C or Lua pushes its own results (xpio.run returns five)
            if !entry.binding.isC, entry.results.alternatives.contains(where: { $0.count > maxResults }) {
                throw fail("more than \(maxResults) results")
            }
            if entry.results.alternatives.count > 1,
               entry.results.alternatives.joined().contains(where: { $0.holdsObjects }) {
                throw fail("results with alternatives cannot hold objects (they are made before the call)")
            }
            for position in entry.results.positions {
                if case .union(let members) = position, members.contains(where: { if case .object = $0 { return true } else { return false } }) {
                    throw fail("an object result cannot be part of a union: it is made before the call")
                }
            }
            if case .swift(let text) = entry.binding {
                let names = Set(entry.params.map(\.name) + (entry.owner == nil ? [] : ["self"]))
                var rest = Substring(text)
                while let at = rest.firstIndex(of: "@") {
                    let name = rest[rest.index(after: at)...].prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                    guard names.contains(String(name)) else { throw fail("`@\(name)` names no parameter (`@name` is a parameter's argument number)") }
                    rest = rest[rest.index(after: at)...]
                }
            }
            if entry.binding == .native && entry.kind != .function && entry.kind != .method && entry.kind != .field {
                throw fail("only functions, methods and fields can be native")
            }
            if case .lua = entry.binding, entry.kind != .function || entry.owner != nil {
                throw fail("only module functions can be implemented in Lua")
            } else if case .lua(let module) = entry.binding {
                // In a module written in Lua every function is its own (`= lua`);
                // elsewhere `= lua MODULE` names the Lua module that implements it.
                let inLua = spec.submodules.contains { $0.name == entry.module && $0.inLua }
                if inLua != module.isEmpty {
                    throw fail(inLua ? "a function of a module written in Lua is `= lua`" : "`= lua MODULE` names the Lua module")
                }
            } else if spec.submodules.contains(where: { $0.name == entry.module && $0.inLua }) {
                throw fail("a function of a module written in Lua is `= lua`")
            }
            switch entry.kind {
            case .blocking:
                guard let partner = spec.whenPartner(of: entry) else {
                    throw fail("blocking `\(entry.name)` names `\(entry.whenPartner!)`, which is not a when entry of `\(entry.owner ?? entry.module ?? "xpio")`")
                }
                // The partner's body runs on the blocking call's checked
                // arguments (Glue.c's wait_ functions): after its task it
                // takes the blocking function's first parameters, as they are.
                let waitsWith = partner.params.dropFirst()
                guard waitsWith.count <= entry.params.count,
                      zip(waitsWith, entry.params).allSatisfy({ $0.name == $1.name && $0.type == $1.type && $0.optional == $1.optional && $0.defaultValue == $1.defaultValue }) else {
                    throw fail("`\(partner.name)` takes, after its task, the first parameters of `\(entry.name)` as they are")
                }
                if let whole = entry.whole {
                    guard entry.params.contains(where: { $0.name == whole && !$0.optional }) else {
                        throw fail("`whole \(whole)` names no required parameter")
                    }
                    guard entry.results.positions.first == .integer, !entry.results.raw else {
                        throw fail("a `whole` entry returns the bytes written: `-> integer`")
                    }
                }
            case .when:
                guard entry.name.hasPrefix("when_") else { throw fail("a when entry's name starts with when_") }
                guard entry.readiness == "read" || entry.readiness == "write" else { throw fail("readiness is [read] or [write]") }
                guard entry.params.first?.type == .task else { throw fail("a when entry takes the task first: (task: task, ...)") }
                guard entry.results.positions == [.trueValue], !entry.results.raw else { throw fail("a when entry returns `true`") }
            default: break
            }
        }
    }
}

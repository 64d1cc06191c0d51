import Foundation

/// Reads `Spec/*.spec` (format: `Spec/README.md`) into a `Spec`.
/// Every error names the file and line it comes from.
struct SpecError: Error, CustomStringConvertible {
    var location: String
    var message: String
    var description: String { "\(location): error: \(message)" }
}

enum SpecParser {
    static let scalarTypes: Set<String> = ["string", "integer", "number", "boolean", "table", "task", "any"]

    /// Parses every `.spec` file of `directory`, in name order (deterministic).
    static func parse(directory: String) throws -> Spec {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".spec") }.sorted()
        var spec = Spec()
        for name in names {
            let path = directory + "/" + name
            let text = try String(contentsOfFile: path, encoding: .utf8)
            try parse(text: text, file: "Spec/" + name, into: &spec)
        }
        try validate(spec)
        return spec
    }

    static func parse(text: String, file: String, into spec: inout Spec) throws {
        let lines = text.components(separatedBy: "\n")
        var index = 0
        while index < lines.count {
            let line = lines[index]
            let location = "\(file):\(index + 1)"
            index += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.first == " " { throw SpecError(location: location, message: "indented text outside an entry") }
            // The doc text: the indented block below the header.
            var docLines: [String] = []
            while index < lines.count, lines[index].isEmpty || lines[index].hasPrefix("    ") {
                docLines.append(lines[index].isEmpty ? "" : String(lines[index].dropFirst(4)))
                index += 1
            }
            while docLines.last == "" { docLines.removeLast() }
            let doc = docLines.joined(separator: "\n")
            try parseHeader(trimmed, doc: doc, location: location, into: &spec)
        }
    }

    static func parseHeader(_ header: String, doc: String, location: String, into spec: inout Spec) throws {
        func fail(_ message: String) -> SpecError { SpecError(location: location, message: message) }
        let (keyword, rest) = split(header, at: " ")
        switch keyword {
        case "module":
            spec.moduleName = rest
            spec.moduleDoc = doc
        case "object":
            // object NAME METATABLE = EXAMPLE
            let (declaration, example) = split(rest, at: "=")
            let (name, metatable) = split(declaration, at: " ")
            guard !name.isEmpty, !metatable.isEmpty, !example.isEmpty else {
                throw fail("expected `object NAME METATABLE = EXAMPLE-EXPRESSION`")
            }
            spec.kinds.append(ObjectKind(name: name, metatable: metatable, example: example, doc: doc))
        case "field":
            let (name, type) = split(rest, at: ":")
            spec.entries.append(Entry(kind: .field, owner: nil, name: name, params: [], returns: .raw(type),
                                      partner: nil, doc: doc, location: location))
        case "function", "method", "blocking", "when":
            guard let kind = EntryKind(rawValue: keyword) else { throw fail("unknown keyword") }
            // NAME(PARAMS) -> RETURNS [PARTNER]
            guard let open = rest.firstIndex(of: "("), let close = rest.lastIndex(of: ")"),
                  let arrow = rest.range(of: "->") else {
                throw fail("expected `\(keyword) NAME(PARAMS) -> RETURNS`")
            }
            var fullName = String(rest[..<open])
            var owner: String?
            if let colon = fullName.firstIndex(of: ":") {
                owner = String(fullName[..<colon])
                fullName = String(fullName[fullName.index(after: colon)...])
            }
            if (kind == .function) != (owner == nil) {
                throw fail(kind == .function ? "a function has no owner" : "a \(keyword) needs an owner (KIND:NAME)")
            }
            let params = try parseParams(String(rest[rest.index(after: open)..<close]), fail: fail)
            var returnText = String(rest[arrow.upperBound...]).trimmingCharacters(in: .whitespaces)
            var partner: String?
            var pending = false
            if returnText.hasSuffix(" pending") {
                pending = true
                returnText = String(returnText.dropLast(" pending".count)).trimmingCharacters(in: .whitespaces)
            }
            if let bracket = returnText.firstIndex(of: "["), returnText.hasSuffix("]") {
                partner = String(returnText[returnText.index(after: bracket)..<returnText.index(before: returnText.endIndex)])
                returnText = String(returnText[..<bracket]).trimmingCharacters(in: .whitespaces)
            }
            if pending && kind == .when { throw fail("a when entry cannot be pending: its readiness is generated") }
            if (kind == .blocking || kind == .when) != (partner != nil) {
                throw fail(kind == .blocking ? "a blocking entry names its when_ partner: [when_NAME]"
                           : kind == .when ? "a when entry names its readiness: [read] or [write]"
                           : "only blocking and when entries take [...]")
            }
            spec.entries.append(Entry(kind: kind, owner: owner, name: fullName, params: params,
                                      returns: parseReturns(returnText), partner: partner, doc: doc,
                                      location: location, pending: pending))
        default:
            throw fail("unknown keyword `\(keyword)`")
        }
    }

    static func parseParams(_ text: String, fail: (String) -> SpecError) throws -> [Param] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return [] }
        return try trimmed.components(separatedBy: ",").map { part in
            var (declaration, defaultValue) = split(part, at: "=")
            let (name, typeText) = split(declaration, at: ":")
            declaration = typeText
            guard !name.isEmpty, !declaration.isEmpty else { throw fail("expected `name: type` in `\(part)`") }
            let optional = declaration.hasSuffix("?")
            let type = optional ? String(declaration.dropLast()) : declaration
            return Param(name: name, type: type, optional: optional,
                         defaultValue: defaultValue.isEmpty ? nil : defaultValue)
        }
    }

    static func parseReturns(_ text: String) -> Returns {
        if text == "true" { return .ok }
        if text == "read" { return .read }
        if text == "status" { return .status }
        if text.hasPrefix("raw ") { return .raw(String(text.dropFirst(4))) }
        let parts = text.components(separatedBy: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return parts.count == 1 ? .value(parts[0]) : .values(parts)
    }

    /// The cross-entry rules: types exist, triads are complete, names unique.
    static func validate(_ spec: Spec) throws {
        let kinds = Set(spec.kinds.map(\.name))
        var seen: Set<String> = []
        for entry in spec.entries {
            func fail(_ message: String) -> SpecError { SpecError(location: entry.location, message: message) }
            if let owner = entry.owner, !kinds.contains(owner) { throw fail("unknown object kind `\(owner)`") }
            for function in entry.expanded where !seen.insert(function.qualifiedName).inserted {
                throw fail("`\(function.qualifiedName)` is declared twice")
            }
            for param in entry.params where !scalarTypes.contains(param.type) && !kinds.contains(param.type) {
                throw fail("unknown type `\(param.type)` of parameter `\(param.name)`")
            }
            if param(entry.params, afterOptionalIsRequired: true) {
                throw fail("a required parameter follows an optional one")
            }
            switch entry.returns {
            case .value(let type) where !scalarTypes.contains(type) && !kinds.contains(type):
                throw fail("unknown return type `\(type)`")
            case .values(let types) where types.contains { !kinds.contains($0) }:
                throw fail("several return values must all be objects")
            default: break
            }
            if entry.kind == .blocking {
                let partner = spec.entries.first { $0.kind == .when && $0.owner == entry.owner && $0.name == entry.partner }
                guard partner != nil else {
                    throw fail("blocking `\(entry.name)` names `\(entry.partner!)`, which is not a when entry of `\(entry.owner!)`")
                }
            }
            if entry.kind == .when {
                guard entry.name.hasPrefix("when_") else { throw fail("a when entry's name starts with when_") }
                guard entry.partner == "read" || entry.partner == "write" else { throw fail("readiness is [read] or [write]") }
                guard entry.params.count == 1, entry.params[0].type == "task" else { throw fail("a when entry takes (task: task)") }
            }
        }
    }

    private static func param(_ params: [Param], afterOptionalIsRequired: Bool) -> Bool {
        var optionalSeen = false
        for param in params {
            if param.optional { optionalSeen = true } else if optionalSeen { return true }
        }
        return false
    }

    /// Splits at the first `separator`, trimming both halves.
    static func split(_ text: String, at separator: Character) -> (String, String) {
        guard let index = text.firstIndex(of: separator) else {
            return (text.trimmingCharacters(in: .whitespaces), "")
        }
        return (text[..<index].trimmingCharacters(in: .whitespaces),
                text[text.index(after: index)...].trimmingCharacters(in: .whitespaces))
    }
}

import Foundation

/// An error in the spec, naming the file and line it comes from.
public struct SpecError: Error, CustomStringConvertible {
    var location: String
    var message: String
    public var description: String { "\(location): error: \(message)" }
}

/// Reads `Spec/*.spec` (the format is in `Spec/README.md`) into a `Spec`.
///
/// Two passes: the first collects the names every file declares (object
/// kinds, enums, records), so a type may be used in a file read before the
/// one that declares it; the second reads everything else.
public enum SpecParser {
    /// One header line with what belongs to it: `  | ...` lines (an enum's
    /// cases, a record's fields) and the indented doc text.
    struct Block {
        var header: String
        var items: [(text: String, location: String)]
        var doc: String
        var location: String
    }

    /// Parses every `.spec` file of `directory`, in name order (deterministic).
    public static func parse(directory: String) throws -> Spec {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasSuffix(".spec") }.sorted()
        var texts: [(text: String, file: String)] = []
        for name in names {
            texts.append((try String(contentsOfFile: directory + "/" + name, encoding: .utf8), "Spec/" + name))
        }
        return try parse(files: texts)
    }

    public static func parse(files: [(text: String, file: String)]) throws -> Spec {
        let blocks = try files.flatMap { try split($0.text, file: $0.file) }
        var spec = Spec()
        var names = TypeNames()
        for block in blocks {
            let (keyword, rest) = cut(block.header, at: " ")
            let name = cut(cut(rest, at: " ").0, at: ":").0
            switch keyword {
            case "object": names.kinds.insert(name)
            case "enum": names.enums.insert(name)
            case "record": names.records.insert(name)
            default: break
            }
        }
        // `module NAME` rules the rest of its file: the first one (module.spec
        // comes first) names the main module; another makes the file's
        // functions a submodule's.
        var mainDeclared = false
        var file = ""
        var module: String?
        for block in blocks {
            let blockFile = String(block.location.split(separator: ":")[0])
            if blockFile != file {
                file = blockFile
                module = nil
            }
            let (keyword, rest) = cut(block.header, at: " ")
            if keyword == "module" {
                if !mainDeclared || rest == spec.moduleName {
                    mainDeclared = true
                    spec.moduleName = rest
                    spec.moduleDoc = block.doc
                    module = nil
                } else {
                    let (name, implementation) = cut(rest, at: "=")
                    guard implementation.isEmpty || implementation == "lua" else {
                        throw SpecError(location: block.location, message: "expected `module NAME` or `module NAME = lua`")
                    }
                    spec.submodules.append(Submodule(name: name, doc: block.doc, inLua: implementation == "lua"))
                    module = name
                }
                continue
            }
            let before = spec.entries.count
            try read(block, names: names, into: &spec)
            if let module, spec.entries.count > before, spec.entries[before].owner == nil {
                if spec.entries[before].kind == .field { throw SpecError(location: block.location, message: "a submodule has no fields") }
                spec.entries[before].module = module
            }
        }
        try Validator.validate(spec)
        return spec
    }

    static func split(_ text: String, file: String) throws -> [Block] {
        let lines = text.components(separatedBy: "\n")
        var blocks: [Block] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            let location = "\(file):\(index + 1)"
            index += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.first == " " { throw SpecError(location: location, message: "indented text outside an entry") }
            var items: [(String, String)] = []
            while index < lines.count, lines[index].hasPrefix("  |") {
                items.append((String(lines[index].dropFirst(3)).trimmingCharacters(in: .whitespaces), "\(file):\(index + 1)"))
                index += 1
            }
            var docLines: [String] = []
            while index < lines.count, lines[index].isEmpty || lines[index].hasPrefix("    ") {
                docLines.append(lines[index].isEmpty ? "" : String(lines[index].dropFirst(4)))
                index += 1
            }
            while docLines.last == "" { docLines.removeLast() }
            blocks.append(Block(header: trimmed, items: items, doc: docLines.joined(separator: "\n"), location: location))
        }
        return blocks
    }

    static func read(_ block: Block, names: TypeNames, into spec: inout Spec) throws {
        let location = block.location
        func fail(_ message: String) -> SpecError { SpecError(location: location, message: message) }
        let (keyword, rest) = cut(block.header, at: " ")
        if keyword != "enum" && keyword != "record" && !block.items.isEmpty {
            throw SpecError(location: block.items[0].location, message: "`|` lines belong to an enum or a record")
        }
        switch keyword {
        case "module":
            spec.moduleName = rest
            spec.moduleDoc = block.doc
        case "object":
            // object NAME METATABLE: SwiftType = EXAMPLE
            let (declaration, example) = cut(rest, at: "=")
            let (name, typed) = cut(declaration, at: " ")
            let (metatable, swiftType) = cut(typed, at: ":")
            guard !name.isEmpty, !metatable.isEmpty, !swiftType.isEmpty, !example.isEmpty else {
                throw fail("expected `object NAME METATABLE: SwiftType = EXAMPLE-EXPRESSION`")
            }
            spec.kinds.append(ObjectKind(name: name, metatable: metatable, swiftType: swiftType, example: example, doc: block.doc))
        case "enum":
            spec.enums.append(try readEnum(block, rest, names: names))
        case "record":
            var record = RecordType(name: rest, fields: [], doc: block.doc)
            for (text, itemLocation) in block.items {
                let (declaration, doc) = cutDoc(text)
                let (name, typeText) = cut(declaration, at: ":")
                guard !name.isEmpty, !typeText.isEmpty else {
                    throw SpecError(location: itemLocation, message: "expected `| NAME: TYPE -- doc`")
                }
                let (type, optional) = try TypeParser.parse(typeText, names: names, location: itemLocation)
                record.fields.append(.init(name: name, type: optional ? type : type, doc: doc))
                if !optional { throw SpecError(location: itemLocation, message: "record fields are optional: write `\(typeText)?`") }
            }
            spec.records.append(record)
        case "field":
            // field NAME: TYPE = native
            let (declaration, binding) = cut(rest, at: "=")
            let (name, typeText) = cut(declaration, at: ":")
            guard binding == "native" else { throw fail("a field is made by C: `field NAME: TYPE = native`") }
            let (type, _) = try TypeParser.parse(typeText, names: names, location: location)
            spec.entries.append(Entry(kind: .field, owner: nil, name: name, params: [], results: Results(positions: [type], raw: true),
                                      whenPartner: nil, binding: .native, doc: block.doc, location: location))
        case "function", "method", "blocking", "when":
            spec.entries.append(try readEntry(EntryKind(rawValue: keyword)!, rest, doc: block.doc, names: names, location: location))
        default:
            throw fail("unknown keyword `\(keyword)`")
        }
    }

    /// enum NAME: SwiftType [prefix P] [else "message"], with `| CASE [swiftName][: type] -- doc` lines.
    static func readEnum(_ block: Block, _ rest: String, names: TypeNames) throws -> EnumType {
        func fail(_ message: String) -> SpecError { SpecError(location: block.location, message: message) }
        var text = rest
        var unknown: String?
        if let range = text.range(of: " else ") {
            let message = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard message.hasPrefix("\""), message.hasSuffix("\""), message.count >= 2 else { throw fail("`else` takes a quoted message") }
            unknown = String(message.dropFirst().dropLast())
            text = String(text[..<range.lowerBound])
        }
        var prefix: String?
        if let range = text.range(of: " prefix ") {
            prefix = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
            text = String(text[..<range.lowerBound])
        }
        let (name, swiftType) = cut(text, at: ":")
        guard !name.isEmpty, !swiftType.isEmpty else { throw fail("expected `enum NAME: SwiftType [prefix P] [else \"message\"]`") }
        var enumType = EnumType(name: name, swiftType: swiftType, prefix: prefix, unknown: unknown, cases: [], doc: block.doc)
        for (line, location) in block.items {
            let (declarations, doc) = cutDoc(line)
            // Several cases on one line: `| HUP | INT` (a union type has no spaces: `size|false`).
            for declaration in declarations.components(separatedBy: " | ").map({ $0.trimmingCharacters(in: .whitespaces) }) {
                let (names2, typeText) = cut(declaration, at: ":")
                let parts = names2.split(separator: " ").map(String.init)
                guard parts.count == 1 || parts.count == 2 else {
                    throw SpecError(location: location, message: "expected `| NAME [swiftName][: type] -- doc`")
                }
                let valueType = typeText.isEmpty ? nil : try TypeParser.parse(typeText, names: names, location: location).type
                enumType.cases.append(.init(name: parts[0], swiftName: parts.count == 2 ? parts[1] : parts[0], valueType: valueType, doc: doc))
            }
        }
        return enumType
    }

    /// [OWNER:]NAME(PARAMS) -> RESULTS [PARTNER] [= BINDING]
    static func readEntry(_ kind: EntryKind, _ rest: String, doc: String, names: TypeNames, location: String) throws -> Entry {
        func fail(_ message: String) -> SpecError { SpecError(location: location, message: message) }
        guard let open = rest.firstIndex(of: "("), let arrow = rest.range(of: "->"),
              let close = rest[..<arrow.lowerBound].lastIndex(of: ")") else {
            throw fail("expected `\(kind.rawValue) NAME(PARAMS) -> RESULTS`")
        }
        var fullName = String(rest[..<open])
        var owner: String?
        if let colon = fullName.firstIndex(of: ":") {
            owner = String(fullName[..<colon])
            fullName = String(fullName[fullName.index(after: colon)...])
        }
        // blocking and when entries may belong to an object kind or to the module.
        if kind == .function && owner != nil { throw fail("a function has no owner (a method does)") }
        if kind == .method && owner == nil { throw fail("a method needs an owner (KIND:NAME)") }
        let params = try readParams(String(rest[rest.index(after: open)..<close]), names: names, location: location)
        var resultText = String(rest[arrow.upperBound...]).trimmingCharacters(in: .whitespaces)
        var binding: Binding?
        if let range = resultText.range(of: " = ") ?? (resultText.hasPrefix("= ") ? resultText.range(of: "= ") : nil) {
            let expression = resultText[range.upperBound...].trimmingCharacters(in: .whitespaces)
            if expression == "lua" || expression.hasPrefix("lua ") {
                binding = .lua(expression.dropFirst(3).trimmingCharacters(in: .whitespaces))
            } else {
                binding = expression == "native" ? .native : expression == "pending" ? .pending : .swift(expression)
            }
            resultText = String(resultText[..<range.lowerBound]).trimmingCharacters(in: .whitespaces)
        }
        // `[...]` after a space (`T[]`, an array type, is not one): a
        // blocking entry's when_ partner, or a when entry's readiness.
        var bracket: String?
        if resultText.hasSuffix("]"), let open = resultText.lastIndex(of: "["),
           resultText.index(after: open) < resultText.index(before: resultText.endIndex),
           open > resultText.startIndex, resultText[resultText.index(before: open)] == " " {
            bracket = String(resultText[resultText.index(after: open)..<resultText.index(before: resultText.endIndex)])
            resultText = String(resultText[..<open]).trimmingCharacters(in: .whitespaces)
        }
        // `[when_write, whole data]`: the blocking form writes all of `data`.
        var whole: String?
        if let text = bracket, let comma = text.firstIndex(of: ",") {
            bracket = text[..<comma].trimmingCharacters(in: .whitespaces)
            let option = text[text.index(after: comma)...].split(separator: " ").map(String.init)
            guard kind == .blocking, option.count == 2, option[0] == "whole" else {
                throw fail("after the partner, a blocking entry may say `whole PARAM`: [when_write, whole data]")
            }
            whole = option[1]
        }
        if (kind == .blocking || kind == .when) != (bracket != nil) {
            throw fail(kind == .blocking ? "a blocking entry names its when_ partner: [when_NAME]"
                       : kind == .when ? "a when entry names its readiness: [read] or [write]"
                       : "only blocking and when entries take [...]")
        }
        let results = try readResults(resultText, names: names, location: location)
        guard let binding else { throw fail("an entry names what implements it: `= try Swift.expression(...)`, `= native`, `= lua MODULE` or `= pending`") }
        // One bracket, two properties by kind: a blocking entry's when_ partner, a when entry's readiness.
        return Entry(kind: kind, owner: owner, name: fullName, params: params, results: results,
                     whenPartner: kind == .blocking ? bracket : nil, readiness: kind == .when ? bracket : nil,
                     whole: whole, binding: binding, doc: doc, location: location)
    }

    static func readParams(_ text: String, names: TypeNames, location: String) throws -> [Param] {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return [] }
        return try TypeParser.splitTopLevel(trimmed, at: ",").map { part in
            let (declaration, defaultValue) = cut(part, at: "=")
            let (name, typeText) = cut(declaration, at: ":")
            guard !name.isEmpty, !typeText.isEmpty else {
                throw SpecError(location: location, message: "expected `name: type` in `\(part)`")
            }
            let (type, optional) = try TypeParser.parse(typeText, names: names, location: location)
            return Param(name: name, type: type, optional: optional, defaultValue: defaultValue.isEmpty ? nil : defaultValue)
        }
    }

    /// `raw`? then types by position, separated by commas; alternatives
    /// separated by ` or `.
    static func readResults(_ text: String, names: TypeNames, location: String) throws -> Results {
        var body = text
        var raw = false
        if body == "raw" || body.hasPrefix("raw ") {
            raw = true
            body = String(body.dropFirst(3)).trimmingCharacters(in: .whitespaces)
        }
        if body.isEmpty { return Results(positions: [], raw: raw) }
        let alternatives = try body.components(separatedBy: " or ").map { alternative in
            try TypeParser.splitTopLevel(alternative, at: ",").map { part -> LuaType in
                let (type, optional) = try TypeParser.parse(part, names: names, location: location)
                if optional { throw SpecError(location: location, message: "a result is not optional; write `T|nil`") }
                return type
            }
        }
        return Results(alternatives: alternatives, raw: raw)
    }

    /// Splits at the first `separator`, trimming both halves.
    static func cut(_ text: String, at separator: Character) -> (String, String) {
        guard let index = text.firstIndex(of: separator) else {
            return (text.trimmingCharacters(in: .whitespaces), "")
        }
        return (text[..<index].trimmingCharacters(in: .whitespaces),
                text[text.index(after: index)...].trimmingCharacters(in: .whitespaces))
    }

    /// `text -- doc`.
    static func cutDoc(_ text: String) -> (String, String) {
        guard let range = text.range(of: " -- ") else { return (text.trimmingCharacters(in: .whitespaces), "") }
        return (text[..<range.lowerBound].trimmingCharacters(in: .whitespaces),
                text[range.upperBound...].trimmingCharacters(in: .whitespaces))
    }
}

/// The names of the types the spec declares, for parsing type expressions.
struct TypeNames {
    var kinds: Set<String> = []
    var enums: Set<String> = []
    var records: Set<String> = []
}

/// Parses type expressions: `string`, `integer|signal?`, `cstring[]`,
/// `table<name, cstring>`, `option.value`.
enum TypeParser {
    static let builtIn: [String: LuaType] = [
        "string": .string, "cstring": .cstring, "name": .name, "integer": .integer, "size": .size,
        "number": .number, "timeout": .timeout, "boolean": .boolean, "false": .falseValue, "true": .trueValue,
        "nil": .nilValue, "table": .table, "task": .task, "any": .any, "address": .address,
    ]

    /// The type and whether a `?` made it optional.
    static func parse(_ text: String, names: TypeNames, location: String) throws -> (type: LuaType, optional: Bool) {
        var body = text.trimmingCharacters(in: .whitespaces)
        let optional = body.hasSuffix("?")
        if optional { body = String(body.dropLast()) }
        return (try union(body, names: names, location: location), optional)
    }

    static func union(_ text: String, names: TypeNames, location: String) throws -> LuaType {
        let alternatives = splitTopLevel(text, at: "|")
        if alternatives.count == 1 { return try atom(alternatives[0], names: names, location: location) }
        return .union(try alternatives.map { try atom($0, names: names, location: location) })
    }

    static func atom(_ text: String, names: TypeNames, location: String) throws -> LuaType {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.hasSuffix("[]") { return .array(try atom(String(text.dropLast(2)), names: names, location: location)) }
        if text.hasPrefix("("), text.hasSuffix(")") { return try union(String(text.dropFirst().dropLast()), names: names, location: location) }
        if text.hasPrefix("table<"), text.hasSuffix(">") {
            let inner = splitTopLevel(String(text.dropFirst(6).dropLast()), at: ",")
            guard inner.count == 2 else { throw SpecError(location: location, message: "expected `table<KEY, VALUE>`") }
            return .map(try union(inner[0], names: names, location: location), try union(inner[1], names: names, location: location))
        }
        if text.hasSuffix(".value") { return .valueOf(String(text.dropLast(6))) }
        if let type = builtIn[text] { return type }
        if names.kinds.contains(text) { return .object(text) }
        if names.enums.contains(text) { return .enumeration(text) }
        if names.records.contains(text) { return .record(text) }
        throw SpecError(location: location, message: "unknown type `\(text)`")
    }

    /// Splits at `separator` outside `<...>` and `(...)`, trimming each part.
    static func splitTopLevel(_ text: String, at separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "<" || character == "(" { depth += 1 }
            if character == ">" || character == ")" { depth -= 1 }
            if character == separator && depth == 0 {
                parts.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current.trimmingCharacters(in: .whitespaces))
        return parts
    }
}

/// An indenting text writer: what every emitter writes through.
struct Printer {
    private(set) var text = ""
    private var depth = 0

    mutating func line(_ line: String) {
        text += line.isEmpty ? "\n" : String(repeating: "    ", count: depth) + line + "\n"
    }

    mutating func indent(_ body: (inout Printer) -> Void) {
        depth += 1
        body(&self)
        depth -= 1
    }
}

extension String {
    /// The text as a Swift or Lua string literal's contents.
    var escaped: String {
        var out = ""
        for character in self {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}

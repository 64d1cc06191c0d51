import Foundation

/// xpio-gen: derives everything the spec determines.
///
///     xpio-gen glue SPEC_DIR OUT.swift          (run by the XPIOGlue build plugin)
///     xpio-gen docs SPEC_DIR OUT.md             (make docs: docs/API.md)
///     xpio-gen types SPEC_DIR OUT.lua           (make docs: types/xpio.lua)
///     xpio-gen conformance SPEC_DIR OUT.lua     (make test: the API-conformance tests)
///     xpio-gen fuzz SPEC_DIR OUT.lua            (make test/fuzz: the fuzz cases)
let emitters: [String: (Spec) -> String] = [
    "glue": { GlueEmitter(spec: $0).emit() },
    "docs": { DocsEmitter(spec: $0).emit() },
    "types": { TypesEmitter(spec: $0).emit() },
    "conformance": { ConformanceEmitter(spec: $0).emit() },
    "fuzz": { FuzzCasesEmitter(spec: $0).emit() },
]

let arguments = CommandLine.arguments
guard arguments.count == 4, let emit = emitters[arguments[1]] else {
    FileHandle.standardError.write("usage: xpio-gen \(emitters.keys.sorted().joined(separator: "|")) SPEC_DIR OUTPUT\n".data(using: .utf8)!)
    exit(2)
}
do {
    let spec = try SpecParser.parse(directory: arguments[2])
    let text = emit(spec)
    try text.write(toFile: arguments[3], atomically: true, encoding: .utf8)
} catch {
    FileHandle.standardError.write("\(error)\n".data(using: .utf8)!)
    exit(1)
}

import Foundation
import GeneratorCore

/// xpio-gen: derives everything the spec determines.
///
///     Generator glue SPEC_DIR OUT.swift          (run by the XPIOGlue build plugin: Swift half)
///     Generator glue-c SPEC_DIR OUT.c            (run by the XPIOGlue build plugin: C half)
///     Generator docs SPEC_DIR OUT.md             (make docs: docs/API.md)
///     Generator types SPEC_DIR OUT.lua           (make docs: types/xpio.lua)
///     Generator conformance SPEC_DIR OUT.lua     (make test: the API-conformance tests)
///     Generator fuzz SPEC_DIR OUT.lua            (make test/fuzz: the fuzz cases)
let arguments = CommandLine.arguments
guard arguments.count == 4, Generator.modes.contains(arguments[1]) else {
    FileHandle.standardError.write("usage: Generator \(Generator.modes.joined(separator: "|")) SPEC_DIR OUTPUT\n".data(using: .utf8)!)
    exit(2)
}
do {
    let spec = try SpecParser.parse(directory: arguments[2])
    try Generator.emit(arguments[1], spec: spec)!.write(toFile: arguments[3], atomically: true, encoding: .utf8)
} catch {
    FileHandle.standardError.write("\(error)\n".data(using: .utf8)!)
    exit(1)
}

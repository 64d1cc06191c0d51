import Foundation
import PackagePlugin

/// Runs the generator over `Spec/` before CLua and XPIO compile, so the Lua
/// glue always matches the spec: Glue.c (each entry's C function) for CLua,
/// Glue.swift (each entry's Swift body) for XPIO. Spec lives outside the
/// targets, so every spec file is listed as an input: editing one rebuilds
/// the glue.
@main
struct XPIOGlue: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let specDirectory = context.package.directoryURL.appending(path: "Spec")
        let specFiles = try FileManager.default.contentsOfDirectory(atPath: specDirectory.path)
            .filter { $0.hasSuffix(".spec") }.sorted()
            .map { specDirectory.appending(path: $0) }
        let generator = try context.tool(named: "Generator").url
        // The C target gets the C half (Glue.c), the Swift one the Swift half.
        let isC = target.name == "CLua"
        let output = context.pluginWorkDirectoryURL.appending(path: isC ? "Glue.c" : "Glue.swift")
        return [
            .buildCommand(
                displayName: "Generating the Lua glue (\(isC ? "C" : "Swift")) from Spec/",
                executable: generator,
                arguments: [isC ? "glue-c" : "glue", specDirectory.path, output.path],
                inputFiles: specFiles + [generator],
                outputFiles: [output]
            )
        ]
    }
}

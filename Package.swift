// swift-tools-version:6.3;(experimentalCGen)
// XPIO: Lua 5.4 bindings for networking and IPC.
//
// Layers import downward only (docs/ARCHITECTURE.md):
//   Spec/ --(Generator, run by the XPIOGlue plugin)--> Glue.c in CLua, Glue.swift in XPIO
//   XPIO (the Lua module)  ->  Runtime (no Lua)  ->  CSystem (libc headers)
//   XPIO                   ->  CLua (the C glue: the only code that sees lua.h)
//
// The tools version's `experimentalCGen` lets a build-tool plugin add a
// .c file to a C target (Glue.c); without it SwiftPM ignores the file.
//
// Release builds compile Runtime and XPIO as Embedded Swift, so libxpio.so
// needs libc alone. `XPIO_EMBEDDED=0` (what `make EMBEDDED=0` sets) keeps
// them ordinary Swift, linked with the static standard library: the fallback.
import PackageDescription
import Foundation

let environment = ProcessInfo.processInfo.environment
let embedded = environment["XPIO_EMBEDDED"] != "0"
/// Where lua.h is: Debian's liblua5.4-dev by default; the Makefile passes
/// LuaRocks' LUA_INCDIR through.
let luaInclude = environment["XPIO_LUA_INCDIR"] ?? "/usr/include/lua5.4"
/// `XPIO_PORTABLE=1` (what `make portable` sets): the platform layer
/// (Sources/CSystem/platform.c) compiles its POSIX fallbacks instead of
/// Linux's facilities, so they can be tested on Linux (docs/PORTING.md).
let portable = environment["XPIO_PORTABLE"] == "1"

// Export luaopen_xpio alone: smaller, faster to load, nothing to clash with.
let exports = Context.packageDirectory + "/Sources/XPIO/exports.map"
let tlsExports = Context.packageDirectory + "/Sources/TLS/exports.map"
// Every function and datum in a section of its own, so that --gc-sections
// (linkerSettings) drops what nothing in the module reaches. Without them it
// could drop whole object files only: xpio.so kept the Runtime's public
// accessors, `modify` coroutines and initializers the glue never calls
// (about 870 functions), 340 KB stripped against 235 KB with them.
let sectionSwiftFlags: [SwiftSetting] = [.unsafeFlags(["-Xfrontend", "-function-sections"], .when(configuration: .release))]
let sectionCFlags: [CSetting] = [.unsafeFlags(["-ffunction-sections", "-fdata-sections"], .when(configuration: .release))]
var swiftSettings: [SwiftSetting] = sectionSwiftFlags
// nodelete: lua_close dlcloses C modules, but XPIO's threads (reaper,
// resolver) and its SIGCHLD handler may still run its code afterwards.
// lld (it comes with the toolchain) and packed relative relocations
// (DT_RELR, glibc 2.36): the module's tables of entries, kinds and
// metatables are ~830 pointers, each a 24-byte relocation before, 20 KB of
// the 343 KB module; packed they are 248 bytes.
var linkerSettings: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--version-script=" + exports, "-Xlinker", "--gc-sections",
                  "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"], .when(configuration: .release)),
    .unsafeFlags(["-Xlinker", "-z", "-Xlinker", "nodelete"]),
]
if embedded {
    swiftSettings += [
        .enableExperimentalFeature("Embedded", .when(configuration: .release)),
        // No dynamic exclusivity checks in release: a Lua state and its
        // objects are used from one thread at a time (the contract,
        // docs/ARCHITECTURE.md), and the checks cost about a tenth of the
        // per-call time in the glue.
        .unsafeFlags(["-wmo", "-Xfrontend", "-disable-stack-protector", "-enforce-exclusivity=unchecked"],
                     .when(configuration: .release)),
    ]
} else {
    linkerSettings.append(.unsafeFlags(["-static-stdlib"], .when(configuration: .release)))
}
// xpio.so's Swift optimized for size: a tenth smaller module, per-call
// times within the machine's noise (bench/micro). (tls.so grows with it.)
// Its references counted without atomics in the Embedded build: its Swift
// objects live on the Lua thread alone (Sources/CSystem/refcount.c says
// how, and how a runtime it does not know falls back to atomics).
let moduleSettings = swiftSettings + [.unsafeFlags(["-Osize"], .when(configuration: .release))]
    + (embedded ? [.unsafeFlags(["-Xfrontend", "-assume-single-threaded"], .when(configuration: .release))] : [])


let package = Package(
    name: "xpio",
    products: [
        .library(name: "xpio", type: .dynamic, targets: ["XPIO"]),
        // xpio/tls.so: the TLS engine over OpenSSL 3, a module of its own so
        // that xpio.so stays libc-only (Sources/CTLSABI says how they meet).
        .library(name: "xpio_tls", type: .dynamic, targets: ["TLS"]),
    ],
    targets: [
        .target(name: "CSystem", cSettings: sectionCFlags + (portable ? [.define("XPIO_PORTABLE")] : [])
                    + (embedded ? [.define("XPIO_NONATOMIC_REFCOUNT", .when(configuration: .release))] : [])),
        // CLua compiles the generated Glue.c, which includes its private glue.h.
        .target(name: "CLua", dependencies: ["CTLSABI"], cSettings: sectionCFlags + [.unsafeFlags(["-I" + luaInclude]), .headerSearchPath(".")],
                plugins: ["XPIOGlue"]),
        .target(name: "Runtime", dependencies: ["CSystem", "CTLSABI"], swiftSettings: moduleSettings),
        // XPIO sees the C glue's xpio_glue.h only, not lua.h: Swift cannot
        // call the Lua API, so no Lua error can unwind a Swift frame.
        .target(
            name: "XPIO",
            dependencies: ["Runtime", "CLua", "CSystem", "CTLSABI"],
            exclude: ["exports.map"],   // the linker's version script (linkerSettings), not a source
            swiftSettings: moduleSettings,
            linkerSettings: linkerSettings,
            plugins: ["XPIOGlue"]
        ),
        // The provider table xpio.so and tls.so exchange: plain C, no Lua, no OpenSSL.
        .target(name: "CTLSABI"),
        // OpenSSL 3's headers, to the non-deprecated 3.0 API only, and its macros as functions.
        .target(
            name: "COpenSSL",
            cSettings: [.define("OPENSSL_API_COMPAT", to: "30000"), .define("OPENSSL_NO_DEPRECATED")],
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        // luaopen_xpio_tls: hands the engine to xpio.so, which owns the Lua side.
        .target(name: "CTLSModule", dependencies: ["CTLSABI"], cSettings: sectionCFlags + [.unsafeFlags(["-I" + luaInclude])]),
        .target(
            name: "TLS",
            dependencies: ["CTLSABI", "COpenSSL", "CTLSModule"],
            exclude: ["exports.map"],
            swiftSettings: swiftSettings,
            linkerSettings: [
                .unsafeFlags(["-Xlinker", "--version-script=" + tlsExports, "-Xlinker", "--gc-sections"], .when(configuration: .release)),
                .unsafeFlags(["-Xlinker", "-z", "-Xlinker", "nodelete"]),
            ] + (embedded ? [] : [.unsafeFlags(["-static-stdlib"], .when(configuration: .release))])
        ),
        // The generator: its logic in a library (tested against reference
        // output), a thin executable the plugin runs.
        .target(name: "GeneratorCore", path: "Sources/Generator/Core"),
        .executableTarget(name: "Generator", dependencies: ["GeneratorCore"], path: "Sources/Generator/Tool"),
        .plugin(name: "XPIOGlue", capability: .buildTool(), dependencies: [.target(name: "Generator")]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime"]),
        .testTarget(name: "GeneratorTests", dependencies: ["GeneratorCore"], exclude: ["Reference"]),   // read at run time
    ]
)

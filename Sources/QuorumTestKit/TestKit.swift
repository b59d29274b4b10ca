import Foundation
import QuorumCrypto

/// Shared helpers for the test targets: where the published vectors live, JSON access, and the
/// paths of built executables.
public enum TestKit {
    /// The project root (the directory holding Package.swift).
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        // Sources/QuorumTestKit/TestKit.swift → root
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// `../shared/vectors` beside the project root, or `QUORUM_VECTORS` when set.
    public static let vectorsDirectory: URL = {
        if let override = ProcessInfo.processInfo.environment["QUORUM_VECTORS"] {
            return URL(fileURLWithPath: override)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/vectors")
    }()

    /// Loads a JSON vector file relative to the vectors directory.
    public static func vector(_ relativePath: String) throws -> JSON {
        let data = try Data(contentsOf: vectorsDirectory.appendingPathComponent(relativePath))
        return JSON(try JSONSerialization.jsonObject(with: data))
    }

    /// Lists files under a vectors sub-directory, recursively, sorted.
    public static func vectorFiles(under relativePath: String) -> [String] {
        let base = vectorsDirectory.appendingPathComponent(relativePath)
        guard let walker = FileManager.default.enumerator(atPath: base.path) else { return [] }
        return walker.compactMap { $0 as? String }.filter { $0.hasSuffix(".json") }.sorted()
            .map { relativePath + "/" + $0 }
    }

    /// A built product in the same build directory as the running tests.
    public static func executable(_ name: String) -> URL {
        let bundle = Bundle.main.bundleURL
        return bundle.deletingLastPathComponent().appendingPathComponent(name)
    }

    /// A fresh temporary directory, removed by the caller.
    public static func temporaryDirectory(_ prefix: String = "quorum-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Minimal read-only JSON navigation for test vectors.
public struct JSON: @unchecked Sendable {
    // @unchecked Sendable: wraps an immutable Foundation JSON tree that is never mutated.
    public let raw: Any
    public init(_ raw: Any) { self.raw = raw }

    public subscript(key: String) -> JSON { JSON((raw as? [String: Any])?[key] ?? NSNull()) }
    public subscript(index: Int) -> JSON { JSON((raw as? [Any])?[index] ?? NSNull()) }

    public var string: String? { raw as? String }
    public var int: Int? {
        if let i = raw as? Int { return i }
        if let s = raw as? String { return Int(s) }
        return nil
    }
    public var array: [JSON] { (raw as? [Any])?.map(JSON.init) ?? [] }
    public var object: [String: JSON] { ((raw as? [String: Any]) ?? [:]).mapValues(JSON.init) }
    public var bool: Bool? { raw as? Bool }
    /// Hex-decoded bytes of a string value.
    public var bytes: [UInt8] { string.flatMap(Hex.decode) ?? [] }
    public var isNull: Bool { raw is NSNull }
}

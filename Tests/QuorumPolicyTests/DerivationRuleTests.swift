import Foundation
import QuorumPolicy
import Testing

/// The semantic checks of `PolicyBundle.init`, one test per rule. The file format's tests check
/// that these paths become file and line numbers.
@Suite("Derivation and bundle rules")
struct DerivationRuleTests {
    private static let digest = [UInt8](repeating: 1, count: 32)
    private static let parentExpiry = Date(timeIntervalSince1970: 1_800_000_000)

    private static func root(_ id: String = "parent", expires: Date? = parentExpiry, filters: [Filter] = []) -> Latch {
        Latch(
            id: id, tokenDigest: digest, expires: expires, filters: filters,
            mounts: [
                Mount(path: "/openai", upstream: "https://api.openai.com", secret: "openai", filters: []),
                Mount(path: "/github", upstream: "https://api.github.com", secret: nil, filters: []),
            ])
    }

    private static func child(
        _ id: String = "child", parent: String = "parent", expires: Date? = parentExpiry, filters: [Filter] = [],
        mounts: [Mount]? = nil
    ) -> Latch {
        Latch(id: id, tokenDigest: digest, expires: expires, parent: parent, filters: filters, mounts: mounts)
    }

    /// The problems a bundle of these latches has, as `path: message` lines.
    private static func problems(
        _ latches: [Latch], secrets: [SecretSpec] = [.init(name: "openai", injection: .bearer)]
    )
        -> [BundleProblem]
    {
        do {
            _ = try PolicyBundle(
                version: 1, secrets: secrets, fieldAliases: [:], prices: [:], latches: latches, digest: "sha256:x")
            return []
        } catch {
            return error.problems
        }
    }

    private static let methodFilter = Filter(id: "methods", kind: .method(try! MethodSet(["GET"])))

    @Test("a well-formed parent and child resolve, and the child's pipeline extends the parent's")
    func valid() throws {
        let parent = Self.root(filters: [Self.methodFilter])
        let child = Self.child(
            filters: [Filter(id: "size", kind: .bodySize(maxBytes: 10))],
            mounts: [Mount(path: "/openai", upstream: nil, secret: nil, filters: [])])
        let bundle = try PolicyBundle(
            version: 1, secrets: [.init(name: "openai", injection: .bearer)], fieldAliases: [:], prices: [:],
            latches: [child, parent], digest: "sha256:x")
        let resolved = try #require(bundle.resolvedLatch("child"))
        #expect(resolved.chain == ["parent", "child"])
        #expect(resolved.mounts.map(\.path) == ["/openai"])
        #expect(resolved.mounts[0].pipeline.map(\.filter.id) == ["methods", "size"])
        #expect(resolved.mounts[0].upstream == "https://api.openai.com")
        #expect(bundle.descendants(of: "parent") == ["child", "parent"])
    }

    @Test("a child may not widen its mounts: a mount the parent lacks, another upstream, another secret")
    func widenMount() {
        let problems = Self.problems([
            Self.root(),
            Self.child(mounts: [
                Mount(path: "/anthropic", upstream: nil, secret: nil, filters: []),
                Mount(path: "/openai", upstream: "https://evil.example", secret: nil, filters: []),
                Mount(path: "/github", upstream: nil, secret: "openai", filters: []),
            ]),
        ])
        #expect(
            problems.map(\.path) == [
                "latches[1].mounts[0].path", "latches[1].mounts[1].upstream", "latches[1].mounts[2].secret",
            ])
        #expect(problems[0].message.contains("may only keep some of: /openai, /github"))
    }

    @Test("a child may not outlive its parent, nor drop the expiry")
    func outlive() {
        let later = Self.child(expires: Self.parentExpiry.addingTimeInterval(1))
        #expect(Self.problems([Self.root(), later]).map(\.path) == ["latches[1].expires"])
        let never = Self.child(expires: nil)
        let problems = Self.problems([Self.root(), never])
        #expect(problems.map(\.path) == ["latches[1].expires"])
        #expect(problems[0].message.contains("must expire no later"))
    }

    @Test("a child may not replace a parent's filter by reusing its id, at latch or mount level")
    func replaceFilter() {
        let loosened = Filter(id: "methods", kind: .method(try! MethodSet(["GET", "POST", "DELETE"])))
        let problems = Self.problems([
            Self.root(filters: [Self.methodFilter]),
            Self.child(
                filters: [loosened],
                mounts: [Mount(path: "/openai", upstream: nil, secret: nil, filters: [loosened])]),
        ])
        #expect(problems.map(\.path) == ["latches[1].filters[0].id", "latches[1].mounts[0].filters[0].id"])
        #expect(problems.allSatisfy { $0.message.contains("cannot replace its parent's filters") })
    }

    @Test("unknown parents, parent cycles and duplicate ids are refused")
    func structure() {
        #expect(Self.problems([Self.child(parent: "ghost")]).map(\.path) == ["latches[0].parent"])
        let cycle = Self.problems([Self.child("a", parent: "b"), Self.child("b", parent: "a")])
        #expect(cycle.contains { $0.message.contains("its own ancestor") })
        #expect(Self.problems([Self.root(), Self.root()]).map(\.path) == ["latches[1].id"])
        #expect(Self.problems([Self.root("Bad_ID")]).map(\.path) == ["latches[0].id"])
    }

    @Test("root mounts need an upstream, a known secret, a clean prefix, and must not touch /self")
    func rootMounts() {
        let mounts = [
            Mount(path: "/a", upstream: nil, secret: nil, filters: []),
            Mount(path: "/b", upstream: "https://b.example", secret: "nope", filters: []),
            Mount(path: "/c/", upstream: "https://c.example", secret: nil, filters: []),
            Mount(path: "/self", upstream: "https://d.example", secret: nil, filters: []),
            Mount(path: "/e/../f", upstream: "https://e.example", secret: nil, filters: []),
        ]
        let latch = Latch(id: "root", tokenDigest: Self.digest, mounts: mounts)
        let problems = Self.problems([latch])
        #expect(
            problems.map(\.path) == [
                "latches[0].mounts[0].upstream", "latches[0].mounts[1].secret", "latches[0].mounts[2].path",
                "latches[0].mounts[3].path", "latches[0].mounts[4].path",
            ])
        #expect(
            Self.problems([Latch(id: "root", tokenDigest: Self.digest, mounts: nil)]).map(\.path) == [
                "latches[0].mounts"
            ])
    }

    @Test("filters naming a field alias need the alias declared")
    func aliases() {
        let limit = RateLimitFilter(
            requests: nil, tokens: 10, windowMilliseconds: 1000, key: .latch, tokenField: "token_cap")
        let problems = Self.problems([Self.root(filters: [Filter(id: "rate_limit#1", kind: .rateLimit(limit))])])
        #expect(problems.map(\.path) == ["latches[0].filters[0].rate_limit.token_field"])
    }
}

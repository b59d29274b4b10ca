import QuorumCrypto
import QuorumProtocol
import Testing

@Suite struct LogEntries {
    static func receiptEntry() throws -> ReceiptEntry {
        let request = try DecisionMessages.decide()
        let verdicts = [
            SignedVerdict(
                nodeID: 3, verdict: Array(#"{"decision":"allow"}"#.utf8), signature: [UInt8](repeating: 3, count: 64)),
            SignedVerdict(
                nodeID: 1, verdict: Array(#"{"decision":"allow"}"#.utf8), signature: [UInt8](repeating: 1, count: 64)),
        ]
        return ReceiptEntry(
            receipt: "eyJhbGciOiJFZERTQSJ9.e30.c2ln", request: LoggedRequest(request), verdicts: verdicts)
    }

    static func everyKind() throws -> [LogEntry] {
        [
            .receipt(try receiptEntry()),
            .bundle(
                BundleEntry(
                    version: 7, digest: "sha256:" + String(repeating: "ab", count: 32),
                    operatorKey: [UInt8](repeating: 9, count: 32), signedBundle: Array("signed".utf8))),
            .ceremony(
                CeremonyEntry(
                    ceremonyID: [1, 2, 3], kind: "keygen", threshold: 3, participants: [4, 2, 1, 3],
                    transcriptDigest: [UInt8](repeating: 5, count: 32),
                    signingGroupKey: [UInt8](repeating: 6, count: 32),
                    sealingGroupKey: [UInt8](repeating: 7, count: 32))),
            .membership(
                MembershipEntry(change: .joined, nodeID: 5, identityKey: [UInt8](repeating: 8, count: 32), time: 42)),
        ]
    }

    @Test func everyKindRoundTripsByteForByte() throws {
        for entry in try Self.everyKind() {
            let leaf = entry.encoded()
            #expect(leaf.count <= LogEntry.maximumLength)
            #expect(leaf[0] == LogEntry.version)
            let decoded = try LogEntry(decoding: leaf)
            #expect(decoded == entry)
            #expect(decoded.encoded() == leaf)
        }
    }

    @Test func theTokenAndBodyAreNeverLogged() throws {
        let request = try DecisionMessages.decide(body: Array(#"{"secret":"body"}"#.utf8), bodyLength: 17)
        let leaf = LogEntry.receipt(ReceiptEntry(receipt: "a.b.c", request: LoggedRequest(request), verdicts: []))
            .encoded()
        let text = String(decoding: leaf, as: UTF8.self)
        #expect(!text.contains("lat_a_b"))
        #expect(!text.contains("secret"))
        let logged = LoggedRequest(request)
        #expect(logged.tokenSHA256 == sha256Digest(Array("lat_a_b".utf8)))
        #expect(logged.bodySHA256 == request.bodySHA256)
        #expect(logged.bodyLength == 17)
    }

    @Test func verdictsAreKeptInNodeOrderSoEveryBuilderWritesTheSameLeaf() throws {
        let entry = try Self.receiptEntry()
        #expect(entry.verdicts.map(\.nodeID) == [1, 3])
        #expect(entry.requestID == "call-1")
    }

    @Test func malformedLeavesAreRefusedNamingTheField() throws {
        let leaf = LogEntry.receipt(try Self.receiptEntry()).encoded()
        let cases: [(String, [UInt8], String)] = [
            ("empty", [], "LogEntry.version"),
            ("unknown version", [2] + leaf.dropFirst(), "LogEntry.version"),
            ("unknown kind", [1, 9] + leaf.dropFirst(2), "LogEntry.kind"),
            ("truncated", Array(leaf.dropLast(5)), "SignedVerdict"),
            ("trailing byte", leaf + [0], ""),
            ("too long", [UInt8](repeating: 1, count: LogEntry.maximumLength + 1), "LogEntry"),
        ]
        for (name, bytes, field) in cases {
            do {
                _ = try LogEntry(decoding: bytes)
                Issue.record("\(name): accepted")
            } catch {
                #expect(field.isEmpty ? error.code == .trailingBytes : error.field.contains(field), "\(name): \(error)")
            }
        }
    }

    @Test func aBundleTooLongForALeafIsBoundByItsDigestOnly() throws {
        let entry = BundleEntry(
            version: 1, digest: "sha256:00", operatorKey: [UInt8](repeating: 1, count: 32),
            signedBundle: [UInt8](repeating: 0x41, count: LogEntry.maximumLength))
        #expect(entry.signedBundle.isEmpty)
        #expect(try LogEntry(decoding: LogEntry.bundle(entry).encoded()) == .bundle(entry))
        let fits = BundleEntry(
            version: 1, digest: "sha256:00", operatorKey: [UInt8](repeating: 1, count: 32),
            signedBundle: [UInt8](repeating: 0x41, count: 60_000))
        #expect(fits.signedBundle.count == 60_000)
        #expect(LogEntry.bundle(fits).encoded().count <= LogEntry.maximumLength)
    }
}

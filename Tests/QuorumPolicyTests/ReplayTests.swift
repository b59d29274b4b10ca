import Foundation
import QuorumPolicy
import Testing

/// A logged decision replays to the same verdict: the state-dependent filters read what the
/// verdict recorded (`state_read`), and what the log lacks (the token, the body) is taken from
/// the logged trace, step by named step.
@Suite("replaying a logged verdict")
struct ReplayTests {
    typealias Fixture = VerdictDecodingTests

    /// Calls in order against one evolving state, so rate windows and budgets hold earlier hits.
    static func decided() throws -> [(DecisionRequest, Verdict)] {
        let engine = try Fixture.engine()
        var state = PolicyState()
        var out: [(DecisionRequest, Verdict)] = []
        let calls =
            (0..<5).map { Fixture.call("c\($0)") } + [
                Fixture.call("method", method: "GET"),
                Fixture.call("payload", body: #"{"model":"gpt-4o","max_tokens":99999}"#),
                Fixture.call("token", token: "lat_assistant_" + String(repeating: "A", count: 43)),
            ]
        for request in calls {
            let verdict = engine.evaluate(request, state: state, at: Fixture.businessHours)
            state.apply(verdict.stateChanges)
            out.append((request, verdict))
        }
        return out
    }

    @Test("with the token and the body, every verdict replays byte for byte from its recorded readings")
    func exact() throws {
        let engine = try Fixture.engine()
        let decided = try Self.decided()
        #expect(decided.contains { $0.1.decision == .deny && $0.1.reason?.hasPrefix("per-minute") == true })
        #expect(decided.contains { $0.1.decision == .allow })
        for (request, verdict) in decided {
            let replay = engine.replay(
                request, state: RecordedState(verdict.stateReads), at: Fixture.businessHours,
                substitutes: ReplaySubstitutes(authentication: nil, bodyUnavailable: false, logged: verdict.trace))
            let (got, want) = (
                String(decoding: replay.verdict.encoded(), as: UTF8.self),
                String(decoding: verdict.encoded(), as: UTF8.self)
            )
            let common = zip(got, want).prefix { $0 == $1 }.count
            #expect(
                got == want,
                "\(request.requestID): differs after \(want.prefix(common).suffix(120)) — replay: \(got.dropFirst(common).prefix(160)) — logged: \(want.dropFirst(common).prefix(160))"
            )
            #expect(replay.standIns.isEmpty)
        }
    }

    @Test("a verdict that read state records it, and the recording round-trips through the encoding")
    func readsRecorded() throws {
        let (_, allowed) = try #require(try Self.decided().last { $0.1.decision == .allow })
        #expect(allowed.stateReads.map(\.key).contains { $0.hasSuffix("per-minute@10.1.2.3") })
        #expect(allowed.stateReads.contains { if case .budget = $0 { true } else { false } })
        #expect(try Verdict(decoding: allowed.encoded()) == allowed)
    }

    @Test("without token and body, authentication and the body-reading filters are taken from the log, and named")
    func standIns() throws {
        let engine = try Fixture.engine()
        for (request, verdict) in try Self.decided() {
            let bare = DecisionRequest(
                requestID: request.requestID, method: request.method, target: request.target, headers: request.headers,
                body: [], bodyLength: request.bodyLength, clientAddress: request.clientAddress, token: "")
            let replay = engine.replay(
                bare, state: RecordedState(verdict.stateReads), at: Fixture.businessHours,
                substitutes: ReplaySubstitutes(
                    authentication: verdict.trace.first, bodyUnavailable: true, logged: verdict.trace))
            #expect(replay.verdict.decision == verdict.decision, "\(request.requestID)")
            #expect(replay.verdict.trace == verdict.trace, "\(request.requestID)")
            #expect(replay.standIns.first?.filter == "authentication")
            if verdict.trace.contains(where: { $0.filter == "token-cap" }) {
                #expect(Set(replay.standIns.map(\.filter)).isSuperset(of: ["token-cap"]), "\(replay.standIns)")
            }
            #expect(!replay.standIns.contains { $0.filter == "method" || $0.filter == "body_size" })
        }
    }

    @Test(
        "readings that do not justify the decision are caught: with fewer hits recorded, the deny replays as an allow")
    func misreportedState() throws {
        let engine = try Fixture.engine()
        let (request, denied) = try #require(try Self.decided().first { $0.1.reason?.hasPrefix("per-minute") == true })
        let understated = denied.stateReads.map { read -> StateRead in
            guard case .rateWindow(let key, let window, _, _, let expiry) = read else { return read }
            return .rateWindow(key: key, windowMilliseconds: window, requests: 0, tokens: 0, nextExpiry: expiry)
        }
        let replay = engine.replay(
            request, state: RecordedState(understated), at: Fixture.businessHours,
            substitutes: ReplaySubstitutes(authentication: nil, bodyUnavailable: false, logged: denied.trace))
        #expect(replay.verdict.decision != denied.decision)
    }
}

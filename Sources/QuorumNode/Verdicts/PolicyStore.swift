import Foundation
import QuorumPolicy

/// How the node keeps its policy in the ``NodeStore``'s `policy` family: the installed signed
/// bundle, each rate window and budget ledger under its state key, each open spend reservation,
/// and each verdict it reached, by request id. The encodings are plain JSON of QuorumPolicy's
/// `Codable` values, so `quorumctl policy eval --state` and a node agree on them.
enum PolicyStore {
    static let bundleKey = Array("bundle".utf8)
    static let ratePrefix = Array("rate/".utf8)
    static let budgetPrefix = Array("budget/".utf8)
    static let reservationPrefix = Array("reservation/".utf8)
    static let verdictPrefix = Array("verdict/".utf8)
    static let claimsPrefix = Array("claims/".utf8)
    static let credentialPrefix = Array("credential/".utf8)

    static func key(_ prefix: [UInt8], _ name: String) -> [UInt8] { prefix + Array(name.utf8) }

    /// The deletes that forget one request's verdict, its claims and any reservation left open:
    /// done when the signing ledger prunes the request's decision past the retention window, so a
    /// node's store does not grow with every call it ever decided. (A reservation left open that
    /// long has expired in its budget ledger already.)
    static func deletions(forRequest requestID: [UInt8]) -> [NodeStore.Change] {
        [verdictPrefix, claimsPrefix, reservationPrefix].map { .delete(.policy, $0 + requestID) }
    }

    /// The writes that persist `changes` as applied to `state`: the whole window or ledger of
    /// every state key they touched.
    static func persist(_ changes: [StateChange], of state: PolicyState) throws -> [NodeStore.Change] {
        var touched: [String: Bool] = [:]  // key → is a rate window
        for change in changes {
            if case .rateHit = change { touched[change.key] = true } else { touched[change.key] = false }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var writes: [NodeStore.Change] = []
        for (key, isRate) in touched.sorted(by: { $0.key < $1.key }) {
            if isRate {
                writes.append(
                    .put(.policy, Self.key(ratePrefix, key), Array(try encoder.encode(state.rateWindow(key)))))
            } else {
                writes.append(
                    .put(.policy, Self.key(budgetPrefix, key), Array(try encoder.encode(state.budgetLedger(key)))))
            }
        }
        return writes
    }

    /// The policy state the store holds.
    static func loadState(from store: NodeStore) throws -> PolicyState {
        var state = PolicyState()
        let decoder = JSONDecoder()
        try store.scan(.policy, prefix: ratePrefix) { key, value in
            let name = String(decoding: key.dropFirst(ratePrefix.count), as: UTF8.self)
            state.rateWindows[name] = try decoder.decode(RateWindow.self, from: Data(value))
            return true
        }
        try store.scan(.policy, prefix: budgetPrefix) { key, value in
            let name = String(decoding: key.dropFirst(budgetPrefix.count), as: UTF8.self)
            state.budgets[name] = try decoder.decode(BudgetLedger.self, from: Data(value))
            return true
        }
        return state
    }
}

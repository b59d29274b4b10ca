import QuorumCrypto
import QuorumProtocol

/// The secret FROST nonces one node has handed out commitments for, in its current boot epoch
/// (DESIGN.md §7). A plain value with no I/O and no clock: ``SigningService`` keeps one behind a
/// lock.
///
/// - Nonces come only from `FROST.commit` (``SigningNonces`` cannot be made any other way): random,
///   never derived, never written anywhere. The pool dies with the process, and the next process
///   has another epoch, so a commitment of an earlier boot can never find its nonce again.
/// - ``take(_:epoch:)`` removes a nonce before anything is computed with it. A nonce id is never
///   handed out twice (ids count up from 1 within the epoch), and a second take of the same id
///   fails.
/// - At most ``Configuration/capacity`` nonces are outstanding (handed out, not yet used). Admitting
///   more discards the oldest, so no client can grow the pool without bound by asking again and
///   again; what it costs other proxies is a refetch (`unknown-nonce`), never a reused nonce. One
///   request may ask for at most ``Configuration/maximumPerRequest``.
public struct NoncePool<C: Ciphersuite>: Sendable {
    /// The pool's bounds.
    public struct Configuration: Sendable, Hashable {
        /// The most outstanding nonces; admitting more discards the oldest.
        public var capacity: Int
        /// The most commitments one request may ask for.
        public var maximumPerRequest: Int
        /// How many used nonce ids the pool remembers, so that a second use is reported as reuse
        /// rather than as an unknown nonce. Either way it is refused.
        public var rememberedUses: Int

        /// Bounds with defaults: 1024 outstanding, 256 per request, 4096 remembered uses.
        public init(
            capacity: Int = 1024, maximumPerRequest: Int = SigningLimits.maximumCommitmentsPerRequest,
            rememberedUses: Int = 4096
        ) {
            precondition(capacity >= 1 && maximumPerRequest >= 1 && rememberedUses >= 0, "pool bounds must be positive")
            self.capacity = capacity
            self.maximumPerRequest = min(maximumPerRequest, SigningLimits.maximumCommitmentsPerRequest)
            self.rememberedUses = rememberedUses
        }
    }

    /// A nonce handed out: the id the pool keeps it under and its public commitments.
    public struct Issued: Sendable {
        /// The id within the epoch.
        public let nonceID: UInt64
        /// The public commitments (hiding and binding) to publish.
        public let commitments: SigningCommitments<C>
    }

    /// Why ``take(_:epoch:)`` found no nonce.
    public enum TakeFailure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The request names another epoch: commitments of an earlier boot.
        case staleEpoch(requested: UInt64, current: UInt64)
        /// The nonce was taken before: an attempt at nonce reuse.
        case alreadyUsed(nonceID: UInt64)
        /// The nonce was handed out but is no longer held: discarded from a full pool, or used so
        /// long ago that the pool no longer remembers it.
        case discarded(nonceID: UInt64)
        /// No nonce of that id was ever handed out in this epoch.
        case neverIssued(nonceID: UInt64)

        /// One line naming the epochs or the nonce id; never a secret.
        public var description: String {
            switch self {
            case .staleEpoch(let requested, let current):
                "commitments of an earlier boot: the request names epoch \(Self.hex(requested)), "
                    + "this node's epoch is \(Self.hex(current)); fetch fresh commitments"
            case .alreadyUsed(let id):
                "nonce \(id) was already used for a signature; a nonce signs once"
            case .discarded(let id):
                "nonce \(id) is no longer held (discarded from a full pool, or used long ago); fetch fresh commitments"
            case .neverIssued(let id):
                "nonce \(id) was never issued in this boot epoch"
            }
        }

        static func hex(_ value: UInt64) -> String {
            let digits = String(value, radix: 16)
            return String(repeating: "0", count: 16 - digits.count) + digits
        }
    }

    /// The epoch the pool belongs to.
    public let bootEpoch: UInt64
    /// The pool's bounds.
    public let configuration: Configuration

    private var outstanding: [UInt64: SigningNonces<C>] = [:]
    /// Outstanding ids in the order they were handed out (ascending); ids taken since stay until
    /// they reach the front or the queue is compacted.
    private var issueOrder = IDQueue()
    private var used = Set<UInt64>()
    private var usedOrder = IDQueue()
    private var nextNonceID: UInt64 = 1
    /// How many nonces were discarded unused because the pool was full.
    public private(set) var discardedCount = 0

    /// An empty pool for `bootEpoch`.
    public init(bootEpoch: UInt64, configuration: Configuration = Configuration()) {
        self.bootEpoch = bootEpoch
        self.configuration = configuration
    }

    /// How many nonces are outstanding.
    public var depth: Int { outstanding.count }

    /// Keeps `nonces` (fresh from `FROST.commit`) under new ids and returns what to publish,
    /// discarding the oldest outstanding nonces beyond ``Configuration/capacity``.
    public mutating func admit(_ nonces: [SigningNonces<C>]) -> [Issued] {
        var issued: [Issued] = []
        issued.reserveCapacity(nonces.count)
        for nonce in nonces {
            let id = nextNonceID
            nextNonceID += 1
            outstanding[id] = nonce
            issueOrder.append(id)
            issued.append(Issued(nonceID: id, commitments: nonce.commitments))
        }
        while outstanding.count > configuration.capacity, let oldest = issueOrder.popFirst() {
            if outstanding.removeValue(forKey: oldest) != nil { discardedCount += 1 }
        }
        compactQueues()
        return issued
    }

    /// Removes and returns the nonce `nonceID` of `epoch`: the caller computes with it once and
    /// drops it. Whatever happens next, the pool never hands it out again.
    public mutating func take(_ nonceID: UInt64, epoch: UInt64) -> Result<SigningNonces<C>, TakeFailure> {
        guard epoch == bootEpoch else { return .failure(.staleEpoch(requested: epoch, current: bootEpoch)) }
        guard let nonce = outstanding.removeValue(forKey: nonceID) else {
            if used.contains(nonceID) { return .failure(.alreadyUsed(nonceID: nonceID)) }
            if nonceID == 0 || nonceID >= nextNonceID { return .failure(.neverIssued(nonceID: nonceID)) }
            return .failure(.discarded(nonceID: nonceID))
        }
        if configuration.rememberedUses > 0 {
            used.insert(nonceID)
            usedOrder.append(nonceID)
            while used.count > configuration.rememberedUses, let oldest = usedOrder.popFirst() {
                used.remove(oldest)
            }
        }
        compactQueues()
        return .success(nonce)
    }

    /// Bounds the queues' memory: ids no longer outstanding (or remembered) leave them.
    private mutating func compactQueues() {
        let held = outstanding
        issueOrder.compact(keeping: { held[$0] != nil }, when: 2 * configuration.capacity)
        let remembered = used
        usedOrder.compact(keeping: { remembered.contains($0) }, when: 2 * configuration.rememberedUses + 16)
    }
}

/// A FIFO of ids over an array: appends at the end, pops from a moving head, and drops the popped
/// prefix (and ids the owner no longer holds) when it has grown past a bound.
struct IDQueue: Sendable {
    private var ids: [UInt64] = []
    private var head = 0

    var count: Int { ids.count - head }

    mutating func append(_ id: UInt64) { ids.append(id) }

    mutating func popFirst() -> UInt64? {
        guard head < ids.count else { return nil }
        defer { head += 1 }
        return ids[head]
    }

    /// Keeps only the ids `keeping` accepts, once the array holds more than `bound` entries.
    mutating func compact(keeping: (UInt64) -> Bool, when bound: Int) {
        guard ids.count > bound else { return }
        ids = ids[head...].filter(keeping)
        head = 0
    }
}

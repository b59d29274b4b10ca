/// The entries a node accepted and has not yet seen in a published checkpoint, by leaf hash, in
/// arrival order: a plain value (the durable copy is the log's `pending` family). Taking the oldest
/// entries for a batch walks the arrival order from its head, never the whole pool, and entries
/// that left are dropped from the order lazily.
struct PendingPool: Sendable {
    /// One entry waiting.
    struct Item: Sendable {
        var entry: [UInt8]
        var sequence: UInt64
        var arrived: ContinuousClock.Instant
    }

    private var items: [[UInt8]: Item] = [:]
    private var order: [[UInt8]] = []
    private var head = 0

    /// How many entries wait.
    var count: Int { items.count }

    /// Whether the entry with leaf hash `leaf` waits.
    func contains(_ leaf: [UInt8]) -> Bool { items[leaf] != nil }

    /// Adds an entry; one that is already in is left as it was.
    mutating func insert(leaf: [UInt8], _ item: Item) {
        guard items[leaf] == nil else { return }
        items[leaf] = item
        order.append(leaf)
    }

    /// Removes the entry with leaf hash `leaf`, if it waits.
    mutating func remove(_ leaf: [UInt8]) {
        guard items.removeValue(forKey: leaf) != nil else { return }
        while head < order.count, items[order[head]] == nil { head += 1 }
        if head > 1024 && head * 2 > order.count {
            order = Array(order[head...]).filter { items[$0] != nil }
            head = 0
        }
    }

    /// The oldest waiting entries, in arrival order, not in `excluded`: at most `limit` of them and
    /// `maximumBytes` of entries (at least one).
    func oldest(excluding excluded: Set<[UInt8]>, limit: Int, maximumBytes: Int) -> [(leaf: [UInt8], item: Item)] {
        var chosen: [(leaf: [UInt8], item: Item)] = []
        var bytes = 0
        var index = head
        while index < order.count, chosen.count < limit {
            let leaf = order[index]
            index += 1
            guard let item = items[leaf], !excluded.contains(leaf) else { continue }
            guard bytes + item.entry.count <= maximumBytes || chosen.isEmpty else { break }
            chosen.append((leaf, item))
            bytes += item.entry.count
        }
        return chosen
    }
}

/// One step of a glob over a sequence: consume one element that satisfies a test, or any run of
/// elements (including none).
enum GlobStep<Element> {
    case one((Element) -> Bool)
    case anyRun
}

/// Whether `steps` match the whole of `input`, in O(input × steps) time.
///
/// The matcher keeps the set of live positions in the pattern and advances all of them together
/// over each input element, never backtracking: each element costs at most one pass over the
/// steps, whatever the pattern. That is why no pattern (`*a*a*a*b`, `**/**/**`) can be driven into
/// catastrophic backtracking. Shared by endpoint globs (over path segments) and header value globs
/// (over Unicode scalars).
func linearGlobMatches<Element>(_ steps: [GlobStep<Element>], _ input: some Sequence<Element>) -> Bool {
    let count = steps.count
    // live[i]: the first i steps have consumed the input read so far.
    var live = [Bool](repeating: false, count: count + 1)
    var next = [Bool](repeating: false, count: count + 1)
    /// A run may be empty: a live state before it makes the state after it live too.
    func closeOverEmpty(_ states: inout [Bool]) {
        for index in 0..<count where states[index] {
            if case .anyRun = steps[index] { states[index + 1] = true }
        }
    }
    live[0] = true
    closeOverEmpty(&live)
    for element in input {
        for index in 0...count { next[index] = false }
        var anyLive = false
        for index in 0..<count where live[index] {
            switch steps[index] {
            case .anyRun:
                next[index] = true
                anyLive = true
            case .one(let test):
                if test(element) {
                    next[index + 1] = true
                    anyLive = true
                }
            }
        }
        if !anyLive { return false }
        closeOverEmpty(&next)
        swap(&live, &next)
    }
    return live[count]
}

/// Path-directed changes to a document, as the `response` obligations make them.
///
/// Every path is matched against the document as it arrived, in one walk, so the result does not
/// depend on the order of the paths: `trim: [$.items[0]]` with `redact: [$.items[0]]` removes the
/// first element and leaves the second alone, rather than redacting what moved into its place.
extension JSONValue {
    /// The string a redacted value becomes.
    static let redactedMarker = JSONValue.string("[REDACTED]")

    /// This document with every value selected by a `redact` path replaced by `"[REDACTED]"` and
    /// every member or element selected by a `trim` path removed; `changed` is false when nothing
    /// was selected (or every selected value already was the marker).
    ///
    /// Where a value is selected by both, it is removed. Paths are matched against the original
    /// document: indices are positions before any removal, and a path reaching inside a redacted or
    /// removed value has nothing left to act on. The root (`$`) is handled by the caller.
    func rewritten(redact: [JSONPath], trim: [JSONPath]) -> (value: JSONValue, changed: Bool) {
        var changed = false
        let value = rewrite(
            redact: redact.map { $0.segments[...] }.filter { !$0.isEmpty },
            trim: trim.map { $0.segments[...] }.filter { !$0.isEmpty }, changed: &changed)
        return (value, changed)
    }

    fileprivate func rewrite(
        redact: [ArraySlice<JSONPath.Segment>], trim: [ArraySlice<JSONPath.Segment>], changed: inout Bool
    ) -> JSONValue {
        if redact.isEmpty && trim.isEmpty { return self }
        switch self {
        case .object(let members):
            var kept: [JSONMember] = []
            kept.reserveCapacity(members.count)
            for member in members {
                let step = PathStep.member(member.key)
                if let value = step.rewrite(member.value, redact: redact, trim: trim, changed: &changed) {
                    kept.append(JSONMember(key: member.key, value: value))
                }
            }
            return .object(kept)
        case .array(let items):
            var kept: [JSONValue] = []
            kept.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                if let value = PathStep.index(index).rewrite(item, redact: redact, trim: trim, changed: &changed) {
                    kept.append(value)
                }
            }
            return .array(kept)
        default:
            return self
        }
    }

    /// This document with every string selected by `paths` replaced by `transform(location, text)`;
    /// other values are left as they are. Used to show a stream's block rules the text gathered
    /// over earlier events.
    func mappingSelectedStrings(_ paths: [JSONPath], _ transform: (JSONPath, String) -> String) -> JSONValue {
        var location: [JSONPath.Segment] = []
        return mapStrings(paths.map { $0.segments[...] }, location: &location, transform)
    }

    private func mapStrings(
        _ patterns: [ArraySlice<JSONPath.Segment>], location: inout [JSONPath.Segment],
        _ transform: (JSONPath, String) -> String
    ) -> JSONValue {
        if patterns.contains(where: \.isEmpty) {
            guard case .string(let text) = self else { return self }
            return .string(transform(JSONPath(segments: location), text))
        }
        if patterns.isEmpty { return self }
        switch self {
        case .object(let members):
            var mapped = members
            for (i, member) in members.enumerated() {
                let step = PathStep.member(member.key)
                let rest = step.advance(patterns)
                guard !rest.isEmpty else { continue }
                location.append(.member(member.key))
                mapped[i].value = member.value.mapStrings(rest, location: &location, transform)
                location.removeLast()
            }
            return .object(mapped)
        case .array(let items):
            var mapped = items
            for (i, item) in items.enumerated() {
                let rest = PathStep.index(i).advance(patterns)
                guard !rest.isEmpty else { continue }
                location.append(.index(i))
                mapped[i] = item.mapStrings(rest, location: &location, transform)
                location.removeLast()
            }
            return .array(mapped)
        default:
            return self
        }
    }
}

/// One concrete step from a container to a child.
private enum PathStep {
    case member(String)
    case index(Int)

    func matches(_ segment: JSONPath.Segment) -> Bool {
        switch (segment, self) {
        case (.wildcard, _): true
        case (.member(let name), .member(let key)): name == key
        case (.index(let wanted), .index(let index)): wanted == index
        default: false
        }
    }

    /// The remainders of the patterns whose first segment selects this step (an empty remainder
    /// means the pattern selects the child itself).
    func advance(_ patterns: [ArraySlice<JSONPath.Segment>]) -> [ArraySlice<JSONPath.Segment>] {
        patterns.compactMap { pattern in
            guard let first = pattern.first, matches(first) else { return nil }
            return pattern.dropFirst()
        }
    }

    /// The child after the obligations: `nil` when trimmed, the marker when redacted, otherwise
    /// the child with the remaining paths applied inside it.
    func rewrite(
        _ child: JSONValue, redact: [ArraySlice<JSONPath.Segment>], trim: [ArraySlice<JSONPath.Segment>],
        changed: inout Bool
    ) -> JSONValue? {
        let trimRest = advance(trim)
        if trimRest.contains(where: \.isEmpty) {
            changed = true
            return nil
        }
        let redactRest = advance(redact)
        if redactRest.contains(where: \.isEmpty) {
            if child != JSONValue.redactedMarker { changed = true }
            return JSONValue.redactedMarker
        }
        return child.rewrite(redact: redactRest, trim: trimRest, changed: &changed)
    }
}

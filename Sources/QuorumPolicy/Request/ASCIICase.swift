extension String {
    /// Equal when ASCII letters are folded to lower case and every other byte is the same: the rule
    /// for header names (RFC 9110 §5.1) and for paths matched the way case-insensitive upstreams
    /// route them. Non-ASCII text is compared byte for byte, never Unicode-folded.
    func equalsIgnoringASCIICase(_ other: String) -> Bool {
        utf8.elementsEqual(other.utf8) { x, y in
            (x >= 0x41 && x <= 0x5A ? x | 0x20 : x) == (y >= 0x41 && y <= 0x5A ? y | 0x20 : y)
        }
    }
}

package broker

import "strings"

// Subject syntax (NATS client protocol §1.6): a subject is one or more
// non-empty tokens separated by '.', with no whitespace anywhere. In a
// subscription a token is a wildcard only when it is exactly "*" (one token)
// or ">" (one or more trailing tokens, so it must come last); "foo*" and "a>b"
// are ordinary literal tokens, as in nats-server.
//
// Everything here walks the input byte by byte instead of splitting it, so
// validation and matching never allocate: they run for every PUB and SUB on
// the connection read path.

const (
	tokenSep = '.'
	starTok  = "*" // wildcard for exactly one token
	tailTok  = ">" // wildcard for one or more trailing tokens
)

// isSpace reports whether c is whitespace that ends a field on a NATS
// protocol line, and therefore can never be part of a subject or queue name.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// ValidSubject reports whether s is a valid subscription subject: non-empty
// tokens, no whitespace, and a ">" token only in last position.
func ValidSubject(s string) bool {
	return validSubject(s, true)
}

// ValidLiteralSubject reports whether s is a valid publish subject: like
// ValidSubject, but with no wildcard tokens at all. It takes bytes because it
// is called on the parser's buffer for every published message.
func ValidLiteralSubject(s []byte) bool {
	// The conversion does not allocate: the compiler sees that validSubject
	// does not retain its argument.
	return validSubject(string(s), false)
}

// validSubject checks s in a single pass, tracking where the current token
// started so that empty tokens and wildcard tokens are found without
// splitting.
func validSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if isSpace(c) {
				return false
			}
			if c != tokenSep {
				continue
			}
		}
		// s[start:i] is a complete token.
		tok := s[start:i]
		switch {
		case tok == "":
			return false
		case tok == starTok || tok == tailTok:
			if !wildcards {
				return false
			}
			if tok == tailTok && i != len(s) {
				return false
			}
		}
		start = i + 1
	}
	return true
}

// ValidQueue reports whether s is a valid queue group name: non-empty and
// without whitespace (it travels as one field on the SUB line).
func ValidQueue(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			return false
		}
	}
	return true
}

// SubjectMatches reports whether subject is matched by pattern under NATS
// rules: "*" matches exactly one token and ">" matches one or more trailing
// tokens; any other token must be equal. subject is expected to be literal; a
// wildcard character in it is compared as an ordinary token.
//
// Both arguments are tokenized exactly as the Sublist tokenizes them (split on
// every '.', so "" is one empty token), which keeps the two in agreement even
// for inputs that fail validation. It is the reference model the Sublist is
// tested against and is used to find cache entries a new pattern affects.
func SubjectMatches(pattern, subject string) bool {
	for {
		ptok, prest, pmore := strings.Cut(pattern, ".")
		if ptok == tailTok && !pmore {
			// ">" needs at least one token, and there always is one here:
			// the loop only runs while subject still has a token.
			return true
		}
		stok, srest, smore := strings.Cut(subject, ".")
		if stok == "" {
			// A subject with an empty token reaches no one (nats-server
			// delivers "a..b" to nobody, not even to ">").
			return false
		}
		if ptok != starTok && ptok != stok {
			return false
		}
		if !pmore || !smore {
			// Both must run out of tokens together.
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

// isLiteral reports whether pattern contains no wildcard token, so the only
// subject it can match is itself.
func isLiteral(pattern string) bool {
	for {
		tok, rest, more := strings.Cut(pattern, ".")
		if tok == starTok || tok == tailTok {
			return false
		}
		if !more {
			return true
		}
		pattern = rest
	}
}

package api

import "strings"

// Names are checked by hand rather than with regular expressions: every
// hush process, the entrypoint of each run included, would otherwise
// compile them at start, and a create checks several.

// IsName reports whether s has 1 to maxLen characters, each a lowercase
// letter, a digit or one of inner, with a letter or digit first and last:
// the shape of secret, user and cluster names.
func IsName(s string, maxLen int, inner string) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLowerAlnum(c) && (i == 0 || i == len(s)-1 || strings.IndexByte(inner, c) < 0) {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isLowerAlnum(c) || 'A' <= c && c <= 'Z' }

// isEnvKey reports whether s is a letter or '_', then letters, digits and
// '_'.
func isEnvKey(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' {
			return false
		}
	}
	return true
}

// isProfile reports whether s is letters, digits, '_', '.' and '-'.
func isProfile(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("_.-", rune(c)) {
			return false
		}
	}
	return s != ""
}

// isReference reports whether s is PROVIDER:REF: a provider name of
// lowercase letters, digits and '-' that starts with a letter or digit,
// then a reference on one line.
func isReference(s string) bool {
	provider, ref, ok := strings.Cut(s, ":")
	if !ok || provider == "" || !isLowerAlnum(provider[0]) || ref == "" || strings.ContainsRune(ref, '\n') {
		return false
	}
	for i := 0; i < len(provider); i++ {
		if c := provider[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

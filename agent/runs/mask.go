package runs

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"slices"

	"github.com/hush-sh/hush/agent/store"
)

// masksFile holds, on a run's tmpfs, the values its logger masks.
const masksFile = "masks"

// minMask is the shortest value that is masked: shorter ones would mask
// ordinary output.
const minMask = 4

// maskValues returns the forms of the secrets' values that a run's log
// must not show: each value, and each line of a value of several lines,
// as it is, base64-encoded (standard and URL alphabets, padded or not)
// and URL-encoded. It also returns the names of secrets with a value or a
// line too short to mask.
func maskValues(secrets []*store.Secret) (values [][]byte, short []string) {
	for _, sec := range secrets {
		tooShort := false
		for _, v := range sec.Data {
			parts := [][]byte{v}
			if bytes.IndexByte(v, '\n') >= 0 {
				parts = nil
				for line := range bytes.Lines(v) {
					if line = bytes.TrimRight(line, "\r\n"); len(line) > 0 {
						parts = append(parts, line)
					}
				}
				// The whole value base64-encoded is one line.
				values = append(values, encodings(v)...)
			}
			for _, p := range parts {
				if len(p) == 0 {
					continue
				}
				if len(bytes.TrimSpace(p)) < minMask {
					tooShort = true
					continue
				}
				values = append(values, p)
				values = append(values, encodings(p)...)
			}
		}
		if tooShort {
			short = append(short, sec.Name)
		}
	}
	slices.Sort(short)
	return values, short
}

// encodings returns v base64- and URL-encoded.
func encodings(v []byte) [][]byte {
	return [][]byte{
		[]byte(base64.StdEncoding.EncodeToString(v)),
		[]byte(base64.RawStdEncoding.EncodeToString(v)),
		[]byte(base64.URLEncoding.EncodeToString(v)),
		[]byte(base64.RawURLEncoding.EncodeToString(v)),
		[]byte(url.QueryEscape(string(v))),
		[]byte(url.PathEscape(string(v))),
	}
}

package runlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

// Masked stands in a run's log for each value that was masked.
const Masked = "***"

// Masks are the values a run's log must not hold: the forms of its
// secrets' values that the agent listed (see runs), none of them holding
// a newline, so that no value crosses a line.
type Masks struct {
	values [][]byte // longest first, so that the longest match wins
	max    int      // the length of the longest
	first  [256]bool
}

// NewMasks returns the masks of values; empty values, and values with a
// newline, are left out.
func NewMasks(values [][]byte) *Masks {
	m := &Masks{}
	for _, v := range values {
		if len(v) > 0 && bytes.IndexByte(v, '\n') < 0 && !slices.ContainsFunc(m.values, func(o []byte) bool { return bytes.Equal(o, v) }) {
			m.values = append(m.values, bytes.Clone(v))
			m.max = max(m.max, len(v))
			m.first[v[0]] = true
		}
	}
	slices.SortFunc(m.values, func(a, b []byte) int { return len(b) - len(a) })
	return m
}

// WriteMasks writes the values to mask to path, readable by its owner
// only, for the process that will write the run's log.
func WriteMasks(path string, values [][]byte) error {
	b, err := json.Marshal(values)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o400)
}

// readMasks reads what WriteMasks wrote.
func readMasks(path string) (*Masks, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the values to mask: %w", err)
	}
	var values [][]byte
	if err := json.Unmarshal(b, &values); err != nil {
		return nil, fmt.Errorf("read the values to mask: %s: %w", path, err)
	}
	return NewMasks(values), nil
}

// match returns the length of the value that p starts with, or 0.
func (m *Masks) match(p []byte) int {
	for _, v := range m.values {
		if bytes.HasPrefix(p, v) {
			return len(v)
		}
	}
	return 0
}

// partial reports whether p is the start of a value, shorter than it.
func (m *Masks) partial(p []byte) bool {
	for _, v := range m.values {
		if len(p) < len(v) && bytes.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// maskFilter passes one stream of output on to w with every value replaced
// by Masked. It holds back only the end of what it was given that may be
// the start of a value split across writes, until the next write shows, or
// Close flushes it. m returns the masks of the moment, which a refresh of
// the run's secrets may add to.
type maskFilter struct {
	m    func() *Masks
	w    io.Writer
	held []byte
}

// Write never fails for the workload's sake: what w does not take is
// w's to account for.
func (f *maskFilter) Write(p []byte) (int, error) {
	f.pass(append(f.held, p...), true)
	return len(p), nil
}

// pass writes buf on with every value in it masked, holding back, when
// hold is set, an end of it that may be the start of a value.
func (f *maskFilter) pass(buf []byte, hold bool) {
	m := f.m()
	var out []byte
	i := 0
	for i < len(buf) {
		if !m.first[buf[i]] {
			out = append(out, buf[i])
			i++
			continue
		}
		// The rest may be the start of a value: hold it, unless a newline
		// ends it first. Before matching: the rest may hold a whole value
		// that starts a longer one whose end has not come yet.
		if hold && len(buf)-i < m.max && bytes.IndexByte(buf[i:], '\n') < 0 && m.partial(buf[i:]) {
			break
		}
		if n := m.match(buf[i:]); n > 0 {
			out = append(out, Masked...)
			i += n
			continue
		}
		out = append(out, buf[i])
		i++
	}
	f.held = append([]byte(nil), buf[i:]...)
	if len(out) > 0 {
		f.w.Write(out)
	}
}

// Close writes what is held back, masked: the stream ended without the
// rest of a value.
func (f *maskFilter) Close() error {
	// What is held may hold a whole shorter value after the start of a
	// longer one.
	f.pass(f.held, false)
	f.held = nil
	return nil
}

// AppendMasks returns what WriteMasks would write for the values in old,
// a masks file's content, and values: a refresh of the run's secrets adds
// its new values, and a run may still print the old ones.
func AppendMasks(old []byte, values [][]byte) ([]byte, error) {
	var all [][]byte
	if err := json.Unmarshal(old, &all); err != nil {
		return nil, fmt.Errorf("read the values to mask: %w", err)
	}
	for _, v := range values {
		if !slices.ContainsFunc(all, func(o []byte) bool { return bytes.Equal(o, v) }) {
			all = append(all, v)
		}
	}
	return json.Marshal(all)
}

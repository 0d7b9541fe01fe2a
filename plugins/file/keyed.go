package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hush-sh/hush/sdk/provider"
)

// dotenvSource serves the KEY=VALUE pairs of a dotenv file.
type dotenvSource struct {
	path string
}

func (s *dotenvSource) resolve(refs []string) []provider.Result {
	return resolveKeyed(s.path, refs, func(data []byte) (lookupFunc, error) {
		vars, err := parseDotenv(data)
		if err != nil {
			return nil, err
		}
		return func(ref string) ([]byte, error) {
			v, ok := vars[ref]
			if !ok {
				return nil, fmt.Errorf("no %s in %s: %w", ref, s.path, provider.ErrNotFound)
			}
			return []byte(v), nil
		}, nil
	})
}

// jsonSource serves the values of a JSON object file.
type jsonSource struct {
	path string
}

func (s *jsonSource) resolve(refs []string) []provider.Result {
	return resolveKeyed(s.path, refs, func(data []byte) (lookupFunc, error) {
		top, err := parseJSON(data)
		if err != nil {
			return nil, err
		}
		return func(ref string) ([]byte, error) {
			v, err := lookupJSON(top, ref)
			if err != nil {
				return nil, fmt.Errorf("%s in %s: %w", ref, s.path, err)
			}
			return v, nil
		}, nil
	})
}

type lookupFunc func(ref string) ([]byte, error)

// resolveKeyed reads and parses path once and looks up every reference.
func resolveKeyed(path string, refs []string, parse func([]byte) (lookupFunc, error)) []provider.Result {
	results := make([]provider.Result, len(refs))
	var lookup lookupFunc
	data, err := os.ReadFile(path)
	if err != nil {
		err = fileErr("read "+path, err)
	} else if lookup, err = parse(data); err != nil {
		err = fmt.Errorf("parse %s: %w", path, err)
	}
	for i, ref := range refs {
		results[i].Reference = ref
		if err != nil {
			results[i].Err = err
			continue
		}
		results[i].Value, results[i].Err = lookup(ref)
	}
	return results
}

// parseJSON parses a file whose top level must be an object.
func parseJSON(data []byte) (map[string]json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return nil, fmt.Errorf("the top level is a %s; it must be an object", typeErr.Value)
		}
		return nil, err
	}
	if top == nil {
		return nil, errors.New("the top level is null; it must be an object")
	}
	return top, nil
}

// lookupJSON finds ref in top: a top-level key as written (which may hold
// dots), or else a dotted path through objects and, by index, arrays.
// Strings come back unquoted; other values as compact JSON text.
func lookupJSON(top map[string]json.RawMessage, ref string) ([]byte, error) {
	if v, ok := top[ref]; ok {
		return jsonValue(v)
	}
	cur := json.RawMessage(nil)
	for i, seg := range strings.Split(ref, ".") {
		var next json.RawMessage
		var ok bool
		if i == 0 {
			next, ok = top[seg]
		} else {
			next, ok = child(cur, seg)
		}
		if !ok {
			return nil, fmt.Errorf("no such key: %w", provider.ErrNotFound)
		}
		cur = next
	}
	return jsonValue(cur)
}

// child is the member seg of an object, or element seg of an array.
func child(v json.RawMessage, seg string) (json.RawMessage, bool) {
	switch v = bytes.TrimSpace(v); {
	case len(v) > 0 && v[0] == '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(v, &obj) != nil {
			return nil, false
		}
		c, ok := obj[seg]
		return c, ok
	case len(v) > 0 && v[0] == '[':
		var arr []json.RawMessage
		i, err := strconv.Atoi(seg)
		if err != nil || i < 0 || json.Unmarshal(v, &arr) != nil || i >= len(arr) {
			return nil, false
		}
		return arr[i], true
	}
	return nil, false
}

func jsonValue(v json.RawMessage) ([]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("decode string: %w", err)
		}
		return []byte(s), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return nil, fmt.Errorf("compact value: %w", err)
	}
	return buf.Bytes(), nil
}

// Package diag builds the config diagnostics that providers return from
// Configure, so that each names the attribute it is about: the agent then
// points its operator at that attribute's file:line:col in the plugin
// block. It decodes a config with those diagnostics, and checks the
// settings most providers have: durations and absolute paths.
package diag

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
)

// Error is an error diagnostic about attr ("" for the config as a whole).
func Error(attr, summary, detail string) provider.Diagnostic {
	return provider.Diagnostic{Severity: provider.SeverityError, Attribute: attr, Summary: summary, Detail: detail}
}

// Warning is a warning diagnostic about attr.
func Warning(attr, summary, detail string) provider.Diagnostic {
	return provider.Diagnostic{Severity: provider.SeverityWarning, Attribute: attr, Summary: summary, Detail: detail}
}

// Decode decodes the request's config into v. A problem comes back as one
// error diagnostic naming the attribute at fault where the decoder says
// which it is: a misspelt key or a value of the wrong type.
func Decode(req *provider.ConfigureRequest, v any) []provider.Diagnostic {
	err := req.Decode(v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return []provider.Diagnostic{Error(typeErr.Field,
			fmt.Sprintf("%s must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), withArticle(typeErr.Value)), "")}
	case unknownField(err) != "":
		name := unknownField(err)
		return []provider.Diagnostic{Error(name,
			fmt.Sprintf("unknown setting %q", name), "remove it or check its spelling against the provider's documentation")}
	default:
		return []provider.Diagnostic{Error("", "invalid config", err.Error())}
	}
}

// unknownField returns the key that encoding/json's DisallowUnknownFields
// refused, as its error names it (`json: unknown field "fille"`), or "".
func unknownField(err error) string {
	_, rest, ok := strings.Cut(err.Error(), `unknown field "`)
	if !ok {
		return ""
	}
	name, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return ""
	}
	return name
}

// jsonKind names a Go kind the way a config author thinks of it, with its
// article.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a bool"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "a list"
	case "map", "struct", "ptr":
		return "an object"
	default:
		return withArticle(kind)
	}
}

// withArticle puts "a" or "an" before a JSON value's kind, as
// encoding/json names it ("string", "number", "object", "array"...).
func withArticle(kind string) string {
	if kind != "" && strings.ContainsRune("aeio", rune(kind[0])) {
		return "an " + kind
	}
	return "a " + kind
}

// Duration parses a duration setting that must be positive, using def
// when s is empty.
func Duration(attr, s string, def time.Duration) (time.Duration, []provider.Diagnostic) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, []provider.Diagnostic{Error(attr, fmt.Sprintf("%s %q is not a duration", attr, s), `write it like "10s" or "1m30s"`)}
	case d <= 0:
		return 0, []provider.Diagnostic{Error(attr, fmt.Sprintf("%s must be positive, not %s", attr, s), "")}
	}
	return d, nil
}

// AbsPath checks that a path setting is absolute: a plugin's working
// directory is the agent's, which the config author cannot see.
func AbsPath(attr, path string) []provider.Diagnostic {
	if !filepath.IsAbs(path) {
		return []provider.Diagnostic{Error(attr, fmt.Sprintf("%s must be an absolute path, not %q", attr, path), "")}
	}
	return nil
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(diags []provider.Diagnostic) bool {
	return (&provider.ConfigureResponse{Diagnostics: diags}).HasErrors()
}

package server

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// bodyTooLarge says what is too large in a request body over maxBodySize,
// by what the body was to be decoded into.
func bodyTooLarge(v any) string {
	switch v.(type) {
	case *api.CreateRunRequest:
		return fmt.Sprintf("run spec is over %d MiB: keep data out of its command and env_variables, in the image, a volume or a secret", maxBodySize>>20)
	case *api.CreateSecretRequest:
		return fmt.Sprintf("request body is over %d MiB; a secret's value may be at most %d MiB", maxBodySize>>20, api.MaxSecretSize>>20)
	}
	return fmt.Sprintf("request body is over %d MiB", maxBodySize>>20)
}

// describeDecodeError turns an error from decoding body into v into the
// path of the field at fault, if one is, and a message that names the
// field and what it must be: encoding/json names no
// field for a bad time or bad base64, and only the struct field for a bad
// map value. It never quotes a value of the body, which may be a secret's.
func describeDecodeError(body []byte, v any, err error) (field, msg string) {
	if fe := locate(body, reflect.TypeOf(v).Elem(), ""); fe != nil {
		return fe.path, "request body: " + fe.message()
	}
	// A syntax error, an unknown field, a second value: nothing that one
	// field is to blame for.
	return "", "request body is not valid JSON for this endpoint: " + err.Error()
}

// fieldError is a value of a request body that does not fit its field.
type fieldError struct {
	path string       // such as "data.value" or "secrets[2]"; "" is the body
	typ  reflect.Type // the field's type
	err  error        // what decoding the value said
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// locate finds the innermost value of raw that does not decode into its
// field of type t, or returns nil when raw decodes, or fails for a reason
// that is no field's (a syntax error). Unknown fields are not looked for:
// the caller's decoder reports them.
func locate(raw []byte, t reflect.Type, path string) *fieldError {
	err := json.Unmarshal(raw, reflect.New(t).Interface())
	var syntax *json.SyntaxError
	if err == nil || errors.As(err, &syntax) {
		return nil
	}
	custom := reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler)
	if !custom {
		if fe := locateInside(raw, t, path); fe != nil {
			return fe
		}
	}
	return &fieldError{path: path, typ: t, err: err}
}

// locateInside looks for the bad value among the fields, map values or
// list items of raw.
func locateInside(raw []byte, t reflect.Type, path string) *fieldError {
	switch t.Kind() {
	case reflect.Pointer:
		return locate(raw, t.Elem(), path)
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		for _, f := range reflect.VisibleFields(t) {
			name := jsonName(f)
			if name == "" {
				continue
			}
			for k, v := range obj {
				if strings.EqualFold(k, name) { // as encoding/json matches
					if fe := locate(v, f.Type, join(path, name)); fe != nil {
						return fe
					}
				}
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			return nil
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if fe := locate(obj[k], t.Elem(), join(path, k)); fe != nil {
				return fe
			}
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 { // base64 text, one value
			return nil
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return nil
		}
		for i, item := range list {
			if fe := locate(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// jsonName is the name a struct field has in JSON, or "" when it has none.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() || f.Anonymous {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (e *fieldError) message() string {
	where := ""
	if e.path != "" {
		where = e.path + ": "
	}
	var b64 base64.CorruptInputError
	if errors.As(e.err, &b64) {
		return fmt.Sprintf("%snot valid base64 (%v): send the value base64-encoded", where, e.err)
	}
	msg := fmt.Sprintf("%smust be %s", where, typeName(e.typ))
	var te *json.UnmarshalTypeError
	if errors.As(e.err, &te) && te.Value != "" {
		msg += ", not " + valueName(te.Value)
	}
	return msg
}

// typeName says in JSON's words what a value of type t is.
func typeName(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Time]():
		return "a time string such as 2026-01-02T15:04:05Z"
	case reflect.TypeFor[api.Duration]():
		return `a duration string such as "1h30m"`
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	}
	return t.String()
}

// valueName renders what encoding/json says it found ("number", "array",
// "number 1.5") for a message.
func valueName(v string) string {
	switch v {
	case "number", "string":
		return "a " + v
	case "object":
		return "an object"
	case "array":
		return "a list"
	case "bool":
		return "true or false"
	}
	if n, ok := strings.CutPrefix(v, "number "); ok {
		return n
	}
	return v
}

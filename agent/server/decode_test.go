package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/api"
)

// TestDecodeJSONMessages checks that a body that does not fit its request
// type is refused with the field it is about and what that field must be,
// that a body over the limit names what it carries, and that no message
// quotes a value.
func TestDecodeJSONMessages(t *testing.T) {
	secret := func() any { return &api.CreateSecretRequest{} }
	run := func() any { return &api.CreateRunRequest{} }
	tests := map[string]struct {
		into   func() any
		body   string
		status int
		want   string
	}{
		"bad base64 in data": {secret, `{"name":"x","type":"env","data":{"value":"%%%"}}`, 400,
			"request body: data.value: not valid base64 (illegal base64 data at input byte 0): send the value base64-encoded"},
		"created_at a number": {secret, `{"created_at":5}`, 400,
			"request body: created_at: must be a time string such as 2026-01-02T15:04:05Z"},
		"created_at not a time": {secret, `{"created_at":"yesterday"}`, 400,
			"request body: created_at: must be a time string such as 2026-01-02T15:04:05Z"},
		"field value a number": {secret, `{"fields":{"key":5}}`, 400,
			"request body: fields.key: must be a string, not a number"},
		"fields a list": {secret, `{"fields":[]}`, 400,
			"request body: fields: must be an object, not a list"},
		"name a number": {secret, `{"name":7}`, 400,
			"request body: name: must be a string, not a number"},
		"body a list": {secret, `[]`, 400,
			"request body: must be an object, not a list"},
		"secrets item a number": {run, `{"secrets":["a",7]}`, 400,
			"request body: secrets[1]: must be a string, not a number"},
		"gpus a fraction": {run, `{"gpus":1.5}`, 400,
			"request body: gpus: must be a whole number, not 1.5"},
		"max_duration not a duration": {run, `{"max_duration":"soon"}`, 400,
			`request body: max_duration: must be a duration string such as "1h30m"`},
		"unknown field": {secret, `{"name":"x","colour":"red"}`, 400,
			`request body is not valid JSON for this endpoint: json: unknown field "colour"`},
		"syntax error": {secret, `{"name": "x",`, 400,
			"request body is not valid JSON for this endpoint: unexpected EOF"},
		"two values": {secret, `{"name":"x"} {"name":"y"}`, 400,
			"request body is not valid JSON for this endpoint: more than one JSON value"},
		"run over the limit": {run, `{"command":"` + strings.Repeat("x", maxBodySize) + `"}`, 413,
			"run spec is over 2 MiB: keep data out of its command and env_variables, in the image, a volume or a secret"},
		"secret over the limit": {secret, `{"data":{"value":"` + strings.Repeat("A", maxBodySize) + `"}}`, 413,
			"request body is over 2 MiB; a secret's value may be at most 1 MiB"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if decodeJSON(w, r, tc.into()) {
				t.Fatal("got true, want the body refused")
			}
			var resp api.ErrorResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
			if w.Code != tc.status || resp.Error != tc.want {
				t.Errorf("got %d %q, want %d %q", w.Code, resp.Error, tc.status, tc.want)
			}
		})
	}
}

// TestDecodeJSONValid checks that a valid body still decodes whole.
func TestDecodeJSONValid(t *testing.T) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"name":"x","type":"env","fields":{"key":"K"},"data":{"value":"dg=="},"created_at":"2026-01-02T15:04:05Z"}`))
	var req api.CreateSecretRequest
	if !decodeJSON(w, r, &req) {
		t.Fatalf("refused: %d %s", w.Code, w.Body)
	}
	if req.Name != "x" || string(req.Data["value"]) != "v" || req.Fields["key"] != "K" || req.CreatedAt.Year() != 2026 {
		t.Errorf("got %+v", req)
	}
}

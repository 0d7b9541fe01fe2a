package diag

import (
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/provider"
)

func TestDecode(t *testing.T) {
	type nested struct {
		ID string `json:"id"`
	}
	type config struct {
		Name   string   `json:"name"`
		Count  int      `json:"count"`
		List   []string `json:"list"`
		Nested *nested  `json:"nested"`
	}
	tests := map[string]struct {
		json     string
		attr     string
		contains string
	}{
		"unknown key":     {`{"nmae": "x"}`, "nmae", `unknown setting "nmae"`},
		"string for int":  {`{"count": "3"}`, "count", "count must be a number, not a string"},
		"int for string":  {`{"name": 3}`, "name", "name must be a string, not a number"},
		"string for list": {`{"list": "a"}`, "list", "list must be a list, not a string"},
		"nested type":     {`{"nested": {"id": true}}`, "nested.id", "nested.id must be a string, not a bool"},
		"not an object":   {`[1]`, "", "invalid config"},
		"syntax":          {`{"name":`, "", "invalid config"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var cfg config
			diags := Decode(&provider.ConfigureRequest{Config: []byte(tt.json)}, &cfg)
			if len(diags) != 1 || diags[0].Severity != provider.SeverityError {
				t.Fatalf("got %+v, want one error", diags)
			}
			if d := diags[0]; d.Attribute != tt.attr || !strings.Contains(d.Summary, tt.contains) {
				t.Errorf("got %q on %q, want one containing %q on %q", d.Summary, d.Attribute, tt.contains, tt.attr)
			}
		})
	}
	var cfg config
	if diags := Decode(&provider.ConfigureRequest{Config: []byte(`{"name": "x", "nested": {"id": "i"}}`)}, &cfg); diags != nil || cfg.Nested.ID != "i" {
		t.Errorf("got %+v, %+v; want a clean decode", diags, cfg)
	}
}

func TestDuration(t *testing.T) {
	tests := map[string]struct {
		in       string
		want     time.Duration
		contains string
	}{
		"default":  {"", 5 * time.Second, ""},
		"given":    {"1m30s", 90 * time.Second, ""},
		"no unit":  {"10", 0, "is not a duration"},
		"zero":     {"0s", 0, "must be positive"},
		"negative": {"-1s", 0, "must be positive"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, diags := Duration("timeout", tt.in, 5*time.Second)
			switch {
			case tt.contains == "" && (diags != nil || got != tt.want):
				t.Errorf("got %s, %+v; want %s", got, diags, tt.want)
			case tt.contains != "" && (len(diags) != 1 || diags[0].Attribute != "timeout" || !strings.Contains(diags[0].Summary, tt.contains)):
				t.Errorf("got %+v, want an error on timeout containing %q", diags, tt.contains)
			}
		})
	}
}

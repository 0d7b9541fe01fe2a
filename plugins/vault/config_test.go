package main

import (
	"strings"
	"testing"

	"github.com/hush-sh/hush/sdk/provider"
)

func TestConfigureErrors(t *testing.T) {
	tokenFile := writeFile(t, "token", "t")
	notPEM := writeFile(t, "ca.pem", "not a certificate")
	const addr = "https://vault.example:8200"
	tests := map[string]struct {
		cfg      map[string]any
		attr     string
		contains string
	}{
		"no address":           {map[string]any{"token": "t"}, "address", "address is required"},
		"address not a url":    {map[string]any{"address": "vault:8200", "token": "t"}, "address", "not an http or https URL"},
		"address wrong scheme": {map[string]any{"address": "ftp://vault", "token": "t"}, "address", "not an http or https URL"},
		"no auth":              {map[string]any{"address": addr}, "token", "set one of token, token_file or approle"},
		"token and file":       {map[string]any{"address": addr, "token": "t", "token_file": tokenFile}, "token_file", "cannot be set together with token"},
		"token and approle":    {map[string]any{"address": addr, "token": "t", "approle": map[string]any{"role_id": "r"}}, "approle", "cannot be set together with token"},
		"relative token_file":  {map[string]any{"address": addr, "token_file": "token"}, "token_file", "must be an absolute path"},
		"missing token_file":   {map[string]any{"address": addr, "token_file": "/no/such/token"}, "token_file", "does not exist"},
		"approle no role_id":   {map[string]any{"address": addr, "approle": map[string]any{"secret_id": "s"}}, "approle.role_id", "approle.role_id is required"},
		"approle both secrets": {map[string]any{"address": addr, "approle": map[string]any{"role_id": "r", "secret_id": "s", "secret_id_file": tokenFile}}, "approle.secret_id_file", "cannot be set together"},
		"approle missing file": {map[string]any{"address": addr, "approle": map[string]any{"role_id": "r", "secret_id_file": "/no/such/file"}}, "approle.secret_id_file", "does not exist"},
		"approle unknown key":  {map[string]any{"address": addr, "approle": map[string]any{"role_id": "r", "role": "x"}}, "role", `unknown setting "role"`},
		"approle wrong type":   {map[string]any{"address": addr, "approle": map[string]any{"role_id": 1}}, "approle.role_id", "must be a string"},
		"kv_version 3":         {map[string]any{"address": addr, "token": "t", "kv_version": 3}, "kv_version", "must be 1 or 2"},
		"kv_version string":    {map[string]any{"address": addr, "token": "t", "kv_version": "2"}, "kv_version", "must be a number"},
		"bad timeout":          {map[string]any{"address": addr, "token": "t", "timeout": "10"}, "timeout", "is not a duration"},
		"relative ca_cert":     {map[string]any{"address": addr, "token": "t", "ca_cert": "ca.pem"}, "ca_cert", "must be an absolute path"},
		"missing ca_cert":      {map[string]any{"address": addr, "token": "t", "ca_cert": "/no/such/ca.pem"}, "ca_cert", "cannot be used"},
		"ca_cert not pem":      {map[string]any{"address": addr, "token": "t", "ca_cert": notPEM}, "ca_cert", "cannot be used"},
		"unknown setting":      {map[string]any{"address": addr, "token": "t", "adress": addr}, "adress", `unknown setting "adress"`},
		"tls_skip_verify text": {map[string]any{"address": addr, "token": "t", "tls_skip_verify": "yes"}, "tls_skip_verify", "must be a bool"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp := configureRaw(t, newProvider(), tt.cfg)
			var found bool
			for _, d := range resp.Diagnostics {
				if d.Severity == provider.SeverityError && d.Attribute == tt.attr && strings.Contains(d.Summary, tt.contains) {
					found = true
				}
				if strings.Contains(d.Summary+d.Detail, "hvs.") {
					t.Errorf("diagnostic %+v shows a token", d)
				}
			}
			if !found {
				t.Errorf("got diagnostics %+v, want an error on %q containing %q", resp.Diagnostics, tt.attr, tt.contains)
			}
		})
	}
}

func TestConfigureReportsEveryProblem(t *testing.T) {
	resp := configureRaw(t, newProvider(), map[string]any{"kv_version": 5, "timeout": "x"})
	attrs := map[string]bool{}
	for _, d := range resp.Diagnostics {
		attrs[d.Attribute] = true
	}
	for _, want := range []string{"address", "token", "kv_version", "timeout"} {
		if !attrs[want] {
			t.Errorf("got diagnostics %+v, want one on %s", resp.Diagnostics, want)
		}
	}
}

func TestConfigureWarnings(t *testing.T) {
	tests := map[string]struct {
		cfg  map[string]any
		attr string
	}{
		"tls_skip_verify": {map[string]any{"address": "https://vault:8200", "token": "t", "tls_skip_verify": true}, "tls_skip_verify"},
		"plain http":      {map[string]any{"address": "http://vault.example:8200", "token": "t"}, "address"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			resp := configureRaw(t, newProvider(), tt.cfg)
			if resp.HasErrors() || len(resp.Diagnostics) != 1 || resp.Diagnostics[0].Attribute != tt.attr {
				t.Errorf("got %+v, want one warning on %s", resp.Diagnostics, tt.attr)
			}
		})
	}
	for _, addr := range []string{"http://127.0.0.1:8200", "http://localhost:8200", "http://[::1]:8200"} {
		if resp := configureRaw(t, newProvider(), map[string]any{"address": addr, "token": "t"}); len(resp.Diagnostics) != 0 {
			t.Errorf("%s: got %+v, want no warning for a loopback address", addr, resp.Diagnostics)
		}
	}
}

func TestParseRef(t *testing.T) {
	tests := map[string]struct {
		ref       string
		kv        int
		path, key string
		err       string
	}{
		"v2 api path":          {ref: "secret/data/db#password", kv: 2, path: "secret/data/db", key: "password"},
		"v2 logical path":      {ref: "secret/db#password", kv: 2, path: "secret/data/db", key: "password"},
		"v2 deep path":         {ref: "secret/team/app/db#k", kv: 2, path: "secret/data/team/app/db", key: "k"},
		"v2 secret named data": {ref: "secret/data#k", kv: 2, path: "secret/data/data", key: "k"},
		"v2 slashes trimmed":   {ref: "/secret/db/#k", kv: 2, path: "secret/data/db", key: "k"},
		"hash in key":          {ref: "secret/db#a#b", kv: 2, path: "secret/data/db", key: "a#b"},
		"v1 path as given":     {ref: "kv/db#password", kv: 1, path: "kv/db", key: "password"},
		"v1 one segment":       {ref: "cubbyhole#k", kv: 1, path: "cubbyhole", key: "k"},
		"v1 data kept":         {ref: "kv/data/x#k", kv: 1, path: "kv/data/x", key: "k"},
		"no hash":              {ref: "secret/db", kv: 2, err: "reference must be PATH#KEY"},
		"no key":               {ref: "secret/db#", kv: 2, err: "reference must be PATH#KEY"},
		"no path":              {ref: "#key", kv: 2, err: "reference must be PATH#KEY"},
		"v2 mount only":        {ref: "secret#key", kv: 2, err: "must be MOUNT/PATH"},
		"empty segment":        {ref: "secret//db#k", kv: 2, err: "empty"},
		"dot dot":              {ref: "secret/../sys#k", kv: 1, err: `".."`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			path, key, err := parseRef(tt.ref, tt.kv)
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got %q, %q, %v; want an error containing %q", path, key, err, tt.err)
				}
			case err != nil:
				t.Errorf("got error %v, want %q#%q", err, tt.path, tt.key)
			case path != tt.path || key != tt.key:
				t.Errorf("got %q#%q, want %q#%q", path, key, tt.path, tt.key)
			}
		})
	}
}

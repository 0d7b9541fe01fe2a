package runs

import (
	"slices"
	"testing"

	"github.com/hush-sh/hush/agent/store"
)

func TestMaskValues(t *testing.T) {
	secrets := []*store.Secret{
		{Name: "db", Data: map[string][]byte{"value": []byte("p@ss w/rd")}},
		{Name: "key", Data: map[string][]byte{"value": []byte("-----BEGIN-----\nAAAAbbbb\nxy\n-----END-----\n")}},
	}
	values, short := maskValues(secrets)
	for _, want := range []string{
		"p@ss w/rd", "cEBzcyB3L3Jk", "p%40ss+w%2Frd", "p@ss%20w%2Frd", // as is, base64, query and path escaped
		"-----BEGIN-----", "AAAAbbbb", "-----END-----", // each line of several
		"LS0tLS1CRUdJTi0tLS0tCkFBQUFiYmJiCnh5Ci0tLS0tRU5ELS0tLS0K", // the whole value base64-encoded
	} {
		if !slices.ContainsFunc(values, func(v []byte) bool { return string(v) == want }) {
			t.Errorf("the values to mask lack %q", want)
		}
	}
	if slices.ContainsFunc(values, func(v []byte) bool { return string(v) == "xy" }) {
		t.Error("a line of 2 characters is masked")
	}
	if !slices.Equal(short, []string{"key"}) {
		t.Errorf("got short %v, want [key], for its line xy", short)
	}
}

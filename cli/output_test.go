package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// TestYAMLFromJSON: -o yaml renders the wire types through their JSON, so
// they need no YAML tags: JSON's names and order, plain times, a literal
// block for a multi-line string, null left out, and an empty list kept
// (a run given no secrets is not a run given all).
func TestYAMLFromJSON(t *testing.T) {
	now := time.Date(2026, 12, 1, 13, 37, 13, 0, time.UTC)
	code := 3
	runs := []*api.Run{{
		ID: "01R", Name: "r", Owner: "alice", Image: "busybox", Command: "echo hi\necho 123\n",
		Env: map[string]string{"A": "true", "WHEN": "2026-01-02T15:04:05Z"}, Secrets: []string{}, CPUs: 0.5, Runtime: "exec",
		Status: api.RunFailed, ExitCode: &code, CreatedAt: now,
		Events: []api.RunEvent{{Time: now, Type: "submitted", Message: "x: y"}},
	}}
	var got bytes.Buffer
	if err := printStructured(&got, formatYAML, runs); err != nil {
		t.Fatal(err)
	}
	want := `- id: 01R
  name: r
  owner: alice
  image: busybox
  command: |
    echo hi
    echo 123
  env:
    A: "true"
    WHEN: "2026-01-02T15:04:05Z"
  secrets: []
  cpus: 0.5
  runtime: exec
  status: FAILED
  exit_code: 3
  created_at: 2026-12-01T13:37:13Z
  events:
    - time: 2026-12-01T13:37:13Z
      type: submitted
      message: 'x: y'
`
	if got.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", got.String(), want)
	}
}

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hush-sh/hush/sdk/api"
)

// fakeRunAgent answers watches of run r1 with the run as it is once it has
// the first n events of events, n being the index asked for plus one (the
// watch's "anything past what I have"); with all of them it is RUNNING.
func fakeRunAgent(t *testing.T, events []api.RunEvent) *api.Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/runs/r1" {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		index, _ := strconv.Atoi(r.URL.Query().Get("index"))
		n := min(index+1, len(events))
		run := &api.Run{ID: "r1", Name: "hello", Status: api.RunPending, Events: events[:n]}
		if n == len(events) {
			run.Status = api.RunRunning
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(run)
	}))
	t.Cleanup(srv.Close)
	client, err := api.NewClient(&api.Config{Address: srv.URL, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestWaitForStartShowsProgress checks what `hush run` shows while a run
// waits to start: on a terminal the latest event on one line that each
// rewrites (warnings on lines that stay), elsewhere one line per event;
// the same message twice is shown once, and events that are not of the
// wait (secrets, env) are not shown.
func TestWaitForStartShowsProgress(t *testing.T) {
	at := time.Unix(0, 0)
	events := []api.RunEvent{
		{Time: at, Type: "submitted", Message: "submitted"},
		{Time: at, Type: "waiting", Message: "waiting for room: 2 GPUs asked, 0 free"},
		{Time: at, Type: "waiting", Message: "waiting for room: 2 GPUs asked, 0 free"},
		{Time: at, Type: "admitted", Message: "admitted"},
		{Time: at, Type: "image", Message: "pulling image docker.io/library/python:3"},
		{Time: at, Type: "image", Message: "pulling image docker.io/library/python:3: 1 of 3 layers, 41 MiB of 112 MiB"},
		{Time: at, Type: "warning", Message: "env LOG_LEVEL of the run wins over secret log-level"},
		{Time: at, Type: "image", Message: "pulled image docker.io/library/python:3 in 3s: 3 layers, 112 MiB"},
		{Time: at, Type: "secrets", Message: "secrets: secret-stuff"},
		{Time: at, Type: "started", Message: "started"},
	}
	tests := map[string]struct {
		tty  bool
		want string
	}{
		"terminal": {tty: true, want: "" +
			"\r\033[Ki  Waiting for room: 2 GPUs asked, 0 free" +
			"\r\033[Ki  Admitted" +
			"\r\033[Ki  Pulling image docker.io/library/python:3" +
			"\r\033[Ki  Pulling image docker.io/library/python:3: 1 of 3 layers, 41 MiB of 112 MiB\n" +
			"i  Env LOG_LEVEL of the run wins over secret log-level\n" +
			"\r\033[Ki  Pulled image docker.io/library/python:3 in 3s: 3 layers, 112 MiB\n"},
		"not a terminal": {tty: false, want: "" +
			"i  Waiting for room: 2 GPUs asked, 0 free\n" +
			"i  Admitted\n" +
			"i  Pulling image docker.io/library/python:3\n" +
			"i  Pulling image docker.io/library/python:3: 1 of 3 layers, 41 MiB of 112 MiB\n" +
			"i  Env LOG_LEVEL of the run wins over secret log-level\n" +
			"i  Pulled image docker.io/library/python:3 in 3s: 3 layers, 112 MiB\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			client := fakeRunAgent(t, events)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errw bytes.Buffer
			ui := newUI(ctx, strings.NewReader(""), &out, &errw, nil)
			run, err := waitForStart(ctx, client, &api.Run{ID: "r1", Name: "hello", Status: api.RunPending}, newStatusLine(ui, tc.tty))
			if err != nil {
				t.Fatal(err)
			}
			if run.Status != api.RunRunning {
				t.Errorf("got status %s, want %s", run.Status, api.RunRunning)
			}
			if got := out.String(); got != tc.want {
				t.Errorf("got output\n%q\nwant\n%q", got, tc.want)
			}
			if errw.Len() != 0 {
				t.Errorf("got stderr %q, want nothing", errw.String())
			}
		})
	}
}

// TestStatusLineFitsTheTerminal checks that a status line longer than the
// terminal is cut to fit, and one of several lines joined, since a line
// that takes two rows could not be rewritten.
func TestStatusLineFitsTheTerminal(t *testing.T) {
	var out bytes.Buffer
	ui := newUI(context.Background(), strings.NewReader(""), &out, &out, nil)
	line := newStatusLine(ui, true)
	line.width = 20
	line.show("pulling image docker.io/library/python:3")
	line.show("two\nrows")
	line.end()
	if got, want := out.String(), "\r\033[Ki  pulling image d…\r\033[Ki  two rows\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

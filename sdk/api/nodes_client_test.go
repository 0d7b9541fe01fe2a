package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestNodesClient(t *testing.T) {
	var got []string // "METHOD escaped-path body"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.EscapedPath()+" "+string(body))
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/nodes":
			w.Write([]byte(`{"nodes":[{"id":"n1","name":"gpu-1","status":"ready","capacity":{"gpus":8,"gpus_free":4}},{"id":"n2","name":"gpu-2","status":"down","drain":true}]}`))
		case r.Method == http.MethodPost && r.URL.Path == "/v1/nodes/gpu 2/drain":
			var req DrainNodeRequest
			json.Unmarshal(body, &req)
			json.NewEncoder(w).Encode(&Node{Name: "gpu 2", Status: NodeReady, Drain: req.Enable})
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no API endpoint","code":"not_found"}`))
		}
	}))
	defer srv.Close()
	c, err := NewClient(&Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	nodes, err := c.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 2 || nodes[0].Name != "gpu-1" || nodes[0].Capacity.GPUsFree != 4 || nodes[1].Status != NodeDown || !nodes[1].Drain {
		t.Errorf("got nodes %+v %+v, want gpu-1 with 4 of 8 GPUs free and gpu-2 down, draining", nodes[0], nodes[1])
	}

	n, err := c.DrainNode(ctx, "gpu 2", DrainNodeRequest{Enable: true, Stop: true})
	if err != nil {
		t.Fatal(err)
	}
	if n.Name != "gpu 2" || !n.Drain {
		t.Errorf("got node %+v, want gpu 2 draining", n)
	}
	want := `POST /v1/nodes/gpu%202/drain {"enable":true,"stop":true}`
	if last := got[len(got)-1]; last != want {
		t.Errorf("got request %q, want %q", last, want)
	}

	if _, err := c.DrainNode(ctx, "../runs", DrainNodeRequest{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("got %v for a name with a slash, want not found", err)
	}
	if last := got[len(got)-1]; last != `POST /v1/nodes/..%2Fruns/drain {"enable":false}` {
		t.Errorf("got request %q, want the name escaped into one path segment", last)
	}
}

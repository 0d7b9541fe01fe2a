package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// CreateRun submits a run.
func (c *Client) CreateRun(ctx context.Context, req *CreateRunRequest) (*Run, error) {
	var out Run
	return &out, c.do(ctx, http.MethodPost, "/v1/runs", nil, req, &out)
}

// ListRuns lists the caller's runs, oldest first.
func (c *Client) ListRuns(ctx context.Context) ([]*Run, error) {
	var out ListRunsResponse
	return out.Runs, c.do(ctx, http.MethodGet, "/v1/runs", nil, nil, &out)
}

// GetRun reads a run by id or name.
func (c *Client) GetRun(ctx context.Context, ref string) (*Run, error) {
	var out Run
	return &out, c.do(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(ref), nil, nil, &out)
}

// WatchRun returns the run once it has more than index events or has
// ended, or after wait: a blocking query that shows changes as they happen.
func (c *Client) WatchRun(ctx context.Context, ref string, index int, wait time.Duration) (*Run, error) {
	q := url.Values{"index": {strconv.Itoa(index)}, "wait": {wait.String()}}
	var out Run
	resp, err := c.send(ctx, c.stream, http.MethodGet, "/v1/runs/"+url.PathEscape(ref), q, nil, "")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return &out, decodeJSONBody(resp, &out)
}

// StopRun asks a run to stop; it returns before the run has ended.
func (c *Client) StopRun(ctx context.Context, ref string) (*Run, error) {
	var out Run
	return &out, c.do(ctx, http.MethodPost, "/v1/runs/"+url.PathEscape(ref)+"/stop", nil, nil, &out)
}

// DeleteRun deletes a run and its logs, stopping it first if it is active.
func (c *Client) DeleteRun(ctx context.Context, ref string) error {
	// Deleting an active run waits for it to stop, which may take the
	// runtime's grace period: longer than an ordinary request.
	resp, err := c.send(ctx, c.stream, http.MethodDelete, "/v1/runs/"+url.PathEscape(ref), nil, nil, "")
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// LogsOptions select what RunLogs returns.
type LogsOptions struct {
	// Follow keeps the stream open until the run ends.
	Follow bool
	// Tail returns only the last Tail lines when it is not negative.
	Tail int
}

// RunLogs streams a run's output. The caller closes the stream; canceling
// ctx ends a followed stream.
func (c *Client) RunLogs(ctx context.Context, ref string, opts LogsOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Tail >= 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	resp, err := c.send(ctx, c.stream, http.MethodGet, "/v1/runs/"+url.PathEscape(ref)+"/logs", q, nil, "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImportImage loads an OCI or Docker image archive into the agent's
// runtime and returns the names of its images. It needs a management token.
func (c *Client) ImportImage(ctx context.Context, archive io.Reader) ([]string, error) {
	resp, err := c.send(ctx, c.stream, http.MethodPost, "/v1/images/import", nil, archive, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out ImportImageResponse
	if err := decodeJSONBody(resp, &out); err != nil {
		return nil, err
	}
	return out.Images, nil
}

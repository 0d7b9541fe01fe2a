package main

import (
	"errors"
	"fmt"
	"strings"
)

var errRefFormat = errors.New("reference must be PATH#KEY, like secret/data/db#password")

// parseRef splits a reference into the API path to read and the key to
// take from it. For KV version 2 the path may leave out the "data/" that
// follows the mount: "secret/db" reads secret/data/db. The mount is taken
// to be the first segment, since telling otherwise would need a read of
// sys/mounts that most tokens may not do; KV v2 mounts at deeper paths
// are therefore not supported.
func parseRef(ref string, kvVersion int) (path, key string, err error) {
	path, key, ok := strings.Cut(ref, "#")
	path = strings.Trim(path, "/")
	if !ok || path == "" || key == "" {
		return "", "", errRefFormat
	}
	segments := strings.Split(path, "/")
	for _, s := range segments {
		if s == "" || s == "." || s == ".." {
			return "", "", fmt.Errorf("reference path %q has an empty, \".\" or \"..\" segment", path)
		}
	}
	if kvVersion == 2 {
		if len(segments) < 2 {
			return "", "", fmt.Errorf("reference path %q must be MOUNT/PATH, like secret/db", path)
		}
		if segments[1] != "data" || len(segments) == 2 {
			path = segments[0] + "/data/" + strings.Join(segments[1:], "/")
		}
	}
	return path, key, nil
}

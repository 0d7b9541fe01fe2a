package plugins

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// maxLine bounds a line kept for the log; a longer one is cut.
const maxLine = 16 << 10

// lineLogger logs each line written to it at INFO under the plugin's name:
// what a plugin writes to stderr (or, after its handshake, stdout) that is
// not one of its hclog JSON lines, which go-plugin would otherwise drop or
// log at DEBUG only.
type lineLogger struct {
	logger hclog.Logger
	// skipJSON leaves out hclog JSON lines, which go-plugin logs itself.
	skipJSON bool

	mu  sync.Mutex
	buf []byte
}

func newLineLogger(logger hclog.Logger, skipJSON bool) *lineLogger {
	return &lineLogger{logger: logger, skipJSON: skipJSON}
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) > maxLine {
				l.emit(l.buf[:maxLine])
				l.buf = l.buf[:0]
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

func (l *lineLogger) emit(line []byte) {
	line = bytes.TrimRight(line, "\r")
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	if l.skipJSON && isLogLine(line) {
		return
	}
	l.logger.Info(string(line))
}

// isLogLine reports whether line is an hclog JSON line.
func isLogLine(line []byte) bool {
	var entry struct {
		Message *string `json:"@message"`
	}
	return bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) && json.Unmarshal(line, &entry) == nil && entry.Message != nil
}

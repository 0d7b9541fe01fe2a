package server

import (
	"net/http"

	"github.com/hush-sh/hush/sdk/api"
)

// statuses gives each kind of error its HTTP status: the one place that
// does. Codes that name a reason take their kind's status.
var statuses = map[error]int{
	api.ErrUnauthorized: http.StatusUnauthorized,
	api.ErrForbidden:    http.StatusForbidden,
	api.ErrNotFound:     http.StatusNotFound,
	api.ErrExists:       http.StatusConflict,
	api.ErrConflict:     http.StatusConflict,
	api.ErrInvalid:      http.StatusBadRequest,
	api.ErrTooLarge:     http.StatusRequestEntityTooLarge,
	api.ErrUnavailable:  http.StatusServiceUnavailable,
	api.ErrRateLimited:  http.StatusTooManyRequests,
	api.ErrInternal:     http.StatusInternalServerError,
}

// statusOf returns the HTTP status of an error code.
func statusOf(code string) int {
	if code == api.CodeImmutable {
		return http.StatusMethodNotAllowed // the method is what is wrong
	}
	if s, ok := statuses[api.KindOf(code)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeError answers an error: its code, with the status of the code's
// kind, and a message that says what was wrong and how to fix it.
func writeError(w http.ResponseWriter, code, msg string) {
	writeJSON(w, statusOf(code), &api.ErrorResponse{Error: msg, Code: code})
}

// writeFieldError answers an invalid request, naming the field at fault.
func writeFieldError(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, &api.ErrorResponse{Error: msg, Code: api.CodeInvalid, Field: field})
}

package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors a client can test for with errors.Is. An *Error from the agent
// matches the sentinel of its status code.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrTooLarge     = errors.New("too large")
	ErrInvalid      = errors.New("invalid request")
)

// Codes name the errors a client may need to tell apart beyond their status
// code, in ErrorResponse.Code.
const (
	// CodeSecretExists: the user holds a secret of that name.
	CodeSecretExists = "secret_exists"
	// CodeUniqueType: the user already holds a secret of a type allowed once.
	CodeUniqueType = "unique_type"
	// CodeSecretDeleted: the secret's id was deleted on that agent and is
	// not created again.
	CodeSecretDeleted = "secret_deleted"
	// CodeIDMismatch: the secret does not hold the id the request expects.
	CodeIDMismatch = "id_mismatch"
	// CodeSecretUnreadable: the agent holds the secret but cannot read it;
	// its owner can delete it.
	CodeSecretUnreadable = "secret_unreadable"
)

// ErrorResponse is the JSON body of every error the agent returns.
type ErrorResponse struct {
	Error string `json:"error"`
	// Code is one of the Code constants, for errors that have one.
	Code string `json:"code,omitempty"`
}

// Error is an error answer from the agent.
type Error struct {
	StatusCode int
	Message    string
	// Code is the answer's Code, when it has one.
	Code string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("agent answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return e.Message
}

// Is matches the sentinel error of the status code.
func (e *Error) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrForbidden
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrExists
	case http.StatusRequestEntityTooLarge:
		return target == ErrTooLarge
	case http.StatusBadRequest:
		return target == ErrInvalid
	}
	return false
}

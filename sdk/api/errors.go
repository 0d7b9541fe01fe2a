package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The kinds of error the agent answers, one sentinel each. An *Error from
// the agent matches the sentinel of its code's kind with errors.Is.
var (
	ErrUnauthorized = errors.New("unauthenticated")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrExists       = errors.New("already exists")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid request")
	ErrTooLarge     = errors.New("too large")
	ErrUnavailable  = errors.New("unavailable")
	ErrRateLimited  = errors.New("too many requests")
	ErrInternal     = errors.New("internal error")
)

// Codes, in ErrorResponse.Code, name what went wrong: a kind, or a reason
// within a kind, for errors that clients tell apart.
const (
	CodeUnauthenticated = "unauthenticated"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeExists          = "exists"
	CodeConflict        = "conflict"
	CodeInvalid         = "invalid"
	CodeTooLarge        = "too_large"
	CodeUnavailable     = "unavailable"
	CodeRateLimited     = "rate_limited"
	CodeInternal        = "internal"

	// CodeSecretExists (exists): the user holds a secret of that name.
	CodeSecretExists = "secret_exists"
	// CodeUniqueType (exists): the user already holds a secret of a type
	// allowed once.
	CodeUniqueType = "unique_type"
	// CodeSecretDeleted (conflict): the secret's id was deleted on that
	// agent and is not created again.
	CodeSecretDeleted = "secret_deleted"
	// CodeIDMismatch (conflict): the secret does not hold the id the
	// request expects.
	CodeIDMismatch = "id_mismatch"
	// CodeRunEnded (conflict): the run has ended, so it cannot be stopped.
	CodeRunEnded = "run_ended"
	// CodeNoImages (conflict): the agent's runtime uses no images.
	CodeNoImages = "no_images"
	// CodeImmutable (invalid): secrets cannot be changed, only deleted
	// and created again.
	CodeImmutable = "immutable"
	// CodeTokenExpired (unauthenticated): the token was valid and has
	// expired; its user needs a new one.
	CodeTokenExpired = "token_expired"
	// CodeLastManagementToken (conflict): revoking the token would leave
	// the agent without a management token.
	CodeLastManagementToken = "last_management_token"
	// CodeSecretUnreadable (internal): the agent holds the secret but
	// cannot read it; its owner can delete it.
	CodeSecretUnreadable = "secret_unreadable"
)

// kinds gives each code its kind: the one place that does.
var kinds = map[string]error{
	CodeUnauthenticated:  ErrUnauthorized,
	CodeForbidden:        ErrForbidden,
	CodeNotFound:         ErrNotFound,
	CodeExists:           ErrExists,
	CodeConflict:         ErrConflict,
	CodeInvalid:          ErrInvalid,
	CodeTooLarge:         ErrTooLarge,
	CodeUnavailable:      ErrUnavailable,
	CodeRateLimited:      ErrRateLimited,
	CodeInternal:         ErrInternal,
	CodeSecretExists:     ErrExists,
	CodeUniqueType:       ErrExists,
	CodeSecretDeleted:    ErrConflict,
	CodeIDMismatch:       ErrConflict,
	CodeRunEnded:         ErrConflict,
	CodeNoImages:         ErrConflict,
	CodeImmutable:        ErrInvalid,
	CodeSecretUnreadable: ErrInternal,

	CodeTokenExpired:        ErrUnauthorized,
	CodeLastManagementToken: ErrConflict,
}

// KindOf returns the sentinel of code's kind, or nil for a code this
// client does not know.
func KindOf(code string) error { return kinds[code] }

// ErrorResponse is the JSON body of every error the agent returns.
type ErrorResponse struct {
	Error string `json:"error"`
	// Code is one of the Code constants.
	Code string `json:"code,omitempty"`
	// Field, for an invalid request, is the path of the field at fault,
	// such as "data.value", when one is.
	Field string `json:"field,omitempty"`
}

// Error is an error answer from the agent.
type Error struct {
	StatusCode int
	Message    string
	// Code and Field are the answer's, when it has them.
	Code  string
	Field string
	// RetryAfter, on a 429, is how long the agent asks the client to wait
	// before it sends again; 0 when it did not say.
	RetryAfter time.Duration
	// Foreign is set when the answer was not a hush agent's (no JSON error
	// of its shape, or a web page): the address may be wrong. A foreign
	// answer matches no kind: its 404 says the path is unknown there, not
	// that a secret or run is.
	Foreign bool
}

func (e *Error) Error() string {
	if e.Message == "" && e.StatusCode == http.StatusTooManyRequests {
		return fmt.Sprintf("the agent refused the request: this token sent more requests than the agent allows (429 Too Many Requests); retry in %s", max(e.RetryAfter, time.Second))
	}
	if e.Message == "" {
		return fmt.Sprintf("agent answered %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	return e.Message
}

// Is matches the sentinel of the error's kind: by its code, or, from an
// agent that sends none, by its status. A foreign answer matches none.
func (e *Error) Is(target error) bool {
	if e.Foreign {
		return false
	}
	if kind := KindOf(e.Code); kind != nil {
		return target == kind
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrForbidden
	case http.StatusNotFound:
		return target == ErrNotFound
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusRequestEntityTooLarge:
		return target == ErrTooLarge
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return target == ErrInvalid
	case http.StatusServiceUnavailable:
		return target == ErrUnavailable
	case http.StatusTooManyRequests:
		return target == ErrRateLimited
	case http.StatusInternalServerError:
		return target == ErrInternal
	}
	return false
}

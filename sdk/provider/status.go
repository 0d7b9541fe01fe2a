package provider

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	providerv1 "github.com/hush-sh/hush/sdk/internal/proto/provider/v1"
)

// Typed errors cross the wire as codes and come back as remoteErrors, which
// keep the message the provider wrote and match the sentinel with
// errors.Is.

// remoteError is an error that the plugin returned.
type remoteError struct {
	msg string
	// is is the sentinel the error matches, or nil.
	is error
	// st is the gRPC status of a whole-call error, nil for one reference.
	st *status.Status
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.is }

// GRPCStatus lets status.Code see the original code of a whole-call error.
func (e *remoteError) GRPCStatus() *status.Status { return e.st }

// toStatus turns a provider's whole-call error into a gRPC status error.
func toStatus(err error) error {
	code := codes.Unknown
	switch {
	case errors.Is(err, ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrPermissionDenied):
		code = codes.PermissionDenied
	case errors.Is(err, ErrUnimplemented):
		code = codes.Unimplemented
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	default:
		if st, ok := status.FromError(err); ok {
			return st.Err()
		}
	}
	return status.Error(code, err.Error())
}

// fromStatus rebuilds a typed error from a gRPC call's error.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	var is error
	switch st.Code() {
	case codes.NotFound:
		is = ErrNotFound
	case codes.PermissionDenied:
		is = ErrPermissionDenied
	case codes.Unimplemented:
		is = ErrUnimplemented
	case codes.Canceled:
		is = context.Canceled
	case codes.DeadlineExceeded:
		is = context.DeadlineExceeded
	case codes.Unknown, codes.Internal:
		// A plain error from the provider, or a panic the plugin side
		// recovered: its message says it all.
	default:
		// Transport trouble, such as a plugin that crashed (Unavailable):
		// keep gRPC's wording, which names the code.
		return err
	}
	msg := st.Message()
	if msg == "" && is != nil {
		msg = is.Error()
	}
	return &remoteError{msg: msg, is: is, st: st}
}

// toResolveError turns one reference's error into its wire form.
func toResolveError(err error) *providerv1.ResolveError {
	if err == nil {
		return nil
	}
	code := providerv1.ResolveError_CODE_OTHER
	switch {
	case errors.Is(err, ErrNotFound):
		code = providerv1.ResolveError_CODE_NOT_FOUND
	case errors.Is(err, ErrPermissionDenied):
		code = providerv1.ResolveError_CODE_PERMISSION_DENIED
	}
	return &providerv1.ResolveError{Code: code, Message: err.Error()}
}

// fromResolveError rebuilds one reference's error.
func fromResolveError(e *providerv1.ResolveError) error {
	if e == nil {
		return nil
	}
	var is error
	switch e.GetCode() {
	case providerv1.ResolveError_CODE_NOT_FOUND:
		is = ErrNotFound
	case providerv1.ResolveError_CODE_PERMISSION_DENIED:
		is = ErrPermissionDenied
	}
	msg := e.GetMessage()
	switch {
	case msg != "":
	case is != nil:
		msg = is.Error()
	default:
		msg = "the plugin failed without saying why"
	}
	return &remoteError{msg: msg, is: is}
}

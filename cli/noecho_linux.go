package cli

import "golang.org/x/sys/unix"

// noEcho turns off the echo of the terminal fd, leaving it line by line
// and with Ctrl+C sending SIGINT, and returns what turns it back on. It is
// term.ReadPassword's setting, done here so that the echo comes back even
// when the read is abandoned, interrupted.
func noEcho(fd int) (restore func(), err error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}

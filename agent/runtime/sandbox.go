package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SandboxBinDir is the dir, within the state dir as a sandboxed exec
// workload sees it, that holds the hush binary.
const SandboxBinDir = "bin"

// Sandbox is what the entrypoint of an exec workload sets up, as root in
// the mount namespace of its own that the runtime started it in, before it
// runs the command as the run's user.
type Sandbox struct {
	// StateDir is the agent's state dir. The workload sees in its place a
	// tmpfs with only RunDir and the hush binary.
	StateDir string
	// RunDir is the run's tmpfs, inside StateDir.
	RunDir string
	// UID and GID are the run's user; it gets no supplementary groups.
	UID, GID uint32
}

// SandboxedEntrypoint is Entrypoint for a sandboxed exec workload. Still
// root, it reads the secret variables, hides the state dir and gives the
// run private /tmp, /var/tmp and /dev/shm; then it takes on the run's user
// for good, forbids gaining privileges (set-user-ID programs), re-arms the
// parent-death signal that the change of user clears, and execs argv.
func SandboxedEntrypoint(envFile string, sb Sandbox, argv []string) error {
	if len(argv) == 0 {
		return errors.New("no command to run")
	}
	if sb.UID == 0 || sb.GID == 0 {
		return errors.New("sandbox: refusing to run a workload as root")
	}
	env, err := secretEnviron(envFile)
	if err != nil {
		return err
	}
	// prctl settings are per thread: this one must exec.
	goruntime.LockOSThread()
	// What the sandbox makes must be searchable by the run's user, even
	// under an agent's umask of 0077; the workload gets the agent's.
	umask := syscall.Umask(0o022)
	if err := sb.mount(); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	syscall.Umask(umask)
	if err := os.Chdir(sb.RunDir); err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	ppid := os.Getppid()
	// Go's Setuid and friends change every thread of the process.
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("sandbox: drop groups: %w", err)
	}
	if err := syscall.Setgid(int(sb.GID)); err != nil {
		return fmt.Errorf("sandbox: set gid %d: %w", sb.GID, err)
	}
	if err := syscall.Setuid(int(sb.UID)); err != nil {
		return fmt.Errorf("sandbox: set uid %d: %w", sb.UID, err)
	}
	if err := prctl(unix.PR_SET_NO_NEW_PRIVS, 1); err != nil {
		return fmt.Errorf("sandbox: forbid new privileges: %w", err)
	}
	if err := prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL)); err != nil {
		return fmt.Errorf("sandbox: set parent-death signal: %w", err)
	}
	if os.Getppid() != ppid {
		return errors.New("sandbox: the run's supervisor exited")
	}
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	return syscall.Exec(bin, argv, env)
}

func prctl(option int, arg uintptr) error { return unix.Prctl(option, arg, 0, 0, 0) }

// mount builds the workload's view of the filesystem. It refuses to run in
// the agent's own mount namespace, where it would hide every run's tmpfs
// from the agent.
func (sb Sandbox) mount() error {
	rel, err := filepath.Rel(sb.StateDir, sb.RunDir)
	if err != nil || !filepath.IsLocal(rel) || rel == "." {
		return fmt.Errorf("run dir %s is not inside state dir %s", sb.RunDir, sb.StateDir)
	}
	own, err1 := os.Readlink("/proc/self/ns/mnt")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", os.Getppid()))
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("check mount namespace: %w", err)
	}
	if own == parent {
		return errors.New("not started in a mount namespace of its own (by the agent's exec runtime)")
	}
	// Again, as Go's exec did: nothing mounted here reaches the host.
	if err := syscall.Mount("none", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}

	runFD, err := syscall.Open(sb.RunDir, unix.O_PATH|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open run dir: %w", err)
	}
	defer syscall.Close(runFD)
	binFD, err := syscall.Open("/proc/self/exe", unix.O_PATH|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open hush binary: %w", err)
	}
	defer syscall.Close(binFD)
	// Other runs' tmpfs mounts go, so that not even their paths show in
	// /proc/self/mountinfo.
	if err := detachUnder(sb.StateDir, sb.RunDir); err != nil {
		return err
	}

	const flags = syscall.MS_NOSUID | syscall.MS_NODEV
	// Files that a run leaves in these would keep its uid, which a later
	// run of another user may be given. They come first: the state dir
	// may lie in one of them, and then is made anew inside it.
	for _, dir := range privateDirs {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, "mode=1777"); err != nil {
			return fmt.Errorf("mount private %s: %w", dir, err)
		}
	}
	if err := os.MkdirAll(sb.StateDir, 0o755); err != nil {
		return err
	}
	if err := syscall.Mount("tmpfs", sb.StateDir, "tmpfs", flags|syscall.MS_NOEXEC, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("hide state dir %s: %w", sb.StateDir, err)
	}
	if err := os.MkdirAll(sb.RunDir, 0o755); err != nil {
		return err
	}
	if err := bind(fdPath(runFD), sb.RunDir, flags|syscall.MS_NOEXEC); err != nil {
		return fmt.Errorf("mount run dir: %w", err)
	}
	bin := filepath.Join(sb.StateDir, SandboxBinDir, "hush")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		return err
	}
	if err := bind(fdPath(binFD), bin, flags|syscall.MS_RDONLY); err != nil {
		return fmt.Errorf("mount hush binary: %w", err)
	}
	return nil
}

// privateDirs get a fresh tmpfs in each sandboxed workload.
var privateDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

// CheckSandboxPath reports an error when the users of sandboxed workloads
// could not reach stateDir: every dir above it must let others search it
// (mode o+x), except where it lies in a dir that the sandbox makes anew.
func CheckSandboxPath(stateDir string) error { return checkSandboxPath(stateDir, privateDirs) }

func checkSandboxPath(stateDir string, private []string) error {
	for _, dir := range private {
		if rel, err := filepath.Rel(dir, stateDir); err == nil && filepath.IsLocal(rel) && rel != "." {
			return nil
		}
	}
	for dir := filepath.Dir(stateDir); ; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("check state dir %s: %w", stateDir, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("runs switch to other users, who cannot reach the state dir %s: %s is mode %04o; "+
				"let others search it (chmod o+x %s) or set state_dir elsewhere, such as /run/hush",
				stateDir, dir, fi.Mode().Perm(), dir)
		}
		if dir == "/" {
			return nil
		}
	}
}

// bind bind-mounts source on target with the given flags (MS_RDONLY,
// MS_NOSUID...), which a bind mount only takes on a remount.
func bind(source, target string, flags uintptr) error {
	if err := syscall.Mount(source, target, "", syscall.MS_BIND, ""); err != nil {
		return err
	}
	return syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|flags, "")
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// detachUnder lazily unmounts every mount below dir except keep.
func detachUnder(dir, keep string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountPath(fields[4])
		if rel, err := filepath.Rel(dir, p); err == nil && filepath.IsLocal(rel) && rel != "." && p != keep {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// Deepest first; a mount already gone with its parent is no error.
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("unmount %s: %w", p, err)
		}
	}
	return nil
}

// unescapeMountPath decodes the octal escapes (\040 for a space) of a
// path in /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

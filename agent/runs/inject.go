package runs

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/hush-sh/hush/agent/runtime"
	"github.com/hush-sh/hush/agent/store"
	"github.com/hush-sh/hush/sdk/api"
)

// Files on the run's tmpfs.
const (
	envFile   = "env"
	tokenFile = "token"
	caFile    = "ca.pem"
	filesDir  = "files"
)

// tmpfsSize bounds a run's tmpfs: secrets are at most 1 MiB each.
const tmpfsSize = "64m"

// injection is how a run receives its secrets.
type injection struct {
	// env holds variables that are not secret, such as file paths.
	env []string
	// secretEnv holds variables whose values are secret; only the
	// entrypoint sees them, through the env file on the tmpfs.
	secretEnv []string
	mounts    []runtime.Mount
	// registry holds docker credentials by server.
	registry map[string][2]string
	events   []string
	// warnings are about how the run's secrets reach it.
	warnings []string
}

// mountTmpfs makes dir a private tmpfs (noexec, nosuid, nodev, 0700),
// owned by the run's user when it has one. When the agent may not mount,
// as when it does not run as root, it falls back to a 0700 directory and
// says so: /dev/shm and /run are tmpfs on most systems.
func mountTmpfs(dir string, owner *runtime.User) (fallback bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create run dir: %w", err)
	}
	opts := "mode=0700,size=" + tmpfsSize
	if owner != nil {
		opts += fmt.Sprintf(",uid=%d,gid=%d", owner.UID, owner.GID)
	}
	err = syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOEXEC|syscall.MS_NOSUID|syscall.MS_NODEV, opts)
	if errors.Is(err, syscall.EPERM) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("mount tmpfs on %s: %w", dir, err)
	}
	return false, nil
}

// chownRun gives the run's user the files on its tmpfs that its workload
// reads: the token and the secret files. The env file stays root's: the
// entrypoint reads it before it takes on the run's user.
func chownRun(runDir string, owner *runtime.User) error {
	return filepath.WalkDir(runDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == filepath.Join(runDir, envFile) {
			return nil
		}
		return os.Lchown(p, int(owner.UID), int(owner.GID))
	})
}

// removeTmpfs unmounts and removes a run dir. It is safe to call on a dir
// that is not mounted or does not exist.
func removeTmpfs(dir string) error {
	if err := syscall.Unmount(dir, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", dir, err)
		}
	}
	return os.RemoveAll(dir)
}

// materialize writes a run's secrets to its tmpfs at runDir and returns
// how the run receives them, as each type's injection rules say. In an
// isolated runtime the run sees files at their mount paths; otherwise at
// their paths on the tmpfs. Secrets that refreshing names are written so
// that a new value can replace them whole while the run runs.
func materialize(runDir string, isolated bool, secrets []*store.Secret, runEnv map[string]string, refreshing map[string]bool) (*injection, error) {
	root, err := os.OpenRoot(runDir)
	if err != nil {
		return nil, fmt.Errorf("open the run's tmpfs: %w", err)
	}
	defer root.Close()
	inj, err := newMaterializer(root, runDir, isolated, runEnv, refreshing).all(secrets)
	if err != nil {
		return nil, err
	}
	// Parents before children, so that a mount inside another lands on top.
	slices.SortFunc(inj.mounts, func(a, b runtime.Mount) int { return strings.Compare(a.Target, b.Target) })
	if err := replaceFile(root, envFile, []byte(strings.Join(inj.secretEnv, "\x00")), 0o400, false); err != nil {
		return nil, fmt.Errorf("write secret environment: %w", err)
	}
	return inj, nil
}

// rematerialize writes new values of some of a run's secrets over their
// files on its tmpfs at root, each file replaced whole, and returns their
// injection: their secret variables are for the env file.
func rematerialize(root *os.Root, runDir string, isolated bool, secrets []*store.Secret, runEnv map[string]string) (*injection, error) {
	refreshing := map[string]bool{}
	for _, sec := range secrets {
		refreshing[sec.Name] = true
	}
	return newMaterializer(root, runDir, isolated, runEnv, refreshing).all(secrets)
}

func newMaterializer(root *os.Root, runDir string, isolated bool, runEnv map[string]string, refreshing map[string]bool) *materializer {
	return &materializer{
		inj:         &injection{registry: map[string][2]string{}},
		root:        root,
		runDir:      runDir,
		isolated:    isolated,
		runEnv:      runEnv,
		usedTargets: map[string]string{},
		boundDirs:   map[string]string{},
		refreshing:  refreshing,
	}
}

// all injects each secret of a type the agent knows.
func (m *materializer) all(secrets []*store.Secret) (*injection, error) {
	for _, sec := range secrets {
		spec, ok := api.LookupType(sec.Type)
		if !ok {
			continue
		}
		if err := m.secret(sec, spec); err != nil {
			return nil, err
		}
	}
	return m.inj, nil
}

// materializer gathers the injection of one run's secrets. Once its run
// has started, the run's user owns the run's tmpfs and what is in it, so
// every file there is reached through root, which no link leads out of.
type materializer struct {
	inj      *injection
	root     *os.Root
	runDir   string
	isolated bool
	runEnv   map[string]string
	// usedTargets maps each mount target to the secret mounted there;
	// boundDirs, each dir bound whole for a secret's one file.
	usedTargets map[string]string
	boundDirs   map[string]string
	// refreshing names the secrets that a refresh may rewrite.
	refreshing map[string]bool
}

// secret injects one secret as its type's spec says.
func (m *materializer) secret(sec *store.Secret, spec *api.TypeSpec) error {
	// Checked at create too; this also covers provider values and
	// secrets stored before that check.
	if err := spec.CheckEnvData(sec.Name, sec.Data); err != nil {
		return err
	}
	rules := spec.Inject
	seen := "" // where the run sees the secret: its file or its dir
	var paths map[string]string
	if len(rules.Files) > 0 {
		var err error
		if seen, paths, err = m.files(sec, spec); err != nil {
			return err
		}
		m.setEnv(sec, api.EnvSecretPathPrefix+api.EnvKeyFromName(sec.Name), seen, false)
	}
	for _, e := range rules.Env {
		if !e.Applies(sec.Data) {
			continue
		}
		name := e.Name
		if e.NameField != "" {
			name = sec.Fields[e.NameField]
		}
		switch e.From {
		case api.EnvData:
			m.setEnv(sec, name, e.Prefix+string(sec.Data[e.Ref]), true)
		case api.EnvField:
			if v := sec.Fields[e.Ref]; v != "" {
				m.setEnv(sec, name, e.Prefix+v, false)
			}
		case api.EnvPath:
			m.setEnv(sec, name, e.Prefix+seen, false)
		case api.EnvFilePath:
			m.setEnv(sec, name, e.Prefix+path.Join(seen, e.Ref), false)
		case api.EnvFormat:
			m.setEnv(sec, name, e.Prefix+api.FormatFiles(e.Ref, paths), false)
		}
	}
	if r := rules.Registry; r != nil {
		m.inj.registry[sec.Fields[r.Server]] = [2]string{sec.Fields[r.Username], string(sec.Data[r.Password])}
	}
	return nil
}

// files writes a secret's files under files/NAME on the tmpfs, mounts them
// (the one file and those beside it, or the dir) at the mount path or the
// type's default, and returns where the run sees the secret and where it
// sees each file, by the name of its FileSpec. A file of an optional value
// that the secret does not hold is left out.
func (m *materializer) files(sec *store.Secret, spec *api.TypeSpec) (string, map[string]string, error) {
	rules := &spec.Inject
	target := cmp.Or(sec.Fields[api.FieldMountPath], rules.DefaultMountPath(sec.Name))
	var held []api.FileSpec
	for _, f := range rules.Files {
		if _, ok := sec.Data[f.Data]; ok || !spec.IsOptional(f.Data) {
			held = append(held, f)
		}
	}
	paths := map[string]string{}
	if !rules.Dir {
		// The one file takes the name its mount path gives it.
		f := rules.Files[0]
		rel := path.Join(sec.Name, path.Base(target))
		// A file bound on its own stays the file it was when bound: one
		// put in its place is not seen. So a refreshing secret's file is
		// bound through its own dir when it is at its default path, and
		// otherwise rewritten where it is.
		bindDir := m.isolated && m.refreshing[sec.Name] && target == rules.DefaultMountPath(sec.Name)
		inPlace := m.isolated && m.refreshing[sec.Name] && !bindDir
		src, err := m.write(rel, sec.Data[f.Data], f.Mode, inPlace)
		if err != nil {
			return "", nil, fmt.Errorf("write secret %s: %w", sec.Name, err)
		}
		source, at := src, target
		switch {
		case bindDir:
			source, at = filepath.Dir(src), path.Dir(target)
			m.boundDirs[at] = sec.Name
		case inPlace:
			m.inj.warnings = append(m.inj.warnings, fmt.Sprintf(
				"secret %s is mounted as a single file at %s, which a refresh rewrites in place: a reader may find it half written; read it again when the run is signalled, or leave out its mount_path to have it at %s, which is replaced whole",
				sec.Name, target, rules.DefaultMountPath(sec.Name)))
		}
		if err := m.mount(sec, source, at); err != nil {
			return "", nil, err
		}
		paths[f.Name] = m.where(rel, target)
		// The files beside it go in its dir, which a bound dir brings
		// along; otherwise each is mounted beside it.
		for _, b := range held[1:] {
			if b.Name == path.Base(target) {
				return "", nil, fmt.Errorf("secret %s mounts at %s, where its %s goes: give it a --mount-path with another file name", sec.Name, target, b.Name)
			}
			brel, bat := path.Join(sec.Name, b.Name), path.Join(path.Dir(target), b.Name)
			src, err := m.write(brel, sec.Data[b.Data], b.Mode, inPlace)
			if err != nil {
				return "", nil, fmt.Errorf("write secret %s: %w", sec.Name, err)
			}
			if !bindDir {
				if err := m.mount(sec, src, bat); err != nil {
					return "", nil, err
				}
			}
			paths[b.Name] = m.where(brel, bat)
		}
		return paths[f.Name], paths, nil
	}
	seen := m.where(sec.Name, target)
	for _, f := range held {
		if _, err := m.write(path.Join(sec.Name, f.Name), sec.Data[f.Data], f.Mode, false); err != nil {
			return "", nil, fmt.Errorf("write secret %s: %w", sec.Name, err)
		}
		paths[f.Name] = path.Join(seen, f.Name)
	}
	if err := m.mount(sec, filepath.Join(m.runDir, filesDir, sec.Name), target); err != nil {
		return "", nil, err
	}
	return seen, paths, nil
}

// where returns the path the run sees for a file under files/.
func (m *materializer) where(rel, target string) string {
	if m.isolated {
		return target
	}
	return filepath.Join(m.runDir, filesDir, rel)
}

// write writes a file under files/ and returns its path on the tmpfs. The
// file is replaced whole, so that a run never reads it half written,
// unless inPlace.
func (m *materializer) write(rel string, data []byte, mode os.FileMode, inPlace bool) (string, error) {
	name := path.Join(filesDir, rel)
	if err := m.root.MkdirAll(path.Dir(name), 0o700); err != nil {
		return "", err
	}
	mode = cmp.Or(mode, api.DefaultFileMode)
	p := filepath.Join(m.runDir, filepath.FromSlash(name))
	if inPlace {
		return p, m.root.WriteFile(name, data, mode)
	}
	return p, replaceFile(m.root, name, data, mode, true)
}

// replaceFile writes data to a new file beside name, in root, and renames
// it over name. The new file is made afresh (O_EXCL), so that no link put
// in its place is followed. With give, it gets the owner of name's dir,
// which is the run's user once the run has started.
func replaceFile(root *os.Root, name string, data []byte, mode os.FileMode, give bool) error {
	tmp := path.Join(path.Dir(name), "."+path.Base(name)+".new")
	root.Remove(tmp)
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Close()); err == nil && give {
		var fi os.FileInfo
		if fi, err = root.Stat(path.Dir(name)); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
				err = root.Lchown(tmp, int(st.Uid), int(st.Gid))
			}
		}
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
	}
	return err
}

func (m *materializer) mount(sec *store.Secret, source, target string) error {
	if other, ok := m.usedTargets[target]; ok {
		return fmt.Errorf("secrets %s and %s both mount at %s: give one of them another --mount-path", other, sec.Name, target)
	}
	// A refreshed secret's dir, bound whole, has no room for another's.
	inside := func(name, at, dir, bound string) error {
		return fmt.Errorf("secret %s mounts at %s, inside %s, where refreshed secret %s is bound: give %s another --mount-path", name, at, dir, bound, name)
	}
	for dir, bound := range m.boundDirs {
		if bound != sec.Name && strings.HasPrefix(target, dir+"/") {
			return inside(sec.Name, target, dir, bound)
		}
	}
	if m.boundDirs[target] == sec.Name {
		for at, other := range m.usedTargets {
			if strings.HasPrefix(at, target+"/") {
				return inside(other, at, target, sec.Name)
			}
		}
	}
	m.usedTargets[target] = sec.Name
	m.inj.mounts = append(m.inj.mounts, runtime.Mount{Source: source, Target: target})
	return nil
}

// setEnv gives the run a variable, unless the run's env_variables set it:
// those win, and an event says so.
func (m *materializer) setEnv(sec *store.Secret, key, value string, secret bool) {
	if _, ok := m.runEnv[key]; ok {
		m.inj.events = append(m.inj.events, fmt.Sprintf("env_variables sets %s, which overrides secret %s", key, sec.Name))
		return
	}
	if secret {
		m.inj.secretEnv = append(m.inj.secretEnv, key+"="+value)
	} else {
		m.inj.env = append(m.inj.env, key+"="+value)
	}
}

// registryHost matches a docker secret's server against the host that
// containerd asks credentials for: "docker.io" also answers for
// registry-1.docker.io, and a server may be written with a scheme or path.
func registryHost(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return "registry-1.docker.io"
	}
	return s
}
